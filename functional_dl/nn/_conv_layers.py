"""Image layers (channels last): convolution, pooling, batch and group normalisation."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_in_range, check_int, check_positive
from ._batch_norm import batch_norm, batch_norm_backward
from ._conv import conv2d, conv2d_backward
from ._core import Layer
from ._layers import Init, affine_init, default_weight_init, fan_in_uniform, named_grads, stateless
from ._norm import group_norm, group_norm_backward
from ._pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from ._utils import as_pair

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm", "GroupNorm"]


def _no_params(key, input_shape):
    return {}, {}


def _channels(fn: str, input_shape: Any, groups: int = 1) -> int:
    """``C`` of ``input_shape = [N, ..., C]``, which ``groups`` must divide."""
    if len(input_shape) < 2 or input_shape[-1] % groups:
        raise ValueError(
            f"{fn}: input_shape must be [N, ..., C] with C divisible by "
            f"groups={groups}, got input_shape={tuple(input_shape)}"
        )
    return int(input_shape[-1])


def Conv2d(
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    bias: bool = True,
    weight_init: Init | None = None,
    bias_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """2-D convolution layer on ``[N, H, W, C]`` images (:func:`~.functional.conv2d`).

    Params: ``{"weight": [kh, kw, C // groups, out_channels], "bias": [out_channels]}``.
    Default init as PyTorch: both ``U(+-1/sqrt(fan_in))`` with ``fan_in = kh*kw*C/groups``.
    PyTorch: ``torch.nn.Conv2d(C, out_channels, kernel_size, stride, padding, dilation,
    groups, bias)``.

    Example:
      >>> params, _ = Conv2d(16, 3, padding="same").init(jax.random.key(0), (8, 28, 28, 1))
    """
    check_int("out_channels", out_channels, minimum=1, fn="Conv2d")
    kh, kw = as_pair("kernel_size", kernel_size, fn="Conv2d")
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    def init(key, input_shape):
        c = _channels("Conv2d", input_shape, groups)
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


def MaxPool2d(kernel_size: Any, stride: Any = None, padding: Any = 0) -> Layer:
    """Max pooling layer (:func:`~.functional.max_pool2d`); ``stride`` defaults to the kernel.

    PyTorch: ``torch.nn.MaxPool2d(kernel_size, stride, padding)``.

    Example:
      >>> y, _ = MaxPool2d(2).apply({}, {}, jnp.ones((1, 8, 8, 3)))  # (1, 4, 4, 3)
    """
    opts = {"stride": stride, "padding": padding}

    def forward(params, x, key, train):
        return max_pool2d(x, kernel_size, **opts)

    def backward(params, x, g, key, train):
        return {}, max_pool2d_backward(x, g, kernel_size, **opts)

    return stateless("max_pool2d", _no_params, forward, backward)


def AvgPool2d(
    kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> Layer:
    """Average pooling layer (:func:`~.functional.avg_pool2d`).

    PyTorch: ``torch.nn.AvgPool2d(kernel_size, stride, padding, count_include_pad=...)``.

    Example:
      >>> y, _ = AvgPool2d(2).apply({}, {}, jnp.ones((1, 8, 8, 3)))  # (1, 4, 4, 3)
    """
    opts = {"stride": stride, "padding": padding, "count_include_pad": count_include_pad}

    def forward(params, x, key, train):
        return avg_pool2d(x, kernel_size, **opts)

    def backward(params, x, g, key, train):
        return {}, avg_pool2d_backward(x, g, kernel_size, **opts)

    return stateless("avg_pool2d", _no_params, forward, backward)


def BatchNorm(
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    affine: bool = True,
    axis_name: Any = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """Batch normalisation of the channels (last axis) (:func:`~.functional.batch_norm`).

    Params ``{"weight": ones(C), "bias": zeros(C)}`` (absent with ``affine=False``);
    state ``{"running_mean": zeros(C), "running_var": ones(C)}``. ``train=True`` normalises
    with batch statistics and returns the updated state; ``train=False`` uses the running
    statistics and returns the state unchanged. ``axis_name`` synchronises the batch
    statistics over a mapped axis. PyTorch: ``torch.nn.BatchNorm1d/2d/3d(C, eps, momentum,
    affine)`` (one layer for every rank, channels last).

    Example:
      >>> params, state = BatchNorm().init(jax.random.key(0), (8, 14, 14, 16))
    """
    check_in_range("momentum", momentum, 0.0, 1.0, fn="BatchNorm")
    check_positive("eps", eps, fn="BatchNorm")
    opts = {"momentum": momentum, "eps": eps, "axis_name": axis_name}

    affine_params = affine_init(lambda s: (_channels("BatchNorm", s),), affine, affine, dtype)

    def init(key, input_shape):
        params, _ = affine_params(key, input_shape)
        c = input_shape[-1]
        return params, {
            "running_mean": jnp.zeros((c,), dtype),
            "running_var": jnp.ones((c,), dtype),
        }

    def apply(params, state, x, *, key=None, train=False):
        y, mean, var = batch_norm(
            x,
            state["running_mean"],
            state["running_var"],
            params.get("weight"),
            params.get("bias"),
            training=train,
            **opts,
        )
        return y, ({"running_mean": mean, "running_var": var} if train else state)

    def backward(params, state, x, g, *, key=None, train=False):
        dx, dw, db = batch_norm_backward(
            x,
            state["running_mean"],
            state["running_var"],
            params.get("weight"),
            params.get("bias"),
            g,
            training=train,
            **opts,
        )
        return named_grads(params, weight=dw, bias=db), dx

    return Layer(init, apply, "batch_norm", backward)


def GroupNorm(
    num_groups: int, eps: float = 1e-5, *, affine: bool = True, dtype: Any = jnp.float32
) -> Layer:
    """Group normalisation of the channels (last axis) (:func:`~.functional.group_norm`).

    Params ``{"weight": ones(C), "bias": zeros(C)}``; ``num_groups`` must divide ``C``.
    PyTorch: ``torch.nn.GroupNorm(num_groups, C, eps, affine)``.

    Example:
      >>> params, _ = GroupNorm(4).init(jax.random.key(0), (8, 14, 14, 16))
    """
    check_int("num_groups", num_groups, minimum=1, fn="GroupNorm")
    check_positive("eps", eps, fn="GroupNorm")

    init = affine_init(lambda s: (_channels("GroupNorm", s, num_groups),), affine, affine, dtype)

    def forward(params, x, key, train):
        return group_norm(x, num_groups, params.get("weight"), params.get("bias"), eps=eps)

    def backward(params, x, g, key, train):
        dx, dw, db = group_norm_backward(
            x, num_groups, params.get("weight"), params.get("bias"), g, eps=eps
        )
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("group_norm", init, forward, backward)
