"""Activation layers: parameter-free wrappers of :mod:`functional_dl.activations` (and PReLU).

Their ``backward`` applies the hand-derived derivative without reverse-mode autodiff:
for the elementwise activations ``dx = g * f'(x)``, with ``f'(x)`` the activation's own
tangent rule evaluated at ``x`` (each activation is a ``jax.custom_jvp`` of its formula
and derivative); softmax, log-softmax, GLU and PReLU have their closed forms here. The
constructors without arguments (``ReLU()``, ``Tanh()``, ...) are made by
:func:`_parameterless`; those with arguments are written out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from .. import activations
from .._checks import check_int
from ._core import Layer, constructor, no_params, stateless
from .functional._utils import to_rank

_F = TypeVar("_F", bound=Callable[..., Layer])


def _activation(fn_name: str, **kwargs: Any) -> Layer:
    """A parameter-free layer applying ``activations.<fn_name>(x, **kwargs)``."""
    fn = getattr(activations, fn_name)

    def forward(params, x, key, train):
        return fn(x, **kwargs)

    def backward(params, x, g, key, train):
        closed_form = _CLOSED_FORMS.get(fn_name)
        if closed_form is not None:
            return {}, closed_form(x, g, **kwargs)
        # elementwise: f'(x) is the tangent rule of the activation along ones
        _, slope = jax.jvp(lambda x: fn(x, **kwargs), (x,), (jnp.ones_like(x),))
        return {}, g * slope

    return stateless(fn_name, no_params, forward, backward)


def _softmax_backward(x, g, axis=-1):
    """``dx = y * (g - sum(g * y))`` with ``y = softmax(x)``."""
    y = activations.softmax(x, axis=axis)
    return y * (g - jnp.sum(g * y, axis=axis, keepdims=True))


def _log_softmax_backward(x, g, axis=-1):
    """``dx = g - softmax(x) * sum(g)``."""
    return g - activations.softmax(x, axis=axis) * jnp.sum(g, axis=axis, keepdims=True)


def _glu_backward(x, g, axis=-1):
    """With ``x = [a, b]``: ``da = g sigmoid(b)``, ``db = g a sigmoid(b) (1 - sigmoid(b))``."""
    a, b = jnp.split(x, 2, axis)
    s = activations.sigmoid(b)
    return jnp.concatenate([g * s, g * a * s * (1 - s)], axis)


_CLOSED_FORMS: dict[str, Callable[..., Any]] = {
    "softmax": _softmax_backward,
    "log_softmax": _log_softmax_backward,
    "glu": _glu_backward,
}


def _doc(cls: str, fn: str, torch: str, args: str = "") -> str:
    out = 2 if cls == "GLU" else 4  # GLU halves the axis
    return (
        f"Layer applying :func:`functional_dl.activations.{fn}`{args}.\n\n"
        f"No parameters, no state. PyTorch: ``torch.nn.{torch}``.\n\n"
        f"Example:\n  >>> y, _ = {cls}().apply({{}}, {{}}, jnp.linspace(-2, 2, 4))\n"
        f"  >>> y.shape\n  ({out},)\n"
    )


def _parameterless(cls: str, fn_name: str) -> Callable[[], Layer]:
    """The constructor ``cls()`` of the layer applying ``activations.<fn_name>``."""

    def layer() -> Layer:
        return _activation(fn_name)

    layer.__name__ = layer.__qualname__ = cls
    layer.__doc__ = _doc(cls, fn_name, f"{cls}()")
    return constructor(("inplace",))(layer)


def _documented(fn: str, torch: str, args: str) -> Callable[[_F], _F]:
    """Decorator: the docstring of a layer applying ``activations.<fn>`` with arguments,
    whose first argument only is positional (PyTorch's order is read from ``torch``)."""
    names = torch.split("(")[1].rstrip(")").split(",")
    torch_args = tuple({"dim": "axis"}.get(a.strip(), a.strip()) for a in names) + ("inplace",)

    def decorate(fn_: _F) -> _F:
        fn_.__doc__ = _doc(fn_.__name__, fn, torch, args)
        return constructor(torch_args)(fn_)

    return decorate


ReLU = _parameterless("ReLU", "relu")
ReLU6 = _parameterless("ReLU6", "relu6")
SELU = _parameterless("SELU", "selu")
SiLU = _parameterless("SiLU", "silu")
Mish = _parameterless("Mish", "mish")
Sigmoid = _parameterless("Sigmoid", "sigmoid")
Tanh = _parameterless("Tanh", "tanh")
Softsign = _parameterless("Softsign", "softsign")
Hardsigmoid = _parameterless("Hardsigmoid", "hardsigmoid")
Hardswish = _parameterless("Hardswish", "hardswish")
LogSigmoid = _parameterless("LogSigmoid", "log_sigmoid")


@_documented("leaky_relu", "LeakyReLU(negative_slope)", " with ``negative_slope``")
def LeakyReLU(negative_slope: float = 0.01) -> Layer:
    return _activation("leaky_relu", negative_slope=negative_slope)


@_documented("elu", "ELU(alpha)", " with ``alpha``")
def ELU(alpha: float = 1.0) -> Layer:
    return _activation("elu", alpha=alpha)


@_documented("celu", "CELU(alpha)", " with ``alpha``")
def CELU(alpha: float = 1.0) -> Layer:
    return _activation("celu", alpha=alpha)


@_documented("gelu", "GELU(approximate)", " (``approximate='none'`` exact erf, or ``'tanh'``)")
def GELU(approximate: str = "none") -> Layer:
    return _activation("gelu", approximate=approximate)


@_documented("softplus", "Softplus(beta, threshold)", " with ``beta`` and ``threshold``")
def Softplus(beta: float = 1.0, *, threshold: float = 20.0) -> Layer:
    return _activation("softplus", beta=beta, threshold=threshold)


@_documented("hardtanh", "Hardtanh(min_val, max_val)", " with ``min_val``/``max_val``")
def Hardtanh(min_val: float = -1.0, *, max_val: float = 1.0) -> Layer:
    return _activation("hardtanh", min_val=min_val, max_val=max_val)


@_documented("softmax", "Softmax(dim)", " along ``axis``")
def Softmax(axis: int = -1) -> Layer:
    return _activation("softmax", axis=axis)


@_documented("log_softmax", "LogSoftmax(dim)", " along ``axis``")
def LogSoftmax(axis: int = -1) -> Layer:
    return _activation("log_softmax", axis=axis)


@_documented("glu", "GLU(dim)", " along ``axis`` (halves that axis)")
def GLU(axis: int = -1) -> Layer:
    return _activation("glu", axis=axis)


@constructor(("num_parameters", "init"))
def PReLU(num_parameters: int = 1, *, init: float = 0.25, dtype: Any = jnp.float32) -> Layer:
    """Parametric ReLU ``max(0, x) + weight * min(0, x)`` with a learned slope.

    Params: ``{"weight": [num_parameters]}`` filled with ``init`` (0.25, PyTorch); with
    ``num_parameters > 1`` there is one slope per channel (last axis).
    PyTorch: ``torch.nn.PReLU(num_parameters, init)``.

    Example:
      >>> params, _ = PReLU(8).init(jax.random.key(0), (4, 8))
      >>> params["weight"].shape
      (8,)
    """
    check_int("num_parameters", num_parameters, minimum=1, fn="PReLU")

    def param_init(key, input_shape):
        return {"weight": jnp.full((num_parameters,), init, dtype)}, {}

    def forward(params, x, key, train):
        return activations.prelu(x, params["weight"])

    def backward(params, x, g, key, train):
        # dx = g where x > 0 else weight * g; dweight = sum of x * g where x <= 0, over
        # every axis but the channels (all axes for a single slope)
        w = params["weight"].astype(x.dtype)
        neg = x <= 0
        dx = jnp.where(neg, g * to_rank(w, x.ndim), g)
        dw_full = jnp.where(neg, x * g, jnp.zeros((), x.dtype))
        if w.shape[0] == 1:
            dw = jnp.sum(dw_full).reshape(1)
        else:
            dw = jnp.sum(dw_full, axis=tuple(range(x.ndim - 1)))
        return {"weight": dw.astype(params["weight"].dtype)}, dx

    return stateless("prelu", param_init, forward, backward)
