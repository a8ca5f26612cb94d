"""Batch normalisation with PyTorch's running statistics, and its closed-form backward."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_in_range, check_positive
from ._normalize import affine, normalize, normalize_formula, normalize_vjp
from ._utils import check_vector, register_grad, stat_dtype

__all__ = ["batch_norm", "batch_norm_backward"]


def _check(x, running_mean, running_var, weight, bias, momentum, eps):
    fn = "batch_norm"
    if np.ndim(x) < 2:
        raise ValueError(
            f"{fn}: x must have rank >= 2 ([N, ..., C]), got x.shape={tuple(np.shape(x))}"
        )
    c = x.shape[-1]
    for name, v in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        check_vector(name, v, c, fn=fn, of=f"the channels (last axis) of x.shape={x.shape}")
    check_in_range("momentum", momentum, 0.0, 1.0, fn=fn)
    check_positive("eps", eps, fn=fn)
    return tuple(range(x.ndim - 1))


def _count(x: Any, axis_name: Any) -> int:
    """Values per channel (over every device of ``axis_name``); training needs 2 or more."""
    count = math.prod(x.shape[:-1])
    if axis_name is not None:
        count *= jax.lax.axis_size(axis_name)
    if count < 2:
        raise ValueError(
            f"batch_norm: training needs more than 1 value per channel, got "
            f"x.shape={tuple(x.shape)}"
        )
    return count


def batch_norm(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    axis_name: Any = None,
) -> tuple[Any, Any, Any]:
    """Normalise each channel with batch statistics (training) or running ones (eval).

    Training, with per-channel statistics over every axis but the last:

    .. math:: y = \\frac{x - \\mu_B}{\\sqrt{\\sigma_B^2 + \\epsilon}} \\gamma + \\beta, \\quad
              \\hat\\mu \\leftarrow (1 - m)\\hat\\mu + m \\mu_B, \\quad
              \\hat\\sigma^2 \\leftarrow (1 - m)\\hat\\sigma^2 + m \\tfrac{n}{n-1} \\sigma_B^2

    (biased variance to normalise, unbiased to update ``running_var``). Eval uses
    ``running_mean`` / ``running_var`` and returns them unchanged.

    Args:
      x: ``[N, ..., C]`` (channels last).
      running_mean, running_var: ``[C]`` (PyTorch starts them at 0 and 1), or ``None``
        in training when no running statistics are kept.
      weight, bias: optional ``[C]`` (``gamma``, ``beta``).
      training: use batch statistics and update the running ones.
      momentum: weight of the new batch statistic.
      eps: added to the variance.
      axis_name: a mapped axis (``pmap``/``shard_map``/``vmap``) over which the batch
        statistics are averaged (``lax.pmean``): synchronised batch norm.

    Returns:
      ``(y, new_running_mean, new_running_var)``; ``y`` has ``x``'s dtype, the running
      statistics their own dtype and no gradient.

    PyTorch: ``torch.nn.functional.batch_norm`` (``momentum=None`` is not supported).
    Statistics use the shifted-data algorithm (accurate at mean 1e4, std 1e-2).
    Ioffe & Szegedy (2015).

    Example:
      >>> y, rm, rv = batch_norm(x, jnp.zeros(C), jnp.ones(C), training=True)
    """
    return _batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum, eps, axis_name, normalize
    )


def _batch_norm(
    x, running_mean, running_var, weight, bias, training, momentum, eps, axis_name, norm
):
    axes = _check(x, running_mean, running_var, weight, bias, momentum, eps)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm: eval mode (training=False) needs running_mean and "
                "running_var, got None"
            )
        xf = x.astype(stat_dtype(x.dtype))
        y = (xf - running_mean) * jax.lax.rsqrt(running_var.astype(xf.dtype) + eps)
        return affine(y, x, weight, bias), running_mean, running_var
    count = _count(x, axis_name)
    y, mean, var = norm(x, weight, bias, axes, eps, axis_name)
    mean, var = jax.lax.stop_gradient((mean.reshape(-1), var.reshape(-1)))
    new_mean = new_var = None
    if running_mean is not None:
        new_mean = ((1 - momentum) * running_mean + momentum * mean).astype(running_mean.dtype)
    if running_var is not None:
        unbiased = var * (count / (count - 1))
        new_var = ((1 - momentum) * running_var + momentum * unbiased).astype(running_var.dtype)
    return y, new_mean, new_var


def batch_norm_backward(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any,
    bias: Any,
    g: Any,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    axis_name: Any = None,
) -> tuple[Any, Any, Any]:
    """Closed-form vjp of :func:`batch_norm`'s ``y``: ``(dx, dweight, dbias)``.

    Training, with ``xhat = (x - mu_B) rstd`` and ``dxhat = g * gamma``, means over the batch
    (and over ``axis_name``):
    ``dx = rstd (dxhat - E[dxhat] - xhat E[dxhat xhat])``.
    Eval: ``dx = g * gamma / sqrt(running_var + eps)``.
    Both: ``dweight = sum(g xhat)``, ``dbias = sum(g)`` over every axis but the channels
    (this device's share; ``None`` for absent parameters).
    """
    axes = _check(x, running_mean, running_var, weight, bias, momentum, eps)
    if training:
        _count(x, axis_name)
        return normalize_vjp(x, weight, bias, g, axes, eps, axis_name)
    gf = g.astype(stat_dtype(x.dtype))
    rstd = jax.lax.rsqrt(running_var.astype(gf.dtype) + eps)
    xhat = (x.astype(gf.dtype) - running_mean) * rstd
    dx = (gf if weight is None else gf * weight) * rstd
    dw = None if weight is None else jnp.sum(gf * xhat, axis=axes).astype(weight.dtype)
    db = None if bias is None else jnp.sum(gf, axis=axes).astype(bias.dtype)
    return dx.astype(x.dtype), dw, db


def _examples():
    rng = np.random.default_rng(30)
    rm, rv = rng.standard_normal(3), 0.5 + rng.random(3)
    return [
        (
            rng.standard_normal((4, 2, 3)),
            rm,
            rv,
            1 + rng.standard_normal(3),
            rng.standard_normal(3),
        ),
        (1e4 + 1e-2 * rng.standard_normal((6, 3)), rm, rv, rng.standard_normal(3), np.zeros(3)),
    ]


for _training in (True, False):
    register_grad(
        f"batch_norm(training={_training})",
        forward=lambda x, rm, rv, w, b, t=_training: _batch_norm(
            x, rm, rv, w, b, t, 0.1, 1e-5, None, normalize_formula
        )[0],
        backward=lambda x, rm, rv, w, b, g, t=_training: batch_norm_backward(
            x, rm, rv, w, b, g, training=t
        ),
        examples=_examples,
        fd_examples=lambda: _examples()[:1],
        argnums=(0, 3, 4),
    )
