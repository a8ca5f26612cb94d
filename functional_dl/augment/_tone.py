"""Tone ops (torchvision v2): invert, posterize, solarize, autocontrast, equalize, sharpness,
gamma, normalize, and their per-sample random versions.

The kernels work on floating ``[..., H, W, C]`` arrays in ``[0, 1]`` (see ``_image``);
``posterize`` and ``equalize`` are defined on the 256 levels of a uint8 image: a float
image is first quantised as torchvision converts float to uint8 (``floor(x · 255.999)``),
so on float images whose values are multiples of 1/255 they return exactly torchvision's
uint8 result / 255.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_in_range, check_int, check_nonnegative, is_concrete
from . import _image, _sampling

# torchvision's float -> uint8 conversion multiplies by 255 + 1 - 1e-3 and truncates.
_TO_LEVELS = 255.999


def from_levels(v: jnp.ndarray, dtype: Any) -> jnp.ndarray:
    """Levels back to ``[0, 1]`` as torchvision converts uint8 to float: ``v · (1 / 255)``."""
    return v.astype(dtype) * jnp.asarray(1.0 / 255.0, dtype)


def levels(x: jnp.ndarray) -> jnp.ndarray:
    """The uint8 level ``0..255`` (as int32) of each value of a ``[0, 1]`` float image."""
    return jnp.clip(jnp.floor(x * _TO_LEVELS), 0, 255).astype(jnp.int32)


def invert_kernel(x: jnp.ndarray) -> jnp.ndarray:
    return 1.0 - x


def posterize_kernel(x: jnp.ndarray, bits: Any) -> jnp.ndarray:
    """Keep the ``bits`` high bits of each level (``bits`` may be traced, 0..8)."""
    drop = 8 - jnp.asarray(bits, jnp.int32)
    mask = jnp.left_shift(jnp.right_shift(255, drop), drop)
    out = from_levels(jnp.bitwise_and(levels(x), mask), x.dtype)
    return jnp.where(jnp.isnan(x), x, out)


def solarize_kernel(x: jnp.ndarray, threshold: Any) -> jnp.ndarray:
    return jnp.where(x >= threshold, 1.0 - x, x)


def autocontrast_kernel(x: jnp.ndarray) -> jnp.ndarray:
    """Stretch each channel of each image to ``[0, 1]``; a flat channel is unchanged."""
    lo = jnp.min(x, axis=(-3, -2), keepdims=True)
    hi = jnp.max(x, axis=(-3, -2), keepdims=True)
    flat = hi == lo
    lo = jnp.where(flat, 0.0, lo)
    span = jnp.where(flat, 1.0, hi - lo)
    return jnp.clip((x - lo) / span, 0.0, 1.0)


def _equalize_channel(v: jnp.ndarray) -> jnp.ndarray:
    """PIL's equalisation LUT applied to one channel of levels ``v`` ``[P]`` (int32)."""
    hist = jnp.zeros(256, jnp.int32).at[v].add(1)
    cum = jnp.cumsum(hist)
    last = hist[jnp.argmax(cum)]  # count of the highest level present
    step = (v.shape[0] - last) // 255
    lut = jnp.clip((cum[:-1] + step // 2) // jnp.maximum(step, 1), 0, 255)
    lut = jnp.concatenate([jnp.zeros(1, lut.dtype), lut])
    return jnp.where(step != 0, lut[v], v)


def equalize_kernel(x: jnp.ndarray) -> jnp.ndarray:
    """Histogram equalisation per image and channel on the 256 levels."""
    H, W, C = x.shape[-3:]
    if H * W == 0:
        return x
    v = levels(x).reshape(x.shape[:-3] + (H * W, C))
    v = jnp.moveaxis(v, -1, -2)  # [..., C, P]
    flat = v.reshape(-1, H * W)
    out = jax.vmap(_equalize_channel)(flat).reshape(v.shape)
    out = from_levels(jnp.moveaxis(out, -2, -1).reshape(x.shape), x.dtype)
    return jnp.where(jnp.isnan(x), x, out)


def sharpness_reference(x: jnp.ndarray) -> jnp.ndarray:
    """torchvision's degenerate image: a 3x3 smoothing ``[[1,1,1],[1,5,1],[1,1,1]]/13``
    inside, the original pixels on the one-pixel border."""
    H, W = x.shape[-3:-1]
    if H <= 2 or W <= 2:
        return x
    weights = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))
    inner = jnp.zeros_like(x[..., 1:-1, 1:-1, :])
    for dy in range(3):
        for dx in range(3):
            inner = inner + weights[dy][dx] * x[..., dy : H - 2 + dy, dx : W - 2 + dx, :]
    return x.at[..., 1:-1, 1:-1, :].set(inner / 13.0)


