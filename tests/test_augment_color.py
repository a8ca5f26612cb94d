"""Colour augmentations against NumPy / colorsys re-implementations of torchvision v2."""

from __future__ import annotations

import colorsys
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl.augment as A
from tests.helpers import FLOAT_DTYPES, TraceCounter, assert_close, assert_finite, fast_key

RNG = np.random.default_rng(0)
IMAGES = RNG.random((3, 6, 5, 3)).astype(np.float32)
KEY = fast_key(0)


# --- NumPy references: torchvision v2's documented kernels --------------------------------


def np_gray(x):
    return 0.2989 * x[..., 0:1] + 0.587 * x[..., 1:2] + 0.114 * x[..., 2:3]


def np_blend(x, ref, f):
    return np.clip(f * x + (1 - f) * ref, 0, 1)


def np_brightness(x, f):
    return np.clip(x * f, 0, 1)


def np_contrast(x, f):
    return np_blend(x, np_gray(x).mean(axis=(-3, -2, -1), keepdims=True), f)


def np_saturation(x, f):
    return np_blend(x, np_gray(x), f)


def np_hue(x, f):
    out = np.empty_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        h, s, v = colorsys.rgb_to_hsv(*x[idx].astype(np.float64))
        out[idx] = colorsys.hsv_to_rgb((h + f) % 1.0, s, v)
    return out


NP_OPS = [np_brightness, np_contrast, np_saturation, np_hue]


# --- deterministic ops ------------------------------------------------------------------


@pytest.mark.parametrize(
    "op,ref,factor",
    [
        (A.adjust_brightness, np_brightness, 1.7),
        (A.adjust_brightness, np_brightness, 0.0),
        (A.adjust_contrast, np_contrast, 0.4),
        (A.adjust_contrast, np_contrast, 2.5),
        (A.adjust_saturation, np_saturation, 0.0),
        (A.adjust_saturation, np_saturation, 1.8),
        (A.adjust_hue, np_hue, 0.3),
        (A.adjust_hue, np_hue, -0.5),
    ],
)
def test_adjust_matches_numpy_reference(op, ref, factor):
    assert_close(op(IMAGES, factor), ref(IMAGES.astype(np.float64), factor), dtype=np.float32)


def test_single_image_and_one_channel():
    assert_close(A.adjust_contrast(IMAGES[0], 0.3), np_contrast(IMAGES[0], 0.3))
    gray = IMAGES[..., :1]
    # contrast on one channel blends with the image mean; saturation and hue leave it alone
    assert_close(
        A.adjust_contrast(gray, 0.3), np_blend(gray, gray.mean((1, 2, 3), keepdims=True), 0.3)
    )
    np.testing.assert_array_equal(A.adjust_saturation(gray, 0.3), gray)
    np.testing.assert_array_equal(A.adjust_hue(gray, 0.3), gray)


def test_rgb_to_grayscale():
    assert_close(A.rgb_to_grayscale(IMAGES), np_gray(IMAGES.astype(np.float64)), dtype=np.float32)
    three = np.asarray(A.rgb_to_grayscale(IMAGES, num_output_channels=3))
    assert three.shape == IMAGES.shape
    assert_close(three, np.repeat(np_gray(IMAGES.astype(np.float64)), 3, axis=-1), dtype=np.float32)


def test_hsv_round_trip_matches_colorsys():
    pixels = np.concatenate(
        [
            RNG.random((40, 3)),
            [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
        ]
    )
    pixels = pixels.astype(np.float32)
    hsv = np.asarray(A.rgb_to_hsv(pixels))
    ref = np.array([colorsys.rgb_to_hsv(*p.astype(np.float64)) for p in pixels])
    # hue is an angle: compare on the circle
    assert_close(
        np.exp(2j * np.pi * hsv[:, 0]).view(np.float32).reshape(-1, 2),
        np.exp(2j * np.pi * ref[:, 0]).view(np.float64).reshape(-1, 2),
        dtype=np.float32,
    )
    assert_close(hsv[:, 1:], ref[:, 1:], dtype=np.float32)
    assert np.all((hsv[:, 0] >= 0) & (hsv[:, 0] < 1))
    rgb_ref = np.array([colorsys.hsv_to_rgb(*h) for h in ref])
    assert_close(A.hsv_to_rgb(ref.astype(np.float32)), rgb_ref, dtype=np.float32)
    assert_close(A.hsv_to_rgb(hsv), pixels)


def test_hsv_gradients_finite_at_gray_and_black_pixels():
    pixels = jnp.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 0.2, 0.2]])
    assert_finite(jax.grad(lambda p: jnp.sum(A.adjust_hue(p[None, None], 0.1)))(pixels))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtype_preserved(dtype):
    x = jnp.asarray(IMAGES, dtype)
    out = A.adjust_saturation(x, 0.5)
    assert out.dtype == dtype
    assert_close(out, np_saturation(np.asarray(x, np.float64), 0.5), dtype=dtype)


