"""Gaussian blur with reflect padding (torchvision v2 kernel), fixed or random sigma."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_pair, check_positive
from . import _image, _sampling


def _check_fits(kx: int, ky: int, images: Any, fn: str) -> None:
    """Reflect padding needs ``k // 2 < size`` along each axis."""
    H, W = np.shape(images)[-3:-1]
    if ky // 2 >= H or kx // 2 >= W:
        raise ValueError(
            f"{fn}: kernel_size too large for reflect padding of a {H}x{W} image "
            f"(need k // 2 < size), got kernel_size={(kx, ky)}"
        )


def _gaussian_1d(k: int, sigma: Any, dtype: Any) -> jnp.ndarray:
    """``exp(-t^2 / (2 sigma^2))`` on ``t = linspace(-(k-1)/2, (k-1)/2, k)``, normalised."""
    t = jnp.linspace(-(k - 1) / 2.0, (k - 1) / 2.0, k, dtype=dtype)
    pdf = jnp.exp(-0.5 * (t / jnp.asarray(sigma, dtype)) ** 2)
    return pdf / jnp.sum(pdf)


def _correlate_axis(x: jnp.ndarray, weights: jnp.ndarray, axis: int) -> jnp.ndarray:
    """Reflect-pad ``x`` along ``axis`` and correlate with the 1-D ``weights``."""
    k = weights.shape[0]
    size = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (k // 2, k // 2)
    padded = jnp.pad(x, pad, mode="reflect")
    out = jnp.zeros((), x.dtype)
    for tap in range(k):
        window = jax.lax.slice_in_dim(padded, tap, tap + size, axis=axis)
        out = out + weights[tap] * window
    return out


def _blur(x: jnp.ndarray, kx: int, ky: int, sigma_x: Any, sigma_y: Any) -> jnp.ndarray:
    """Separable Gaussian blur of ``[..., H, W, C]`` (rows with ``ky``, columns ``kx``)."""
    x = _correlate_axis(x, _gaussian_1d(kx, sigma_x, x.dtype), x.ndim - 2)
    return _correlate_axis(x, _gaussian_1d(ky, sigma_y, x.dtype), x.ndim - 3)


_blur_fixed = _image.float_kernel(static=("kx", "ky"))(
    lambda x, sx, sy, *, kx, ky: _blur(x, kx, ky, sx, sy)
)


def gaussian_blur_fixed(images: Any, kernel_size: Any, sigma: Any) -> jnp.ndarray:
    """Blur with a fixed Gaussian kernel, reflect padding, same output size.

    ``out = correlate(reflect_pad(x), g_y ⊗ g_x)`` with
    ``g(t) ∝ exp(-t^2 / (2 sigma^2))`` on ``t = linspace(-(k-1)/2, (k-1)/2, k)``,
    normalised to sum 1. Padding by ``k // 2`` mirrors without repeating the edge
    (PyTorch's ``'reflect'``, SciPy's ``'mirror'``).

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` (any channel count).
      kernel_size: odd positive int, or ``(kx, ky)`` (width first, as torchvision);
        ``k // 2`` must be smaller than the image side.
      sigma: positive number, or ``(sigma_x, sigma_y)``.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.gaussian_blur`` (sigma required
    here). dm-pix's ``gaussian_blur`` pads with zeros instead.

    Example:
      >>> images = jnp.zeros((5, 5, 1)).at[2, 2, 0].set(1.0)  # an impulse
      >>> out = gaussian_blur_fixed(images, 3, 1.0)
      >>> round(float(out.sum()), 4), round(float(out[2, 2, 0]), 4)
      (1.0, 0.2042)
    """
    images = as_arrays(images)
    fn = "gaussian_blur_fixed"
    kx, ky = _image.parse_size("kernel_size", kernel_size, fn=fn, odd=True)
    sx, sy = (
        (sigma, sigma)
        if _sampling.is_scalar(sigma)
        else check_pair("sigma", sigma, ordered=False, fn=fn)
    )
    sx = check_positive("sigma", sx, fn=fn)
    sy = check_positive("sigma", sy, fn=fn)
    _image.check(images, fn=fn)
    _check_fits(kx, ky, images, fn)
    return _blur_fixed(images, sx, sy, kx=kx, ky=ky)


def gaussian_blur(
    key: Any, images: Any, kernel_size: Any, *, sigma: Any = (0.1, 2.0)
) -> jnp.ndarray:
    """Blur each sample with its own ``sigma ~ U(sigma)`` (same sigma along x and y).

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      kernel_size: odd positive int or ``(kx, ky)``, see :func:`gaussian_blur_fixed`.
      sigma: ordered ``(lo, hi)`` with ``0 < lo``, or a positive number (fixed sigma).

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.GaussianBlur(kernel_size, sigma)`` (one sigma
    per call there, one per sample here).

    Example:
      >>> key, images = jax.random.key(0), jnp.ones((2, 16, 16, 3))
      >>> gaussian_blur(key, images, 9, sigma=(0.1, 2.0)).shape
      (2, 16, 16, 3)
    """
    images = as_arrays(images)
    fn = "gaussian_blur"
    kx, ky = _image.parse_size("kernel_size", kernel_size, fn=fn, odd=True)
    lo, hi = (sigma, sigma) if _sampling.is_scalar(sigma) else check_pair("sigma", sigma, fn=fn)
    lo = check_positive("sigma", lo, fn=fn)
    _image.check(images, fn=fn)
    _check_fits(kx, ky, images, fn)
    return _random_blur(key, images, (lo, hi), kx=kx, ky=ky)


@_image.float_kernel(static=("kx", "ky"), image_arg=1)
def _random_blur(key: Any, x: jnp.ndarray, sigma: tuple, *, kx: int, ky: int) -> jnp.ndarray:
    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        s = _sampling.uniform(u[0], sigma)
        return _blur(img, kx, ky, s, s)

    return _sampling.per_sample(one, key, x, 1)
