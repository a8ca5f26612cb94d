"""Pixel shuffle: channels rearranged into space (sub-pixel convolution upsampling)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_int
from ._linear_rules import linear_op
from ._utils import check_input, register_grad

__all__ = ["pixel_shuffle", "pixel_shuffle_backward", "pixel_unshuffle"]


def _check(x: Any, r: Any) -> None:
    fn = "pixel_shuffle"
    check_input("x", x, 4, fn=fn, what="[N, H, W, C * r^2]")
    check_int("upscale_factor", r, minimum=1, fn=fn)
    if x.shape[-1] % (r * r):
        raise ValueError(
            f"{fn}: the channels of x must be divisible by upscale_factor**2={r * r}, got "
            f"x.shape={tuple(x.shape)}, upscale_factor={r}"
        )


def _shuffle(x: Any, r: int) -> Any:
    n, h, w, c = x.shape
    y = jnp.reshape(x, (n, h, w, c // (r * r), r, r))  # channel k = c r^2 + i r + j
    y = jnp.transpose(y, (0, 1, 4, 2, 5, 3))  # (n, h, i, w, j, c)
    return jnp.reshape(y, (n, h * r, w * r, c // (r * r)))


def pixel_unshuffle(x: Any, r: int) -> Any:
    """Inverse of :func:`pixel_shuffle` (``torch.nn.functional.pixel_unshuffle``):
    ``[N, H r, W r, C] -> [N, H, W, C r^2]``. A permutation: its JVP is the op itself
    (``jax.custom_jvp``), its backward :func:`pixel_shuffle`.

    Example:
      >>> pixel_unshuffle(jnp.ones((1, 4, 4, 2)), 2).shape
      (1, 2, 2, 8)
    """
    x = as_arrays(x)
    return _pixel_unshuffle(x, int(r))


def _unshuffle(x: Any, r: int) -> Any:
    n, hr, wr, c = x.shape
    y = jnp.reshape(x, (n, hr // r, r, wr // r, r, c))  # (n, h, i, w, j, c)
    y = jnp.transpose(y, (0, 1, 3, 5, 2, 4))  # (n, h, w, c, i, j)
    return jnp.reshape(y, (n, hr // r, wr // r, c * r * r))


_pixel_shuffle = linear_op(_shuffle)
_pixel_unshuffle = linear_op(_unshuffle)


def pixel_shuffle(x: Any, upscale_factor: int) -> Any:
    """Rearrange ``[N, H, W, C r^2]`` into ``[N, H r, W r, C]`` (PyTorch's channel order).

    .. math:: y_{n,\\, h r + i,\\, w r + j,\\, c} = x_{n,h,w,\\, c r^2 + i r + j}

    A permutation: its JVP is the op itself (``jax.custom_jvp``) and its backward the
    inverse permutation :func:`pixel_unshuffle` (:func:`pixel_shuffle_backward`).
    PyTorch: ``torch.nn.functional.pixel_shuffle`` (``[N, C r^2, H, W]`` there, same
    channel order).

    Example:
      >>> y = pixel_shuffle(jnp.arange(4.0).reshape(1, 1, 1, 4), 2)
      >>> y[0, :, :, 0]
      Array([[0., 1.],
             [2., 3.]], dtype=float32)
    """
    x = as_arrays(x)
    _check(x, upscale_factor)
    return _pixel_shuffle(x, int(upscale_factor))


def pixel_shuffle_backward(x: Any, g: Any, upscale_factor: int) -> Any:
    """Vjp of :func:`pixel_shuffle`: the inverse permutation, ``pixel_unshuffle(g)``."""
    _check(x, upscale_factor)
    return pixel_unshuffle(g.astype(x.dtype), int(upscale_factor))


register_grad(
    "pixel_shuffle(upscale_factor=2)",
    forward=lambda x: _shuffle(x, 2),
    backward=lambda x, g: pixel_shuffle_backward(x, g, 2),
    examples=lambda: [(np.random.default_rng(90).standard_normal((2, 3, 2, 8)),)],
    public=lambda x: pixel_shuffle(x, 2),
)

register_grad(
    "pixel_unshuffle(downscale_factor=2)",
    forward=lambda x: _unshuffle(x, 2),
    backward=lambda x, g: _shuffle(g.astype(x.dtype), 2),
    examples=lambda: [(np.random.default_rng(91).standard_normal((2, 4, 6, 3)),)],
    public=lambda x: pixel_unshuffle(x, 2),
)
