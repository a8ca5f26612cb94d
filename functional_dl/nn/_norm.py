"""Normalisation layers: :func:`LayerNorm`, :func:`RMSNorm` (per sample, last axis),
:func:`BatchNorm` and :func:`GroupNorm` (channels last).

Each ``apply`` calls the matching :mod:`functional_dl.nn.functional` op and each
``backward`` that op's hand-derived vjp.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._checks import check_in_range, check_int, check_positive
from ._core import Layer, affine_init, channels, constructor, named_grads, stateless
from .functional._norm import (
    batch_norm,
    batch_norm_backward,
    group_norm,
    group_norm_backward,
    layer_norm,
    layer_norm_backward,
    rms_norm,
    rms_norm_backward,
)

__all__ = ["LayerNorm", "RMSNorm", "BatchNorm", "GroupNorm"]


@constructor(
    ("normalized_shape", "eps", "elementwise_affine", "bias"), inferred=("normalized_shape",)
)
def LayerNorm(
    *,
    eps: float = 1e-5,
    elementwise_affine: bool = True,
    bias: bool = True,
    dtype: Any = jnp.float32,
) -> Layer:
    """Layer normalisation over the last axis (:func:`~functional_dl.nn.functional.layer_norm`).

    Params: ``{"weight": [D], "bias": [D]}`` initialised to ones and zeros (PyTorch).
    PyTorch: ``torch.nn.LayerNorm(D, eps, elementwise_affine, bias)``.

    Example:
      >>> params, _ = LayerNorm().init(jax.random.key(0), (8, 16))
      >>> params["weight"].shape, params["bias"].shape
      ((16,), (16,))
    """
    check_positive("eps", eps, fn="LayerNorm")
    init = affine_init(lambda s: s[-1:], elementwise_affine, elementwise_affine and bias, dtype)

    def forward(params, x, key, train):
        return layer_norm(x, params.get("weight"), params.get("bias"), eps=eps)

    def backward(params, x, g, key, train):
        dx, dw, db = layer_norm_backward(x, params.get("weight"), params.get("bias"), g, eps=eps)
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("layer_norm", init, forward, backward)


@constructor(("normalized_shape", "eps", "elementwise_affine"), inferred=("normalized_shape",))
def RMSNorm(
    *, eps: float | None = None, elementwise_affine: bool = True, dtype: Any = jnp.float32
) -> Layer:
    """RMS normalisation over the last axis (:func:`~functional_dl.nn.functional.rms_norm`).

    Params: ``{"weight": [D]}`` initialised to ones. ``eps=None`` means
    ``finfo(x.dtype).eps`` (PyTorch). PyTorch: ``torch.nn.RMSNorm(D, eps)``.

    Example:
      >>> params, _ = RMSNorm().init(jax.random.key(0), (8, 16))
      >>> params["weight"].shape
      (16,)
    """
    if eps is not None:
        check_positive("eps", eps, fn="RMSNorm")
    init = affine_init(lambda s: s[-1:], elementwise_affine, False, dtype)

    def forward(params, x, key, train):
        return rms_norm(x, params.get("weight"), eps=eps)

    def backward(params, x, g, key, train):
        dx, dw = rms_norm_backward(x, params.get("weight"), g, eps=eps)
        return named_grads(params, weight=dw), dx

    return stateless("rms_norm", init, forward, backward)


@constructor(
    ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    inferred=("num_features",),
    torch_name="BatchNorm2d",
)
def BatchNorm(
    *,
    momentum: float = 0.1,
    eps: float = 1e-5,
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
      >>> sorted(state), state["running_var"].shape
      (['running_mean', 'running_var'], (16,))
    """
    check_in_range("momentum", momentum, 0.0, 1.0, fn="BatchNorm")
    check_positive("eps", eps, fn="BatchNorm")
    opts = {"momentum": momentum, "eps": eps, "axis_name": axis_name}

    affine_params = affine_init(lambda s: (channels("BatchNorm", s),), affine, affine, dtype)

    def init(key, input_shape):
        params, _ = affine_params(key, input_shape)
        c = input_shape[-1]
        return params, {
            "running_mean": jnp.zeros((c,), dtype),
            "running_var": jnp.ones((c,), dtype),
        }

    def arrays(params, state):
        """The op's array arguments after ``x``, from the layer's params and state."""
        weight, bias = params.get("weight"), params.get("bias")
        return state["running_mean"], state["running_var"], weight, bias

    def apply(params, state, x, *, key=None, train=False):
        y, mean, var = batch_norm(x, *arrays(params, state), training=train, **opts)
        return y, ({"running_mean": mean, "running_var": var} if train else state)

    def backward(params, state, x, g, *, key=None, train=False):
        dx, dw, db = batch_norm_backward(x, *arrays(params, state), g, training=train, **opts)
        return named_grads(params, weight=dw, bias=db), dx

    return Layer(init, apply, "batch_norm", backward)


@constructor(("num_groups", "num_channels", "eps", "affine"), inferred=("num_channels",))
def GroupNorm(
    num_groups: int, *, eps: float = 1e-5, affine: bool = True, dtype: Any = jnp.float32
) -> Layer:
    """Group normalisation of the channels (last axis) (:func:`~.functional.group_norm`).

    Params ``{"weight": ones(C), "bias": zeros(C)}``; ``num_groups`` must divide ``C``.
    PyTorch: ``torch.nn.GroupNorm(num_groups, C, eps, affine)``.

    Example:
      >>> params, _ = GroupNorm(4).init(jax.random.key(0), (8, 14, 14, 16))
      >>> params["weight"].shape
      (16,)
    """
    check_int("num_groups", num_groups, minimum=1, fn="GroupNorm")
    check_positive("eps", eps, fn="GroupNorm")

    init = affine_init(lambda s: (channels("GroupNorm", s, num_groups),), affine, affine, dtype)

    def forward(params, x, key, train):
        return group_norm(x, num_groups, params.get("weight"), params.get("bias"), eps=eps)

    def backward(params, x, g, key, train):
        dx, dw, db = group_norm_backward(
            x, num_groups, params.get("weight"), params.get("bias"), g, eps=eps
        )
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("group_norm", init, forward, backward)
