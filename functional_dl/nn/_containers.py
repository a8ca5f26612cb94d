"""Combinators: :func:`Sequential` and :func:`Residual` thread shapes, keys and state."""

from __future__ import annotations

from typing import Any

import jax

from ._core import (
    Layer,
    _abstract_output,
    backward_of,
    constructor,
    input_spec,
    no_params,
    stateless,
)

__all__ = ["Sequential", "Residual", "Identity"]


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
def Identity() -> Layer:
    """``y = x``: a placeholder layer without parameters. PyTorch: ``torch.nn.Identity``.

    Example:
      >>> y, _ = Identity().apply({}, {}, jnp.arange(3.0))
      >>> y
      Array([0., 1., 2.], dtype=float32)
    """
    return stateless("identity", no_params, lambda p, x, k, t: x, lambda p, x, g, k, t: ({}, g))


@constructor()
def Residual(layer: Layer, *, shortcut: Layer | None = None) -> Layer:
    """Skip connection: ``y = shortcut(x) + layer(x)``, ``shortcut`` the identity by default.

    Without ``shortcut`` the layer must preserve the shape and ``params``/``state`` are the
    wrapped layer's own. With a ``shortcut`` (a projection such as
    ``Sequential(Conv2d(c, 1, stride=2), BatchNorm())`` when ``layer`` changes the
    resolution or the channels, as in ResNet's basic block) both outputs must have the
    same shape, and ``params``/``state`` are ``{"layer": ..., "shortcut": ...}``.

    PyTorch: no module; ``y = self.layer(x) + self.shortcut(x)`` in a ``forward``.

    Example:
      >>> block = Residual(fdl.nn.Linear(4), shortcut=fdl.nn.Linear(4))
      >>> params, state = block.init(jax.random.key(0), (2, 3))
      >>> y, _ = block.apply(params, state, jnp.ones((2, 3)))
      >>> sorted(params), y.shape
      (['layer', 'shortcut'], (2, 4))
    """
    if shortcut is None:
        return _identity_residual(layer)
    if not isinstance(layer, Layer) or not isinstance(shortcut, Layer):
        raise TypeError(
            f"Residual: layer and shortcut must be Layers, got layer={layer!r}, "
            f"shortcut={shortcut!r}"
        )

    def init(key, input_shape):
        k1, k2 = jax.random.split(key)
        x = input_spec(input_shape)
        p1, s1 = layer.init(k1, x if layer.layers else x.shape)
        p2, s2 = shortcut.init(k2, x if shortcut.layers else x.shape)
        out1 = tuple(_abstract_output(layer, p1, s1, x).shape)
        out2 = tuple(_abstract_output(shortcut, p2, s2, x).shape)
        if out1 != out2:
            raise ValueError(
                f"Residual: layer and shortcut must give the same output shape, got {out1} "
                f"and {out2} for input_shape={x.shape}"
            )
        return {"layer": p1, "shortcut": p2}, {"layer": s1, "shortcut": s2}

    def apply(params, state, x, *, key=None, train=False):
        k1, k2 = _split(key, 2)
        y, s1 = layer.apply(params["layer"], state["layer"], x, key=k1, train=train)
        r, s2 = shortcut.apply(params["shortcut"], state["shortcut"], x, key=k2, train=train)
        return r + y, {"layer": s1, "shortcut": s2}

    def backward(params, state, x, g, *, key=None, train=False):
        k1, k2 = _split(key, 2)
        g1, dx1 = backward_of(layer)(params["layer"], state["layer"], x, g, key=k1, train=train)
        g2, dx2 = backward_of(shortcut)(
            params["shortcut"], state["shortcut"], x, g, key=k2, train=train
        )
        return {"layer": g1, "shortcut": g2}, dx1 + dx2

    has_backward = layer.backward is not None and shortcut.backward is not None
    return Layer(
        init,
        apply,
        f"residual_{layer.name}",
        backward if has_backward else None,
        {"layer": layer, "shortcut": shortcut},
    )


def _identity_residual(layer: Layer) -> Layer:
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
