"""Exponential-based activations: ELU, SELU, CELU, softplus and log-sigmoid.

Every branch that is not selected by ``jnp.where`` is fed a safe input (``expm1`` of
``min(x, 0)``, ``logaddexp`` instead of ``log1p(exp(.))``), so values and gradients
stay finite for any finite input.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_in_range, check_positive, is_concrete
from ._common import as_float, check_real, elementwise, register_elementwise

# ---------------------------------------------------------------------- elu, selu

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _elu_formula(x, alpha, scale=1.0):
    neg = jnp.where(x > 0, jnp.zeros_like(x), x)  # keeps expm1 finite in the unused branch
    return scale * jnp.where(x > 0, x, alpha * jnp.expm1(neg))


def _elu_grad(x, y, alpha, scale=1.0):
    """d/dx elu = scale if x > 0 else scale * alpha * exp(x) (scale * alpha at 0, as PyTorch)."""
    neg = jnp.where(x > 0, jnp.zeros_like(x), x)
    return scale * jnp.where(x > 0, jnp.ones_like(x), alpha * jnp.exp(neg))


_elu = elementwise(_elu_formula, _elu_grad, n_hp=2)


def elu(x: Any, *, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit.

    Formula: ``elu(x) = x if x > 0 else alpha * (exp(x) - 1)``; derivative
    ``1 if x > 0 else alpha * exp(x)`` (``alpha`` at 0).

    Args:
      x: input array ``[...]``.
      alpha: saturation value for negative inputs (default 1.0).

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.elu`` (same); ``jax.nn.elu`` is the same function.
    Paper: Clevert et al., 2015, https://arxiv.org/abs/1511.07289.

    Example:
      >>> fdl.activations.elu(jnp.array([-1.0, 0.0, 2.0]))
      Array([-0.63212055,  0.        ,  2.        ], dtype=float32)
    """
    check_real("alpha", alpha, fn="elu")
    return _elu(as_float(x, fn="elu"), alpha, 1.0)


def selu(x: Any) -> jax.Array:
    """Scaled exponential linear unit (self-normalising networks).

    Formula: ``selu(x) = scale * elu(x, alpha)`` with ``alpha = 1.6732632423543772...``
    and ``scale = 1.0507009873554804...``; derivative ``scale if x > 0 else
    scale * alpha * exp(x)`` (``scale * alpha ~ 1.7581`` at 0).

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.selu`` and ``jax.nn.selu`` are the same function.
    Paper: Klambauer et al., 2017, https://arxiv.org/abs/1706.02515.

    Example:
      >>> fdl.activations.selu(jnp.array([-1.0, 0.0, 2.0]))
      Array([-1.1113307,  0.       ,  2.101402 ], dtype=float32)
    """
    return _elu(as_float(x, fn="selu"), _SELU_ALPHA, _SELU_SCALE)


register_elementwise("elu", _elu_formula, _elu_grad, 1.0, 1.0, public=elu, reference=jax.nn.elu)
register_elementwise("elu(alpha=0.5)", _elu_formula, _elu_grad, 0.5, 1.0, public=elu)
register_elementwise(
    "selu", _elu_formula, _elu_grad, _SELU_ALPHA, _SELU_SCALE, public=selu, reference=jax.nn.selu
)

# ----------------------------------------------------------------------------- celu


def _celu_formula(x, alpha):
    neg = jnp.where(x > 0, jnp.zeros_like(x), x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(neg / alpha))


def _celu_grad(x, y, alpha):
    """d/dx celu = 1 if x > 0 else exp(x / alpha) (1 at 0: celu is C1 there)."""
    neg = jnp.where(x > 0, jnp.zeros_like(x), x)
    return jnp.where(x > 0, jnp.ones_like(x), jnp.exp(neg / alpha))


_celu = elementwise(_celu_formula, _celu_grad, n_hp=1)


def celu(x: Any, *, alpha: float = 1.0) -> jax.Array:
    """Continuously differentiable exponential linear unit.

    Formula: ``celu(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``; derivative
    ``1 if x > 0 else exp(x / alpha)`` (1 at 0).

    Args:
      x: input array ``[...]``.
      alpha: scale of the negative part (default 1.0), nonzero.

    Returns:
      an array with the shape and floating dtype of ``x``.

    Raises:
      ValueError: ``alpha == 0`` (PyTorch raises too) or not finite.

    PyTorch: ``torch.nn.functional.celu`` (same); ``jax.nn.celu`` is the same function.
    Paper: Barron, 2017, https://arxiv.org/abs/1704.07483.

    Example:
      >>> fdl.activations.celu(jnp.array([-1.0, 0.0, 2.0]), alpha=2.0)
      Array([-0.78693867,  0.        ,  2.        ], dtype=float32)
    """
    check_real("alpha", alpha, fn="celu")
    if is_concrete(alpha) and float(alpha) == 0.0:
        raise ValueError(f"celu: alpha must be nonzero, got alpha={alpha!r}")
    return _celu(as_float(x, fn="celu"), alpha)


