"""Flips, crops and warps against NumPy index formulas and scipy.ndimage."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

import functional_dl.augment as A
from tests.helpers import TraceCounter, assert_close, assert_finite, fast_key

RNG = np.random.default_rng(1)
IMAGES = RNG.random((2, 12, 10, 3)).astype(np.float32)
KEY = fast_key(3)


# --- flips and centre crop ----------------------------------------------------------------


def test_hflip_and_random_flip():
    np.testing.assert_array_equal(A.hflip(IMAGES), IMAGES[:, :, ::-1])
    x8 = (IMAGES[0, ..., :1] * 255).astype(np.uint8)  # one channel, uint8
    np.testing.assert_array_equal(A.hflip(x8), x8[:, ::-1])
    batch = np.repeat(IMAGES[:1], 16, axis=0)
    np.testing.assert_array_equal(A.random_horizontal_flip(KEY, batch, p=0.0), batch)
    np.testing.assert_array_equal(A.random_horizontal_flip(KEY, batch, p=1.0), batch[:, :, ::-1])
    out = np.asarray(A.random_horizontal_flip(KEY, batch))
    flipped = np.all(out == batch[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(flipped | np.all(out == batch, axis=(1, 2, 3)))
    assert 0 < flipped.sum() < 16  # each sample draws its own coin
    # the same key flips the same samples, so applying it twice is the identity
    np.testing.assert_array_equal(A.random_horizontal_flip(KEY, out), batch)


@pytest.mark.parametrize(
    "H,W,h,w",
    [
        (5, 5, 2, 2),
        (4, 7, 1, 3),
        (6, 6, 1, 5),
        (10, 12, 3, 6),
        (3, 4, 6, 4),
        (3, 4, 2, 9),
        (5, 5, 5, 5),
    ],
)
def test_center_crop_index_formula(H, W, h, w):
    x = np.arange(H * W, dtype=np.float32).reshape(H, W, 1) + 1
    padded = np.pad(
        x,
        [
            ((h - H) // 2 if h > H else 0, (h - H + 1) // 2 if h > H else 0),
            ((w - W) // 2 if w > W else 0, (w - W + 1) // 2 if w > W else 0),
            (0, 0),
        ],
    )
    top = int(round((padded.shape[0] - h) / 2))  # Python rounds half to even
    left = int(round((padded.shape[1] - w) / 2))
    np.testing.assert_array_equal(A.center_crop(x, (h, w)), padded[top : top + h, left : left + w])


def test_center_crop_h5_crop2_starts_at_row_2():
    x = np.arange(5, dtype=np.float32).reshape(5, 1, 1) * np.ones((1, 5, 1), np.float32)
    out = np.asarray(A.center_crop(x[None], 2))
    assert out.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(out[0, :, 0, 0], [2, 3])


# --- resized crop ---------------------------------------------------------------------------


def np_crop(img, top, left, height, width):
    """torchvision's crop: zero padding for parts of the box outside the image."""
    H, W = img.shape[:2]
    out = np.zeros((height, width, img.shape[2]), np.float64)
    for i in range(height):
        for j in range(width):
            if 0 <= top + i < H and 0 <= left + j < W:
                out[i, j] = img[top + i, left + j]
    return out


def np_resize(img, out_h, out_w, mode):
    """PyTorch's upsample_{bilinear2d,nearest2d} on CPU, align_corners=False."""
    h, w = img.shape[:2]
    out = np.zeros((out_h, out_w, img.shape[2]))
    for i in range(out_h):
        for j in range(out_w):
            if mode == "nearest":
                out[i, j] = img[
                    min(int(math.floor(i * h / out_h)), h - 1),
                    min(int(math.floor(j * w / out_w)), w - 1),
                ]
                continue
            y = max((i + 0.5) * h / out_h - 0.5, 0.0)
            x = max((j + 0.5) * w / out_w - 0.5, 0.0)
            y0, x0 = int(y), int(x)
            y1, x1 = y0 + (y0 < h - 1), x0 + (x0 < w - 1)
            ly, lx = y - y0, x - x0
            out[i, j] = (1 - ly) * ((1 - lx) * img[y0, x0] + lx * img[y0, x1]) + ly * (
                (1 - lx) * img[y1, x0] + lx * img[y1, x1]
            )
    return out