def test_uint8_round_trip():
    x8 = (IMAGES * 255).round().astype(np.uint8)
    out = A.adjust_brightness(x8, 2.0)
    assert out.dtype == jnp.uint8
    expected = np.minimum(x8.astype(np.int32) * 2, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


# --- random ops -------------------------------------------------------------------------

FIXED_FACTORS = dict(
    brightness=(1.4, 1.4), contrast=(0.5, 0.5), saturation=(0.3, 0.3), hue=(0.2, 0.2)
)
JITTER_TRACES = TraceCounter(lambda k, x: A.color_jitter(k, x, **FIXED_FACTORS))
JITTER_FIXED = jax.jit(JITTER_TRACES)
BATCH24 = np.repeat(IMAGES[:1], 24, axis=0)


def test_color_jitter_applies_a_random_order_per_sample():
    # With one-point ranges only the order is random: every sample must equal one of the
    # 24 orders of the NumPy reference ops, and a batch shows several different orders.
    x = BATCH24
    out = np.asarray(JITTER_FIXED(KEY, x), np.float64)
    factors = [1.4, 0.5, 0.3, 0.2]
    candidates = {}
    for order in itertools.permutations(range(4)):
        y = x[0].astype(np.float64)
        for op in order:
            y = NP_OPS[op](y, factors[op])
        candidates[order] = y
    seen = set()
    for sample in out:
        errors = {o: np.abs(sample - c).max() for o, c in candidates.items()}
        best = min(errors, key=errors.get)
        assert errors[best] < 1e-5, errors[best]
        seen.add(best)
    assert len(seen) >= 6


def test_color_jitter_factor_ranges_and_per_sample_draws():
    x = np.repeat(np.full((1, 4, 4, 3), 0.4, np.float32), 16, axis=0)
    out = np.asarray(A.color_jitter(KEY, x, brightness=0.5))
    factors = out[:, 0, 0, 0] / 0.4  # brightness is the only op: out = f * x
    assert np.all((factors >= 0.5 - 1e-6) & (factors <= 1.5 + 1e-6))
    assert len(np.unique(np.round(factors, 5))) == 16
    np.testing.assert_allclose(out, factors[:, None, None, None] * x, rtol=1e-6)
    # the same key gives the same output; no op enabled is the identity
    np.testing.assert_array_equal(A.color_jitter(KEY, x, brightness=0.5), out)
    np.testing.assert_array_equal(A.color_jitter(KEY, x), x)


def test_color_jitter_compiles_once():
    for seed in range(3):
        JITTER_FIXED(fast_key(seed), BATCH24 * (0.5 + 0.1 * seed))
    assert JITTER_TRACES.count == 1


def test_random_grayscale_p0_p1_and_mix():
    x = np.repeat(IMAGES[:1], 32, axis=0)
    np.testing.assert_array_equal(A.random_grayscale(KEY, x, p=0.0), x)
    gray = np.repeat(np_gray(x.astype(np.float64)), 3, axis=-1)
    assert_close(A.random_grayscale(KEY, x, p=1.0), gray, dtype=np.float32)
    out = np.asarray(A.random_grayscale(KEY, x, p=0.5))
    is_gray = np.all(np.abs(out - gray) < 1e-5, axis=(1, 2, 3))
    is_same = np.all(out == x, axis=(1, 2, 3))
    assert np.all(is_gray ^ is_same) and 4 <= is_gray.sum() <= 28


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.adjust_brightness(IMAGES, -0.1), "factor"),
        (lambda: A.adjust_contrast(IMAGES, -1.0), "factor"),
        (lambda: A.adjust_hue(IMAGES, 0.7), "factor"),
        (lambda: A.adjust_contrast(IMAGES[..., :2], 0.5), "images"),
        (lambda: A.rgb_to_grayscale(IMAGES, num_output_channels=2), "num_output_channels"),
        (lambda: A.rgb_to_grayscale(IMAGES[0, 0]), "images"),
        (lambda: A.color_jitter(KEY, IMAGES, brightness=-0.2), "brightness"),
        (lambda: A.color_jitter(KEY, IMAGES, contrast=(1.5, 0.5)), "contrast"),
        (lambda: A.color_jitter(KEY, IMAGES, hue=0.6), "hue"),
        (lambda: A.color_jitter(KEY, IMAGES, saturation=(-0.5, 1.0)), "saturation"),
        (lambda: A.random_grayscale(KEY, IMAGES, p=1.5), "p"),
        (lambda: A.random_grayscale(KEY, IMAGES[0, 0], p=0.5), "images"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
