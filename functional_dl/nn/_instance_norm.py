"""The :func:`InstanceNorm` layer (channels last), with PyTorch's optional running
statistics."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_choice, check_in_range, check_positive
from .._dtypes import compute_dtype
from . import init as initializers
from ._core import Layer, channels, named_grads
from .functional._instance_norm import instance_norm, instance_norm_backward
from .functional._norm import batch_norm, batch_norm_backward

__all__ = ["InstanceNorm"]


def InstanceNorm(
    *,
    eps: float = 1e-5,
    momentum: float = 0.1,
    affine: bool = False,
    track_running_stats: bool = False,
    dtype: Any = jnp.float32,
) -> Layer:
    """Instance normalisation of ``[N, ..., C]`` (:func:`~.functional.instance_norm`).

    Params (``affine=True``): ``{"weight": ones [C], "bias": zeros [C]}``. State
    (``track_running_stats=True``): ``{"running_mean": zeros [C], "running_var": ones [C]}``,
    updated in training as PyTorch does: ``new = (1 - momentum) old + momentum stat`` with
    ``stat`` the batch mean of the per-instance means and of the per-instance *unbiased*
    variances; eval then normalises with the running statistics. Without running
    statistics every mode uses the instance statistics.

    PyTorch: ``torch.nn.InstanceNorm1d/2d/3d(C, eps, momentum, affine,
    track_running_stats)`` (one layer for every rank here).

    Example:
      >>> layer = InstanceNorm(affine=True, track_running_stats=True)
      >>> params, state = layer.init(jax.random.key(0), (2, 8, 8, 3))
      >>> sorted(params), sorted(state)
      (['bias', 'weight'], ['running_mean', 'running_var'])
    """
    fn = "InstanceNorm"
    check_positive("eps", eps, fn=fn)
    check_in_range("momentum", momentum, 0.0, 1.0, fn=fn)
    check_choice("affine", affine, (True, False), fn=fn)
    check_choice("track_running_stats", track_running_stats, (True, False), fn=fn)

    def init(key, input_shape):
        c = channels(fn, input_shape)
        params = {}
        if affine:
            params = {
                "weight": initializers.ones(key, (c,), dtype),
                "bias": initializers.zeros(key, (c,), dtype),
            }
        state = {}
        if track_running_stats:
            state = {
                "running_mean": jnp.zeros((c,), jnp.float32),
                "running_var": jnp.ones((c,), jnp.float32),
            }
        return params, state

    def _use_running(state, train):
        return track_running_stats and not train and "running_mean" in state

    def apply(params, state, x, *, key=None, train=False):
        w, b = params.get("weight"), params.get("bias")
        if _use_running(state, train):
            y, _, _ = batch_norm(
                x, state["running_mean"], state["running_var"], w, b, training=False, eps=eps
            )
            return y, state
        y = instance_norm(x, w, b, eps=eps)
        if not (track_running_stats and train):
            return y, state
        xf = jax.lax.stop_gradient(x).astype(compute_dtype(x.dtype))
        axes = tuple(range(1, x.ndim - 1))
        count = math.prod(x.shape[1:-1])
        mean = jnp.mean(xf, axis=axes)  # [N, C]
        var = jnp.var(xf, axis=axes) * (count / max(count - 1, 1))
        new = {
            "running_mean": (1 - momentum) * state["running_mean"]
            + momentum * jnp.mean(mean, axis=0),
            "running_var": (1 - momentum) * state["running_var"] + momentum * jnp.mean(var, axis=0),
        }
        return y, {k: v.astype(state[k].dtype) for k, v in new.items()}

    def backward(params, state, x, g, *, key=None, train=False):
        w, b = params.get("weight"), params.get("bias")
        if _use_running(state, train):
            dx, dw, db = batch_norm_backward(
                x, state["running_mean"], state["running_var"], w, b, g, training=False, eps=eps
            )
        else:
            dx, dw, db = instance_norm_backward(x, w, b, g, eps=eps)
        return named_grads(params, weight=dw, bias=db), dx

    return Layer(init, apply, "instance_norm", backward)
