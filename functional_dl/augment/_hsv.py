"""Hue and HSV conversions (torchvision v2 kernels, ``colorsys`` conventions).

Hue, saturation and value are all in ``[0, 1]``; hue is a fraction of the colour circle.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._checks import as_arrays, check_in_range
from . import _image


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


def shift_hue(x: jnp.ndarray, factor: Any) -> jnp.ndarray:
    """Shift the hue by ``factor`` turns, keeping HSV saturation and value.

    Equal to ``hsv_to_rgb`` of the shifted ``rgb_to_hsv`` but in one pass without
    divisions by the value: channel ``c`` of the result is
    ``min + (max - min) * ramp_c(6 h')`` with the piecewise-linear ramps of the HSV
    hexagon (``ramp_r = clip(|6h - 3| - 1, 0, 1)``, ``ramp_g = clip(2 - |6h - 2|, 0, 1)``,
    ``ramp_b = clip(2 - |6h - 4|, 0, 1)``), which is the sector table written out.
    """
    if x.shape[-1] == 1:
        return x
    return jnp.moveaxis(shift_hue_planes(jnp.moveaxis(x, -1, 0), factor), 0, -1)


def shift_hue_planes(planes: jnp.ndarray, factor: Any) -> jnp.ndarray:
    """:func:`shift_hue` on channel planes ``[3, ...]`` (channel axis first).

    Per-pixel quantities (hue, min, range) feed all three output channels. With the
    channels as planes each output plane is one vectorised formula over contiguous
    pixels; with channels last XLA evaluates the per-pixel formula once per output
    channel (2x slower on CPU).
    """
    r, g, b = planes[0], planes[1], planes[2]
    maxc = jnp.maximum(jnp.maximum(r, g), b)
    minc = jnp.minimum(jnp.minimum(r, g), b)
    crange = maxc - minc
    # 6 h * range, from the differences of the channels: continuous across sector
    # borders, so ties between the largest channels cannot pick a wrong sector.
    is_r = (r >= g) & (r >= b)
    is_g = ~is_r & (g >= b)
    h6 = jnp.where(is_r, g - b, jnp.where(is_g, b - r + 2.0 * crange, r - g + 4.0 * crange))
    # 6 h' = (6 h + 6 (factor mod 1)) mod 6, with 6 h in [-1, 5): one wrap each way
    # (the modulo of the scalar factor is cheap, the per-pixel one is not).
    shift = 6.0 * jnp.mod(jnp.asarray(factor, planes.dtype), 1.0)
    t = h6 / jnp.where(crange > 0, crange, 1.0) + shift
    t = jnp.where(t < 0.0, t + 6.0, jnp.where(t >= 6.0, t - 6.0, t))
    ramps = (jnp.abs(t - 3.0) - 1.0, 2.0 - jnp.abs(t - 2.0), 2.0 - jnp.abs(t - 4.0))
    return jnp.stack([minc + crange * jnp.clip(ramp, 0.0, 1.0) for ramp in ramps])


_hue = _image.float_kernel()(shift_hue)
_to_hsv = _image.float_kernel()(_rgb_to_hsv)
_to_rgb = _image.float_kernel()(_hsv_to_rgb)


def adjust_hue(images: Any, factor: Any) -> jnp.ndarray:
    """Rotate the hue: ``h -> (h + factor) mod 1`` in HSV space.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` with C in {1, 3} (one channel: unchanged).
      factor: scalar in ``[-0.5, 0.5]`` (a fraction of the colour circle).

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.adjust_hue``.

    Example:
      >>> adjust_hue(jnp.array([[[1.0, 0.0, 0.0]]]), 1 / 3).round(4)  # red -> green
      Array([[[0., 1., 0.]]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "adjust_hue"
    factor = check_in_range("factor", factor, -0.5, 0.5, fn=fn)
    _image.check(images, fn=fn, channels=(1, 3))
    return _hue(images, factor)


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
      >>> rgb_to_hsv(jnp.array([[[1.0, 0.0, 0.0]]]))  # red: hue 0, saturation 1, value 1
      Array([[[0., 1., 1.]]], dtype=float32)
    """
    images = as_arrays(images)
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
      >>> hsv_to_rgb(jnp.array([[[0.5, 1.0, 1.0]]]))  # cyan
      Array([[[0., 1., 1.]]], dtype=float32)
    """
    images = as_arrays(images)
    _image.check(images, fn="hsv_to_rgb", ranks=tuple(range(1, 8)), channels=(3,))
    return _to_rgb(images)