def sharpness_kernel(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    """``clip(f · x + (1 - f) · degenerate, 0, 1)`` (images of side <= 2 unchanged)."""
    H, W = x.shape[-3:-1]
    if H <= 2 or W <= 2:
        return x
    factor = jnp.asarray(factor, x.dtype)
    return jnp.clip(x * factor + sharpness_reference(x) * (1.0 - factor), 0.0, 1.0)


# the kernels, compiled and run in the compute dtype
_invert = _image.float_kernel()(invert_kernel)
_posterize = _image.float_kernel()(posterize_kernel)
_solarize = _image.float_kernel()(solarize_kernel)
_autocontrast = _image.float_kernel()(autocontrast_kernel)
_equalize = _image.float_kernel()(equalize_kernel)
_sharpness = _image.float_kernel()(sharpness_kernel)


@_image.float_kernel()
def _gamma(x: jnp.ndarray, gamma: Any, gain: Any) -> jnp.ndarray:
    y = jnp.power(x, jnp.asarray(gamma, x.dtype))
    return jnp.where(gain == 1.0, y, jnp.clip(y * gain, 0.0, 1.0))


def check_real_scalar(name: str, value: Any, *, fn: str) -> None:
    """Raise unless ``value`` is a finite real scalar (tracers pass unchecked)."""
    value = check_in_range(
        name, value, -math.inf, math.inf, lo_closed=False, hi_closed=False, fn=fn
    )


def _check_bits(bits: Any, fn: str) -> None:
    if is_concrete(bits):
        check_int("bits", bits, minimum=0, fn=fn)
        if int(bits) > 8:
            raise ValueError(f"{fn}: bits must be in 0..8, got bits={bits!r}")


def _check_threshold(threshold: Any, fn: str) -> None:
    check_real_scalar("threshold", threshold, fn=fn)
    if is_concrete(threshold) and not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(
            f"{fn}: threshold must lie in [0, 1] (the image scale), got threshold={threshold!r}"
        )


def invert(images: Any) -> jnp.ndarray:
    """Negative of the image: ``1 - x`` (``255 - x`` for uint8).

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``, float in [0, 1] or uint8.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.invert``; ``dm_pix`` has no
    equivalent.

    Example:
      >>> invert(jnp.array([[[0.0, 0.25, 1.0]]]))
      Array([[[1.  , 0.75, 0.  ]]], dtype=float32)
    """
    images = as_arrays(images)
    _image.check(images, fn="invert")
    return _invert(images)


def posterize(images: Any, bits: Any) -> jnp.ndarray:
    """Keep the ``bits`` most significant bits of each 8-bit level.

    ``out = (level & mask) / 255`` with ``level = floor(x · 255.999)`` (torchvision's float
    to uint8 conversion) and ``mask = 0xFF << (8 - bits)``: on images whose values are
    multiples of 1/255 (every uint8 image) this is exactly torchvision's uint8 result. The
    output always lies on the 1/255 grid; ``bits = 8`` only quantises.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``, float in [0, 1] or uint8.
      bits: int in ``0..8`` (may be traced).

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.posterize`` on uint8 images (its
    float path uses ``floor(x · 2^bits) / 2^bits`` instead).

    Example:
      >>> x = jnp.array([[[200 / 255, 17 / 255, 1.0]]])
      >>> [round(float(v) * 255) for v in posterize(x, 2).ravel()]  # 200 & 0xC0, 17 & 0xC0
      [192, 0, 192]
    """
    images = as_arrays(images)
    fn = "posterize"
    _check_bits(bits, fn)
    _image.check(images, fn=fn)
    return _posterize(images, bits)


def solarize(images: Any, threshold: Any) -> jnp.ndarray:
    """Invert the pixels at or above ``threshold``: ``where(x >= t, 1 - x, x)``.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``, float in [0, 1] or uint8.
      threshold: in ``[0, 1]`` (the float image scale, also for uint8 images).

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.solarize`` (its threshold is on the
    dtype's scale: ``128`` for uint8 is ``128 / 255`` here).

    Example:
      >>> solarize(jnp.array([[[0.25, 0.5, 0.75]]]), 0.5)
      Array([[[0.25, 0.5 , 0.25]]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "solarize"
    _check_threshold(threshold, fn)
    _image.check(images, fn=fn)
    return _solarize(images, threshold)


def autocontrast(images: Any) -> jnp.ndarray:
    """Stretch each channel of each image to the full range ``[0, 1]``.

    ``clip((x - min) / (max - min), 0, 1)`` with min and max over the image's pixels, per
    channel; a constant channel is left unchanged.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` with C in {1, 3}.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.autocontrast``.

    Example:
      >>> autocontrast(jnp.array([[[0.25], [0.5]], [[0.75], [0.5]]]))[..., 0]
      Array([[0. , 0.5],
             [1. , 0.5]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "autocontrast"
    _image.check(images, fn=fn, channels=(1, 3))
    return _autocontrast(images)


def equalize(images: Any) -> jnp.ndarray:
    """Equalise the histogram of each channel of each image on the 256 levels.

    PIL's rule, as torchvision: with ``hist`` the level histogram and ``cum`` its
    cumulative sum, ``step = (pixels - count of the highest level present) // 255``;
    level ``k`` maps to ``clip((cum[k-1] + step // 2) // step, 0, 255)`` (level 0 to 0);
    a channel with ``step = 0`` is unchanged. Float images are quantised first
    (``floor(x · 255.999)``); the result is on the 1/255 grid.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``, float in [0, 1] or uint8.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.equalize`` (exactly, on images whose
    values are multiples of 1/255).

    Example:
      >>> x = jnp.repeat(jnp.array([0, 64, 128, 255], jnp.uint8), 200).reshape(20, 40, 1)
      >>> jnp.unique(equalize(x)).tolist()  # step = 600 // 255 = 2: (cum + 1) // 2
      [0, 100, 200, 255]
    """
    images = as_arrays(images)
    fn = "equalize"
    _image.check(images, fn=fn)
    return _equalize(images)


def adjust_sharpness(images: Any, factor: Any) -> jnp.ndarray:
    """Blend each image with a smoothed copy: ``clip(f · x + (1 - f) · smooth(x), 0, 1)``.

    ``smooth`` is the 3x3 filter ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` on the
    interior, the original pixels on the one-pixel border (PIL's and torchvision's rule);
    images with a side of at most 2 pixels are returned unchanged. ``factor = 0`` smooths,
    1 is the identity, 2 sharpens.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` with C in {1, 3}.
      factor: non-negative scalar.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.adjust_sharpness``.

    Example:
      >>> x = jnp.zeros((3, 3, 1)).at[1, 1, 0].set(1.0)
      >>> round(float(adjust_sharpness(x, 0.0)[1, 1, 0]), 4)  # 5 / 13
      0.3846
    """
    images = as_arrays(images)
    fn = "adjust_sharpness"
    factor = check_nonnegative("factor", factor, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _sharpness(images, factor)


def adjust_gamma(images: Any, gamma: Any, *, gain: Any = 1.0) -> jnp.ndarray:
    """Gamma correction: ``x ** gamma``, then ``clip(gain · x ** gamma, 0, 1)`` if ``gain != 1``.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``, float in [0, 1] or uint8.
      gamma: non-negative scalar; below 1 brightens the shadows, above 1 darkens them.
      gain: scalar multiplier.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.adjust_gamma``.

    Example:
      >>> adjust_gamma(jnp.array([[[0.25, 1.0]]]), 0.5)
      Array([[[0.5, 1. ]]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "adjust_gamma"
    gamma = check_nonnegative("gamma", gamma, fn=fn)
    check_real_scalar("gain", gain, fn=fn)
    _image.check(images, fn=fn)
    return _gamma(images, gamma, gain)


def normalize(images: Any, mean: Any, std: Any) -> jnp.ndarray:
    """Standardise each channel: ``(x - mean[c]) / std[c]``.

    Args:
      images: float ``[N, H, W, C]`` or ``[H, W, C]`` (uint8 images raise: convert first).
      mean: one value per channel (or a scalar).
      std: one non-zero value per channel (or a scalar).

    Returns:
      Array of the same shape and dtype (values are no longer in ``[0, 1]``).

    PyTorch: ``torchvision.transforms.v2.functional.normalize`` (channels last here).

    Example:
      >>> normalize(jnp.array([[[0.5, 0.5, 0.5]]]), (0.5, 0.25, 0.0), (0.5, 0.5, 0.25))
      Array([[[0. , 0.5, 2. ]]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "normalize"
    _image.check(images, fn=fn)
    images = jnp.asarray(images)
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"{fn}: images must be floating (convert uint8 first), got {images.dtype}")
    C = images.shape[-1]
    for name, value in (("mean", mean), ("std", std)):
        if np.ndim(value) > 1 or np.size(value) not in (1, C):
            raise ValueError(
                f"{fn}: {name} must be a scalar or hold one value per channel ({C}), "
                f"got {name}={value!r}"
            )
    if is_concrete(std) and np.any(np.asarray(std) == 0):
        raise ValueError(f"{fn}: std must be non-zero, got std={std!r}")
    return _normalize(images, jnp.asarray(mean), jnp.asarray(std))


@jax.jit
def _normalize(x: jnp.ndarray, mean: jnp.ndarray, std: jnp.ndarray) -> jnp.ndarray:
    xc = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    y = (xc - _image.expand_to(mean.ravel(), x.ndim)) / _image.expand_to(std.ravel(), x.ndim)
    return y.astype(x.dtype)


# ------------------------------------------------------------------ random versions


@_image.float_kernel(image_arg=1, static=("op",))
def _random_tone(key: Any, x: jnp.ndarray, p: Any, arg: Any, *, op: str) -> jnp.ndarray:
    kernels = {
        "invert": lambda img: invert_kernel(img),
        "posterize": lambda img: posterize_kernel(img, arg),
        "solarize": lambda img: solarize_kernel(img, arg),
        "autocontrast": autocontrast_kernel,
        "equalize": equalize_kernel,
        "sharpness": lambda img: sharpness_kernel(img, arg),
    }

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        return jnp.where(_sampling.bernoulli(u[0], p), kernels[op](img), img)

    return _sampling.per_sample(one, key, x, 1)


def _random(key: Any, images: Any, p: Any, arg: Any, op: str, fn: str, **check: Any) -> Any:
    p = _sampling.check_p(p, fn=fn)
    _image.check(images, fn=fn, **check)
    return _sampling.propagate_nan(p, _random_tone(key, images, p, arg, op=op))


def random_invert(key: Any, images: Any, *, p: Any = 0.5) -> jnp.ndarray:
    """:func:`invert` each sample with probability ``p`` (its own draw).

    PyTorch: ``torchvision.transforms.v2.RandomInvert(p)`` (one draw per call there).

    Example:
      >>> random_invert(jax.random.key(0), jnp.zeros((4, 2, 2, 3)), p=1.0)[:, 0, 0, 0]
      Array([1., 1., 1., 1.], dtype=float32)
    """
    images = as_arrays(images)
    return _random(key, images, p, 0.0, "invert", "random_invert")


def random_posterize(key: Any, images: Any, bits: Any, *, p: Any = 0.5) -> jnp.ndarray:
    """:func:`posterize` each sample with probability ``p`` (its own draw).

    PyTorch: ``torchvision.transforms.v2.RandomPosterize(bits, p)``.

    Example:
      >>> random_posterize(jax.random.key(0), jnp.full((2, 2, 2, 1), 0.5), 1, p=0.0)[:, 0, 0, 0]
      Array([0.5, 0.5], dtype=float32)
    """
    images = as_arrays(images)
    _check_bits(bits, "random_posterize")
    return _random(key, images, p, bits, "posterize", "random_posterize")


def random_solarize(key: Any, images: Any, threshold: Any, *, p: Any = 0.5) -> jnp.ndarray:
    """:func:`solarize` each sample with probability ``p`` (its own draw).

    PyTorch: ``torchvision.transforms.v2.RandomSolarize(threshold, p)``.

    Example:
      >>> random_solarize(jax.random.key(0), jnp.full((2, 1, 1, 1), 0.75), 0.5, p=1.0).ravel()
      Array([0.25, 0.25], dtype=float32)
    """
    images = as_arrays(images)
    _check_threshold(threshold, "random_solarize")
    return _random(key, images, p, threshold, "solarize", "random_solarize")


def random_autocontrast(key: Any, images: Any, *, p: Any = 0.5) -> jnp.ndarray:
    """:func:`autocontrast` each sample with probability ``p`` (its own draw).

    PyTorch: ``torchvision.transforms.v2.RandomAutocontrast(p)``.

    Example:
      >>> x = jnp.array([0.25, 0.75]).reshape(1, 1, 2, 1)
      >>> random_autocontrast(jax.random.key(0), x, p=1.0).ravel()
      Array([0., 1.], dtype=float32)
    """
    images = as_arrays(images)
    return _random(key, images, p, 0.0, "autocontrast", "random_autocontrast", channels=(1, 3))


def random_equalize(key: Any, images: Any, *, p: Any = 0.5) -> jnp.ndarray:
    """:func:`equalize` each sample with probability ``p`` (its own draw).

    PyTorch: ``torchvision.transforms.v2.RandomEqualize(p)``.

    Example:
      >>> x = jnp.repeat(jnp.array([0, 64, 128, 255], jnp.uint8), 200).reshape(1, 20, 40, 1)
      >>> jnp.unique(random_equalize(jax.random.key(0), x, p=1.0)).tolist()
      [0, 100, 200, 255]
    """
    images = as_arrays(images)
    return _random(key, images, p, 0.0, "equalize", "random_equalize")


def random_adjust_sharpness(
    key: Any, images: Any, sharpness_factor: Any, *, p: Any = 0.5
) -> jnp.ndarray:
    """:func:`adjust_sharpness` each sample with probability ``p`` (its own draw).

    PyTorch: ``torchvision.transforms.v2.RandomAdjustSharpness(sharpness_factor, p)``.

    Example:
      >>> x = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(1.0)
      >>> round(float(random_adjust_sharpness(jax.random.key(0), x, 0.0, p=1.0)[0, 1, 1, 0]), 4)
      0.3846
    """
    images = as_arrays(images)
    fn = "random_adjust_sharpness"
    sharpness_factor = check_nonnegative("sharpness_factor", sharpness_factor, fn=fn)
    return _random(key, images, p, sharpness_factor, "sharpness", fn, channels=(1, 3))
