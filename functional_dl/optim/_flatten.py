"""``flatten``: run any transformation on one contiguous buffer per dtype.

Why: every array that enters or leaves a jitted step costs a few microseconds of
dispatch and allocation, and XLA runs one kernel per output array. Adam over a pytree of
2,000 small leaves reads 8,000 arrays and writes 6,000 (parameters, gradients, both
moments) and spends its time on that bookkeeping, not on arithmetic. With the optimizer
state kept flat, a step reads the parameters and gradients and writes the parameters;
the moment updates are a handful of kernels on long buffers.

Splitting the flat update back into leaves needs each leaf's offset. As compile-time
constants they would make 2,000 different slicing kernels (minutes of compilation), so
they are stored in the state, ``group_size`` leaves per int32 vector: leaf ``i`` reads
entry ``i % group_size`` of vector ``i // group_size``, and XLA compiles at most
``group_size`` slicing kernels per leaf shape.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import check_int

__all__ = ["FlattenState", "flatten"]


class FlattenState(NamedTuple):
    """State of a transformation run on flat buffers."""

    inner: Any  # state of the wrapped transformation over {dtype name: flat buffer}
    offsets: tuple  # int32 vectors of group_size entries: where each leaf starts


def _groups(leaves: list) -> dict[str, list[int]]:
    """Leaf indices per dtype name, in leaf order."""
    groups: dict[str, list[int]] = {}
    for i, leaf in enumerate(leaves):
        groups.setdefault(jnp.dtype(jnp.result_type(leaf)).name, []).append(i)
    return groups


def _concat(leaves: list, groups: dict[str, list[int]]) -> dict[str, jax.Array]:
    return {name: jnp.concatenate([jnp.ravel(leaves[i]) for i in idx])
            for name, idx in groups.items()}


def flatten(
    inner: optax.GradientTransformation, *, group_size: int = 32
) -> optax.GradientTransformation:
    """Run ``inner`` on one contiguous buffer per dtype instead of leaf by leaf.

    The result is the same as ``inner`` for any elementwise transformation (every
    optimizer of ``fdl.optim``; not ones that look at leaf shapes or take a ``mask``
    matching the parameter tree). Faster for pytrees of many small leaves (hundreds of
    leaves of a few thousand elements or less); for a few large leaves it only adds
    copies. ``optax.flatten`` is the same idea with constant offsets (and one dtype).

    Args:
        inner: the transformation to wrap, e.g. ``fdl.optim.adam(1e-3)``.
        group_size: leaves per offsets vector in the state; bounds the number of
            distinct slicing kernels per leaf shape (compile time) against the number of
            offsets arrays passed per step (run time).

    Returns:
        An ``optax.GradientTransformation`` with ``FlattenState``; its updates have the
        structure, shapes and dtypes of the gradients.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.flatten(fdl.optim.adam(1e-3))
        >>> params = [jnp.zeros(3), jnp.zeros((2, 2))]
        >>> updates, state = opt.update([jnp.ones(3), jnp.ones((2, 2))], opt.init(params))
        >>> updates[1].shape
        (2, 2)
    """

    check_int("group_size", group_size, minimum=1, fn="flatten")

    def init(params):
        leaves = jax.tree.leaves(params)
        groups = _groups(leaves)
        offsets = [0] * len(leaves)
        for idx in groups.values():
            starts = np.cumsum([0] + [int(np.size(leaves[i])) for i in idx[:-1]])
            for i, start in zip(idx, starts, strict=True):
                offsets[i] = start
        flat = {name: jnp.zeros(sum(int(np.size(leaves[i])) for i in idx), name)
                for name, idx in groups.items()}
        chunks = [offsets[i:i + group_size] for i in range(0, len(offsets), group_size)]
        return FlattenState(inner.init(flat), tuple(jnp.asarray(c, jnp.int32) for c in chunks))

    def update(updates, state, params=None):
        leaves, treedef = jax.tree.flatten(updates)
        groups = _groups(leaves)
        flat_params = None if params is None else _concat(jax.tree.leaves(params), groups)
        flat, inner_state = inner.update(_concat(leaves, groups), state.inner, flat_params)
        out = [None] * len(leaves)
        for name, idx in groups.items():
            for i in idx:
                size, shape = int(np.size(leaves[i])), jnp.shape(leaves[i])
                start = state.offsets[i // group_size][i % group_size]
                out[i] = jax.lax.dynamic_slice(flat[name], (start,), (size,))
                out[i] = out[i].reshape(shape)
        return treedef.unflatten(out), FlattenState(inner_state, state.offsets)

    return optax.GradientTransformation(init, update)
