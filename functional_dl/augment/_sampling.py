"""Per-sample randomness: one row of uniforms per image, ranges, box sampling.

Every random op draws all the parameters of a sample from one row of ``U[0, 1)``
numbers: ``jax.random.uniform(key, (N, k))`` for a batch (row ``i`` belongs to image
``i``), ``(k,)`` for a single image. One draw per op keeps the compiled program small;
the parameters are then derived with the helpers below (``uniform``, ``randint``,
``bernoulli``).

``compose`` may run a pipeline of per-sample ops on chunks of the batch (see
``_compose``). Inside a chunk the ops still draw the rows of the whole batch and keep
their own: the :class:`Window` ``(total, offset)`` that compose passes to each op, and
each op on to :func:`per_sample` / :func:`batch_draw`, says which rows those are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_pair, check_probability, is_concrete

TRIES = 10  # torchvision's number of attempts for crop / erase boxes

# Elements per image chunk (about 4 MiB of float32).
CHUNK_ELEMENTS = 1 << 20


@dataclasses.dataclass(frozen=True)
class Window:
    """The images seen are rows ``offset + [0, n)`` of a batch of ``total`` images.

    A pytree whose ``total`` is static (part of the tree structure: a jitted kernel
    compiles once per batch size) and whose ``offset`` is a leaf (an int32 scalar,
    traced inside compose's ``jax.lax.map``).
    """

    total: int
    offset: Any


jax.tree_util.register_dataclass(Window, data_fields=["offset"], meta_fields=["total"])


def batch_draw(
    sampler: Callable, key: Any, shape: tuple[int, ...], *args: Any, window: Window | None = None
) -> jnp.ndarray:
    """:func:`flat_draw` of a batch ``shape = (N, ...)``; with a ``window``, the rows of
    this chunk out of the draw for the whole batch."""
    if window is None:
        return flat_draw(sampler, key, shape, *args)
    rows = flat_draw(sampler, key, (window.total, *shape[1:]), *args)
    return jax.lax.dynamic_slice_in_dim(rows, window.offset, shape[0])


def per_sample(
    fn: Callable,
    key: Any,
    images: jnp.ndarray,
    num_uniforms: int,
    *batched: Any,
    window: Window | None = None,
    chunk_elements: int | None = None,
) -> Any:
    """``fn(u_i, image_i, *row_i)`` for every image with its own uniforms ``u_i``.

    ``u_i`` holds ``num_uniforms`` numbers in ``[0, 1)`` drawn from ``key``. A single
    image ``[H, W, C]`` is passed as it is; a batch ``[N, H, W, C]`` is mapped with
    ``jax.vmap``, together with the leading axis of every array in ``batched``.
    ``window``: the batch is a chunk of a larger one (see :class:`Window`).

    ``chunk_elements``: for an op with many full-size intermediates, map the batch in
    chunks of at most this many elements (``jax.lax.map`` over ``jax.vmap``'d chunks of
    a number of images that divides ``N``), so that the intermediates of one chunk stay
    in cache instead of each filling a fresh buffer as large as the whole batch. The
    result is the same; only the schedule changes. Ignored inside a ``window`` (the
    batch is already a chunk).
    """
    if images.ndim == 3:
        return fn(flat_draw(jax.random.uniform, key, (num_uniforms,)), images, *batched)
    n = images.shape[0]
    u = batch_draw(jax.random.uniform, key, (n, num_uniforms), window=window)
    if window is not None:
        chunk_elements = None
    size = chunk_size(n, math.prod(images.shape[1:]), chunk_elements)
    if size < n:
        return jax.lax.map(lambda args: fn(*args), (u, images, *batched), batch_size=size)
    return jax.vmap(fn)(u, images, *batched)


def chunk_size(n: int, per_image: int, chunk_elements: int | None) -> int:
    """The largest divisor of ``n`` whose images hold at most ``chunk_elements`` (at
    least 1); ``n`` when ``chunk_elements`` is None."""
    if chunk_elements is None or n == 0:
        return n
    limit = max(1, chunk_elements // max(per_image, 1))
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def flat_draw(sampler: Callable, key: Any, shape: tuple[int, ...], *args: Any) -> jnp.ndarray:
    """``sampler(key, *args, (size,))`` reshaped to ``shape``.

    Drawing a flat vector compiles several times faster on CPU than drawing a
    multi-dimensional shape directly (the counter-based generator builds one index
    array per dimension).
    """
    return sampler(key, *args, (int(np.prod(shape)),)).reshape(shape)


def uniform(u: jnp.ndarray, bounds: tuple) -> jnp.ndarray:
    """Map ``u ~ U[0, 1)`` to ``U[lo, hi)``."""
    lo, hi = bounds
    return lo + u * (hi - lo)


def bernoulli(u: jnp.ndarray, p: Any) -> jnp.ndarray:
    """``u < p``: exactly never for ``p = 0``, always for ``p = 1``."""
    return u < p


def randint(u: jnp.ndarray, high: Any) -> jnp.ndarray:
    """An int uniform on ``0..high`` (``high`` may be traced; ``high < 0`` gives 0)."""
    high = jnp.maximum(high, 0)
    return jnp.minimum(jnp.floor(u * (high + 1)).astype(jnp.int32), high)


def is_scalar(value: Any) -> bool:
    """True for a number or 0-d array, False for a pair / sequence of values."""
    return not isinstance(value, (tuple, list)) and np.ndim(value) == 0


def symmetric_range(
    name: str, value: Any, *, fn: str, center: float = 0.0, minimum: float | None = None
) -> tuple[Any, Any]:
    """torchvision's range argument: a number ``v >= 0`` means ``[center - v, center + v]``.

    A pair ``(lo, hi)`` is used as given and must be ordered. With ``minimum`` the
    lower end of a range built from a number is clipped at ``minimum``.
    """
    if is_scalar(value):
        if is_concrete(value) and not float(value) >= 0:
            raise ValueError(f"{fn}: {name} as a single number must be >= 0, got {name}={value!r}")
        lo, hi = center - value, center + value
        if minimum is not None:
            lo = max(lo, minimum) if is_concrete(lo) else jnp.maximum(lo, minimum)
        return lo, hi
    return check_pair(name, value, fn=fn)


def check_range_within(name: str, pair: tuple[Any, Any], lo: float, hi: float, *, fn: str) -> None:
    """Raise ``ValueError`` unless both ends of ``pair`` lie in ``[lo, hi]``."""
    a, b = pair
    if is_concrete(a) and is_concrete(b) and not (lo <= min(a, b) and max(a, b) <= hi):
        raise ValueError(f"{fn}: {name} must lie within [{lo}, {hi}], got {name}={pair!r}")


def check_p(p: Any, *, fn: str) -> Any:
    """Validate an application probability ``p``; returns it (traced and outside
    ``[0, 1]``: NaN, which :func:`propagate_nan` turns into NaN images)."""
    return check_probability("p", p, fn=fn)


def propagate_nan(p: Any, out: jnp.ndarray) -> jnp.ndarray:
    """``out``, or NaN everywhere when the probability ``p`` is NaN: an invalid traced
    ``p`` must not read as "never apply". Integer images cannot hold NaN and pass as
    they are; a concrete ``p`` was checked at call time."""
    if is_concrete(p) or not jnp.issubdtype(out.dtype, jnp.floating):
        return out
    return jnp.where(jnp.isnan(p), jnp.asarray(jnp.nan, out.dtype), out)


def box_candidates(
    u_area: jnp.ndarray, u_ratio: jnp.ndarray, area: float, scale: tuple, ratio: tuple
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """torchvision's candidate boxes: sizes ``(round(sqrt(t*r)), round(sqrt(t/r)))``.

    ``t = area * U(scale)`` and ``log r ~ U(log ratio)``, one candidate per entry of
    ``u_area`` / ``u_ratio``. Returns two int arrays; the caller decides which is the
    width and which the height.
    """
    target = area * uniform(u_area, scale)
    aspect = jnp.exp(uniform(u_ratio, (jnp.log(ratio[0]), jnp.log(ratio[1]))))
    along = jnp.round(jnp.sqrt(target * aspect)).astype(jnp.int32)
    across = jnp.round(jnp.sqrt(target / aspect)).astype(jnp.int32)
    return along, across


def first_valid(valid: jnp.ndarray, *candidates: jnp.ndarray) -> tuple:
    """``(found, c[i], ...)`` for the first ``i`` with ``valid[i]`` (``c[0]`` if none)."""
    index = jnp.argmax(valid)
    return (jnp.any(valid), *(c[index] for c in candidates))
