"""Resize, pad, crop and vertical flips against NumPy ports of PyTorch's / torchvision's rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import augment as A

RNG = np.random.default_rng(0)
X = RNG.random((2, 13, 17, 3)).astype(np.float32)


def _pil_weights(in_size, out_size, filt, support):
    """PIL's / PyTorch's antialiased resampling coefficients, written as PIL's loop."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    rows = []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        w = [filt((x - center + 0.5) / filterscale) for x in range(xmin, xmax)]
        total = sum(w)
        row = np.zeros(in_size)
        row[xmin:xmax] = [v / total for v in w] if total else w
        rows.append(row)
    return np.array(rows)


def _bilinear(x):
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _bicubic_aa(x, a=-0.5):
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _torch_bilinear(in_size, out_size):
    """``upsample_bilinear2d(align_corners=False)``: source ``max(scale (i + .5) - .5, 0)``."""
    scale = in_size / out_size
    m = np.zeros((out_size, in_size))
    for i in range(out_size):
        src = max(scale * (i + 0.5) - 0.5, 0.0)
        i0 = int(np.floor(src))
        i1 = i0 + 1 if i0 < in_size - 1 else i0
        lam = src - i0
        m[i, i0] += 1 - lam
        m[i, i1] += lam
    return m


def _apply(x, mh, mw):
    return np.einsum("oh,nhwc->nowc", mh, np.einsum("pw,nhwc->nhpc", mw, x))


@pytest.mark.parametrize("size", [(5, 4), (13, 17), (26, 40), (7, 30)])
def test_resize_antialias_matches_pils_coefficients(size):
    for mode, filt, support in (("bilinear", _bilinear, 1.0), ("bicubic", _bicubic_aa, 2.0)):
        mh = _pil_weights(13, size[0], filt, support)
        mw = _pil_weights(17, size[1], filt, support)
        got = np.asarray(A.resize(X, size, interpolation=mode))
        np.testing.assert_allclose(got, _apply(X, mh, mw), atol=2e-6, err_msg=mode)


@pytest.mark.parametrize("size", [(5, 4), (26, 40), (13, 9)])
def test_resize_without_antialias_is_interpolate(size):
    expected = _apply(X, _torch_bilinear(13, size[0]), _torch_bilinear(17, size[1]))
    got = np.asarray(A.resize(X, size, antialias=False))
    np.testing.assert_allclose(got, expected, atol=2e-6)
    # the crop-and-resize kernel of resized_crop is an independent implementation
    other = np.asarray(A.resized_crop(X, 0, 0, 13, 17, size))
    np.testing.assert_allclose(got, other, atol=2e-6)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_resize_non_finite_pixel_reaches_only_the_outputs_that_read_it(value):
    # PyTorch sums each output over its support only; a dense resampling matrix made one
    # NaN or inf pixel (0 * inf = nan) a NaN in every output of its channel
    x = np.array(X[:1])
    x[0, 6, 8, 0] = value
    mh, mw = _pil_weights(13, 5, _bilinear, 1.0), _pil_weights(17, 4, _bilinear, 1.0)
    got = np.asarray(A.resize(x, (5, 4)))
    reads = (mh[:, 6, None] * mw[None, :, 8]) > 0  # the outputs whose support has the pixel
    expected = _apply(np.where(np.isfinite(x), x, 0.0), mh, mw)
    expected[0, :, :, 0] = np.where(reads, value, expected[0, :, :, 0])
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert 0 < reads.sum() < reads.size


def test_resize_nearest_and_int_size():
    got = np.asarray(A.resize(X, (5, 6), interpolation="nearest"))
    rows = np.floor(np.arange(5) * np.float32(13 / 5)).astype(int)
    cols = np.floor(np.arange(6) * np.float32(17 / 6)).astype(int)
    np.testing.assert_array_equal(got, X[:, rows][:, :, cols])
    assert A.resize(X, 10).shape == (2, 10, int(10 * 17 / 13), 3)  # smaller edge -> 10
    assert A.resize(X[:, :, :9], 6).shape == (2, int(6 * 13 / 9), 6, 3)


