"""Where :func:`fit` takes its batches from: arrays or any iterable of batches."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from .._checks import check_int
from ..data import batches, num_batches, num_examples

__all__ = ["BatchSource", "batch_source", "is_array_data"]


class BatchSource(NamedTuple):
    """``epoch(index, skip, key)`` iterates over the batches of epoch ``index`` after the
    first ``skip`` (arrays are shuffled with ``fold_in(key, index)``);
    ``steps_per_epoch`` is ``None`` when unknown (a generator)."""

    epoch: Callable[[int, int, Any], Iterator[Any]]
    steps_per_epoch: int | None


def is_array_data(data: Any) -> bool:
    """``(inputs, targets)`` (or a dict) of arrays with examples on the leading axis."""
    if not isinstance(data, tuple | dict):
        return False
    leaves = jax.tree_util.tree_leaves(data)
    return bool(leaves) and all(isinstance(a, np.ndarray | jax.Array) for a in leaves)


def batch_source(data: Any, batch_size: Any, drop_last: bool) -> BatchSource:
    """The :class:`BatchSource` of ``fit``'s ``train_data``.

    Arrays are shuffled each epoch with ``fold_in(key, epoch)`` into batches of
    ``batch_size``; a callable is called as ``data(epoch)`` for that epoch's iterable
    (the user's own sampler, seeded by the epoch); a re-iterable (a list of batches, a
    data-loader object) is iterated again each epoch; an iterator (a generator) is one
    single epoch, read until it ends.
    """
    if is_array_data(data):
        check_int("batch_size", batch_size, minimum=1, fn="fit")
        n = num_examples(data, fn="fit: train_data")
        leaves, treedef = jax.tree_util.tree_flatten(data)
        leaves = [np.asarray(a) for a in leaves]

        def epoch(index: int, skip: int, key: Any) -> Iterator[Any]:
            chunks = batches(
                jax.random.fold_in(key, index),
                *leaves,
                batch_size=batch_size,
                drop_last=drop_last,
                skip=skip,
            )
            return (jax.tree_util.tree_unflatten(treedef, chunk) for chunk in chunks)

        return BatchSource(epoch, num_batches(n, batch_size, drop_last=drop_last))
    if batch_size is not None:
        raise ValueError(
            "fit: batch_size applies to (inputs, targets) arrays; train_data is an "
            f"iterable of batches ({type(data).__name__}), so leave batch_size=None"
        )
    if callable(data):
        sampler: Callable[[int], Any] = data
        return BatchSource(
            lambda index, skip, key: itertools.islice(iter(sampler(index)), skip, None), None
        )
    if not hasattr(data, "__iter__"):
        raise TypeError(
            "fit: train_data must be (inputs, targets) arrays, an iterable of batches or "
            f"a function epoch -> iterable of batches, got {type(data).__name__}"
        )
    if iter(data) is data:  # an iterator: read once, as one long epoch

        def once(index: int, skip: int, key: Any) -> Iterator[Any]:
            return itertools.islice(data, skip, None) if index == 0 else iter(())

        return BatchSource(once, None)
    steps = len(data) if hasattr(data, "__len__") else None
    return BatchSource(lambda index, skip, key: itertools.islice(iter(data), skip, None), steps)
