"""``compose``: chain random augmentations, running per-sample chains in chunks of images.

A chain of per-sample ops whose intermediates are large (``color_jitter`` of several
steps on 224x224 images) runs faster when a few images at a time go through the whole
chain, so that their intermediates stay in cache. Chunking must not change the draws:
compose passes each op the :class:`~._sampling.Window` of its chunk (``_window=``, a
private keyword of the ops in :data:`CHUNKABLE`), and the op keeps the rows of that
chunk out of the draws for the whole batch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _sampling
from ._color import color_jitter, random_grayscale
from ._erase import random_erasing
from ._geometry import random_horizontal_flip, random_resized_crop
from ._sampling import Window, chunk_size


def _jitter_gain(keywords: dict) -> int:
    """Chunks pay off from two enabled steps (each a full-size intermediate)."""

    def enabled(v: Any) -> bool:
        return not (v is None or (isinstance(v, (int, float)) and v == 0))

    steps = sum(enabled(keywords.get(k)) for k in ("brightness", "contrast", "saturation", "hue"))
    return 2 if steps >= 2 else 1


# Per-sample ops that take a ``_window`` keyword -> ``gain(bound keywords)``: 0 where the
# op must see the whole batch, 1 where it may run on chunks (image ``i`` of the output
# depends only on image ``i`` and row ``i`` of the draws), 2 where it also gains from it
# (many full-size intermediates, as color_jitter). Ops whose big fusions lose their
# threads inside a loop on CPU (rotation, affine, blur: 3x slower in chunks) are absent.
CHUNKABLE: dict[Callable, Callable[[dict], int]] = {
    random_horizontal_flip: lambda kw: 1,
    random_resized_crop: lambda kw: 1,
    random_grayscale: lambda kw: 1,
    color_jitter: _jitter_gain,
    # per-pixel noise would be drawn for the whole batch in every chunk: keep it whole
    random_erasing: lambda kw: int(kw.get("value") != "random"),
}


def _chunk_gain(aug: Callable) -> int:
    """The gain of an op of :data:`CHUNKABLE` or of a ``functools.partial`` of one
    binding keywords only; 0 for anything else."""
    func, keywords = aug, {}
    if isinstance(aug, functools.partial):
        if aug.args:
            return 0
        func, keywords = aug.func, aug.keywords
    try:
        gain = CHUNKABLE.get(func)
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
      >>> images = jnp.ones((4, 32, 32, 3))
      >>> jax.jit(aug)(jax.random.key(0), images).shape
      (4, 24, 24, 3)
    """
    for i, aug in enumerate(augmentations):
        if not callable(aug):
            raise TypeError(f"compose: augmentations[{i}] must be callable, got {aug!r}")
    gains = [_chunk_gain(a) for a in augmentations]
    chunkable = bool(gains) and min(gains) >= 1 and max(gains) >= 2

    def chain(keys: Any, images: Any, window: Window | None = None) -> Any:
        """Every op on ``images``; with a ``window`` (chunks: all ops are chunkable)
        each op also gets the rows of the chunk."""
        extra = {} if window is None else {"_window": window}
        for i, aug in enumerate(augmentations):  # (indexing: traced keys do not iterate)
            images = aug(keys[i], images, **extra)
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
            return chain(keys, chunk, Window(n, offset))

        chunks = jnp.reshape(images, (n // size, size, *images.shape[1:]))
        offsets = jnp.arange(0, n, size, dtype=jnp.int32)
        out = jax.lax.map(one_chunk, (offsets, chunks))
        return jnp.reshape(out, (n, *out.shape[2:]))

    return augment


def _compose_chunk(chain: Callable, keys: Any, images: Any) -> int | None:
    """Images per chunk for ``chain`` on this batch, or None to keep it whole."""
    if np.ndim(images) != 4:
        return None
    out = jax.eval_shape(chain, keys, images)
    per_image = max(math.prod(np.shape(images)[1:]), math.prod(out.shape[1:]))
    size = chunk_size(np.shape(images)[0], per_image, _sampling.CHUNK_ELEMENTS)
    return size if size < np.shape(images)[0] else None
