"""Combinators: :func:`Sequential` and :func:`Residual` thread shapes, keys and state."""

from __future__ import annotations

from typing import Any

import jax

from ._core import Layer, _abstract_output, backward_of, constructor, input_spec

__all__ = ["Sequential", "Residual"]


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

    Example:
      >>> model = Sequential(fdl.nn.Embedding(50, 8), fdl.nn.Linear(50))
      >>> ids = jax.ShapeDtypeStruct((4, 16), jnp.int32)
      >>> params, state = model.init(jax.random.key(0), ids)
      >>> model.apply(params, state, jnp.zeros((4, 16), jnp.int32))[0].shape
      (4, 16, 50)
    """
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"Sequential: every argument must be a Layer, got {layers!r}")
    names = [f"{i}_{layer.name}" for i, layer in enumerate(layers)]

    def init(key, input_shape):
        # input_shape may be a jax.ShapeDtypeStruct to give a non-float input (token ids)
        params, state = {}, {}
        x = input_spec(input_shape)
        for name, layer, k in zip(names, layers, _split(key, len(layers)), strict=True):
            # a combinator child gets the dtype too (an Embedding-first block)
            params[name], state[name] = layer.init(k, x if layer.layers else tuple(x.shape))
            try:
                x = _abstract_output(layer, params[name], state[name], x)
            except (TypeError, ValueError) as exc:
                if name != names[0] or isinstance(input_shape, jax.ShapeDtypeStruct):
                    raise
                raise type(exc)(
                    f"{exc} (Sequential: input_shape={tuple(x.shape)} is read as float32; "
                    f"for integer inputs such as token ids pass "
                    f"jax.ShapeDtypeStruct({tuple(x.shape)}, jnp.int32))"
                ) from exc
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
            grads[name], g = backward_of(layer)(
                params[name], state[name], xi, g, key=k, train=train
            )
        return grads, g

    has_backward = all(layer.backward is not None for layer in layers)
    return Layer(
        init,
        apply,
        "sequential",
        backward if has_backward else None,
        dict(zip(names, layers, strict=True)),
    )


@constructor()
def Residual(layer: Layer) -> Layer:
    """Skip connection: ``y = x + layer(x)`` (the layer must preserve the shape)."""
    if not isinstance(layer, Layer):
        raise TypeError(f"Residual: layer must be a Layer, got {layer!r}")

    def init(key, input_shape):
        x = input_spec(input_shape)
        params, state = layer.init(key, x if layer.layers else x.shape)
        out = tuple(_abstract_output(layer, params, state, x).shape)
        if out != x.shape:
            raise ValueError(
                f"Residual: the wrapped layer must preserve the shape, got input_shape="
                f"{x.shape} and output shape {out}"
            )
        return params, state

    def apply(params, state, x, *, key=None, train=False):
        y, state = layer.apply(params, state, x, key=key, train=train)
        return x + y, state

    def backward(params, state, x, g, *, key=None, train=False):
        grads, dx = backward_of(layer)(params, state, x, g, key=key, train=train)
        return grads, g + dx

    has_backward = layer.backward is not None
    return Layer(init, apply, f"residual_{layer.name}", backward if has_backward else None)
