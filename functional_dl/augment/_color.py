"""Colour: brightness, contrast, saturation, grayscale, ColorJitter (torchvision v2 kernels).

The private ``_kernels`` work on floating ``[..., H, W, C]`` arrays in ``[0, 1]``;
the public functions validate, convert dtypes (see ``_image``) and call them.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._checks import as_arrays, check_choice, check_nonnegative, is_concrete
from . import _image, _sampling
from ._hsv import shift_hue_planes

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


def _gray(x: jnp.ndarray) -> jnp.ndarray:
    """Luma ``[..., H, W, 1]`` of an RGB image (a one-channel image is its own luma)."""
    if x.shape[-1] == 1:
        return x
    return _luma(x[..., 0:1], x[..., 1:2], x[..., 2:3])


def _luma(r: jnp.ndarray, g: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """``0.2989 r + 0.587 g + 0.114 b``."""
    return r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2]


def _blend(x: jnp.ndarray, ref: Any, factor: Any) -> jnp.ndarray:
    """torchvision's ``_blend``: ``clip(factor * x + (1 - factor) * ref, 0, 1)``."""
    factor = jnp.asarray(factor, x.dtype)
    return jnp.clip(x * factor + _image.expand_to(ref * (1.0 - factor), x.ndim), 0.0, 1.0)


def _contrast_ref(x: jnp.ndarray) -> jnp.ndarray:
    """The scalar mean of the grayscale image, per image: ``[..., 1, 1, 1]``."""
    return jnp.mean(_gray(x), axis=(-3, -2, -1), keepdims=True)