def test_resize_upscale_bilinear_agrees_with_jax_image_resize():
    got = np.asarray(A.resize(X, (26, 34), antialias=False))
    ref = np.asarray(jax.image.resize(X, (2, 26, 34, 3), "linear", antialias=False))
    np.testing.assert_allclose(got, ref, atol=2e-6)


def test_resize_uint8_and_jit():
    u8 = (X * 255).astype(np.uint8)
    out = A.resize(u8, (6, 8))
    assert out.dtype == jnp.uint8 and out.shape == (2, 6, 8, 3)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda v: A.resize(v, (6, 8)))(X)), np.asarray(A.resize(X, (6, 8)))
    )


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("padding", [2, (1, 3), (0, 1, 2, 3)])
def test_pad_matches_numpy(mode, padding):
    p = (
        (padding,) * 4
        if isinstance(padding, int)
        else padding * 2
        if len(padding) == 2
        else padding
    )
    left, top, right, bottom = p
    widths = [(0, 0), (top, bottom), (left, right), (0, 0)]
    fill = (0.1, 0.5, 0.9)
    if mode == "constant":
        expected = np.stack(
            [np.pad(X[..., c], widths[:3], constant_values=fill[c]) for c in range(3)], axis=-1
        )
        got = A.pad(X, padding, fill=fill)
    else:
        expected = np.pad(X, widths, mode=mode)
        got = A.pad(X, padding, padding_mode=mode)
    np.testing.assert_array_equal(np.asarray(got), expected)


def test_crop_zero_pads_outside():
    got = np.asarray(A.crop(X, -2, 15, 5, 4))
    padded = np.pad(X, [(0, 0), (2, 5), (0, 5), (0, 0)])
    np.testing.assert_array_equal(got, padded[:, 0:5, 15:19])
    traced = jax.jit(lambda t, l: A.crop(X, t, l, 5, 4))(jnp.int32(-2), jnp.int32(15))
    np.testing.assert_array_equal(np.asarray(traced), got)


def test_random_crop_takes_one_window_per_sample():
    images = jnp.asarray(np.broadcast_to(X[:1], (32, 13, 17, 3)))
    out = np.asarray(A.random_crop(jax.random.key(1), images, (8, 8), padding=2))
    padded = np.pad(X[0], [(2, 2), (2, 2), (0, 0)])
    positions = set()
    for img in out:
        found = [
            (t, l)
            for t in range(17 - 8 + 1)
            for l in range(21 - 8 + 1)
            if np.array_equal(padded[t : t + 8, l : l + 8], img)
        ]
        assert found, "every output is a window of the padded image"
        positions.add(found[0])
    assert len(positions) > 10  # each sample draws its own position
    small = A.random_crop(jax.random.key(0), X, (20, 20), pad_if_needed=True)
    assert small.shape == (2, 20, 20, 3)
    with pytest.raises(ValueError, match="pad_if_needed"):
        A.random_crop(jax.random.key(0), X, (20, 20))


def test_vertical_flips():
    np.testing.assert_array_equal(np.asarray(A.vflip(X)), X[:, ::-1])
    images = jnp.asarray(np.broadcast_to(X[:1], (64, 13, 17, 3)))
    out = np.asarray(A.random_vertical_flip(jax.random.key(2), images))
    flipped = np.all(out == X[0, ::-1], axis=(1, 2, 3))
    kept = np.all(out == X[0], axis=(1, 2, 3))
    assert np.all(flipped | kept) and 10 < flipped.sum() < 54


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.resize(X, (0, 4)), "size"),
        (lambda: A.resize(X, 4, interpolation="area"), "interpolation"),
        (lambda: A.pad(X, -1), "padding"),
        (lambda: A.pad(X, (1, 2, 3)), "padding"),
        (lambda: A.pad(X, 13, padding_mode="reflect"), "reflect"),
        (lambda: A.pad(X, 1, padding_mode="wrap"), "padding_mode"),
        (lambda: A.crop(X, 0, 0, 0, 3), "height"),
        (lambda: A.random_vertical_flip(jax.random.key(0), X, p=2.0), "p"),
    ],
)
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