register_elementwise("celu", _celu_formula, _celu_grad, 1.0, public=celu, reference=jax.nn.celu)
register_elementwise("celu(alpha=2.0)", _celu_formula, _celu_grad, 2.0, public=celu)

# ------------------------------------------------------------------------- softplus


def _softplus_formula(x, beta, threshold):
    bx = x * beta
    return jnp.where(bx > threshold, x, jnp.logaddexp(bx, 0.0) / beta)


def _softplus_grad(x, y, beta, threshold):
    """d/dx softplus = 1 if beta * x > threshold else sigmoid(beta * x) (0.5 at 0)."""
    bx = x * beta
    return jnp.where(bx > threshold, jnp.ones_like(x), jax.lax.logistic(bx))


_softplus = elementwise(_softplus_formula, _softplus_grad, n_hp=2)


def softplus(x: Any, *, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:
    """Softplus, a smooth ReLU, with PyTorch's ``beta`` and ``threshold``.

    Formula: ``softplus(x) = log(1 + exp(beta * x)) / beta``, and ``x`` itself where
    ``beta * x > threshold`` (the curves agree there to ~exp(-threshold)); derivative
    ``sigmoid(beta * x)``, and 1 above the threshold. ``log(1 + exp(z))`` is computed as
    ``logaddexp(z, 0)``, finite for every finite input (``softplus(1e4) == 1e4``).

    Args:
      x: input array ``[...]``.
      beta: sharpness, > 0 (default 1.0).
      threshold: linear above ``beta * x > threshold`` (default 20.0).

    Returns:
      an array with the shape and floating dtype of ``x``.

    Raises:
      ValueError: ``beta <= 0`` or not finite, or ``threshold`` is NaN.

    PyTorch: ``torch.nn.functional.softplus(x, beta, threshold)`` (same).
    ``jax.nn.softplus`` is ``beta=1`` without the threshold.

    Example:
      >>> fdl.activations.softplus(jnp.array([-1.0, 0.0, 30.0]))
      Array([ 0.3132617,  0.6931472, 30.       ], dtype=float32)
    """
    beta = check_positive("beta", beta, fn="softplus")
    check_real("beta", beta, fn="softplus")
    threshold = check_in_range(
        "threshold", threshold, -math.inf, math.inf, fn="softplus"
    )  # not NaN
    return _softplus(as_float(x, fn="softplus"), beta, threshold)


register_elementwise(
    "softplus",
    _softplus_formula,
    _softplus_grad,
    1.0,
    20.0,
    kinks=(20.0,),
    fd_extra=(19.5, 21.0),
    public=softplus,
    reference=jax.nn.softplus,
)
register_elementwise(
    "softplus(beta=2.0, threshold=5.0)",
    _softplus_formula,
    _softplus_grad,
    2.0,
    5.0,
    kinks=(2.5,),
    fd_extra=(2.4, 2.6),
    public=softplus,
)

# ---------------------------------------------------------------------- log_sigmoid


def _log_sigmoid_formula(x):
    return -jnp.logaddexp(-x, 0.0)


def _log_sigmoid_grad(x, y):
    """d/dx log_sigmoid = 1 - sigmoid(x) = sigmoid(-x)."""
    return jax.lax.logistic(-x)


_log_sigmoid = elementwise(_log_sigmoid_formula, _log_sigmoid_grad)


def log_sigmoid(x: Any) -> jax.Array:
    """Logarithm of the sigmoid, computed stably.

    Formula: ``log_sigmoid(x) = log(1 / (1 + exp(-x))) = -softplus(-x)``, evaluated as
    ``-logaddexp(-x, 0)`` (finite for every finite ``x``: ``log_sigmoid(-1e4) == -1e4``);
    derivative ``sigmoid(-x)``.

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    Same as PyTorch's ``torch.nn.functional.logsigmoid`` and as ``jax.nn.log_sigmoid``.

    Example:
      >>> fdl.activations.log_sigmoid(jnp.array([-1e4, 0.0, 1e4]))
      Array([-1.000000e+04, -6.931472e-01, -0.000000e+00], dtype=float32)
    """
    return _log_sigmoid(as_float(x, fn="log_sigmoid"))


register_elementwise(
    "log_sigmoid",
    _log_sigmoid_formula,
    _log_sigmoid_grad,
    public=log_sigmoid,
    reference=jax.nn.log_sigmoid,
)
