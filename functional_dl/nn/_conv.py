"""Image layers (channels last): convolution and pooling."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_int
from ._core import (
    Init,
    Layer,
    channels,
    constructor,
    default_weight_init,
    fan_in_uniform,
    named_grads,
    no_params,
    stateless,
)
from .functional._conv import conv2d, conv2d_backward
from .functional._pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .functional._utils import as_pair

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d"]


@constructor(
    (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
        "padding_mode",
    ),
    inferred=("in_channels",),
)
def Conv2d(
    out_channels: int,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: bool = True,
    weight_init: Init | None = None,
    bias_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """2-D convolution layer on ``[N, H, W, C]`` images (:func:`~.functional.conv2d`).

    Params: ``{"weight": [kh, kw, C // groups, out_channels], "bias": [out_channels]}``.
    Default init as PyTorch: both ``U(+-1/sqrt(fan_in))`` with ``fan_in = kh*kw*C/groups``.
    PyTorch: ``torch.nn.Conv2d(C, out_channels, kernel_size, stride, padding, dilation,
    groups, bias)``; ``C`` is inferred, so ``torch.nn.Conv2d(3, 6, 5)`` is ``Conv2d(6, 5)``
    (``Conv2d(3, 6, 5)`` raises).

    Example:
      >>> params, _ = Conv2d(16, 3, padding="same").init(jax.random.key(0), (8, 28, 28, 1))
      >>> params["weight"].shape
      (3, 3, 1, 16)
    """
    check_int("out_channels", out_channels, minimum=1, fn="Conv2d")
    kh, kw = as_pair("kernel_size", kernel_size, fn="Conv2d")
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    def init(key, input_shape):
        c = channels("Conv2d", input_shape, groups)
        shape = (kh, kw, c // groups, out_channels)
        k_w, k_b = jax.random.split(key)
        params = {"weight": (weight_init or default_weight_init)(k_w, shape, dtype)}
        if bias:
            params["bias"] = (
                bias_init(k_b, (out_channels,), dtype)
                if bias_init
                else fan_in_uniform(k_b, (out_channels,), math.prod(shape[:3]), dtype)
            )
        return params, {}

    def forward(params, x, key, train):
        return conv2d(x, params["weight"], params.get("bias"), **opts)

    def backward(params, x, g, key, train):
        dx, dw, db = conv2d_backward(x, params["weight"], params.get("bias"), g, **opts)
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("conv2d", init, forward, backward)


@constructor(("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"))
def MaxPool2d(kernel_size: Any, *, stride: Any = None, padding: Any = 0) -> Layer:
    """Max pooling layer (:func:`~.functional.max_pool2d`); ``stride`` defaults to the kernel.

    PyTorch: ``torch.nn.MaxPool2d(kernel_size, stride, padding)``; here
    ``MaxPool2d(kernel_size, stride=..., padding=...)``.

    Example:
      >>> y, _ = MaxPool2d(2).apply({}, {}, jnp.ones((1, 8, 8, 3)))
      >>> y.shape
      (1, 4, 4, 3)
    """
    opts = {"stride": stride, "padding": padding}

    def forward(params, x, key, train):
        return max_pool2d(x, kernel_size, **opts)

    def backward(params, x, g, key, train):
        return {}, max_pool2d_backward(x, g, kernel_size, **opts)

    return stateless("max_pool2d", no_params, forward, backward)


@constructor(("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"))
def AvgPool2d(
    kernel_size: Any, *, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> Layer:
    """Average pooling layer (:func:`~.functional.avg_pool2d`).

    PyTorch: ``torch.nn.AvgPool2d(kernel_size, stride, padding, count_include_pad=...)``.

    Example:
      >>> y, _ = AvgPool2d(2).apply({}, {}, jnp.ones((1, 8, 8, 3)))
      >>> y.shape
      (1, 4, 4, 3)
    """
    opts = {"stride": stride, "padding": padding, "count_include_pad": count_include_pad}

    def forward(params, x, key, train):
        return avg_pool2d(x, kernel_size, **opts)

    def backward(params, x, g, key, train):
        return {}, avg_pool2d_backward(x, g, kernel_size, **opts)

    return stateless("avg_pool2d", no_params, forward, backward)
