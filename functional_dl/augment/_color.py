"""Colour: brightness, contrast, saturation, hue, grayscale, HSV (torchvision v2 kernels).

The private ``_kernels`` work on floating ``[..., H, W, C]`` arrays in ``[0, 1]``;
the public functions validate, convert dtypes (see ``_image``) and call them.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._checks import check_choice, check_in_range, check_nonnegative, is_concrete
from . import _image, _random

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


def _gray(x: jnp.ndarray) -> jnp.ndarray:
    """Luma ``[..., H, W, 1]`` of an RGB image (a one-channel image is its own luma)."""
    if x.shape[-1] == 1:
        return x
    r, g, b = x[..., 0:1], x[..., 1:2], x[..., 2:3]
    return r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2]


def _blend(x: jnp.ndarray, ref: Any, factor: Any) -> jnp.ndarray:
    """torchvision's ``_blend``: ``clip(factor * x + (1 - factor) * ref, 0, 1)``."""
    factor = jnp.asarray(factor, x.dtype)
    return jnp.clip(x * factor + ref * (1.0 - factor), 0.0, 1.0)


def _contrast_ref(x: jnp.ndarray) -> jnp.ndarray:
    """The scalar mean of the grayscale image, per image: ``[..., 1, 1, 1]``."""
    return jnp.mean(_gray(x), axis=(-3, -2, -1), keepdims=True)


def _rgb_to_hsv(x: jnp.ndarray) -> jnp.ndarray:
    """torchvision's ``_rgb_to_hsv`` (safe divisions, hue in ``[0, 1)``)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    maxc = jnp.max(x, axis=-1)
    minc = jnp.min(x, axis=-1)
    eqc = maxc == minc
    crange = maxc - minc
    s = crange / jnp.where(eqc, 1.0, maxc)
    divisor = jnp.where(eqc, 1.0, crange)
    rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
    # The sector is the first largest channel (red, then green, as torchvision). Taking it
    # from argmax rather than ``maxc == r`` stays right when the compiler fuses the
    # channels' computation differently into the two uses.
    largest = jnp.argmax(x, axis=-1)
    is_r = largest == 0
    is_g = largest == 1
    hr = jnp.where(is_r, bc - gc, 0.0)
    hg = jnp.where(is_g, 2.0 + rc - bc, 0.0)
    hb = jnp.where(~is_r & ~is_g, 4.0 + gc - rc, 0.0)
    h = jnp.mod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return jnp.stack([h, s, maxc], axis=-1)


def _hsv_to_rgb(x: jnp.ndarray) -> jnp.ndarray:
    """torchvision's ``_hsv_to_rgb``: sector ``i = floor(6h) mod 6`` and the p/q/t table."""
    h, s, v = x[..., 0], x[..., 1], x[..., 2]
    h6 = h * 6.0
    i = jnp.floor(h6)
    f = h6 - i
    i = jnp.mod(i.astype(jnp.int32), 6)
    p = jnp.clip(v * (1.0 - s), 0.0, 1.0)
    q = jnp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = jnp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    # Channel c in sector i (colorsys's table), selected elementwise.
    sectors = {"r": (v, q, p, p, t, v), "g": (t, v, v, q, p, p), "b": (p, p, t, v, v, q)}
    return jnp.stack([_select(i, values) for values in sectors.values()], axis=-1)


def _select(index: jnp.ndarray, values: tuple) -> jnp.ndarray:
    """``values[index]`` elementwise for an int array ``index`` in ``0..len(values)-1``."""
    out = values[-1]
    for j in range(len(values) - 2, -1, -1):
        out = jnp.where(index == j, values[j], out)
    return out


