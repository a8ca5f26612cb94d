"""Per-sample randomness: one row of uniforms per image, ranges, box sampling, ``compose``.

Every random op draws all the parameters of a sample from one row of ``U[0, 1)``
numbers: ``jax.random.uniform(key, (N, k))`` for a batch (row ``i`` belongs to image
``i``), ``(k,)`` for a single image. One draw per op keeps the compiled program small;
the parameters are then derived with the helpers below (``uniform``, ``randint``,
``bernoulli``).

``compose`` may run a pipeline of per-sample ops on chunks of the batch (so that the
intermediate images of a chunk stay in cache). Inside a chunk the ops still draw the
rows of the whole batch and keep their own: a trace-time *sample window* ``(total,
offset)``, carried into every jitted kernel as arguments by :func:`windowed_jit`,
tells :func:`per_sample` which rows those are. The draws are the same, so the result is
that of the whole batch up to float rounding (the compiler fuses a chunk differently).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_pair, check_probability, is_concrete

TRIES = 10  # torchvision's number of attempts for crop / erase boxes


# (total images, offset of the current chunk) while compose traces one chunk, else None
_WINDOW: contextvars.ContextVar = contextvars.ContextVar("augment_sample_window", default=None)


@contextlib.contextmanager
def sample_window(total: int | None, offset: Any) -> Iterator[None]:
    """Trace-time context: the images seen are rows ``offset + [0, n)`` of ``total``."""
    token = _WINDOW.set(None if total is None else (total, offset))
    try:
        yield
    finally:
        _WINDOW.reset(token)


def windowed_jit(fun: Callable, *, static: tuple[str, ...] = ()) -> Callable:
    """``jax.jit(fun, static_argnames=static)`` that also passes the current sample
    window as arguments, so that a kernel traced inside a chunk of :func:`compose` is
    compiled (and cached) for that window, not reused from a whole-batch trace."""

    def inner(
        *args: Any, _window_total: int | None = None, _window_offset: Any = None, **kwargs: Any
    ) -> Any:
        with sample_window(_window_total, _window_offset):
            return fun(*args, **kwargs)

    jitted = jax.jit(inner, static_argnames=(*static, "_window_total"))

    @functools.wraps(fun)
    def call(*args: Any, **kwargs: Any) -> Any:
        window = _WINDOW.get()
        if window is None:
            return jitted(*args, **kwargs)
        return jitted(*args, _window_total=window[0], _window_offset=window[1], **kwargs)

    return call


def batch_draw(sampler: Callable, key: Any, shape: tuple[int, ...], *args: Any) -> jnp.ndarray:
    """:func:`flat_draw` of a batch ``shape = (N, ...)``; inside a sample window, the
    rows of this chunk out of the draw for the whole batch."""
    window = _WINDOW.get()
    if window is None:
        return flat_draw(sampler, key, shape, *args)
    total, offset = window
    rows = flat_draw(sampler, key, (total, *shape[1:]), *args)
    return jax.lax.dynamic_slice_in_dim(rows, offset, shape[0])


def per_sample(
    fn: Callable,
    key: Any,
    images: jnp.ndarray,
    num_uniforms: int,
    *batched: Any,
    chunk_elements: int | None = None,
) -> Any:
    """``fn(u_i, image_i, *row_i)`` for every image with its own uniforms ``u_i``.

    ``u_i`` holds ``num_uniforms`` numbers in ``[0, 1)`` drawn from ``key``. A single
    image ``[H, W, C]`` is passed as it is; a batch ``[N, H, W, C]`` is mapped with
    ``jax.vmap``, together with the leading axis of every array in ``batched``.

    ``chunk_elements``: for an op with many full-size intermediates, map the batch in
    chunks of at most this many elements (``jax.lax.map`` over ``jax.vmap``'d chunks of
    a number of images that divides ``N``), so that the intermediates of one chunk stay
    in cache instead of each filling a fresh buffer as large as the whole batch. The
    result is the same; only the schedule changes.
    """
    if images.ndim == 3:
        return fn(flat_draw(jax.random.uniform, key, (num_uniforms,)), images, *batched)
    n = images.shape[0]
    u = batch_draw(jax.random.uniform, key, (n, num_uniforms))
    if _WINDOW.get() is not None:  # already a chunk of compose
        chunk_elements = None
    size = chunk_size(n, math.prod(images.shape[1:]), chunk_elements)
    if size < n:
        return jax.lax.map(lambda args: fn(*args), (u, images, *batched), batch_size=size)
    return jax.vmap(fn)(u, images, *batched)


def chunk_size(n: int, per_image: int, chunk_elements: int | None) -> int:
    """The largest divisor of ``n`` whose images hold at most ``chunk_elements`` (at
    least 1); ``n`` when ``chunk_elements`` is None."""
    if chunk_elements is None:
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
    if is_concrete(a) and is_concrete(b) and not (lo <= float(a) and float(b) <= hi):
        raise ValueError(f"{fn}: {name} must lie within [{lo}, {hi}], got {name}={pair!r}")


def check_p(p: Any, *, fn: str) -> None:
    """Validate an application probability ``p``."""
    check_probability("p", p, fn=fn)


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


# Public per-sample ops -> ``gain(bound keywords)``: 0 where the op must see the whole
# batch, 1 where it may run on chunks (image ``i`` of the output depends only on image
# ``i`` and row ``i`` of the draws), 2 where it also gains from it (many full-size
# intermediates, as color_jitter). Ops whose big fusions lose their threads inside a
# loop on CPU (rotation, affine, blur: 3x slower in chunks) are not registered.
_CHUNKABLE: dict[Callable, Callable[[dict], int]] = {}

# Elements per image chunk (about 4 MiB of float32).
CHUNK_ELEMENTS = 1 << 20


def register_chunkable(fn: Callable, gain: Callable[[dict], int] = lambda kw: 1) -> None:
    """Declare a public op per-sample, with its ``gain`` from chunks (see above)."""
    _CHUNKABLE[fn] = gain


def _chunk_gain(aug: Callable) -> int:
    """The gain of a registered op or of a ``functools.partial`` of one binding
    keywords only; 0 for anything else."""
    func, keywords = aug, {}
    if isinstance(aug, functools.partial):
        if aug.args:
            return 0
        func, keywords = aug.func, aug.keywords
    try:
        gain = _CHUNKABLE.get(func)
    except TypeError:  # an unhashable callable
        return 0
    return 0 if gain is None else int(gain(keywords))


def compose(*augmentations: Callable) -> Callable:
    """Chain random augmentations into one ``augment(key, images)``.

    Each augmentation is called as ``aug(key_i, images)`` with its own key, split from
    ``key``: ``keys = jax.random.split(key, len(augmentations))``. Bind hyperparameters
    with ``functools.partial`` (or a lambda); deterministic ops are wrapped as
    ``lambda key, x: center_crop(x, 24)``.

    When every augmentation is a per-sample op that runs well on part of a batch
    (``random_resized_crop``, ``random_horizontal_flip``, ``random_grayscale``,
    ``random_erasing`` with a fill value, ``color_jitter``; bare or as a ``partial``
    binding keywords), at least one of them is a ``color_jitter`` of two or more steps,
    and the images are large, the batch runs through the whole chain in chunks of a
    few images (``jax.lax.map``). Each op still draws the parameters of its own rows of
    the whole batch, so the output is the unchunked chain's (up to float rounding, which
    can move a uint8 value by one); the intermediate images
    of a chunk stay in cache (about 1.5x faster for the usual crop, flip, jitter,
    erasing pipeline at 224x224 on CPU). Other chains keep the whole batch together.

    PyTorch: ``torchvision.transforms.v2.Compose([...])``, which draws from a global
    generator instead of a key.

    Args:
      *augmentations: callables ``(key, images) -> images``.

    Returns:
      ``augment(key, images) -> images``, applying them in order.

    Example:
      >>> from functools import partial
      >>> aug = compose(partial(random_resized_crop, size=24),
      ...               random_horizontal_flip,
      ...               partial(color_jitter, brightness=0.4))
      >>> out = jax.jit(aug)(jax.random.key(0), images)
    """
    for i, aug in enumerate(augmentations):
        if not callable(aug):
            raise TypeError(f"compose: augmentations[{i}] must be callable, got {aug!r}")
    gains = [_chunk_gain(a) for a in augmentations]
    chunkable = bool(gains) and min(gains) >= 1 and max(gains) >= 2

    def chain(keys: Any, images: Any) -> Any:
        for i, aug in enumerate(augmentations):  # (indexing: traced keys do not iterate)
            images = aug(keys[i], images)
        return images

    def augment(key: Any, images: Any) -> Any:
        """Apply the composed augmentations in order, each with its own key."""
        if not augmentations:
            return images
        keys = jax.random.split(key, len(augmentations))
        size = _compose_chunk(chain, keys, images) if chunkable else None
        if size is None:
            return chain(keys, images)
        n = images.shape[0]

        def one_chunk(args: tuple) -> Any:
            offset, chunk = args
            with sample_window(n, offset):
                return chain(keys, chunk)

        chunks = jnp.reshape(images, (n // size, size, *images.shape[1:]))
        offsets = jnp.arange(0, n, size, dtype=jnp.int32)
        out = jax.lax.map(one_chunk, (offsets, chunks))
        return jnp.reshape(out, (n, *out.shape[2:]))

    return augment


def _compose_chunk(chain: Callable, keys: Any, images: Any) -> int | None:
    """Images per chunk for ``chain`` on this batch, or None to keep it whole."""
    if np.ndim(images) != 4 or _WINDOW.get() is not None:
        return None
    out = jax.eval_shape(chain, keys, images)
    per_image = max(math.prod(np.shape(images)[1:]), math.prod(out.shape[1:]))
    size = chunk_size(np.shape(images)[0], per_image, CHUNK_ELEMENTS)
    return size if size < np.shape(images)[0] else None
