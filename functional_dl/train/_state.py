"""The training state: one pytree holding everything a step reads and writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..nn import Layer
from ._parallel import replicate
from ._sharding import is_sharding_mesh, place_state

__all__ = ["TrainState", "create_train_state"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainState:
    """Everything training reads and writes, as one pytree (jit-, donate- and save-able).

    Fields (keyword-only)::

        params       # pytree: trainable parameters
        model_state  # pytree: non-trainable state (BatchNorm running statistics)
        opt_state    # pytree: optimizer state (optax)
        step         # int32 scalar: number of updates applied so far
        key          # PRNG key; update k draws its randomness from fold_in(key, k)

    Because the per-step key is derived from ``(key, step)``, a state restored from a
    checkpoint continues exactly like an uninterrupted run.

    Flax equivalent: ``flax.training.train_state.TrainState`` (which holds the apply
    function and optimizer too; here they stay outside, so the state is plain data).

    Example:
        >>> model = fdl.nn.Sequential(fdl.nn.Flatten(), fdl.nn.Linear(2))
        >>> state = create_train_state(jax.random.key(0), model, fdl.optim.adam(1e-3),
        ...                            (1, 4, 4, 1))
        >>> int(state.replace(step=state.step + 1).step)
        1
    """

    params: Any
    model_state: Any
    opt_state: Any
    step: Any
    key: Any

    def replace(self, **changes: Any) -> TrainState:
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)


jax.tree_util.register_dataclass(
    TrainState,
    data_fields=["params", "model_state", "opt_state", "step", "key"],
    meta_fields=[],
)


def _input_arg(model: Layer, input_shape: Any) -> Any:
    """What ``model.init`` receives: a combinator (``Sequential``) gets a
    ``jax.ShapeDtypeStruct`` as it is (its dtype reaches an ``Embedding``), any other layer
    the shape tuple."""
    if isinstance(input_shape, jax.ShapeDtypeStruct):
        return input_shape if model.layers else tuple(input_shape.shape)
    try:
        return tuple(int(d) for d in input_shape)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "create_train_state: input_shape must be a shape tuple or a jax.ShapeDtypeStruct,"
            f" got input_shape={input_shape!r}"
        ) from exc


def create_train_state(
    key: Any,
    model: Layer,
    optimizer: Any,
    input_shape: Sequence[int] | jax.ShapeDtypeStruct,
    *,
    mesh: Any = None,
    fsdp: bool = False,
) -> TrainState:
    """Initialise the model and the optimizer into a :class:`TrainState` at step 0.

    Args:
        key: a ``jax.random`` key; split into the initialisation key and the key
            that drives training randomness (dropout).
        model: a :class:`functional_dl.nn.Layer`.
        optimizer: an ``optax.GradientTransformation`` (e.g. ``fdl.optim.adam(1e-3)``).
        input_shape: shape of one input batch, e.g. ``(1, 8, 8, 1)`` (float32), or a
            ``jax.ShapeDtypeStruct`` for another dtype, e.g.
            ``jax.ShapeDtypeStruct((1, 64), jnp.int32)`` for token ids.
        mesh: place the state on a device mesh: a :func:`make_mesh` mesh shards it
            (tensor-parallel Transformer weights over ``model``, and with ``fsdp`` every
            large leaf over ``data``); a :func:`data_parallel_mesh` replicates it.
        fsdp: shard parameters and optimizer state over ``data`` (ZeRO-3 style; needs a
            :func:`make_mesh` mesh).

    Returns:
        ``TrainState(params, model_state, opt_state, step=0, key)``.

    Example:
        >>> model = fdl.nn.Sequential(fdl.nn.Flatten(), fdl.nn.Linear(2))
        >>> state = create_train_state(jax.random.key(0), model, fdl.optim.sgd(0.1), (1, 3))
        >>> state.params["1_linear"]["weight"].shape, int(state.step)
        ((3, 2), 0)

        A model that starts with an ``Embedding`` takes integer token ids:

        >>> lm = fdl.nn.Sequential(fdl.nn.Embedding(100, 8), fdl.nn.Linear(100))
        >>> ids = jax.ShapeDtypeStruct((1, 16), jnp.int32)
        >>> state = create_train_state(jax.random.key(0), lm, fdl.optim.sgd(0.1), ids)
        >>> state.params["0_embedding"]["weight"].shape
        (100, 8)
    """
    if not isinstance(model, Layer):
        raise TypeError(f"create_train_state: model must be a Layer, got model={model!r}")
    if not hasattr(optimizer, "init") or not hasattr(optimizer, "update"):
        raise TypeError(
            "create_train_state: optimizer must be an optax GradientTransformation,"
            f" got optimizer={optimizer!r}"
        )
    if fsdp and not is_sharding_mesh(mesh):
        raise ValueError(
            "create_train_state: fsdp=True needs a mesh from fdl.train.make_mesh, "
            f"got mesh={mesh!r}"
        )
    init_key, train_key = jax.random.split(key)
    params, model_state = model.init(init_key, _input_arg(model, input_shape))
    state = TrainState(
        params=params,
        model_state=model_state,
        opt_state=optimizer.init(params),
        step=jnp.zeros((), jnp.int32),
        key=train_key,
    )
    if mesh is None:
        return state
    if is_sharding_mesh(mesh):
        return place_state(state, mesh, fsdp=fsdp)
    return replicate(state, mesh)
