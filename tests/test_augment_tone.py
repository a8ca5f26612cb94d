"""Tone ops against NumPy ports of torchvision's / PIL's documented uint8 algorithms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import augment as A

RNG = np.random.default_rng(0)
U8 = RNG.integers(0, 256, size=(3, 9, 11, 3), dtype=np.uint8)
INV255 = np.float32(1.0 / 255.0)  # torchvision's uint8 -> float: v * (1 / 255)
GRID = U8.astype(np.float32) * INV255  # float images on the 1/255 grid


def _np_equalize_channel(ch: np.ndarray) -> np.ndarray:
    """PIL's ImageOps.equalize LUT, written as PIL writes it (a running sum)."""
    histo = np.bincount(ch.ravel(), minlength=256)
    used = [h for h in histo if h]
    if len(used) <= 1:
        return ch
    step = (sum(used) - used[-1]) // 255
    if not step:
        return ch
    lut, n = [], step // 2
    for i in range(256):
        lut.append(min(n // step, 255))
        n += histo[i]
    return np.asarray(lut, np.uint8)[ch]


def _np_equalize(u8: np.ndarray) -> np.ndarray:
    out = np.empty_like(u8)
    for idx in np.ndindex(*u8.shape[:-3]):
        for c in range(u8.shape[-1]):
            out[idx + (Ellipsis, c)] = _np_equalize_channel(u8[idx + (Ellipsis, c)])
    return out


def _np_sharpness(x: np.ndarray, f: float) -> np.ndarray:
    k = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float64) / 13.0
    out = x.astype(np.float64).copy()
    H, W = x.shape[-3:-1]
    for i in range(1, H - 1):
        for j in range(1, W - 1):
            patch = x[..., i - 1 : i + 2, j - 1 : j + 2, :].astype(np.float64)
            blur = np.einsum("...hwc,hw->...c", patch, k)
            out[..., i, j, :] = blur
    return np.clip(f * x + (1 - f) * out, 0, 1)


@pytest.mark.parametrize("bits", range(9))
def test_posterize_is_torchvisions_uint8_result(bits):
    mask = (0xFF << (8 - bits)) & 0xFF
    expected = U8 & np.uint8(mask)
    np.testing.assert_array_equal(np.asarray(A.posterize(U8, bits)), expected)
    np.testing.assert_array_equal(np.asarray(A.posterize(GRID, bits)), expected * INV255)


def test_equalize_matches_pil_on_uint8_and_on_the_float_grid():
    # a skewed histogram so that step > 0 and the LUT is not the identity
    skew = (RNG.beta(2, 5, size=(2, 40, 30, 3)) * 255).astype(np.uint8)
    for u8 in (U8, skew):
        expected = _np_equalize(u8)
        np.testing.assert_array_equal(np.asarray(A.equalize(u8)), expected)
        got = np.asarray(A.equalize(u8.astype(np.float32) * INV255))
        np.testing.assert_array_equal(got, expected * INV255)


def test_equalize_leaves_flat_and_small_images():
    flat = np.full((1, 4, 4, 1), 77, np.uint8)
    np.testing.assert_array_equal(np.asarray(A.equalize(flat)), flat)
    tiny = np.array([0, 64, 128, 255], np.uint8).reshape(1, 2, 2, 1)  # step = 0
    np.testing.assert_array_equal(np.asarray(A.equalize(tiny)), tiny)


def test_invert_solarize_gamma_normalize():
    np.testing.assert_allclose(np.asarray(A.invert(GRID)), 1.0 - GRID, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(A.invert(U8)), 255 - U8)
    np.testing.assert_allclose(
        np.asarray(A.solarize(GRID, 0.5)), np.where(GRID >= 0.5, 1.0 - GRID, GRID), atol=1e-7
    )
    np.testing.assert_allclose(np.asarray(A.adjust_gamma(GRID, 2.2)), GRID**2.2, rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(A.adjust_gamma(GRID, 0.5, gain=1.7)), np.clip(1.7 * GRID**0.5, 0, 1), rtol=1e-5
    )
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(
        np.asarray(A.normalize(GRID, mean, std)), (GRID - mean) / std, rtol=1e-5, atol=1e-6
    )


def test_autocontrast_per_channel_and_flat_channel():
    x = GRID.copy()
    x[0, ..., 1] = 0.3  # a flat channel stays as it is
    lo = x.min(axis=(-3, -2), keepdims=True)
    hi = x.max(axis=(-3, -2), keepdims=True)
    flat = hi == lo
    expected = np.clip((x - np.where(flat, 0, lo)) / np.where(flat, 1, hi - lo), 0, 1)
    np.testing.assert_allclose(np.asarray(A.autocontrast(x)), expected, atol=1e-6)
    assert np.all(np.asarray(A.autocontrast(x))[0, ..., 1] == np.float32(0.3))


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0, 2.0])
def test_adjust_sharpness_matches_the_3x3_rule(factor):
    np.testing.assert_allclose(
        np.asarray(A.adjust_sharpness(GRID, factor)), _np_sharpness(GRID, factor), atol=1e-6
    )
    small = GRID[:, :2, :, :]
    np.testing.assert_array_equal(np.asarray(A.adjust_sharpness(small, factor)), small)


