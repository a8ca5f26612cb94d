"""``flatten``: run any transformation on one contiguous buffer per dtype.

Why: every array that enters or leaves a jitted step costs a few microseconds of
dispatch and allocation, and XLA runs one kernel per output array. Adam over a pytree of
2,000 small leaves reads 8,000 arrays and writes 6,000 (parameters, gradients, both
moments) and spends its time on that bookkeeping, not on arithmetic. With the optimizer
state kept flat, a step reads the parameters and gradients and writes the parameters;
the moment updates are a handful of kernels on long buffers.

Splitting the flat update back into leaves needs each leaf's offset. As compile-time
constants they would make 2,000 different slicing kernels (minutes of compilation), so
they are stored in the state, ``group_size`` leaves per int32 vector: the ``k``-th packed
leaf reads entry ``k % group_size`` of vector ``k // group_size``, and XLA compiles at
most ``group_size`` slicing kernels per leaf shape.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import check_int

__all__ = ["FlattenState", "flatten"]


class FlattenState(NamedTuple):
    """State of a transformation run on flat buffers."""

    inner: Any  # state of the wrapped transformation over the buffers (see _buffers)
    offsets: tuple  # int32 vectors of group_size entries: where each packed leaf starts


def _layout(leaves: list, max_leaf_size: int) -> dict[str, list[int]]:
    """Buffer name -> indices of its leaves: small leaves packed per dtype, large alone."""
    layout: dict[str, list[int]] = {}
    for i, leaf in enumerate(leaves):
        if np.size(leaf) > max_leaf_size:
            layout[f"leaf{i}"] = [i]
        else:
            layout.setdefault(jnp.dtype(jnp.result_type(leaf)).name, []).append(i)
    return layout


def _buffers(leaves: list, layout: dict[str, list[int]]) -> dict[str, jax.Array]:
    """The leaves of each packed buffer concatenated; a large leaf as it is."""
    return {
        name: leaves[idx[0]]
        if name.startswith("leaf")
        else jnp.concatenate([jnp.ravel(leaves[i]) for i in idx])
        for name, idx in layout.items()
    }


def _packed(layout: dict[str, list[int]]) -> list[int]:
    """Indices of the packed leaves, in the order their offsets are stored."""
    return [i for name, idx in layout.items() if not name.startswith("leaf") for i in idx]


def flatten(
    inner: optax.GradientTransformation, *, max_leaf_size: int = 65536, group_size: int = 32
) -> optax.GradientTransformation:
    """Run ``inner`` on one contiguous buffer per dtype instead of leaf by leaf.

    Leaves of at most ``max_leaf_size`` elements are packed into one buffer per dtype;
    larger leaves stay buffers of their own (packing them would only add copies). The
    result is the same as ``inner`` for any elementwise transformation (every optimizer
    of ``fdl.optim``; not ones that look at leaf shapes or take a ``mask`` matching the
    parameter tree). Faster for pytrees of many small leaves (hundreds of leaves of a few
    thousand elements or less), with a faster compilation; the state is flat, so read
    moments through the wrapped transformation's state fields by buffer.
    ``optax.flatten`` is the same idea with compile-time offsets and one buffer.

    Args:
        inner: the transformation to wrap, e.g. ``fdl.optim.adam(1e-3)``.
        max_leaf_size: largest leaf (in elements) that is packed.
        group_size: packed leaves per offsets vector in the state; bounds the number of
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
    check_int("max_leaf_size", max_leaf_size, minimum=0, fn="flatten")
    check_int("group_size", group_size, minimum=1, fn="flatten")

    def init(params: Any) -> FlattenState:
        leaves = jax.tree.leaves(params)
        layout = _layout(leaves, max_leaf_size)
        offsets: list[int] = []
        for name, idx in layout.items():
            if not name.startswith("leaf"):
                offsets += np.cumsum([0] + [int(np.size(leaves[i])) for i in idx[:-1]]).tolist()
        chunks = [offsets[k : k + group_size] for k in range(0, len(offsets), group_size)]
        zeros = jax.tree.map(jnp.zeros_like, _buffers(leaves, layout))
        return FlattenState(inner.init(zeros), tuple(jnp.asarray(c, jnp.int32) for c in chunks))

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, FlattenState]:
        leaves, treedef = jax.tree.flatten(updates)
        layout = _layout(leaves, max_leaf_size)
        flat_params = None if params is None else _buffers(jax.tree.leaves(params), layout)
        flat_updates, inner_state = inner.update(_buffers(leaves, layout), state.inner, flat_params)
        flat = cast("dict[str, jax.Array]", flat_updates)
        out: list[Any] = [None] * len(leaves)
        for name, idx in layout.items():
            if name.startswith("leaf"):
                out[idx[0]] = flat[name]
        for k, i in enumerate(_packed(layout)):
            name = jnp.dtype(jnp.result_type(leaves[i])).name
            start = state.offsets[k // group_size][k % group_size]
            piece = jax.lax.dynamic_slice(flat[name], (start,), (int(np.size(leaves[i])),))
            out[i] = piece.reshape(jnp.shape(leaves[i]))
        return treedef.unflatten(out), FlattenState(inner_state, state.offsets)

    return optax.GradientTransformation(init, update)
