"""Image layers (channels last): convolution and pooling, each around its
:mod:`functional_dl.nn.functional` op and that op's hand-derived vjp."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from .._checks import check_int
from ._core import (
    Init,
    Layer,
    channels,
    constructor,
    fan_in_uniform,
    op_layer,
    weight_and_bias,
    weighted_layer,
)
from .functional._conv import conv2d, conv2d_backward, conv_padding
from .functional._conv1d import conv1d, conv1d_backward
from .functional._conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .functional._pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .functional._utils import as_ints, as_pair

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d"]

# PyTorch's positional order of torch.nn.Conv1d/Conv2d (for the constructors' errors)
_TORCH_CONV = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "bias",
)


def _check_geometry(
    fn: str, kernel: tuple[int, ...], stride: Any, padding: Any, dilation: Any
) -> None:
    """Check ``stride``, ``padding`` and ``dilation`` when the layer is built (PyTorch's
    constructor rejects a bad padding string), with the messages of the functional op;
    ``padding='same'`` with a stride and the kernel-fits-the-input check wait for ``init``."""
    n = len(kernel)
    as_ints("stride", stride, n, fn=fn)
    d = as_ints("dilation", dilation, n, fn=fn)
    conv_padding(padding, (2**62,) * n, kernel, (1,) * n, d, fn=fn)


@constructor(_TORCH_CONV, inferred=("in_channels",))
def Conv1d(
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: Any = 0,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = True,
    weight_init: Init | None = None,
    bias_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """1-D convolution layer on ``[N, L, C]`` sequences (:func:`~.functional.conv1d`).

    Params: ``{"weight": [k, C // groups, out_channels], "bias": [out_channels]}``, both
    ``U(+-1/sqrt(fan_in))`` with ``fan_in = k C / groups`` (PyTorch's default).
    PyTorch: ``torch.nn.Conv1d(C, out_channels, kernel_size, stride, padding, dilation,
    groups, bias)``.

    Example:
      >>> params, _ = Conv1d(8, 3, padding="same").init(jax.random.key(0), (2, 20, 4))
      >>> params["weight"].shape
      (3, 4, 8)
    """
    check_int("out_channels", out_channels, minimum=1, fn="Conv1d")
    check_int("kernel_size", kernel_size, minimum=1, fn="Conv1d")
    check_int("groups", groups, minimum=1, fn="Conv1d")
    _check_geometry("Conv1d", (kernel_size,), stride, padding, dilation)
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    def init(key, input_shape):
        shape = (kernel_size, channels("Conv1d", input_shape, groups) // groups, out_channels)
        fan_in = math.prod(shape[:2])
        inits = (weight_init, bias_init)
        return weight_and_bias(key, shape, fan_in, out_channels, bias, *inits, dtype), {}

    return weighted_layer("conv1d", init, conv1d, conv1d_backward, **opts)


@constructor(
    (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "output_padding",
        "groups",
        "bias",
        "dilation",
    ),
    inferred=("in_channels",),
)
def ConvTranspose2d(
    out_channels: int,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: bool = True,
    weight_init: Init | None = None,
    bias_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """2-D transposed convolution layer (:func:`~.functional.conv_transpose2d`).

    Params: ``{"weight": [kh, kw, C, out_channels // groups], "bias": [out_channels]}``.
    Default init as PyTorch, whose fan-in of the ``(C, out/groups, kh, kw)`` weight is
    ``out/groups * kh * kw``: both ``U(+-1/sqrt(fan_in))``. PyTorch:
    ``torch.nn.ConvTranspose2d(C, out_channels, kernel_size, stride, padding,
    output_padding, groups, bias, dilation)``.

    Example:
      >>> layer = ConvTranspose2d(4, 3, stride=2, padding=1, output_padding=1)
      >>> params, _ = layer.init(jax.random.key(0), (1, 7, 7, 8))
      >>> y, _ = layer.apply(params, {}, jnp.ones((1, 7, 7, 8)))
      >>> params["weight"].shape, y.shape
      ((3, 3, 8, 4), (1, 14, 14, 4))
    """
    check_int("out_channels", out_channels, minimum=1, fn="ConvTranspose2d")
    check_int("groups", groups, minimum=1, fn="ConvTranspose2d")
    if out_channels % groups:
        raise ValueError(
            f"ConvTranspose2d: groups must divide out_channels, got groups={groups}, "
            f"out_channels={out_channels}"
        )
    kh, kw = as_pair("kernel_size", kernel_size, fn="ConvTranspose2d")
    as_pair("stride", stride, fn="ConvTranspose2d")
    as_pair("padding", padding, fn="ConvTranspose2d", minimum=0)
    as_pair("output_padding", output_padding, fn="ConvTranspose2d", minimum=0)
    as_pair("dilation", dilation, fn="ConvTranspose2d")
    opts = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }

    def init(key, input_shape):
        c = channels("ConvTranspose2d", input_shape, groups)
        og = out_channels // groups
        shape = (kh, kw, c, og)
        # PyTorch computes the fan-in from weight.size(1) = out/groups (not from C)
        fan_in = kh * kw * og
        inits = (
            weight_init or (lambda k, s, dt: fan_in_uniform(k, s, fan_in, dt)),  # kaiming(a=√5)
            bias_init,
        )
        return weight_and_bias(key, shape, fan_in, out_channels, bias, *inits, dtype), {}

    return weighted_layer(
        "conv_transpose2d", init, conv_transpose2d, conv_transpose2d_backward, **opts
    )


@constructor((*_TORCH_CONV, "padding_mode"), inferred=("in_channels",))
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
    check_int("groups", groups, minimum=1, fn="Conv2d")
    _check_geometry("Conv2d", (kh, kw), stride, padding, dilation)
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    def init(key, input_shape):
        shape = (kh, kw, channels("Conv2d", input_shape, groups) // groups, out_channels)
        fan_in = math.prod(shape[:3])
        inits = (weight_init, bias_init)
        return weight_and_bias(key, shape, fan_in, out_channels, bias, *inits, dtype), {}

    return weighted_layer("conv2d", init, conv2d, conv2d_backward, **opts)


@constructor(("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"))
def MaxPool2d(
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Layer:
    """Max pooling layer (:func:`~.functional.max_pool2d`); ``stride`` defaults to the kernel.

    PyTorch: ``torch.nn.MaxPool2d(kernel_size, stride, padding, dilation,
    ceil_mode=...)``; here ``MaxPool2d(kernel_size, stride=..., padding=..., dilation=...,
    ceil_mode=...)`` (no ``return_indices``).

    Example:
      >>> y, _ = MaxPool2d(2).apply({}, {}, jnp.ones((1, 8, 8, 3)))
      >>> y.shape
      (1, 4, 4, 3)
      >>> MaxPool2d(2, ceil_mode=True).apply({}, {}, jnp.ones((1, 7, 7, 3)))[0].shape
      (1, 4, 4, 3)
    """
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
    return op_layer("max_pool2d", max_pool2d, max_pool2d_backward, kernel_size, **opts)


@constructor(
    (
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    )
)
def AvgPool2d(
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    count_include_pad: bool = True,
    ceil_mode: bool = False,
    divisor_override: int | None = None,
) -> Layer:
    """Average pooling layer (:func:`~.functional.avg_pool2d`).

    PyTorch: ``torch.nn.AvgPool2d(kernel_size, stride, padding, ceil_mode,
    count_include_pad, divisor_override)``, all but ``kernel_size`` keywords here.

    Example:
      >>> y, _ = AvgPool2d(2).apply({}, {}, jnp.ones((1, 8, 8, 3)))
      >>> y.shape
      (1, 4, 4, 3)
      >>> AvgPool2d(2, ceil_mode=True).apply({}, {}, jnp.ones((1, 7, 7, 3)))[0].shape
      (1, 4, 4, 3)
    """
    opts = {
        "stride": stride,
        "padding": padding,
        "count_include_pad": count_include_pad,
        "ceil_mode": ceil_mode,
        "divisor_override": divisor_override,
    }
    return op_layer("avg_pool2d", avg_pool2d, avg_pool2d_backward, kernel_size, **opts)
