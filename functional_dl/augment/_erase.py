"""Erasing a box: ``erase`` and torchvision's ``RandomErasing``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_nonnegative, check_pair, check_positive
from . import _image, _sampling


@_image.float_kernel()
def _erase(x: jnp.ndarray, top: Any, left: Any, height: Any, width: Any, value: Any) -> jnp.ndarray:
    mask = _image.box_mask(x.shape[-3:-1], top, left, height, width)
    return jnp.where(mask, jnp.asarray(value, x.dtype), x)


def erase(images: Any, top: Any, left: Any, height: Any, width: Any, value: Any) -> jnp.ndarray:
    """Set the box ``[top, top + height) x [left, left + width)`` to ``value``.

    ``out = where(in_box, value, images)``; the box is clipped to the image, as slicing
    is. The box may be traced (drawn per sample under ``vmap``).

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]`` (any channel count).
      top, left: box corner, ``>= 0``.
      height, width: box size, ``>= 0``.
      value: scalar, one value per channel ``[C]``, or an array broadcastable to
        ``images`` of which the box region is used (e.g. noise). On the ``[0, 1]``
        scale also for uint8 images.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.erase(img, i, j, h, w, v)``, where
    ``v`` has the box's shape ``[C, h, w]``; here an image-sized array is masked instead.

    Example:
      >>> erase(jnp.ones((4, 4, 1)), 1, 1, 2, 2, 0.0)[..., 0]  # a 2x2 hole at (1, 1)
      Array([[1., 1., 1., 1.],
             [1., 0., 0., 1.],
             [1., 0., 0., 1.],
             [1., 1., 1., 1.]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "erase"
    for name, v in (("top", top), ("left", left), ("height", height), ("width", width)):
        v = check_nonnegative(name, v, fn=fn)
    _image.check(images, fn=fn)
    _image.check_value("value", value, np.shape(images), fn=fn)
    return _erase(images, top, left, height, width, value)


def random_erasing(
    key: Any,
    images: Any,
    *,
    p: Any = 0.5,
    scale: Any = (0.02, 0.33),
    ratio: Any = (0.3, 3.3),
    value: Any = 0.0,
    _window: _sampling.Window | None = None,
) -> jnp.ndarray:
    """With probability ``p``, erase a random box of random area and aspect ratio per sample.

    torchvision's rule, per sample: up to 10 tries of ``area = H W * U(scale)``,
    ``log r ~ U(log ratio)`` with ``r = height / width``, ``h = round(sqrt(area * r))``,
    ``w = round(sqrt(area / r))``; the first try with ``h < H`` and ``w < W`` is placed
    uniformly at random and filled with ``value``. Without one the sample is unchanged.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      p: probability in ``[0, 1]`` of erasing a sample (``U[0, 1) < p``).
      scale: ordered ``(lo, hi)`` within ``[0, 1]``, fractions of the image area.
      ratio: ordered ``(lo, hi)`` of height / width, positive.
      value: scalar, one value per channel, or ``'random'`` for per-pixel standard
        normal noise (not clipped for float images).

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.RandomErasing(p, scale, ratio, value)``.

    Example:
      >>> key, images = jax.random.key(0), jnp.ones((2, 16, 16, 3))
      >>> random_erasing(key, images, p=0.5, value="random").shape
      (2, 16, 16, 3)
    """
    images = as_arrays(images)
    fn = "random_erasing"
    p = _sampling.check_p(p, fn=fn)
    scale = check_pair("scale", scale, fn=fn)
    _sampling.check_range_within("scale", scale, 0.0, 1.0, fn=fn)
    ratio = check_pair("ratio", ratio, fn=fn)
    check_positive("ratio[0]", ratio[0], fn=fn)
    noise = isinstance(value, str)
    if noise and value != "random":
        raise ValueError(
            f"{fn}: value must be a number, per-channel values or 'random', got value={value!r}"
        )
    _image.check(images, fn=fn)
    if not noise:
        _image.check_value("value", value, np.shape(images)[-1:], fn=fn)
    out = _random_erasing(key, images, p, scale, ratio, None if noise else value, window=_window)
    return _sampling.propagate_nan(p, out)


@_image.float_kernel(image_arg=1)
def _random_erasing(
    key: Any,
    x: jnp.ndarray,
    p: Any,
    scale: tuple,
    ratio: tuple,
    value: Any,
    *,
    window: _sampling.Window | None,
) -> jnp.ndarray:
    """``value=None`` erases with standard normal noise."""
    H, W = x.shape[-3], x.shape[-2]
    tries = _sampling.TRIES
    k_params, k_noise = jax.random.split(key)
    noise = ()
    if value is None:
        if x.ndim == 4:
            drawn = _sampling.batch_draw(jax.random.normal, k_noise, x.shape, window=window)
        else:
            drawn = _sampling.flat_draw(jax.random.normal, k_noise, x.shape)
        noise = (drawn.astype(x.dtype),)

    def one(u: jnp.ndarray, img: jnp.ndarray, *noise: jnp.ndarray) -> jnp.ndarray:
        v = noise[0] if noise else jnp.asarray(value, img.dtype)
        h, w = _sampling.box_candidates(u[:tries], u[tries : 2 * tries], float(H * W), scale, ratio)
        found, h, w = _sampling.first_valid((h < H) & (w < W), h, w)
        top = _sampling.randint(u[2 * tries], H - h)
        left = _sampling.randint(u[2 * tries + 1], W - w)
        erase_it = found & _sampling.bernoulli(u[2 * tries + 2], p)
        mask = _image.box_mask(img.shape[-3:-1], top, left, h, w) & erase_it
        return jnp.where(mask, v, img)

    return _sampling.per_sample(one, k_params, x, 2 * tries + 3, *noise, window=window)
