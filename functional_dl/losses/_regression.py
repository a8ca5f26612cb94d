"""Regression losses: squared error, absolute error, smooth L1 and Huber."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_nonnegative, check_positive
from ._common import pointwise_loss

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"]


def _abs(d):
    # |d| whose autodiff gradient at 0 is sign(0) = 0, as PyTorch's abs backward
    return jnp.sign(d) * d


def _mse_formula(x, y):
    d = x - y
    return d * d


def _mse_backward(x, y, g):
    """d/dx (x − y)² = 2(x − y); d/dy = −2(x − y)."""
    gx = 2 * (x - y) * g
    return gx, -gx


def _l1_formula(x, y):
    return _abs(x - y)


def _l1_backward(x, y, g):
    """d/dx |x − y| = sign(x − y) (0 at x = y, as PyTorch); d/dy = −sign(x − y)."""
    gx = jnp.sign(x - y) * g
    return gx, -gx


def _smooth_l1_formula(x, y, beta):
    d = x - y
    a = _abs(d)
    safe_beta = jnp.where(beta > 0, beta, 1.0)
    return jnp.where(a < beta, 0.5 * d * d / safe_beta, a - 0.5 * beta)


def _smooth_l1_backward(x, y, beta, g):
    """d/dx = (x − y)/beta if |x − y| < beta else sign(x − y); d/dy = −d/dx."""
    d = x - y
    safe_beta = jnp.where(beta > 0, beta, 1.0)
    gx = jnp.where(jnp.abs(d) < beta, d / safe_beta, jnp.sign(d)) * g
    return gx, -gx


def _huber_formula(x, y, delta):
    d = x - y
    a = _abs(d)
    return jnp.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def _huber_backward(x, y, delta, g):
    """d/dx = x − y if |x − y| <= delta else delta·sign(x − y); d/dy = −d/dx."""
    d = x - y
    gx = jnp.where(jnp.abs(d) <= delta, d, delta * jnp.sign(d)) * g
    return gx, -gx


_mse = grads.hand_rule(_mse_formula, _mse_backward, argnums=(0, 1))
_l1 = grads.hand_rule(_l1_formula, _l1_backward, argnums=(0, 1))
_smooth_l1 = grads.hand_rule(_smooth_l1_formula, _smooth_l1_backward, argnums=(0, 1))
_huber = grads.hand_rule(_huber_formula, _huber_backward, argnums=(0, 1))


def mse_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Mean squared error.

    ``loss = (input − target)²`` per element, then reduced.

    Args:
      input: predictions, any shape ``[...]``.
      target: same shape as ``input``.
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.mse_loss`` (which also broadcasts; here the
    shapes must match) and to ``optax.squared_error`` with ``'none'``
    (``optax.l2_loss`` is half of it). Gradient: ``2(input − target)``.

    Example::

        >>> mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))  # 2.5
        Array(2.5, dtype=float32)
    """
    return pointwise_loss("mse_loss", _mse, input, target, reduction)