@_image.float_kernel()
def _brightness(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    return _blend(x, 0.0, factor)


@_image.float_kernel()
def _contrast(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    return _blend(x, _contrast_ref(x), factor)


@_image.float_kernel()
def _saturation(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    return x if x.shape[-1] == 1 else _blend(x, _gray(x), factor)


@_image.float_kernel(static=("channels",))
def _grayscale(x: jnp.ndarray, channels: int) -> jnp.ndarray:
    gray = _gray(x)
    return jnp.broadcast_to(gray, gray.shape[:-1] + (channels,))


def adjust_brightness(images: Any, factor: Any) -> jnp.ndarray:
    """Scale brightness: ``clip(factor * images, 0, 1)``.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``, float in [0, 1] or uint8.
      factor: non-negative scalar; 0 gives black, 1 the original image.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.adjust_brightness`` (multiplicative;
    dm-pix's ``adjust_brightness`` is additive instead).

    Example:
      >>> adjust_brightness(jnp.array([[[0.25, 0.5, 0.75]]]), 1.5)  # clipped at 1
      Array([[[0.375, 0.75 , 1.   ]]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "adjust_brightness"
    factor = check_nonnegative("factor", factor, fn=fn)
    _image.check(images, fn=fn)
    return _brightness(images, factor)


def adjust_contrast(images: Any, factor: Any) -> jnp.ndarray:
    """Blend each image with the mean of its grayscale version.

    ``clip(factor * x + (1 - factor) * mean(gray(x)), 0, 1)``, the mean taken over the
    whole image (one scalar per image), ``gray = 0.2989 R + 0.587 G + 0.114 B``.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` with C in {1, 3}.
      factor: non-negative scalar; 0 gives a uniform gray image, 1 the original.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.adjust_contrast``. (dm-pix uses the
    per-channel mean and does not clip.)

    Example:
      >>> out = adjust_contrast(jnp.array([[[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]]), 0.5)
      >>> [round(float(v), 4) for v in out[:, 0, 0]]  # half way to the gray mean 0.5
      [0.25, 0.75]
    """
    images = as_arrays(images)
    fn = "adjust_contrast"
    factor = check_nonnegative("factor", factor, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _contrast(images, factor)


def adjust_saturation(images: Any, factor: Any) -> jnp.ndarray:
    """Blend each pixel with its grayscale value: ``clip(f * x + (1 - f) * gray(x), 0, 1)``.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` with C in {1, 3} (one channel: unchanged).
      factor: non-negative scalar; 0 gives grayscale, 1 the original, 2 doubles saturation.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.adjust_saturation`` (a blend in RGB;
    dm-pix scales the HSV saturation instead).

    Example:
      >>> out = adjust_saturation(jnp.array([[[1.0, 0.0, 0.0]]]), 0.0)  # gray, three channels
      >>> out.shape, [round(float(v), 4) for v in out.ravel()]
      ((1, 1, 3), [0.2989, 0.2989, 0.2989])
    """
    images = as_arrays(images)
    fn = "adjust_saturation"
    factor = check_nonnegative("factor", factor, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _saturation(images, factor)


def rgb_to_grayscale(images: Any, *, num_output_channels: int = 1) -> jnp.ndarray:
    """Luma ``0.2989 R + 0.587 G + 0.114 B``, with 1 or 3 (identical) output channels.

    Args:
      images: ``[N, H, W, 3]`` or ``[H, W, 3]`` (a one-channel image is returned as
        its own luma).
      num_output_channels: 1 or 3.

    Returns:
      ``[..., H, W, num_output_channels]`` in the input dtype.

    PyTorch: ``torchvision.transforms.v2.functional.rgb_to_grayscale``; dm-pix's
    ``rgb_to_grayscale`` (rec601) uses the same weights.

    Example:
      >>> out = rgb_to_grayscale(jnp.array([[[1.0, 0.0, 0.0]]]), num_output_channels=3)
      >>> out.shape, [round(float(v), 4) for v in out.ravel()]
      ((1, 1, 3), [0.2989, 0.2989, 0.2989])
    """
    images = as_arrays(images)
    fn = "rgb_to_grayscale"
    check_choice("num_output_channels", num_output_channels, (1, 3), fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _grayscale(images, channels=num_output_channels)


def _jitter_range(name: str, value: Any, *, center: float, bound: tuple) -> tuple | None:
    """torchvision's ``ColorJitter._check_input``: None when the range is ``{center}``."""
    lo, hi = _sampling.symmetric_range(
        name, value, fn="color_jitter", center=center, minimum=0.0 if center == 1.0 else None
    )
    _sampling.check_range_within(name, (lo, hi), bound[0], bound[1], fn="color_jitter")
    if is_concrete(lo) and is_concrete(hi) and lo == hi == center:
        return None
    return lo, hi


def color_jitter(
    key: Any,
    images: Any,
    *,
    brightness: Any = 0,
    contrast: Any = 0,
    saturation: Any = 0,
    hue: Any = 0,
    _window: _sampling.Window | None = None,
) -> jnp.ndarray:
    """Randomly change brightness, contrast, saturation and hue, in a random order.

    Each sample draws ``b ~ U(brightness)``, ``c ~ U(contrast)``, ``s ~ U(saturation)``,
    ``h ~ U(hue)`` and a random permutation of the four ops, then applies
    :func:`adjust_brightness`, :func:`adjust_contrast`, :func:`adjust_saturation`,
    :func:`adjust_hue` in that order. A number ``v`` means the range
    ``[max(0, 1 - v), 1 + v]`` (hue: ``[-v, v]``, ``v <= 0.5``); a pair is the range.
    A range equal to ``{1}`` (hue ``{0}``) switches the op off.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, 3]`` or ``[H, W, 3]``, float in [0, 1] or uint8.
      brightness, contrast, saturation: non-negative number or ordered pair ``>= 0``.
      hue: number in ``[0, 0.5]`` or ordered pair within ``[-0.5, 0.5]``.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.ColorJitter`` (one order and one set of
    factors per call there; per sample here).

    Example:
      >>> key, images = jax.random.key(0), jnp.full((2, 8, 8, 3), 0.5)
      >>> color_jitter(key, images, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1).shape
      (2, 8, 8, 3)
    """
    images = as_arrays(images)
    fn = "color_jitter"
    ranges = (
        _jitter_range("brightness", brightness, center=1.0, bound=(0.0, float("inf"))),
        _jitter_range("contrast", contrast, center=1.0, bound=(0.0, float("inf"))),
        _jitter_range("saturation", saturation, center=1.0, bound=(0.0, float("inf"))),
        _jitter_range("hue", hue, center=0.0, bound=(-0.5, 0.5)),
    )
    _image.check(images, fn=fn, channels=(3,))
    return _color_jitter(key, images, ranges, window=_window)


@_image.float_kernel(image_arg=1)
def _color_jitter(
    key: Any, x: jnp.ndarray, ranges: tuple, *, window: _sampling.Window | None
) -> jnp.ndarray:
    """``ranges``: (lo, hi) or None for brightness, contrast, saturation, hue."""
    blends = ranges[:3]
    off = jnp.array([r is None for r in blends] + [True])  # the hue shift is not a blend
    num_blends = sum(r is not None for r in blends)
    need_gray = blends[1] is not None or blends[2] is not None

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        perm = jnp.argsort(u[:4])  # 0 brightness, 1 contrast, 2 saturation, 3 hue
        factors = jnp.stack(
            [_sampling.uniform(u[4 + i], r) if r is not None else 1.0 for i, r in enumerate(blends)]
        )
        # Brightness, contrast and saturation are blends with a reference image (0, the
        # mean gray, the gray). The enabled blends run in the drawn order: those drawn
        # before the hue shift, then the hue shift (computed once), then the rest.
        order = perm[jnp.argsort(off[perm], stable=True)][:num_blends]
        before_hue = jnp.sum(~off[perm] & (jnp.arange(4) < jnp.argmax(perm == 3)))

        def blend_steps(p: jnp.ndarray, first: bool | None) -> jnp.ndarray:
            for step in range(num_blends):
                op = order[step]
                ref = 0.0
                if need_gray:
                    gray = _luma(p[0], p[1], p[2])
                    ref = jnp.where(op == 1, jnp.mean(gray), jnp.where(op == 2, gray, 0.0))
                active = True if first is None else (step < before_hue) == first
                p = jnp.where(active, _blend(p, ref, factors[op]), p)
            return p

        # Channel planes [3, H, W]: the per-pixel formulas (luma, hue) vectorise over
        # contiguous pixels once, instead of once per output channel with channels last.
        p = jnp.moveaxis(img, -1, 0)
        if ranges[3] is None:
            return jnp.moveaxis(blend_steps(p, None), 0, -1)
        p = blend_steps(p, True)
        p = shift_hue_planes(p, _sampling.uniform(u[7], ranges[3]))
        return jnp.moveaxis(blend_steps(p, False), 0, -1)

    # several steps, each a full-size intermediate: run in cache-sized chunks of images
    steps = num_blends + (ranges[3] is not None)
    chunk = _sampling.CHUNK_ELEMENTS if steps > 1 else None
    return _sampling.per_sample(one, key, x, 8, window=window, chunk_elements=chunk)


def random_grayscale(
    key: Any, images: Any, *, p: Any = 0.1, _window: _sampling.Window | None = None
) -> jnp.ndarray:
    """Convert each sample to grayscale with probability ``p`` (keeping its channel count).

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``, C in {1, 3}.
      p: probability in ``[0, 1]``; a sample is converted when ``U[0, 1) < p``.

    Returns:
      Array of the same shape and dtype; converted samples have three equal channels.

    PyTorch: ``torchvision.transforms.v2.RandomGrayscale(p)`` (one draw per call there).

    Example:
      >>> key, images = jax.random.key(0), jnp.ones((2, 8, 8, 3))
      >>> random_grayscale(key, images, p=0.2).shape
      (2, 8, 8, 3)
    """
    images = as_arrays(images)
    fn = "random_grayscale"
    p = _sampling.check_p(p, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _sampling.propagate_nan(p, _random_grayscale(key, images, p, window=_window))


@_image.float_kernel(image_arg=1)
def _random_grayscale(
    key: Any, x: jnp.ndarray, p: Any, *, window: _sampling.Window | None
) -> jnp.ndarray:
    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        gray = jnp.broadcast_to(_gray(img), img.shape)
        return jnp.where(_sampling.bernoulli(u[0], p), gray, img)

    return _sampling.per_sample(one, key, x, 1, window=window)