def test_nan_in_nan_out():
    x = GRID[:1].copy()
    x[0, 0, 0, 0] = np.nan
    for op in (A.invert, lambda v: A.solarize(v, 0.5), lambda v: A.posterize(v, 3), A.equalize):
        assert np.isnan(np.asarray(op(x))[0, 0, 0, 0])


RANDOM = [
    (A.random_invert, (), A.invert),
    (A.random_posterize, (3,), lambda x: A.posterize(x, 3)),
    (A.random_solarize, (0.4,), lambda x: A.solarize(x, 0.4)),
    (A.random_autocontrast, (), A.autocontrast),
    (A.random_equalize, (), A.equalize),
    (A.random_adjust_sharpness, (2.0,), lambda x: A.adjust_sharpness(x, 2.0)),
]


@pytest.mark.parametrize("op,args,det", RANDOM, ids=lambda v: getattr(v, "__name__", ""))
def test_random_tone_ops_draw_per_sample(op, args, det):
    # 576 pixels with a skewed histogram: equalize changes them (step > 0)
    one = (np.random.default_rng(1).beta(2, 5, size=(1, 24, 24, 3)) * 255).astype(np.uint8)
    images = jnp.asarray(np.broadcast_to(one * INV255, (64, 24, 24, 3)))
    key = jax.random.key(3)
    np.testing.assert_array_equal(np.asarray(op(key, images, *args, p=0.0)), np.asarray(images))
    np.testing.assert_allclose(
        np.asarray(op(key, images, *args, p=1.0)), np.asarray(det(images)), atol=1e-6
    )
    out = np.asarray(op(key, images, *args, p=0.5))
    changed = np.any(out != np.asarray(images), axis=(1, 2, 3))
    assert 10 < changed.sum() < 54  # each sample its own draw
    np.testing.assert_array_equal(out, np.asarray(op(key, images, *args, p=0.5)))
    np.testing.assert_array_equal(
        out, np.asarray(jax.jit(lambda k, x: op(k, x, *args))(key, images))
    )


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.posterize(GRID, 9), "bits"),
        (lambda: A.solarize(GRID, 2.0), "threshold"),
        (lambda: A.adjust_sharpness(GRID, -1.0), "factor"),
        (lambda: A.adjust_gamma(GRID, -1.0), "gamma"),
        (lambda: A.normalize(GRID, (0.5, 0.5), (1.0, 1.0)), "mean"),
        (lambda: A.normalize(GRID, 0.5, (1.0, 0.0, 1.0)), "std"),
        (lambda: A.random_invert(jax.random.key(0), GRID, p=1.5), "p"),
    ],
)
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_normalize_refuses_uint8():
    with pytest.raises(TypeError, match="images"):
        A.normalize(U8, 0.5, 0.5)
