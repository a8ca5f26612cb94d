"""Image argument handling shared by every augmentation: rank, dtype, sizes.

Images are channels-last, ``[N, H, W, C]`` or a single ``[H, W, C]``. Floating
images hold values in ``[0, 1]``; ``uint8`` images hold ``0..255``. Every op works in
a floating *compute dtype* and converts back at the end:

- float32 / float64 are computed as they are;
- float16 / bfloat16 are computed in float32 and cast back (more accurate sums);
- uint8 images are divided by 255 into float32 and converted back with
  ``round(clip(y, 0, 1) * 255)``. (torchvision truncates ``y * 255.999`` instead; the
  two agree on multiples of 1/255 and differ by at most one level elsewhere.) Fill
  and erase values are given on the ``[0, 1]`` scale for uint8 images too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, check_ndim, check_static
from .._dtypes import compute_dtype

_UINT8_MAX = 255.0


def check(
    images: Any,
    *,
    fn: str,
    ranks: tuple[int, ...] = (3, 4),
    channels: tuple[int, ...] | None = None,
) -> None:
    """Raise unless ``images`` has an allowed rank, channel count and dtype."""
    check_ndim("images", images, ranks, fn=fn)
    shape = tuple(np.shape(images))
    if channels is not None and shape[-1] not in channels:
        raise ValueError(
            f"{fn}: images must have {' or '.join(map(str, channels))} channels (last axis), "
            f"got images.shape={shape}"
        )
    dtype = jnp.result_type(images)
    if not (jnp.issubdtype(dtype, jnp.floating) or dtype == jnp.uint8):
        raise TypeError(f"{fn}: images must be a floating or uint8 array, got images.dtype={dtype}")


def to_compute(images: Any) -> tuple[jnp.ndarray, Callable]:
    """``(x, restore)``: ``images`` in the compute dtype and the conversion back.

    See the module docstring for the dtype rules; ``restore(y)`` gives ``y`` the
    dtype of ``images``.
    """
    images = jnp.asarray(images)
    dtype = images.dtype
    x = images.astype(compute_dtype(dtype))  # uint8 -> float32
    if jnp.issubdtype(dtype, jnp.floating):

        def restore(y: jnp.ndarray) -> jnp.ndarray:
            return y.astype(dtype)

        return x, restore

    def restore_int(y: jnp.ndarray) -> jnp.ndarray:
        return jnp.round(jnp.clip(y, 0.0, 1.0) * _UINT8_MAX).astype(dtype)

    return x / _UINT8_MAX, restore_int


def parse_size(name: str, size: Any, *, fn: str, odd: bool = False) -> tuple[int, int]:
    """``size`` as a pair of positive ints (an int means both); with ``odd``, odd ones.
    Static: a traced size raises :func:`~functional_dl._checks.check_static`'s error."""
    check_static(name, size, fn=fn)
    pair = (size, size) if isinstance(size, (int, np.integer)) else size
    try:
        a, b = pair
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: {name} must be an int or a pair, got {name}={size!r}") from exc
    for v in (a, b):
        check_int(name, v, minimum=1, fn=fn)
        if odd and v % 2 == 0:
            raise ValueError(f"{fn}: {name} must be odd and positive, got {name}={size!r}")
    return int(a), int(b)


def check_value(name: str, value: Any, shape: tuple[int, ...], *, fn: str) -> None:
    """Raise unless a fill / erase ``value`` (scalar, per channel, ...) broadcasts to ``shape``."""
    try:
        np.broadcast_shapes(np.shape(value), tuple(shape))
    except ValueError as exc:
        raise ValueError(
            f"{fn}: {name} must be a scalar, one value per channel ({shape[-1]}) or "
            f"broadcastable to images.shape={tuple(shape)}, got {name}={value!r}"
        ) from exc


def expand_to(a: Any, ndim: int) -> jnp.ndarray:
    """``a`` with leading unit axes up to rank ``ndim`` (a scalar stays a scalar).

    NumPy's rank promotion written out, so that the ops run under
    ``jax_numpy_rank_promotion='raise'``: a ``[H, W, 1]`` mask or a ``[C]`` fill value
    against a batch ``[N, H, W, C]``.
    """
    a = jnp.asarray(a)
    return a if a.ndim == 0 else a.reshape((1,) * (ndim - a.ndim) + a.shape)


def box_mask(hw: tuple[int, ...], top: Any, left: Any, height: Any, width: Any) -> jnp.ndarray:
    """``[H, W, 1]`` True in rows ``[top, top + height)`` and columns ``[left, left + width)``."""
    rows = jnp.arange(hw[0])[:, None, None]
    cols = jnp.arange(hw[1])[None, :, None]
    return (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)


def float_kernel(*, static: tuple[str, ...] = (), image_arg: int = 0) -> Callable:
    """Decorator: compile ``kernel`` with ``jax.jit`` and run it in the compute dtype.

    Argument ``image_arg`` is converted with :func:`to_compute` before the call and the
    result converted back; arguments named in ``static`` are static (sizes, modes).
    Public functions validate their arguments, then call the decorated kernel, so each
    configuration compiles once instead of dispatching op by op.
    """

    def decorate(kernel: Callable) -> Callable:
        @functools.wraps(kernel)
        def run(*args: Any, **kwargs: Any) -> Any:
            x, restore = to_compute(args[image_arg])
            return restore(kernel(*args[:image_arg], x, *args[image_arg + 1 :], **kwargs))

        return jax.jit(run, static_argnames=static)

    return decorate
