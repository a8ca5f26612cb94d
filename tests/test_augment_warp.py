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