def l1_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Mean absolute error.

    ``loss = |input − target|`` per element; the gradient at ``input == target`` is 0
    (PyTorch's convention).

    Args:
      input: predictions, any shape ``[...]``.
      target: targets ``[...]``, the shape of ``input``.
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.l1_loss``. Gradient: ``sign(input − target)``.

    Example::

        >>> l1_loss(jnp.array([1.0, -2.0]), jnp.zeros(2))  # 1.5
        Array(1.5, dtype=float32)
    """
    return pointwise_loss("l1_loss", _l1, input, target, reduction)


def smooth_l1_loss(
    input: ArrayLike, target: ArrayLike, *, beta: float = 1.0, reduction: str = "mean"
) -> jax.Array:
    """Smooth L1 loss: quadratic below ``beta``, linear above.

    With ``d = input − target``: ``loss = 0.5·d²/beta`` if ``|d| < beta`` else
    ``|d| − 0.5·beta``. ``beta = 0`` is exactly :func:`l1_loss`.

    Args:
      input: predictions, any shape ``[...]``.
      target: same shape as ``input``.
      beta: threshold, ``>= 0`` (default 1.0).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.smooth_l1_loss``; equals
    ``huber_loss(..., delta=beta) / beta`` for ``beta > 0``. Gradient:
    ``d/beta`` if ``|d| < beta`` else ``sign(d)``.

    Example::

        >>> smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2))  # (0.125 + 2.5) / 2
        Array(1.3125, dtype=float32)
    """
    beta = check_nonnegative("beta", beta, fn="smooth_l1_loss")
    return pointwise_loss("smooth_l1_loss", _smooth_l1, input, target, reduction, beta)


def huber_loss(
    input: ArrayLike, target: ArrayLike, *, delta: float = 1.0, reduction: str = "mean"
) -> jax.Array:
    """Huber loss: quadratic below ``delta``, linear with slope ``delta`` above.

    With ``d = input − target``: ``loss = 0.5·d²`` if ``|d| <= delta`` else
    ``delta·(|d| − 0.5·delta)``.

    Args:
      input: predictions, any shape ``[...]``.
      target: same shape as ``input``.
      delta: threshold, ``> 0`` (default 1.0).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.huber_loss`` and, with ``'none'``, to
    ``optax.huber_loss(input, target, delta)``. Gradient: ``d`` if ``|d| <= delta``
    else ``delta·sign(d)``.

    Example::

        >>> huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2))  # (0.125 + 2.5) / 2
        Array(1.3125, dtype=float32)
    """
    delta = check_positive("delta", delta, fn="huber_loss")
    return pointwise_loss("huber_loss", _huber, input, target, reduction, delta)


# ---------------------------------------------------------------- gradient registry
def _pairs():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-3, 3, 12), [-1e4, 1e4, 0.5, -0.25]])
    y = np.concatenate([rng.normal(size=12), [0.0, 1.0, 0.5, 0.75]])  # ties: kinks at d=0, ±1
    return [(x, y)]


def _smooth_pairs():
    rng = np.random.default_rng(1)
    d = rng.choice([-1, 1], size=16) * rng.uniform(0.1, 0.9, size=16)
    d[::2] *= 5  # both regimes, away from the kinks at |d| = 1 and d = 0
    y = rng.normal(size=16)
    return [(y + d, y)]


def _register(name: str, forward: Any, backward: Any, public: Any, **extra: Any) -> None:
    """Registers a pointwise regression loss's rule ``backward(x, y, g) -> (dx, dy)``,
    checked at the same pairs as every loss here (``public`` with ``reduction="none"``)."""
    grads.register(
        name,
        forward=forward,
        backward=backward,
        examples=_pairs,
        argnums=(0, 1),
        fd_examples=_smooth_pairs,
        public=lambda x, y: public(x, y, reduction="none"),
        **extra,
    )


_register(
    "mse_loss",
    _mse_formula,
    _mse_backward,
    mse_loss,
    reference=lambda x, y, g: (2 * (x - y) * g, -2 * (x - y) * g),
    reference_name="closed form 2(x−y)",
)
_register("l1_loss", _l1_formula, _l1_backward, l1_loss)
for _beta in (1.0, 0.0):
    _register(
        f"smooth_l1_loss(beta={_beta})",
        functools.partial(_smooth_l1_formula, beta=_beta),
        lambda x, y, g, _beta=_beta: _smooth_l1_backward(x, y, _beta, g),
        functools.partial(smooth_l1_loss, beta=_beta),
    )
_register(
    "huber_loss(delta=1.0)",
    functools.partial(_huber_formula, delta=1.0),
    lambda x, y, g: _huber_backward(x, y, 1.0, g),
    huber_loss,
    reference=lambda x, y, g: jax.vjp(lambda x, y: optax.huber_loss(x, y, delta=1.0), x, y)[1](g),
    reference_name="optax.huber_loss",
)
