"""Layers that change the resolution of channels-last data: :func:`Conv1d`,
:func:`ConvTranspose2d`, :func:`AdaptiveAvgPool2d`, :func:`AdaptiveMaxPool2d`,
:func:`Upsample`, :func:`PixelShuffle`.

Each ``apply`` calls its :mod:`functional_dl.nn.functional` op and each ``backward``
that op's hand-derived vjp.
"""

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
from .functional._adaptive_pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
)
from .functional._conv1d import conv1d, conv1d_backward
from .functional._conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .functional._interpolate import interpolate, interpolate_backward
from .functional._pixel_shuffle import pixel_shuffle, pixel_shuffle_backward
from .functional._utils import as_pair

__all__ = [
    "Conv1d",
    "ConvTranspose2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "Upsample",
    "PixelShuffle",
]


def _conv_params(key, shape, fan_in, out, bias, weight_init, bias_init, dtype):
    k_w, k_b = jax.random.split(key)
    params = {"weight": (weight_init or default_weight_init)(k_w, shape, dtype)}
    if bias:
        params["bias"] = (
            bias_init(k_b, (out,), dtype)
            if bias_init
            else fan_in_uniform(k_b, (out,), fan_in, dtype)
        )
    return params


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
    ),
    inferred=("in_channels",),
)
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
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    def init(key, input_shape):
        c = channels("Conv1d", input_shape, groups)
        shape = (kernel_size, c // groups, out_channels)
        fan_in = math.prod(shape[:2])
        return _conv_params(
            key, shape, fan_in, out_channels, bias, weight_init, bias_init, dtype
        ), {}

    def forward(params, x, key, train):
        return conv1d(x, params["weight"], params.get("bias"), **opts)

    def backward(params, x, g, key, train):
        dx, dw, db = conv1d_backward(x, params["weight"], params.get("bias"), g, **opts)
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("conv1d", init, forward, backward)


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
        wi = weight_init or (
            lambda k, s, dt: fan_in_uniform(k, s, kh * kw * og, dt)  # = kaiming_uniform(a=sqrt 5)
        )
        return _conv_params(key, shape, kh * kw * og, out_channels, bias, wi, bias_init, dtype), {}

    def forward(params, x, key, train):
        return conv_transpose2d(x, params["weight"], params.get("bias"), **opts)

    def backward(params, x, g, key, train):
        dx, dw, db = conv_transpose2d_backward(x, params["weight"], params.get("bias"), g, **opts)
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("conv_transpose2d", init, forward, backward)


def AdaptiveAvgPool2d(output_size: Any) -> Layer:
    """Adaptive average pooling to ``output_size`` (:func:`~.functional.adaptive_avg_pool2d`).

    ``AdaptiveAvgPool2d(1)`` is the global average pooling of ResNet heads. PyTorch:
    ``torch.nn.AdaptiveAvgPool2d(output_size)``.

    Example:
      >>> y, _ = AdaptiveAvgPool2d(1).apply({}, {}, jnp.ones((2, 7, 7, 16)))
      >>> y.shape
      (2, 1, 1, 16)
    """

    def forward(params, x, key, train):
        return adaptive_avg_pool2d(x, output_size)

    def backward(params, x, g, key, train):
        return {}, adaptive_avg_pool2d_backward(x, g, output_size)

    return stateless("adaptive_avg_pool2d", no_params, forward, backward)


def AdaptiveMaxPool2d(output_size: Any) -> Layer:
    """Adaptive max pooling to ``output_size`` (:func:`~.functional.adaptive_max_pool2d`).

    PyTorch: ``torch.nn.AdaptiveMaxPool2d(output_size)`` (no ``return_indices``).

    Example:
      >>> y, _ = AdaptiveMaxPool2d((2, 3)).apply({}, {}, jnp.ones((1, 5, 7, 4)))
      >>> y.shape
      (1, 2, 3, 4)
    """

    def forward(params, x, key, train):
        return adaptive_max_pool2d(x, output_size)

    def backward(params, x, g, key, train):
        return {}, adaptive_max_pool2d_backward(x, g, output_size)

    return stateless("adaptive_max_pool2d", no_params, forward, backward)


def Upsample(
    size: Any = None,
    *,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Layer:
    """Resize ``[N, H, W, C]`` images (:func:`~.functional.interpolate`).

    PyTorch: ``torch.nn.Upsample(size, scale_factor, mode, align_corners)``.

    Example:
      >>> y, _ = Upsample(scale_factor=2, mode="bilinear").apply({}, {}, jnp.ones((1, 4, 4, 3)))
      >>> y.shape
      (1, 8, 8, 3)
    """
    opts = {"scale_factor": scale_factor, "mode": mode, "align_corners": align_corners}

    def forward(params, x, key, train):
        return interpolate(x, size, **opts)

    def backward(params, x, g, key, train):
        return {}, interpolate_backward(x, g, size, **opts)

    return stateless("upsample", no_params, forward, backward)


def PixelShuffle(upscale_factor: int) -> Layer:
    """``[N, H, W, C r^2] -> [N, H r, W r, C]`` (:func:`~.functional.pixel_shuffle`).

    PyTorch: ``torch.nn.PixelShuffle(upscale_factor)``.

    Example:
      >>> y, _ = PixelShuffle(2).apply({}, {}, jnp.ones((1, 4, 4, 12)))
      >>> y.shape
      (1, 8, 8, 3)
    """
    check_int("upscale_factor", upscale_factor, minimum=1, fn="PixelShuffle")

    def forward(params, x, key, train):
        return pixel_shuffle(x, upscale_factor)

    def backward(params, x, g, key, train):
        return {}, pixel_shuffle_backward(x, g, upscale_factor)

    return stateless("pixel_shuffle", no_params, forward, backward)
