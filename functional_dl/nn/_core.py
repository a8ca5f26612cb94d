"""The layer protocol and the combinators that thread shapes, keys and state.

A layer is a pair of pure functions::

    params, state = layer.init(key, input_shape)
    y, state = layer.apply(params, state, x, *, key=None, train=False)

``params`` and ``state`` are pytrees (dicts with readable string keys; ``state`` is
``{}`` for layers without state). ``key`` is only needed by layers that are random in
training (dropout); such a layer raises ``ValueError`` when ``train=True`` and
``key is None``. With ``train=False`` every layer returns its ``state`` unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

__all__ = ["Layer", "Sequential", "Residual", "output_shape"]


class Layer(NamedTuple):
    """A layer: ``init(key, input_shape) -> (params, state)`` and
    ``apply(params, state, x, *, key=None, train=False) -> (y, state)``.

    ``name`` is used for readable parameter keys inside :func:`Sequential`.
    """

    init: Callable[..., tuple[Any, Any]]
    apply: Callable[..., tuple[Any, Any]]
    name: str = "layer"


def output_shape(layer: Layer, params: Any, state: Any, input_shape: Sequence[int],
                 dtype: Any = jnp.float32) -> tuple[int, ...]:
    """Shape of ``layer.apply`` on an input of ``input_shape``, computed abstractly."""
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    y, _ = jax.eval_shape(lambda p, s, x: layer.apply(p, s, x, train=False), params, state, x)
    return tuple(y.shape)


def _split(key: Any, n: int) -> list[Any]:
    if key is None:
        return [None] * n
    return list(jax.random.split(key, n))


def Sequential(*layers: Layer) -> Layer:
    """Compose layers left to right: ``y = layer_n(... layer_1(x))``.

    Parameters and state are dicts keyed ``"{index}_{name}"`` (``"0_linear"``).
    ``init`` splits its key into one key per layer and infers each layer's input
    shape from the previous layer's output (``jax.eval_shape``, no FLOPs); ``apply``
    splits ``key`` (when given) the same way.

    PyTorch: ``torch.nn.Sequential``.
    """
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"Sequential: every argument must be a Layer, got {layers!r}")
    names = [f"{i}_{layer.name}" for i, layer in enumerate(layers)]

    def init(key, input_shape):
        params, state = {}, {}
        shape = tuple(input_shape)
        for name, layer, k in zip(names, layers, _split(key, len(layers))):
            params[name], state[name] = layer.init(k, shape)
            shape = output_shape(layer, params[name], state[name], shape)
        return params, state

    def apply(params, state, x, *, key=None, train=False):
        new_state = {}
        for name, layer, k in zip(names, layers, _split(key, len(layers))):
            x, new_state[name] = layer.apply(params[name], state[name], x, key=k, train=train)
        return x, new_state

    return Layer(init, apply, "sequential")


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

    return Layer(init, apply, f"residual_{layer.name}")
