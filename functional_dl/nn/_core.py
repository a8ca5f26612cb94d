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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Layer", "Sequential", "Residual", "output_shape"]


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


def _abstract_output(layer: Layer, params: Any, state: Any, x: Any) -> Any:
    """``layer.apply``'s output as a ``jax.ShapeDtypeStruct`` (no FLOPs)."""
    y, _ = jax.eval_shape(lambda p, s, x: layer.apply(p, s, x, train=False), params, state, x)
    return y


def _split(key: Any, n: int) -> list[Any]:
    if key is None:
        return [None] * n
    return list(jax.random.split(key, n))


def Sequential(*layers: Layer) -> Layer:
    """Compose layers left to right: ``y = layer_n(... layer_1(x))``.

    Parameters and state are dicts keyed ``"{index}_{name}"`` (``"0_linear"``).
    ``init`` splits its key into one key per layer and infers each layer's input
    shape from the previous layer's output (``jax.eval_shape``, no FLOPs); its
    ``input_shape`` may be a ``jax.ShapeDtypeStruct`` when the input is not float32
    (token ids). ``apply`` splits ``key`` (when given) the same way.

    PyTorch: ``torch.nn.Sequential``.
    """
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"Sequential: every argument must be a Layer, got {layers!r}")
    names = [f"{i}_{layer.name}" for i, layer in enumerate(layers)]

    def init(key, input_shape):
        # input_shape may be a jax.ShapeDtypeStruct to give a non-float input (token ids)
        params, state = {}, {}
        x = jax.ShapeDtypeStruct(
            tuple(getattr(input_shape, "shape", input_shape)),
            getattr(input_shape, "dtype", jnp.float32),
        )
        for name, layer, k in zip(names, layers, _split(key, len(layers)), strict=True):
            params[name], state[name] = layer.init(k, tuple(x.shape))
            x = _abstract_output(layer, params[name], state[name], x)
        return params, state

    def apply(params, state, x, *, key=None, train=False):
        new_state = {}
        for name, layer, k in zip(names, layers, _split(key, len(layers)), strict=True):
            x, new_state[name] = layer.apply(params[name], state[name], x, key=k, train=train)
        return x, new_state

    def backward(params, state, x, g, *, key=None, train=False):
        # forward pass recording every layer's input, then the chain rule backwards
        keys, inputs = _split(key, len(layers)), []
        for name, layer, k in zip(names, layers, keys, strict=True):
            inputs.append(x)
            x, _ = layer.apply(params[name], state[name], x, key=k, train=train)
        grads = {}
        for name, layer, k, xi in reversed(list(zip(names, layers, keys, inputs, strict=True))):
            grads[name], g = layer.backward(params[name], state[name], xi, g, key=k, train=train)
        return grads, g

    has_backward = all(layer.backward is not None for layer in layers)
    return Layer(
        init,
        apply,
        "sequential",
        backward if has_backward else None,
        dict(zip(names, layers, strict=True)),
    )


def Residual(layer: Layer) -> Layer:
    """Skip connection: ``y = x + layer(x)`` (the layer must preserve the shape)."""
    if not isinstance(layer, Layer):
        raise TypeError(f"Residual: layer must be a Layer, got {layer!r}")

    def init(key, input_shape):
        params, state = layer.init(key, input_shape)
        out = output_shape(layer, params, state, input_shape)
        if out != tuple(input_shape):
            raise ValueError(
                f"Residual: the wrapped layer must preserve the shape, got input_shape="
                f"{tuple(input_shape)} and output shape {out}"
            )
        return params, state

    def apply(params, state, x, *, key=None, train=False):
        y, state = layer.apply(params, state, x, key=key, train=train)
        return x + y, state

    def backward(params, state, x, g, *, key=None, train=False):
        grads, dx = layer.backward(params, state, x, g, key=key, train=train)
        return grads, g + dx

    has_backward = layer.backward is not None
    return Layer(init, apply, f"residual_{layer.name}", backward if has_backward else None)
