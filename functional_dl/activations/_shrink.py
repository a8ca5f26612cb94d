"""Shrinkage and thresholding activations, and softmin.

At a kink the derivative is PyTorch's: ``hardshrink'`` and ``softshrink'`` are 0 on the
closed interval ``[−lambd, lambd]``; ``threshold'`` is 0 where ``x <= threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import grads
from .._checks import check_in_range, check_nonnegative
from ._common import as_float, check_real, edge_grid, elementwise, smooth_grid
from ._softmax import softmax


def register_public(
    name: str,
    formula: Callable[..., Any],
    derivative: Callable[..., Any],
    *hp: Any,
    public: Callable[..., Any],
    kinks: tuple[float, ...] = (),
) -> None:
    """Register ``formula``/``derivative`` (hyperparameters ``hp`` bound) as ``name`` in
    :mod:`functional_dl.grads`, with the ``public`` function of ``x`` it must match."""
    grads.register(
        name,
        forward=lambda x: formula(x, *hp),
        backward=lambda x, g: g * derivative(x, formula(x, *hp), *hp),
        examples=lambda: [(edge_grid(*kinks),)],
        fd_examples=lambda: [(smooth_grid(),)],
        public=public,
    )


def _inside(x, lambd):
    return (x >= -lambd) & (x <= lambd)


# ---------------------------------------------------------------------- hardshrink
def _hardshrink_formula(x, lambd):
    return jnp.where(_inside(x, lambd), jnp.zeros_like(x), x)


def _hardshrink_grad(x, y, lambd):
    """d/dx hardshrink = 0 if −lambd <= x <= lambd else 1 (0 at ±lambd, as PyTorch)."""
    return jnp.where(_inside(x, lambd), 0.0, 1.0).astype(x.dtype)


_hardshrink = elementwise(_hardshrink_formula, _hardshrink_grad, n_hp=1)


def hardshrink(x: Any, *, lambd: float = 0.5) -> jax.Array:
    """Hard shrinkage: ``x`` where ``|x| > lambd``, else 0.

    Formula: ``hardshrink(x) = x if |x| > lambd else 0``; derivative ``1 if |x| > lambd
    else 0`` (0 at ``|x| = lambd``).

    Args:
      x: input array ``[...]``.
      lambd: the threshold (default 0.5).

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.hardshrink(x, lambd)`` (same values and gradient).

    Example:
      >>> fdl.activations.hardshrink(jnp.array([-1.0, 0.5, 0.7]))
      Array([-1. ,  0. ,  0.7], dtype=float32)
    """
    check_real("lambd", lambd, fn="hardshrink")
    return _hardshrink(as_float(x, fn="hardshrink"), lambd)


# ---------------------------------------------------------------------- softshrink
def _softshrink_formula(x, lambd):
    # inside: x * 0 (NaN for NaN x) + lambd * 0 (NaN for an invalid traced lambd)
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, x * 0 + lambd * 0))


def _softshrink_grad(x, y, lambd):
    """d/dx softshrink = 0 if −lambd <= x <= lambd else 1 (0 at ±lambd, as PyTorch)."""
    return jnp.where(_inside(x, lambd), 0.0, 1.0).astype(x.dtype)


_softshrink = elementwise(_softshrink_formula, _softshrink_grad, n_hp=1)


def softshrink(x: Any, *, lambd: float = 0.5) -> jax.Array:
    """Soft shrinkage (the proximal map of ``lambd·|x|``).

    Formula: ``softshrink(x) = x − lambd if x > lambd``, ``x + lambd if x < −lambd``,
    else 0; derivative ``1 if |x| > lambd else 0`` (0 at ``|x| = lambd``).

    Args:
      x: input array ``[...]``.
      lambd: the threshold, ``>= 0`` (default 0.5).

    Returns:
      an array with the shape and floating dtype of ``x``.

    Raises:
      ValueError: ``lambd < 0`` (as PyTorch).

    PyTorch: ``torch.nn.functional.softshrink(x, lambd)`` (same values and gradient).

    Example:
      >>> fdl.activations.softshrink(jnp.array([-1.0, 0.25, 2.0]))
      Array([-0.5,  0. ,  1.5], dtype=float32)
    """
    check_real("lambd", lambd, fn="softshrink")
    lambd = check_nonnegative("lambd", lambd, fn="softshrink")
    return _softshrink(as_float(x, fn="softshrink"), lambd)


# ---------------------------------------------------------------------- tanhshrink
def _tanhshrink_formula(x):
    return x - jnp.tanh(x)


def _tanhshrink_grad(x, y):
    """d/dx (x − tanh x) = tanh(x)²."""
    t = jnp.tanh(x)
    return t * t


_tanhshrink = elementwise(_tanhshrink_formula, _tanhshrink_grad)


def tanhshrink(x: Any) -> jax.Array:
    """``x − tanh(x)``.

    Formula: ``tanhshrink(x) = x − tanh(x)``; derivative ``tanh(x)²``.

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.tanhshrink`` (same).

    Example:
      >>> fdl.activations.tanhshrink(jnp.array([0.0, 1.0]))
      Array([0.        , 0.23840582], dtype=float32)
    """
    return _tanhshrink(as_float(x, fn="tanhshrink"))


# ----------------------------------------------------------------------- threshold
def _threshold_formula(x, threshold, value):
    return jnp.where(x <= threshold, jnp.full_like(x, value), x)


def _threshold_grad(x, y, threshold, value):
    """d/dx threshold = 1 if x > threshold else 0 (0 at the threshold, as PyTorch)."""
    return jnp.where(x <= threshold, 0.0, 1.0).astype(x.dtype)


_threshold = elementwise(_threshold_formula, _threshold_grad, n_hp=2)


def threshold(x: Any, threshold: float, value: float) -> jax.Array:
    """Replace every element ``<= threshold`` by ``value``.

    Formula: ``y = x if x > threshold else value``; derivative ``1 if x > threshold
    else 0``. NaN stays NaN (``NaN <= threshold`` is false).

    Args:
      x: input array ``[...]``.
      threshold: the threshold (a finite real number).
      value: the replacement (a real number; ``±inf`` allowed, as PyTorch, e.g.
        ``-inf`` to mask logits before a softmax).

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.threshold(x, threshold, value)`` (same).

    Example:
      >>> fdl.activations.threshold(jnp.array([-1.0, 0.5, 2.0]), 0.5, -9.0)
      Array([-9., -9.,  2.], dtype=float32)
    """
    check_real("threshold", threshold, fn="threshold")
    check_in_range("value", value, -math.inf, math.inf, fn="threshold")
    return _threshold(as_float(x, fn="threshold"), threshold, value)


# ------------------------------------------------------------------------- softmin
def softmin(x: Any, *, axis: int | tuple[int, ...] = -1, where: Any = None) -> jax.Array:
    """Softmin over ``axis``: ``softmax(−x)``, with the same ``where`` masks.

    Formula: ``softmin(x)_i = exp(−x_i) / Σ_j exp(−x_j)``; derivative (vjp)
    ``x_bar = −y·(g − Σ g·y)``, ``y = softmin(x)`` (the softmax rule, negated).

    Args:
      x: input ``[..., n, ...]``.
      axis: the axis (or axes) to normalise over (default -1); PyTorch's ``dim``.
      where: optional boolean mask broadcastable to ``x``, as in :func:`softmax`.

    Returns:
      probabilities with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.softmin(x, dim)`` (no mask argument).

    Example:
      >>> fdl.activations.softmin(jnp.array([2.0, 2.0]))
      Array([0.5, 0.5], dtype=float32)
    """
    return softmax(-as_float(x, fn="softmin"), axis=axis, where=where)


# ---------------------------------------------------------------- gradient registry
for _l in (0.5, 1.5):
    for _fn, _formula, _grad in (
        (hardshrink, _hardshrink_formula, _hardshrink_grad),
        (softshrink, _softshrink_formula, _softshrink_grad),
    ):
        register_public(
            f"{_fn.__name__}(lambd={_l})",
            _formula,
            _grad,
            _l,
            public=lambda x, _l=_l, _fn=_fn: _fn(x, lambd=_l),
            kinks=(_l, -_l),
        )
register_public("tanhshrink", _tanhshrink_formula, _tanhshrink_grad, public=tanhshrink)
register_public(
    "threshold(threshold=1.0, value=-2.0)",
    _threshold_formula,
    _threshold_grad,
    1.0,
    -2.0,
    public=lambda x: threshold(x, 1.0, -2.0),
    kinks=(1.0,),
)


def _softmin_formula(x):
    e = jnp.exp(-x + jax.lax.stop_gradient(jnp.min(x, -1, keepdims=True)))
    return e / jnp.sum(e, -1, keepdims=True)


def _softmin_backward(x, g):
    """``x_bar = −y·(g − Σ g·y)`` over the last axis."""
    y = _softmin_formula(x)
    return -y * (g - jnp.sum(g * y, -1, keepdims=True))


def _softmin_examples():
    x = np.random.default_rng(0).standard_normal((4, 6)) * 3
    x[1] = [0.0, 1e4, -1e4, 20.0, -20.0, 0.0]
    return [(x,)]


grads.register(
    "softmin",
    forward=_softmin_formula,
    backward=_softmin_backward,
    examples=_softmin_examples,
    fd_examples=lambda: [(np.random.default_rng(1).standard_normal((4, 6)) * 3,)],
    public=softmin,
)