@pytest.mark.parametrize(
    "box,size,mode",
    [
        ((2, 3, 7, 5), (9, 4), "bilinear"),
        ((0, 0, 12, 10), (5, 7), "bilinear"),
        ((-2, 6, 6, 7), (6, 6), "bilinear"),  # partly outside: zeros, as torchvision's crop
        ((1, 2, 7, 5), (9, 4), "nearest"),
        ((3, 1, 4, 8), (11, 3), "nearest"),
    ],
)
def test_resized_crop_matches_torch_formula(box, size, mode):
    out = A.resized_crop(IMAGES, *box, size, interpolation=mode)
    ref = np.stack([np_resize(np_crop(img, *box), *size, mode) for img in IMAGES])
    assert_close(out, ref, dtype=np.float32)


def test_resized_crop_upsampling_agrees_with_jax_image_resize():
    crop = IMAGES[0, 2:7, 1:6]
    ref = jax.image.resize(crop, (13, 11, 3), method="linear", antialias=False)
    assert_close(A.resized_crop(IMAGES[0], 2, 1, 5, 5, (13, 11)), ref)
    # a box of the output size is a plain crop
    np.testing.assert_allclose(A.resized_crop(IMAGES, 3, 2, 6, 4, (6, 4)), IMAGES[:, 3:9, 2:6])


RRC_TRACES = TraceCounter(
    lambda k, x, s, r: A.random_resized_crop(
        k, x, (16, 16), scale=s, ratio=r, interpolation="nearest"
    )
)
RRC = jax.jit(RRC_TRACES)


def _coordinate_images(n, H=16, W=16):
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    grid = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.float32)
    return np.repeat(grid[None], n, axis=0)


COORDS = _coordinate_images(64)


def _boxes(out):
    """(top, left, h, w) per sample from a nearest crop of the coordinate image."""
    rows, cols = out[..., 0], out[..., 1]
    top, left = rows.min((1, 2)), cols.min((1, 2))
    return top, left, rows.max((1, 2)) - top + 1, cols.max((1, 2)) - left + 1


def test_random_resized_crop_boxes_within_scale_and_ratio():
    x = COORDS
    scale, ratio = (0.2, 0.6), (0.5, 2.0)
    out = np.asarray(RRC(KEY, x, scale, ratio))
    top, left, h, w = _boxes(out)
    # every row / column of a box appears (output 16 >= box side)
    for n in range(64):
        assert len(np.unique(out[n, ..., 0])) == h[n] and len(np.unique(out[n, ..., 1])) == w[n]
    area = h * w / 256
    # sizes are rounded to whole pixels: allow the rounding of each side
    assert np.all(area >= scale[0] * (1 - 2 / np.sqrt(scale[0] * 256)) - 1e-6)
    assert np.all(area <= scale[1] * (1 + 2 / np.sqrt(scale[1] * 256)) + 1e-6)
    aspect = w / h
    assert np.all(aspect >= ratio[0] * 0.75) and np.all(aspect <= ratio[1] / 0.75)
    assert np.all((top >= 0) & (left >= 0) & (top + h <= 16) & (left + w <= 16))
    assert len({(a, b, c, d) for a, b, c, d in zip(top, left, h, w, strict=True)}) > 32
    # same key, same crops
    np.testing.assert_array_equal(RRC(KEY, x, scale, ratio), out)


