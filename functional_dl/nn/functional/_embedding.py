"""Embedding lookup ``table[ids]`` and its backward (a scatter-add into the table).

``embedding`` is a ``jax.custom_jvp`` of ``table``: the tangent ``dy = dtable[ids]`` is
linear; reverse mode transposes it into the scatter-add :func:`embedding_backward`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_floating, check_ndim
from ._utils import register_grad

__all__ = ["embedding", "embedding_backward"]


def _check(ids: Any, table: Any) -> None:
    check_ndim("table", table, 2, fn="embedding")
    check_floating("table", table, fn="embedding")
    dtype = jnp.result_type(ids)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"embedding: ids must be an integer array, got ids.dtype={dtype}")


@jax.custom_jvp
def _lookup(ids: Any, table: Any) -> Any:
    return jnp.take(table, ids, axis=0, mode="fill")


@_lookup.defjvp
def _lookup_jvp(primals, tangents):
    """``dy = dtable[ids]`` (rows of ids out of range get no tangent)."""
    ids, table = primals
    return _lookup(ids, table), jnp.take(tangents[1], ids, axis=0, mode="fill", fill_value=0)


def embedding(ids: Any, table: Any) -> Any:
    """Rows of ``table`` selected by integer ``ids``: ``y[..., :] = table[ids[...], :]``.

    Args:
      ids: integer array ``[...]`` with values in ``[0, num_embeddings)``.
      table: ``[num_embeddings, embedding_dim]``.

    Returns:
      ``[..., embedding_dim]`` in ``table``'s dtype. Ids outside
      ``[-num_embeddings, num_embeddings)`` give NaN rows (PyTorch raises; under ``jit``
      nothing can be raised), negative ids count from the end.

    PyTorch: ``torch.nn.functional.embedding(ids, table)``.

    Example:
      >>> embedding(jnp.array([2, 0]), jnp.eye(3))  # rows 2 and 0
      Array([[0., 0., 1.],
             [1., 0., 0.]], dtype=float32)
    """
    ids, table = as_arrays(ids, table)
    _check(ids, table)
    return _lookup(jnp.asarray(ids), table)


def embedding_backward(ids: Any, table: Any, g: Any) -> Any:
    """Vjp of :func:`embedding` w.r.t. ``table``: scatter-add the output gradient rows.

    .. math:: dT_r = \\sum_{i:\\, ids_i = r} g_i
    """
    _check(ids, table)
    rows = jnp.reshape(g, (-1, table.shape[1])).astype(table.dtype)
    return jnp.zeros_like(table).at[jnp.reshape(ids, (-1,))].add(rows, mode="drop")


def _examples():
    rng = np.random.default_rng(3)
    return [(np.array([[0, 3, 3], [1, 0, 4]]), rng.standard_normal((5, 3)))]


register_grad(
    "embedding",
    forward=lambda ids, table: jnp.take(table, ids, axis=0, mode="fill"),
    backward=embedding_backward,
    examples=_examples,
    argnums=(1,),
    public=embedding,
)
