"""Activation layers: parameter-free wrappers of :mod:`functional_dl.activations` (and PReLU).

Their ``backward`` is the vjp of the activation, whose derivative is the hand-derived
one (each activation is a ``jax.custom_jvp`` of its formula and derivative).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import activations
from .._checks import check_int
from ._core import Layer, stateless

__all__ = [
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Softsign",
    "Hardtanh",
    "Hardsigmoid",
    "Hardswish",
    "LogSigmoid",
    "Softmax",
    "LogSoftmax",
    "GLU",
    "PReLU",
]


def _activation(fn_name: str, **kwargs: Any) -> Layer:
    """A parameter-free layer applying ``activations.<fn_name>(x, **kwargs)``."""
    fn = getattr(activations, fn_name)

    def forward(params, x, key, train):
        return fn(x, **kwargs)

    def backward(params, x, g, key, train):
        _, vjp = jax.vjp(lambda x: fn(x, **kwargs), x)
        return {}, vjp(g)[0]

    return stateless(fn_name, lambda key, input_shape: ({}, {}), forward, backward)


def _doc(cls: str, fn: str, torch: str, args: str = "") -> str:
    out = 2 if cls == "GLU" else 4  # GLU halves the axis
    return (
        f"Layer applying :func:`functional_dl.activations.{fn}`{args}.\n\n"
        f"No parameters, no state. PyTorch: ``torch.nn.{torch}``.\n\n"
        f"Example:\n  >>> y, _ = {cls}().apply({{}}, {{}}, jnp.linspace(-2, 2, 4))\n"
        f"  >>> y.shape\n  ({out},)\n"
    )


def ReLU() -> Layer:
    return _activation("relu")


def ReLU6() -> Layer:
    return _activation("relu6")


def LeakyReLU(negative_slope: float = 0.01) -> Layer:
    return _activation("leaky_relu", negative_slope=negative_slope)


def ELU(alpha: float = 1.0) -> Layer:
    return _activation("elu", alpha=alpha)


def SELU() -> Layer:
    return _activation("selu")


def CELU(alpha: float = 1.0) -> Layer:
    return _activation("celu", alpha=alpha)


def GELU(approximate: str = "none") -> Layer:
    return _activation("gelu", approximate=approximate)


def SiLU() -> Layer:
    return _activation("silu")


def Mish() -> Layer:
    return _activation("mish")


def Sigmoid() -> Layer:
    return _activation("sigmoid")


def Tanh() -> Layer:
    return _activation("tanh")


def Softplus(beta: float = 1.0, threshold: float = 20.0) -> Layer:
    return _activation("softplus", beta=beta, threshold=threshold)


def Softsign() -> Layer:
    return _activation("softsign")


def Hardtanh(min_val: float = -1.0, max_val: float = 1.0) -> Layer:
    return _activation("hardtanh", min_val=min_val, max_val=max_val)


def Hardsigmoid() -> Layer:
    return _activation("hardsigmoid")


def Hardswish() -> Layer:
    return _activation("hardswish")


def LogSigmoid() -> Layer:
    return _activation("log_sigmoid")


def Softmax(axis: int = -1) -> Layer:
    return _activation("softmax", axis=axis)


def LogSoftmax(axis: int = -1) -> Layer:
    return _activation("log_softmax", axis=axis)


def GLU(axis: int = -1) -> Layer:
    return _activation("glu", axis=axis)


for _cls, _fn, _torch, _args in [
    (ReLU, "relu", "ReLU()", ""),
    (ReLU6, "relu6", "ReLU6()", ""),
    (LeakyReLU, "leaky_relu", "LeakyReLU(negative_slope)", " with ``negative_slope``"),
    (ELU, "elu", "ELU(alpha)", " with ``alpha``"),
    (SELU, "selu", "SELU()", ""),
    (CELU, "celu", "CELU(alpha)", " with ``alpha``"),
    (GELU, "gelu", "GELU(approximate)", " (``approximate='none'`` exact erf, or ``'tanh'``)"),
    (SiLU, "silu", "SiLU()", ""),
    (Mish, "mish", "Mish()", ""),
    (Sigmoid, "sigmoid", "Sigmoid()", ""),
    (Tanh, "tanh", "Tanh()", ""),
    (Softplus, "softplus", "Softplus(beta, threshold)", " with ``beta`` and ``threshold``"),
    (Softsign, "softsign", "Softsign()", ""),
    (Hardtanh, "hardtanh", "Hardtanh(min_val, max_val)", " with ``min_val``/``max_val``"),
    (Hardsigmoid, "hardsigmoid", "Hardsigmoid()", ""),
    (Hardswish, "hardswish", "Hardswish()", ""),
    (LogSigmoid, "log_sigmoid", "LogSigmoid()", ""),
    (Softmax, "softmax", "Softmax(dim)", " along ``axis``"),
    (LogSoftmax, "log_softmax", "LogSoftmax(dim)", " along ``axis``"),
    (GLU, "glu", "GLU(dim)", " along ``axis`` (halves that axis)"),
]:
    _cls.__doc__ = _doc(_cls.__name__, _fn, _torch, _args)


def PReLU(num_parameters: int = 1, init: float = 0.25, *, dtype: Any = jnp.float32) -> Layer:
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
        _, vjp = jax.vjp(activations.prelu, x, params["weight"])
        dx, dw = vjp(g)
        return {"weight": dw}, dx

    return stateless("prelu", param_init, forward, backward)