@pytest.mark.parametrize(
    "ratio,expected",
    [
        ((2.0, 3.0), (4, 0, 8, 16)),  # W / H below the range: w = W, h = round(W / 2)
        ((0.25, 0.5), (0, 4, 16, 8)),  # W / H above the range: h = H, w = round(H * 0.5)
        ((0.5, 2.0), (0, 0, 16, 16)),  # W / H within the range: the whole image
    ],
)
def test_random_resized_crop_fallback_is_torchvision_centre_crop(ratio, expected):
    out = np.asarray(RRC(KEY, COORDS, (2.0, 3.0), ratio))  # area > image: every try fails
    for got in zip(*_boxes(out), strict=True):
        assert tuple(int(v) for v in got) == expected
    assert RRC_TRACES.count == 1  # new hyperparameter values, same compiled program


# --- rotation and affine ---------------------------------------------------------------


def np_inverse_affine(angle, translate, scale, shear):
    """torchvision's _get_inverse_affine_matrix, centre (0, 0), with our angle negated."""
    rot = math.radians(-angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    m[2] -= m[0] * tx + m[1] * ty
    m[5] -= m[3] * tx + m[4] * ty
    return m


def scipy_warp(img, m, order, fill):
    """grid_sample(zeros) + torchvision's fill rule, through scipy.ndimage.affine_transform."""
    H, W = img.shape[:2]
    matrix = np.array([[m[4], m[3]], [m[1], m[0]]])  # (row, col) order
    center = np.array([(H - 1) / 2, (W - 1) / 2])
    offset = center - matrix @ center + np.array([m[5], m[2]])

    def warp(a):
        return ndimage.affine_transform(
            a, matrix, offset=offset, order=order, mode="grid-constant", cval=0.0
        )

    sampled = np.stack([warp(img[..., c].astype(np.float64)) for c in range(img.shape[2])], -1)
    mask = warp(np.ones((H, W)))[..., None]
    if order == 0:
        return np.where(mask < 0.5, fill, sampled)
    return mask * (sampled - fill) + fill


@pytest.mark.parametrize(
    "params,mode,fill",
    [
        ((30.0, (0, 0), 1.0, (0.0, 0.0)), "nearest", 0.0),
        ((-50.0, (2, -1), 0.8, (10.0, 0.0)), "nearest", 0.5),
        ((20.0, (-3, 2), 1.3, (-15.0, 8.0)), "bilinear", 0.0),
        ((75.0, (1, 1), 0.9, (0.0, -5.0)), "bilinear", 0.25),
    ],
)
def test_affine_matches_scipy(params, mode, fill):
    out = A.affine(IMAGES, *params, interpolation=mode, fill=fill)
    m = np_inverse_affine(*params)
    ref = np.stack([scipy_warp(img, m, 0 if mode == "nearest" else 1, fill) for img in IMAGES])
    assert_close(out, ref, dtype=np.float32)


@pytest.mark.parametrize("mode,order", [("nearest", 0), ("bilinear", 1)])
def test_rotate_is_counter_clockwise_and_agrees_with_affine_and_scipy(mode, order):
    img = np.zeros((9, 9, 1), np.float32)
    img[4, 7] = 1.0  # right of the centre
    moved = np.argwhere(np.asarray(A.rotate(img, 90.0, interpolation=mode))[..., 0] > 0.5)
    np.testing.assert_array_equal(moved, [[1, 4]])  # now above the centre
    sq = IMAGES[0, :10]
    assert_close(A.rotate(sq, 90.0, interpolation=mode), np.rot90(sq, 1, axes=(0, 1)))
    out = A.rotate(IMAGES, 33.0, interpolation=mode)
    np.testing.assert_array_equal(
        out, A.affine(IMAGES, 33.0, (0, 0), 1.0, (0.0, 0.0), interpolation=mode)
    )
    rot = ndimage.rotate(
        IMAGES[1].astype(np.float64),
        33.0,
        reshape=False,
        order=order,
        mode="grid-constant",
        cval=0.0,
    )
    ones = ndimage.rotate(
        np.ones((12, 10, 3)), 33.0, reshape=False, order=order, mode="grid-constant", cval=0.0
    )
    assert_close(out[1], rot * ones if order == 1 else rot, dtype=np.float32)


def _grid_sample_nearest_warp(img, angle, scale):
    """torchvision's nearest warp redone in NumPy float32: the float64 inverse matrix of a
    rotation (counter-clockwise) and zoom about the centre, ``_affine_grid``'s normalised
    coordinates ``[x, y, 1] @ theta^T / (W/2, H/2)``, grid_sample's
    ``(g + 1) * size / 2 - 0.5`` (one rounding: a fused multiply-add) and ties to even."""
    H, W, _ = img.shape
    rot = math.radians(-angle)
    m = np.array(
        [[math.cos(rot), math.sin(rot), 0.0], [-math.sin(rot), math.cos(rot), 0.0]]
    ) / float(scale)
    theta = m.astype(np.float32).T / np.array([W / 2, H / 2], np.float32)  # [3, 2]
    xs = np.arange(W, dtype=np.float32) - np.float32((W - 1) / 2)
    ys = np.arange(H, dtype=np.float32) - np.float32((H - 1) / 2)
    X, Y = np.meshgrid(xs, ys)
    g = [X * theta[0, k] + Y * theta[1, k] + theta[2, k] for k in range(2)]
    # float64 holds the float32 product and sum exactly: one rounding to float32
    src = [
        ((g[k] + np.float32(1)).astype(np.float64) * (n / 2) - 0.5).astype(np.float32)
        for k, n in ((0, W), (1, H))
    ]
    ix, iy = np.rint(src[0]).astype(int), np.rint(src[1]).astype(int)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    out = img[np.clip(iy, 0, H - 1), np.clip(ix, 0, W - 1)]
    return np.where(inside[..., None], out, 0.0).astype(img.dtype)


@pytest.mark.parametrize("shape", [(5, 6), (7, 8), (8, 7), (1, 4)])
@pytest.mark.parametrize("angle,scale", [(90, 1.0), (-90, 1.0), (270, 1.0), (0, 1.5), (0, 0.75)])
def test_nearest_warp_rounds_half_pixel_positions_as_torchvision(shape, angle, scale):
    # a quarter turn of an image with sides of different parity, or a zoom by 1.5, puts
    # source positions (near) exactly between two pixels; a float32 rotation matrix
    # (cos 90 = -4e-8) and a differently ordered coordinate formula tipped 12-23% of
    # them the other way from torchvision
    img = RNG.random((*shape, 2)).astype(np.float32)
    out = A.affine(img, float(angle), (0, 0), scale, (0.0, 0.0), interpolation="nearest")
    np.testing.assert_array_equal(out, _grid_sample_nearest_warp(img, angle, scale))
    if scale == 1.0:
        np.testing.assert_array_equal(A.rotate(img, float(angle)), out)


def test_vmap_over_samples():
    # a deterministic op with per-sample parameters, and a random op with per-sample keys
    factors = jnp.array([0.3, 1.6])
    out = jax.vmap(A.adjust_brightness)(IMAGES, factors)
    for n in range(2):
        assert_close(out[n], np.clip(IMAGES[n] * float(factors[n]), 0, 1))
    keys = jax.random.split(jax.random.key(3), 2)  # threefry: vmap equals a loop over keys
    out = jax.vmap(lambda k, x: A.random_horizontal_flip(k, x))(keys, IMAGES)
    for n in range(2):
        np.testing.assert_array_equal(out[n], A.random_horizontal_flip(keys[n], IMAGES[n]))


RANDOM_AFFINE = jax.jit(
    lambda k, x, d, t, s, sh: A.random_affine(k, x, d, translate=t, scale=s, shear=sh, fill=0.5)
)


def test_random_affine_degenerate_ranges_equal_affine():
    batch = np.repeat(IMAGES[:1], 12, axis=0)
    out = RANDOM_AFFINE(KEY, batch, (25.0, 25.0), (0.0, 0.0), (1.2, 1.2), (4.0, 4.0, -6.0, -6.0))
    ref = A.affine(batch, 25.0, (0, 0), 1.2, (4.0, -6.0), fill=0.5)
    assert_close(out, ref)


def test_random_affine_draws_integer_translations_per_sample():
    batch = np.repeat(IMAGES[:1], 12, axis=0)
    out = np.asarray(
        RANDOM_AFFINE(KEY, batch, (0.0, 0.0), (0.2, 0.0), (1.0, 1.0), (0.0, 0.0, 0.0, 0.0))
    )
    shifts = {
        tx: np.asarray(A.affine(IMAGES[0], 0.0, (tx, 0), 1.0, 0.0, fill=0.5)) for tx in range(-2, 3)
    }  # max_dx = 0.2 * W = 2
    found = [next(tx for tx, ref in shifts.items() if np.array_equal(ref, o)) for o in out]
    assert len(set(found)) >= 3


def test_random_rotation_angles_per_sample():
    batch = np.repeat(IMAGES[:1], 6, axis=0)
    out = np.asarray(A.random_rotation(KEY, batch, 40.0))
    assert all(not np.array_equal(out[0], o) for o in out[1:])
    np.testing.assert_array_equal(A.random_rotation(KEY, batch, 40.0), out)
    np.testing.assert_array_equal(A.random_rotation(KEY, batch, (0.0, 0.0)), batch)


def test_rotation_fused_into_several_readers_equals_rotation_alone():
    # Three shifted reads of the rotated batch let XLA recompute the warp in each; every
    # recomputation must floor the source coordinates as the warp alone does (with the
    # coordinates as an elementwise formula, one pixel of some images came out 0.6 off).
    key = jax.random.key(3)
    x = jax.random.uniform(key, (16, 128, 128, 3))
    rotate = functools.partial(A.random_rotation, degrees=45.0, interpolation="bilinear")

    def three_rows(y):
        return y[:, :-2] + y[:, 1:-1] + y[:, 2:]

    fused = jax.jit(lambda x: three_rows(rotate(key, x)))(x)
    assert_close(fused, three_rows(rotate(key, x)), rtol=1e-6, atol=1e-6)


def test_random_resized_crop_gradient_finite():
    g = jax.grad(lambda x: jnp.sum(A.random_resized_crop(KEY, x, 8)))(jnp.asarray(IMAGES))
    assert_finite(g)
    assert float(jnp.sum(g)) > 0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.hflip(IMAGES[0, 0]), "images"),
        (lambda: A.center_crop(IMAGES, 0), "size"),
        (lambda: A.center_crop(IMAGES, (3, 2, 1)), "size"),
        (lambda: A.resized_crop(IMAGES, 0, 0, 0, 4, 8), "height"),
        (lambda: A.resized_crop(IMAGES, 0, 0, 4, 4, 8, interpolation="cubic"), "interpolation"),
        (lambda: A.random_resized_crop(KEY, IMAGES, 8, scale=(0.9, 0.1)), "scale"),
        (lambda: A.random_resized_crop(KEY, IMAGES, 8, ratio=(2.0, 0.5)), "ratio"),
        (lambda: A.random_resized_crop(KEY, IMAGES, 8, ratio=(0.0, 0.5)), "ratio"),
        (lambda: A.random_resized_crop(KEY, IMAGES, -3), "size"),
        (lambda: A.random_resized_crop(KEY, IMAGES[None], 8), "images"),
        (lambda: A.random_horizontal_flip(KEY, IMAGES, p=-0.1), "p"),
        (lambda: A.affine(IMAGES, 0.0, (0, 0), 0.0, 0.0), "scale"),
        (lambda: A.rotate(IMAGES, 10.0, fill=(0.0, 1.0)), "fill"),
        (lambda: A.random_rotation(KEY, IMAGES, -5.0), "degrees"),
        (lambda: A.random_rotation(KEY, IMAGES, (30.0, -30.0)), "degrees"),
        (lambda: A.random_affine(KEY, IMAGES, 5.0, translate=(0.1, 1.5)), "translate"),
        (lambda: A.random_affine(KEY, IMAGES, 5.0, scale=(1.2, 0.8)), "scale"),
        (lambda: A.random_affine(KEY, IMAGES, 5.0, shear=(1.0, 2.0, 3.0)), "shear"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
