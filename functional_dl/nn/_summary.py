"""A printable model summary: each layer's output shape and parameter count."""

from __future__ import annotations

import math
from typing import Any

import jax

from ._core import Layer, _abstract_output, input_spec

__all__ = ["summary"]


def _count(tree: Any) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def _rows(name: str, layer: Layer, params: Any, state: Any, x: Any, depth: int, out: list):
    y = _abstract_output(layer, params, state, x)
    out.append(("  " * depth + name, tuple(y.shape), _count(params)))
    if layer.layers:  # a combinator or model: its children in data-flow order, each fed
        # the previous output (a residual block lists norm, sub-layer, norm, sub-layer)
        for child_name, child in layer.layers.items():
            child_state = state.get(child_name, {}) if isinstance(state, dict) else {}
            x = _rows(child_name, child, params[child_name], child_state, x, depth + 1, out)
    return y


def summary(layer: Layer, input_shape: Any, *, key: Any = None) -> str:
    """A table of every layer's output shape and parameter count (no FLOPs are spent).

    Args:
      layer: any :class:`Layer`; the children of a :func:`Sequential`, of a
        :func:`TransformerLM` and of its blocks get one row each.
      input_shape: a shape tuple (float32 input) or a ``jax.ShapeDtypeStruct``.
      key: initialization key (only shapes are computed; default ``key(0)``).

    Returns:
      the table as a string (``print`` it). Like ``torchinfo.summary`` / Keras'
      ``model.summary()``.

    Example:
      >>> model = fdl.nn.Sequential(fdl.nn.Linear(16), fdl.nn.ReLU(), fdl.nn.Linear(3))
      >>> print(summary(model, (32, 8)))
      layer         output shape              params
      ----------------------------------------------
      sequential    (32, 3)                      195
        0_linear    (32, 16)                     144
        1_relu      (32, 16)                       0
        2_linear    (32, 3)                       51
      ----------------------------------------------
      input (32, 8), total parameters 195
    """
    key = jax.random.key(0) if key is None else key
    x = input_spec(input_shape)
    shape = x.shape
    # a combinator gets the dtype too (an Embedding-first Sequential)
    params, state = jax.eval_shape(lambda k: layer.init(k, x if layer.layers else shape), key)
    rows: list[tuple[str, tuple, int]] = []
    _rows(layer.name, layer, params, state, x, 0, rows)
    width = max(12, *(len(r[0]) for r in rows))
    lines = [f"{'layer':<{width}}  {'output shape':<20}  {'params':>10}", "-" * (width + 34)]
    lines += [f"{n:<{width}}  {str(s):<20}  {c:>10,}" for n, s, c in rows]
    lines += ["-" * (width + 34), f"input {shape}, total parameters {rows[0][2]:,}"]
    return "\n".join(lines)
