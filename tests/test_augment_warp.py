"""Perspective and elastic warps against NumPy references of torchvision's grid rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import augment as A

RNG = np.random.default_rng(0)
X = RNG.random((2, 12, 15, 3)).astype(np.float32)


def _np_coeffs(start, end):
    a = np.zeros((8, 8))
    for i, ((xe, ye), (xs, ys)) in enumerate(zip(end, start, strict=True)):
        a[2 * i] = [xe, ye, 1, 0, 0, 0, -xs * xe, -xs * ye]
        a[2 * i + 1] = [0, 0, 0, xe, ye, 1, -ys * xe, -ys * ye]
    return np.linalg.solve(a, np.asarray(start, float).reshape(8))


def _np_grid_sample(img, sx, sy, fill):
    """Bilinear ``grid_sample(zeros)`` at pixel positions, then torchvision's fill blend."""
    H, W, C = img.shape
    out = np.zeros_like(img, dtype=np.float64)
    for i in range(H):
        for j in range(W):
            x, y = sx[i, j], sy[i, j]
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            acc, mask = np.zeros(C), 0.0
            for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                    if 0 <= yy < H and 0 <= xx < W:
                        acc += wy * wx * img[yy, xx]
                        mask += wy * wx
            out[i, j] = acc * mask + (1 - mask) * np.asarray(fill)
    return out


def test_perspective_matches_the_pil_map():
    start = [[0, 0], [14, 0], [14, 11], [0, 11]]
    end = [[2, 1], [13, 0], [12, 10], [1, 11]]
    c = _np_coeffs(start, end)
    H, W = 12, 15
    xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    den = c[6] * xs + c[7] * ys + 1
    sx = (c[0] * xs + c[1] * ys + c[2]) / den - 0.5
    sy = (c[3] * xs + c[4] * ys + c[5]) / den - 0.5
    fill = (0.2, 0.4, 0.6)
    expected = np.stack([_np_grid_sample(img, sx, sy, fill) for img in X])
    got = np.asarray(A.perspective(X, start, end, fill=fill))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_perspective_identity_and_translation():
    corners = [[0, 0], [14, 0], [14, 11], [0, 11]]
    np.testing.assert_allclose(np.asarray(A.perspective(X, corners, corners)), X, atol=1e-5)
    shifted = [[x + 2, y] for x, y in corners]  # content moves right by 2
    got = np.asarray(A.perspective(X, corners, shifted, interpolation="nearest"))
    np.testing.assert_allclose(got[:, :, 2:], X[:, :, :-2], atol=1e-6)
    np.testing.assert_array_equal(got[:, :, :2], 0.0)


def test_random_perspective_per_sample():
    images = jnp.ones((32, 16, 16, 1))
    key = jax.random.key(0)
    np.testing.assert_array_equal(np.asarray(A.random_perspective(key, images, p=0.0)), 1.0)
    out = np.asarray(A.random_perspective(key, images, p=1.0))
    filled = (out < 0.999).reshape(32, -1).sum(axis=1)
    assert np.all(filled > 0) and len(set(filled.tolist())) > 5  # each its own corners
    none = np.asarray(A.random_perspective(key, images, distortion_scale=0.0, p=1.0))
    # distortion 0 moves each corner within one pixel (bound = 1): at most a pixel of fill
    assert np.all((none < 0.999).reshape(32, -1).sum(axis=1) < 16 * 4)
    again = jax.jit(lambda k, x: A.random_perspective(k, x, p=1.0))(key, images)
    np.testing.assert_allclose(np.asarray(again), out, atol=1e-6)


