"""The layer protocol and the combinators that thread shapes, keys and state.

A layer is a pair of pure functions::

    params, state = layer.init(key, input_shape)
    y, state = layer.apply(params, state, x, *, key=None, train=False)

``params`` and ``state`` are pytrees (dicts with readable string keys; ``state`` is
``{}`` for layers without state). ``key`` is only needed by layers that are random in
training (dropout); such a layer raises ``ValueError`` when ``train=True`` and
``key is None``. With ``train=False`` every layer returns its ``state`` unchanged.

A layer may also carry its hand-derived backward pass::

    param_grads, dx = layer.backward(params, state, x, g, *, key=None, train=False)

the vector-Jacobian product of ``apply`` at input ``x`` for output cotangent ``g``
(``param_grads`` has the structure of ``params``). ``Sequential`` and ``Residual``
chain their children's backward passes (see :mod:`functional_dl.nn.backprop`).

This module also holds the helpers every layer file shares: :func:`stateless` (a layer
from a forward and a backward), the parameter-naming :func:`named_grads`, and PyTorch's
default initializers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import init as initializers

__all__ = [
    "Layer",
    "output_shape",
    "backward_of",
    "stateless",
    "named_grads",
    "no_params",
    "channels",
    "fan_in_uniform",
    "default_weight_init",
    "affine_init",
    "Init",
]


class Layer(NamedTuple):
    """A layer: ``init(key, input_shape) -> (params, state)`` and
    ``apply(params, state, x, *, key=None, train=False) -> (y, state)``.

    ``name`` is used for readable parameter keys inside :func:`Sequential`;
    ``backward`` (optional) is the hand-derived
    ``backward(params, state, x, g, *, key=None, train=False) -> (param_grads, dx)``;
    ``layers`` are the children of a combinator, keyed as in its params (for summaries).
    """

    init: Callable[..., tuple[Any, Any]]
    apply: Callable[..., tuple[Any, Any]]
    name: str = "layer"
    backward: Callable[..., tuple[Any, Any]] | None = None
    layers: dict[str, Layer] | None = None


def output_shape(
    layer: Layer, params: Any, state: Any, input_shape: Sequence[int], dtype: Any = jnp.float32
) -> tuple[int, ...]:
    """Shape of ``layer.apply`` on an input of ``input_shape``, computed abstractly."""
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    return tuple(_abstract_output(layer, params, state, x).shape)


def backward_of(layer: Layer) -> Callable[..., tuple[Any, Any]]:
    """``layer.backward``; raises ``ValueError`` for a layer without one."""
    if layer.backward is None:
        raise ValueError(f"layer {layer.name!r} has no hand-derived backward pass")
    return layer.backward


def _abstract_output(layer: Layer, params: Any, state: Any, x: Any) -> Any:
    """``layer.apply``'s output as a ``jax.ShapeDtypeStruct`` (no FLOPs)."""
    y, _ = jax.eval_shape(lambda p, s, x: layer.apply(p, s, x, train=False), params, state, x)
    return y


Init = Callable[..., Any]


def stateless(name: str, init: Callable, forward: Callable, backward: Callable) -> Layer:
    """A :class:`Layer` without state from ``forward(params, x, key, train) -> y`` and
    ``backward(params, x, g, key, train) -> (param_grads, dx)``."""

    def apply(params, state, x, *, key=None, train=False):
        return forward(params, x, key, train), state

    def bwd(params, state, x, g, *, key=None, train=False):
        return backward(params, x, g, key, train)

    return Layer(init, apply, name, bwd)


def named_grads(params: dict, **grads: Any) -> dict:
    """The gradients of ``params``' keys only (absent optional parameters stay absent)."""
    return {k: grads[k] for k in params}


def fan_in_uniform(key: Any, shape: tuple[int, ...], fan_in: int, dtype: Any) -> Any:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default bias init of linear/conv."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return initializers.uniform(key, shape, dtype, a=-bound, b=bound)


def default_weight_init(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """PyTorch's ``kaiming_uniform_(w, a=sqrt(5))``: ``U(+-1/sqrt(fan_in))``."""
    return initializers.kaiming_uniform(key, shape, dtype, a=math.sqrt(5.0))


def no_params(key: Any, input_shape: Any) -> tuple[dict, dict]:
    """``init`` of a layer without parameters or state."""
    return {}, {}


def channels(fn: str, input_shape: Any, groups: int = 1) -> int:
    """``C`` of ``input_shape = [N, ..., C]``, which ``groups`` must divide."""
    if len(input_shape) < 2 or input_shape[-1] % groups:
        raise ValueError(
            f"{fn}: input_shape must be [N, ..., C] with C divisible by "
            f"groups={groups}, got input_shape={tuple(input_shape)}"
        )
    return int(input_shape[-1])


def affine_init(shape_fn: Callable, weight: bool, bias: bool, dtype: Any) -> Callable:
    """``init`` of a normalisation layer: ``weight`` ones and ``bias`` zeros of
    ``shape_fn(input_shape)``, no state."""

    def init(key, input_shape):
        shape = shape_fn(tuple(input_shape))
        params = {}
        if weight:
            params["weight"] = initializers.ones(key, shape, dtype)
        if bias:
            params["bias"] = initializers.zeros(key, shape, dtype)
        return params, {}

    return init