def _adjust_hue(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    """Shift the hue by ``factor`` turns, keeping HSV saturation and value.

    Equal to ``hsv_to_rgb`` of the shifted ``rgb_to_hsv`` but in one pass without
    divisions by the value: channel ``c`` of the result is
    ``min + (max - min) * ramp_c(6 h')`` with the piecewise-linear ramps of the HSV
    hexagon (``ramp_r = clip(|6h - 3| - 1, 0, 1)``, ``ramp_g = clip(2 - |6h - 2|, 0, 1)``,
    ``ramp_b = clip(2 - |6h - 4|, 0, 1)``), which is the sector table written out.
    """
    if x.shape[-1] == 1:
        return x
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    maxc = jnp.maximum(jnp.maximum(r, g), b)
    minc = jnp.minimum(jnp.minimum(r, g), b)
    crange = maxc - minc
    # 6 h * range, from the differences of the channels: continuous across sector
    # borders, so ties between the largest channels cannot pick a wrong sector.
    is_r = (r >= g) & (r >= b)
    is_g = ~is_r & (g >= b)
    h6 = jnp.where(is_r, g - b, jnp.where(is_g, b - r + 2.0 * crange, r - g + 4.0 * crange))
    h = h6 / (6.0 * jnp.where(crange > 0, crange, 1.0))
    h6 = 6.0 * jnp.mod(h + jnp.asarray(factor, x.dtype), 1.0)
    ramps = (jnp.abs(h6 - 3.0) - 1.0, 2.0 - jnp.abs(h6 - 2.0), 2.0 - jnp.abs(h6 - 4.0))
    return jnp.stack([minc + crange * jnp.clip(ramp, 0.0, 1.0) for ramp in ramps], axis=-1)


@_image.float_kernel()
def _brightness(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    return _blend(x, 0.0, factor)


@_image.float_kernel()
def _contrast(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    return _blend(x, _contrast_ref(x), factor)


@_image.float_kernel()
def _saturation(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    return x if x.shape[-1] == 1 else _blend(x, _gray(x), factor)


_hue = _image.float_kernel()(_adjust_hue)
_to_hsv = _image.float_kernel()(_rgb_to_hsv)
_to_rgb = _image.float_kernel()(_hsv_to_rgb)


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
      >>> adjust_brightness(images, 1.5)
    """
    fn = "adjust_brightness"
    check_nonnegative("factor", factor, fn=fn)
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
      >>> adjust_contrast(images, 0.5)
    """
    fn = "adjust_contrast"
    check_nonnegative("factor", factor, fn=fn)
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
      >>> adjust_saturation(images, 0.0)  # grayscale, three channels
    """
    fn = "adjust_saturation"
    check_nonnegative("factor", factor, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _saturation(images, factor)


def adjust_hue(images: Any, factor: Any) -> jnp.ndarray:
    """Rotate the hue: ``h -> (h + factor) mod 1`` in HSV space.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` with C in {1, 3} (one channel: unchanged).
      factor: scalar in ``[-0.5, 0.5]`` (a fraction of the colour circle).

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.adjust_hue``.

    Example:
      >>> adjust_hue(images, 0.25)
    """
    fn = "adjust_hue"
    check_in_range("factor", factor, -0.5, 0.5, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _hue(images, factor)


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
      >>> rgb_to_grayscale(images, num_output_channels=3)
    """
    fn = "rgb_to_grayscale"
    check_choice("num_output_channels", num_output_channels, (1, 3), fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _grayscale(images, channels=num_output_channels)


def rgb_to_hsv(images: Any) -> jnp.ndarray:
    """Convert RGB in ``[0, 1]`` to HSV in ``[0, 1]`` (hue as a fraction of the circle).

    ``v = max``, ``s = (max - min) / max`` (0 where max = 0), hue from the sector of the
    largest channel, as ``colorsys.rgb_to_hsv``. Gray pixels get ``h = s = 0``.

    Args:
      images: ``[..., 3]`` floating RGB.

    Returns:
      ``[..., 3]`` HSV in the input dtype.

    PyTorch: torchvision's private ``_rgb_to_hsv``; ``colorsys.rgb_to_hsv`` per pixel;
    ``dm_pix.rgb_to_hsv``.

    Example:
      >>> rgb_to_hsv(jnp.array([1.0, 0.0, 0.0]))  # [0, 1, 1]
    """
    _image.check(images, fn="rgb_to_hsv", ranks=tuple(range(1, 8)), channels=(3,))
    return _to_hsv(images)


def hsv_to_rgb(images: Any) -> jnp.ndarray:
    """Convert HSV in ``[0, 1]`` back to RGB (inverse of :func:`rgb_to_hsv`).

    Sector ``i = floor(6h) mod 6``, ``f = 6h - floor(6h)``, ``p = v(1-s)``,
    ``q = v(1-sf)``, ``t = v(1-s(1-f))`` and the usual table, as ``colorsys.hsv_to_rgb``.

    Args:
      images: ``[..., 3]`` floating HSV.

    Returns:
      ``[..., 3]`` RGB in the input dtype.

    PyTorch: torchvision's private ``_hsv_to_rgb``; ``colorsys.hsv_to_rgb``.

    Example:
      >>> hsv_to_rgb(jnp.array([0.5, 1.0, 1.0]))  # cyan [0, 1, 1]
    """
    _image.check(images, fn="hsv_to_rgb", ranks=tuple(range(1, 8)), channels=(3,))
    return _to_rgb(images)


def _jitter_range(name: str, value: Any, *, center: float, bound: tuple) -> tuple | None:
    """torchvision's ``ColorJitter._check_input``: None when the range is ``{center}``."""
    lo, hi = _random.symmetric_range(name, value, fn="color_jitter", center=center,
                                     minimum=0.0 if center == 1.0 else None)
    _random.check_range_within(name, (lo, hi), bound[0], bound[1], fn="color_jitter")
    if is_concrete(lo) and is_concrete(hi) and lo == hi == center:
        return None
    return lo, hi


def color_jitter(key: Any, images: Any, *, brightness: Any = 0, contrast: Any = 0,
                 saturation: Any = 0, hue: Any = 0) -> jnp.ndarray:
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
      >>> color_jitter(key, images, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    """
    fn = "color_jitter"
    ranges = (_jitter_range("brightness", brightness, center=1.0, bound=(0.0, float("inf"))),
              _jitter_range("contrast", contrast, center=1.0, bound=(0.0, float("inf"))),
              _jitter_range("saturation", saturation, center=1.0, bound=(0.0, float("inf"))),
              _jitter_range("hue", hue, center=0.0, bound=(-0.5, 0.5)))
    _image.check(images, fn=fn, channels=(3,))
    return _color_jitter(key, images, ranges)


@_image.float_kernel(image_arg=1)
def _color_jitter(key: Any, x: jnp.ndarray, ranges: tuple) -> jnp.ndarray:
    """``ranges``: (lo, hi) or None for brightness, contrast, saturation, hue."""
    blends = ranges[:3]
    off = jnp.array([r is None for r in blends] + [True])  # the hue shift is not a blend
    num_blends = sum(r is not None for r in blends)
    need_gray = blends[1] is not None or blends[2] is not None

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        perm = jnp.argsort(u[:4])  # 0 brightness, 1 contrast, 2 saturation, 3 hue
        factors = jnp.stack([_random.uniform(u[4 + i], r) if r is not None else 1.0
                             for i, r in enumerate(blends)])
        # Brightness, contrast and saturation are blends with a reference image (0, the
        # mean gray, the gray). The enabled blends run in the drawn order: those drawn
        # before the hue shift, then the hue shift (computed once), then the rest.
        order = perm[jnp.argsort(off[perm], stable=True)][:num_blends]
        before_hue = jnp.sum(~off[perm] & (jnp.arange(4) < jnp.argmax(perm == 3)))

        def blend_steps(img: jnp.ndarray, first: bool | None) -> jnp.ndarray:
            for step in range(num_blends):
                op = order[step]
                ref = 0.0
                if need_gray:
                    gray = _gray(img)
                    ref = jnp.where(op == 1, _contrast_ref(gray), jnp.where(op == 2, gray, 0.0))
                active = True if first is None else (step < before_hue) == first
                img = jnp.where(active, _blend(img, ref, factors[op]), img)
            return img

        if ranges[3] is None:
            return blend_steps(img, None)
        img = blend_steps(img, True)
        img = _adjust_hue(img, _random.uniform(u[7], ranges[3]))
        return blend_steps(img, False)

    return _random.per_sample(one, key, x, 8)


def random_grayscale(key: Any, images: Any, *, p: Any = 0.1) -> jnp.ndarray:
    """Convert each sample to grayscale with probability ``p`` (keeping its channel count).

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``, C in {1, 3}.
      p: probability in ``[0, 1]``; a sample is converted when ``U[0, 1) < p``.

    Returns:
      Array of the same shape and dtype; converted samples have three equal channels.

    PyTorch: ``torchvision.transforms.v2.RandomGrayscale(p)`` (one draw per call there).

    Example:
      >>> random_grayscale(key, images, p=0.2)
    """
    fn = "random_grayscale"
    _random.check_p(p, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _random_grayscale(key, images, p)


@_image.float_kernel(image_arg=1)
def _random_grayscale(key: Any, x: jnp.ndarray, p: Any) -> jnp.ndarray:
    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        gray = jnp.broadcast_to(_gray(img), img.shape)
        return jnp.where(_random.bernoulli(u[0], p), gray, img)

    return _random.per_sample(one, key, x, 1)