def test_elastic_transform():
    key = jax.random.key(1)
    np.testing.assert_array_equal(np.asarray(A.elastic_transform(key, X, alpha=0.0)), X)
    images = jnp.asarray(np.broadcast_to(X[:1], (8, 12, 15, 3)))
    out = np.asarray(A.elastic_transform(key, images, alpha=30.0, sigma=2.0))
    diffs = [np.abs(out[i] - out[0]).max() for i in range(1, 8)]
    assert min(diffs) > 0  # every sample its own field
    small = np.asarray(A.elastic_transform(key, images, alpha=3.0, sigma=2.0))
    big = np.asarray(A.elastic_transform(key, images, alpha=30.0, sigma=2.0))
    assert np.abs(small - images).mean() < np.abs(big - images).mean()
    again = jax.jit(lambda k, x: A.elastic_transform(k, x, alpha=30.0, sigma=2.0))(key, images)
    np.testing.assert_allclose(np.asarray(again), out, atol=1e-5)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.perspective(X, [[0, 0]] * 3, [[0, 0]] * 4), "startpoints"),
        (
            lambda: A.perspective(X, [[0, 0]] * 4, [[0, 0]] * 4, interpolation="cubic"),
            "interpolation",
        ),
        (
            lambda: A.random_perspective(jax.random.key(0), X, distortion_scale=1.5),
            "distortion_scale",
        ),
        (lambda: A.elastic_transform(jax.random.key(0), X, alpha=-1.0), "alpha"),
        (lambda: A.elastic_transform(jax.random.key(0), X, sigma=-1.0), "sigma"),
    ],
)
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _np_perspective_nearest(img, startpoints, endpoints):
    """torchvision's perspective, nearest, in NumPy float32: PIL's coefficients solved in
    float64 and used in float32, ``_perspective_grid`` (pixel centres ``x + 0.5``,
    ``[x, y, 1] @ theta1^T / (W/2, H/2)`` over ``[x, y, 1] @ theta2^T``, minus one), then
    grid_sample's ``(g + 1) * size / 2 - 0.5`` rounded once and ties to even."""
    H, W, _ = img.shape
    a = np.zeros((8, 8))
    for i, ((xs, ys), (xe, ye)) in enumerate(zip(startpoints, endpoints, strict=True)):
        a[2 * i] = [xe, ye, 1, 0, 0, 0, -xs * xe, -xs * ye]
        a[2 * i + 1] = [0, 0, 0, xe, ye, 1, -ys * xe, -ys * ye]
    c = np.linalg.solve(a, np.asarray(startpoints, np.float64).reshape(8)).astype(np.float32)
    X, Y = np.meshgrid(np.arange(W, dtype=np.float32) + 0.5, np.arange(H, dtype=np.float32) + 0.5)
    rt = np.stack([c[0:3], c[3:6]]).T / np.array([W / 2, H / 2], np.float32)
    den = X * c[6] + Y * c[7] + np.float32(1)
    g = [(X * rt[0, k] + Y * rt[1, k] + rt[2, k]) / den - np.float32(1) for k in range(2)]
    src = [
        ((g[k] + np.float32(1)).astype(np.float64) * (n / 2) - 0.5).astype(np.float32)
        for k, n in ((0, W), (1, H))
    ]
    ix, iy = np.rint(src[0]).astype(int), np.rint(src[1]).astype(int)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    return np.where(inside[..., None], img[np.clip(iy, 0, H - 1), np.clip(ix, 0, W - 1)], 0.0)


@pytest.mark.parametrize(
    "shape,end",
    [
        ((8, 8), [[1, 0], [6, 1], [7, 6], [0, 7]]),
        ((8, 8), [[2, 1], [7, 0], [5, 7], [1, 6]]),
        ((7, 9), [[2, 1], [8, 0], [6, 6], [1, 5]]),
        ((7, 9), [[1, 0], [7, 1], [8, 5], [0, 6]]),
    ],
)
def test_perspective_nearest_rounds_half_pixels_as_torchvision(shape, end):
    # the pixel-coordinate formula (c0 x + c1 y + c2) / d - 0.5 rounds differently from
    # torchvision's normalised grid: 1.5-5% of the nearest reads went to the other pixel
    H, W = shape
    img = np.random.default_rng(4).random((H, W, 3)).astype(np.float32)
    start = [[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]]
    got = np.asarray(A.perspective(img, start, end, interpolation="nearest"))
    np.testing.assert_array_equal(got, _np_perspective_nearest(img, start, end))
