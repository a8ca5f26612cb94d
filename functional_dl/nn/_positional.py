"""Positional-encoding layers: learned absolute positions and the T5 relative bias."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._checks import check_int
from ._core import Layer, constructor
from .functional._positional import relative_position_bias
from .functional._utils import to_rank

__all__ = ["LearnedPositionalEmbedding", "RelativePositionBias"]


@constructor()
def LearnedPositionalEmbedding(max_length: int, *, stddev: float = 0.02) -> Layer:
    """Learned absolute positions: ``y = x + table[positions]``, table ``[max_length, D]``.

    ``init(key, input_shape)`` with ``input_shape = (..., L, D)`` draws the table from
    ``N(0, stddev^2)`` (GPT-2's 0.02). ``apply(params, state, x, *, positions=None)``
    adds ``table[positions]`` (default ``arange(L)``); ``L > max_length`` raises.
    """
    check_int("max_length", max_length, minimum=1, fn="LearnedPositionalEmbedding")

    def init(key, input_shape):
        table = stddev * jax.random.normal(key, (max_length, input_shape[-1]), jnp.float32)
        return {"table": table}, {}

    def apply(params, state, x, *, key=None, train=False, positions=None):
        if x.shape[-2] > max_length:
            raise ValueError(
                f"LearnedPositionalEmbedding: sequence length {x.shape[-2]} "
                f"(x.shape={x.shape}) exceeds max_length={max_length}"
            )
        positions = jnp.arange(x.shape[-2]) if positions is None else positions
        return x + to_rank(params["table"][positions].astype(x.dtype), x.ndim), state

    return Layer(init, apply, "learned_positional_embedding")


@constructor()
def RelativePositionBias(
    num_heads: int, *, num_buckets: int = 32, max_distance: int = 128, bidirectional: bool = True
) -> Layer:
    """T5 relative position bias as a layer: ``x`` = int ``[Lq, Lk]`` relative positions.

    ``init(key, input_shape)`` creates ``table: [num_buckets, num_heads]`` from
    ``N(0, 1)`` (HF T5's factor-1 init); ``apply(params, state, rel)`` returns the
    ``[num_heads, Lq, Lk]`` bias of :func:`relative_position_bias`.
    """
    check_int("num_heads", num_heads, minimum=1, fn="RelativePositionBias")

    def init(key, input_shape):
        return {"table": jax.random.normal(key, (num_buckets, num_heads), jnp.float32)}, {}

    def apply(params, state, x, *, key=None, train=False):
        return relative_position_bias(
            params["table"], x, bidirectional=bidirectional, max_distance=max_distance
        ), state

    return Layer(init, apply, "relative_position_bias")
