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
from a forward and a backward), :func:`op_layer` and :func:`weighted_layer` (a layer
around an :mod:`functional_dl.nn.functional` op and its vjp), the parameter-naming
:func:`named_grads`, and PyTorch's default initializers (:func:`weight_and_bias`).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from . import init as initializers

__all__ = [
    "Layer",
    "output_shape",
    "backward_of",
    "stateless",
    "op_layer",
    "weighted_layer",
    "named_grads",
    "no_params",
    "channels",
    "fan_in_uniform",
    "default_weight_init",
    "weight_and_bias",
    "affine_init",
    "Init",
    "constructor",
    "input_spec",
]

_F = TypeVar("_F", bound=Callable[..., Any])


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


def input_spec(input_shape: Any, dtype: Any = jnp.float32) -> jax.ShapeDtypeStruct:
    """``input_shape`` (a shape, or anything with ``.shape``/``.dtype`` such as a
    ``jax.ShapeDtypeStruct`` or an array) as a ``jax.ShapeDtypeStruct``; a plain shape
    gets ``dtype``."""
    if isinstance(input_shape, jax.ShapeDtypeStruct):
        return input_shape
    shape = getattr(input_shape, "shape", input_shape)
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "input_shape must be a shape tuple or a jax.ShapeDtypeStruct, "
            f"got input_shape={input_shape!r}"
        ) from exc
    return jax.ShapeDtypeStruct(shape, getattr(input_shape, "dtype", dtype))


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


def op_layer(name: str, op: Callable, op_backward: Callable, *args: Any, **opts: Any) -> Layer:
    """A layer without parameters applying ``op(x, *args, **opts)``; its backward is the
    op's vjp ``op_backward(x, g, *args, **opts) -> dx``."""

    def forward(params, x, key, train):
        return op(x, *args, **opts)

    def backward(params, x, g, key, train):
        return {}, op_backward(x, g, *args, **opts)

    return stateless(name, no_params, forward, backward)


def weighted_layer(
    name: str, init: Callable, op: Callable, op_backward: Callable, **opts: Any
) -> Layer:
    """A layer applying ``op(x, weight, bias, **opts)`` (``bias`` ``None`` when ``params``
    has none); its backward is the op's vjp
    ``op_backward(x, weight, bias, g, **opts) -> (dx, dweight, dbias)``."""

    def forward(params, x, key, train):
        return op(x, params["weight"], params.get("bias"), **opts)

    def backward(params, x, g, key, train):
        dx, dw, db = op_backward(x, params["weight"], params.get("bias"), g, **opts)
        return named_grads(params, weight=dw, bias=db), dx

    return stateless(name, init, forward, backward)


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


def weight_and_bias(
    key: Any,
    shape: tuple[int, ...],
    fan_in: int,
    out: int,
    bias: bool,
    weight_init: Init | None,
    bias_init: Init | None,
    dtype: Any,
) -> dict:
    """``{"weight": shape, "bias": [out]}`` (no ``"bias"`` when ``bias`` is false):
    ``weight_init``/``bias_init`` (``fn(key, shape, dtype)``) where given, else PyTorch's
    defaults: :func:`default_weight_init` and ``U(+-1/sqrt(fan_in))``."""
    k_w, k_b = jax.random.split(key)
    params = {"weight": (weight_init or default_weight_init)(k_w, shape, dtype)}
    if bias:
        params["bias"] = (
            bias_init(k_b, (out,), dtype)
            if bias_init
            else fan_in_uniform(k_b, (out,), fan_in, dtype)
        )
    return params


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


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _our_form(name: str, sig: inspect.Signature) -> str:
    """``Conv2d(out_channels, kernel_size, *, stride, ...)``: the signature without types."""
    params = list(sig.parameters.values())
    positional = [p.name for p in params if p.kind in _POSITIONAL]
    keywords = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return f"{name}({', '.join(positional + (['*'] + keywords if keywords else []))})"


def _torch_form(
    name: str,
    torch_name: str,
    sig: inspect.Signature,
    args: tuple,
    torch_args: Sequence[str],
    inferred: Sequence[str],
) -> str:
    """The call ``name(*args)`` read in PyTorch's argument order, written in ours."""
    if not torch_args or len(args) > len(torch_args):
        return ""
    positional = [p.name for p in sig.parameters.values() if p.kind in _POSITIONAL]
    ours: dict[str, Any] = {}
    missing = []
    for arg, value in zip(torch_args, args, strict=False):
        if arg in inferred:
            continue
        if arg in sig.parameters:
            ours[arg] = value
        else:
            missing.append(arg)
    pos = [repr(ours.pop(n)) for n in positional if n in ours]
    call = f"{name}({', '.join(pos + [f'{k}={v!r}' for k, v in ours.items()])})"
    given = ", ".join(repr(a) for a in args)
    note = f" (no {', '.join(missing)} here)" if missing else ""
    return f" In PyTorch's order, torch.nn.{torch_name}({given}) is {call} here{note}."


def constructor(
    torch_args: Sequence[str] = (), *, inferred: Sequence[str] = (), torch_name: str | None = None
) -> Callable[[_F], _F]:
    """Decorator of a layer constructor that cannot be called in PyTorch's order.

    The constructor's positional parameters are its output-side sizes; a call with more
    positional arguments raises ``TypeError`` showing our form and, read with PyTorch's
    positional order ``torch_args`` (``inferred`` are the input sizes we infer from
    ``input_shape``), the same call written for functional_dl. A ``bias`` keyword must be
    a ``bool``.

    Example:
      >>> @constructor(("in_features", "out_features", "bias"), inferred=("in_features",))
      ... def Dense(out_features, *, bias=True):
      ...     return out_features, bias
      >>> Dense(400, 120)
      Traceback (most recent call last):
      ...
      TypeError: Dense takes 1 positional argument (out_features), got 2: ...
    """

    def decorate(fn: _F) -> _F:
        sig = inspect.signature(fn)
        name = fn.__name__
        n = sum(p.kind in _POSITIONAL for p in sig.parameters.values())

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n:
                names = [p.name for p in sig.parameters.values() if p.kind in _POSITIONAL]
                takes = (
                    f"{n} positional argument{'s' if n > 1 else ''} ({', '.join(names)})"
                    if n
                    else "no positional arguments"
                )
                raise TypeError(
                    f"{name} takes {takes}, got {len(args)}: the {'other ' if n else ''}arguments "
                    f"are keyword-only and input sizes are inferred from the input. Write "
                    f"{_our_form(name, sig)}."
                    + _torch_form(name, torch_name or name, sig, args, torch_args, inferred)
                )
            if "bias" in kwargs and not isinstance(kwargs["bias"], bool | np.bool_):
                raise TypeError(
                    f"{name}: bias must be a bool (True or False), got bias={kwargs['bias']!r}"
                )
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
