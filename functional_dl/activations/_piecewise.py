"""Piecewise-linear activations: the ReLU family, hard sigmoid/swish/tanh and PReLU.

At a kink the derivative is PyTorch's: the one-sided value its backward kernel returns
(``relu'(0) = 0``, ``leaky_relu'(0) = negative_slope``, ``hardtanh' = 0`` at both
bounds, ``hardswish'(-3) = 0`` and ``hardswish'(3) = 1``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import grads
from .._checks import check_ndim, is_concrete
from .._dtypes import upcast
from ._common import as_float, check_real, elementwise, register_elementwise

# ---------------------------------------------------------------------------- relu


def _relu_formula(x):
    return jnp.where(x <= 0, jnp.zeros_like(x), x)


def _relu_grad(x, y):
    """d/dx relu = 1 if x > 0 else 0 (0 at the kink x = 0, as PyTorch)."""
    return (x > 0).astype(x.dtype)


_relu = elementwise(_relu_formula, _relu_grad)


def relu(x: Any) -> jax.Array:
    """Rectified linear unit.

    Formula: ``relu(x) = max(x, 0)``; derivative ``1 if x > 0 else 0`` (0 at x = 0).

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.relu`` (same values and gradient); ``jax.nn.relu``
    is the same function.

    Example:
      >>> fdl.activations.relu(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 2.], dtype=float32)
    """
    return _relu(as_float(x, fn="relu"))


register_elementwise("relu", _relu_formula, _relu_grad, public=relu, reference=jax.nn.relu)

# ------------------------------------------------------------------- hardtanh, relu6


def _hardtanh_formula(x, min_val, max_val):
    return jnp.where(
        x <= min_val,
        jnp.full_like(x, min_val),
        jnp.where(x >= max_val, jnp.full_like(x, max_val), x),
    )


def _hardtanh_grad(x, y, min_val, max_val):
    """d/dx hardtanh = 1 if min_val < x < max_val else 0 (0 at both bounds, as PyTorch)."""
    return ((x > min_val) & (x < max_val)).astype(x.dtype)


_hardtanh = elementwise(_hardtanh_formula, _hardtanh_grad, n_hp=2)


def hardtanh(x: Any, *, min_val: float = -1.0, max_val: float = 1.0) -> jax.Array:
    """Hard tanh: ``x`` clipped to ``[min_val, max_val]``.

    Formula: ``hardtanh(x) = min(max(x, min_val), max_val)``; derivative ``1`` strictly
    inside ``(min_val, max_val)``, else ``0`` (0 at both bounds).

    Args:
      x: input array ``[...]``.
      min_val: lower bound (default -1).
      max_val: upper bound (default 1); ``min_val <= max_val`` is required.

    Returns:
      an array with the shape and floating dtype of ``x``.

    Raises:
      ValueError: ``min_val > max_val`` or a bound is not a finite real number.

    PyTorch: ``torch.nn.functional.hardtanh(x, min_val, max_val)`` (same). ``jax.nn.hard_tanh``
    has fixed bounds -1, 1 and derivative 1 at the bounds.

    Example:
      >>> fdl.activations.hardtanh(jnp.array([-3.0, 0.5, 3.0]), min_val=-2.0, max_val=2.0)
      Array([-2. ,  0.5,  2. ], dtype=float32)
    """
    check_real("min_val", min_val, fn="hardtanh")
    check_real("max_val", max_val, fn="hardtanh")
    if is_concrete(min_val) and is_concrete(max_val):
        if float(min_val) > float(max_val):
            raise ValueError(
                "hardtanh: min_val must be <= max_val, got "
                f"min_val={min_val!r} and max_val={max_val!r}"
            )
    return _hardtanh(as_float(x, fn="hardtanh"), min_val, max_val)


def relu6(x: Any) -> jax.Array:
    """ReLU capped at 6: ``hardtanh(x, min_val=0, max_val=6)``.

    Formula: ``relu6(x) = min(max(x, 0), 6)``; derivative ``1 if 0 < x < 6 else 0``
    (0 at both kinks).

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.relu6`` (same); ``jax.nn.relu6`` is the same function.

    Example:
      >>> fdl.activations.relu6(jnp.array([-1.0, 3.0, 8.0]))
      Array([0., 3., 6.], dtype=float32)
    """
    return _hardtanh(as_float(x, fn="relu6"), 0.0, 6.0)


register_elementwise(
    "hardtanh", _hardtanh_formula, _hardtanh_grad, -1.0, 1.0, kinks=(-1.0, 1.0), public=hardtanh
)
register_elementwise(
    "hardtanh(min_val=-2.0, max_val=3.0)",
    _hardtanh_formula,
    _hardtanh_grad,
    -2.0,
    3.0,
    kinks=(-2.0, 3.0),
    public=hardtanh,
)
register_elementwise(
    "relu6",
    _hardtanh_formula,
    _hardtanh_grad,
    0.0,
    6.0,
    kinks=(6.0,),
    public=relu6,
    reference=jax.nn.relu6,
)

# ------------------------------------------------------------------------ leaky_relu


def _leaky_relu_formula(x, negative_slope):
    return jnp.where(x > 0, x, x * negative_slope)


def _leaky_relu_grad(x, y, negative_slope):
    """d/dx leaky_relu = 1 if x > 0 else negative_slope (negative_slope at 0, as PyTorch)."""
    return jnp.where(x > 0, jnp.ones_like(x), jnp.full_like(x, negative_slope))


_leaky_relu = elementwise(_leaky_relu_formula, _leaky_relu_grad, n_hp=1)


def leaky_relu(x: Any, *, negative_slope: float = 0.01) -> jax.Array:
    """Leaky ReLU: identity for positive inputs, slope ``negative_slope`` otherwise.

    Formula: ``leaky_relu(x) = x if x > 0 else negative_slope * x``; derivative
    ``1 if x > 0 else negative_slope`` (``negative_slope`` at 0).

    Args:
      x: input array ``[...]``.
      negative_slope: slope for ``x <= 0`` (default 0.01).

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.leaky_relu`` (same). ``jax.nn.leaky_relu`` has the same
    values but derivative 1 at x = 0.

    Example:
      >>> fdl.activations.leaky_relu(jnp.array([-2.0, 0.0, 2.0]), negative_slope=0.1)
      Array([-0.2,  0. ,  2. ], dtype=float32)
    """
    check_real("negative_slope", negative_slope, fn="leaky_relu")
    return _leaky_relu(as_float(x, fn="leaky_relu"), negative_slope)


register_elementwise(
    "leaky_relu",
    _leaky_relu_formula,
    _leaky_relu_grad,
    0.01,
    public=leaky_relu,
    reference=jax.nn.leaky_relu,
)
register_elementwise(
    "leaky_relu(negative_slope=0.2)", _leaky_relu_formula, _leaky_relu_grad, 0.2, public=leaky_relu
)

# ------------------------------------------------------------- hardsigmoid, hardswish


def _hardsigmoid_formula(x):
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, jnp.ones_like(x), (x + 3) / 6))


def _hardsigmoid_grad(x, y):
    """d/dx hardsigmoid = 1/6 if -3 < x < 3 else 0 (0 at x = +-3, as PyTorch)."""
    return jnp.where((x > -3) & (x < 3), jnp.full_like(x, 1 / 6), jnp.zeros_like(x))


_hardsigmoid = elementwise(_hardsigmoid_formula, _hardsigmoid_grad)


def hardsigmoid(x: Any) -> jax.Array:
    """Hard sigmoid, a piecewise-linear sigmoid.

    Formula: ``hardsigmoid(x) = relu6(x + 3) / 6``; derivative ``1/6 if -3 < x < 3
    else 0`` (0 at x = +-3).

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.hardsigmoid`` (same); ``jax.nn.hard_sigmoid`` is the
    same function.

    Example:
      >>> fdl.activations.hardsigmoid(jnp.array([-4.0, 0.0, 1.5]))
      Array([0.  , 0.5 , 0.75], dtype=float32)
    """
    return _hardsigmoid(as_float(x, fn="hardsigmoid"))


register_elementwise(
    "hardsigmoid",
    _hardsigmoid_formula,
    _hardsigmoid_grad,
    kinks=(-3.0, 3.0),
    public=hardsigmoid,
    reference=jax.nn.hard_sigmoid,
)


def _hardswish_formula(x):
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, x, x * (x + 3) / 6))


def _hardswish_grad(x, y):
    """d/dx hardswish = 0 if x <= -3, x/3 + 1/2 if -3 < x < 3, 1 if x >= 3 (as PyTorch)."""
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x < 3, x / 3 + 0.5, jnp.ones_like(x)))


_hardswish = elementwise(_hardswish_formula, _hardswish_grad)


def hardswish(x: Any) -> jax.Array:
    """Hard swish: ``x * hardsigmoid(x)``.

    Formula: ``hardswish(x) = x * relu6(x + 3) / 6``; derivative ``0`` for ``x <= -3``,
    ``x/3 + 1/2`` for ``-3 < x < 3``, ``1`` for ``x >= 3`` (so 0 at -3 and 1 at 3).

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.hardswish`` (same); ``jax.nn.hard_swish`` is the same
    function.

    Example:
      >>> fdl.activations.hardswish(jnp.array([-4.0, 0.0, 1.5, 4.0]))
      Array([0.   , 0.   , 1.125, 4.   ], dtype=float32)
    """
    return _hardswish(as_float(x, fn="hardswish"))


register_elementwise(
    "hardswish",
    _hardswish_formula,
    _hardswish_grad,
    kinks=(-3.0, 3.0),
    public=hardswish,
    reference=jax.nn.hard_swish,
)

# ----------------------------------------------------------------------------- prelu


def _prelu_formula(x, weight):
    return jnp.where(x > 0, x, jnp.broadcast_to(weight, x.shape) * x)


def _prelu_backward(x, weight, g):
    """Hand-derived vjp of prelu.

    d/dx prelu = 1 if x > 0 else weight (weight at 0, as PyTorch);
    d/dweight prelu = 0 if x > 0 else x, summed over every axis the weight is
    broadcast along (all but the channel axis, or all axes for a scalar weight).
    """
    gx = jnp.where(x > 0, g, jnp.broadcast_to(weight, g.shape) * g)
    gw_full = jnp.where(x > 0, jnp.zeros_like(x), x * g)
    w_shape = np.shape(weight)
    if len(w_shape) == 0:
        gw = jnp.sum(gw_full)
    else:
        lead = tuple(range(gw_full.ndim - 1))
        gw = jnp.sum(gw_full, axis=lead)
        if w_shape[-1] == 1:
            gw = jnp.sum(gw, keepdims=True)
    return gx, gw.reshape(w_shape)


_prelu = grads.hand_rule(_prelu_formula, _prelu_backward, argnums=(0, 1))


def prelu(x: Any, weight: Any) -> jax.Array:
    """Parametric ReLU: leaky ReLU with a learned slope per channel.

    Formula: ``prelu(x) = x if x > 0 else weight * x``; derivatives ``d/dx = 1 if x > 0
    else weight`` (``weight`` at 0) and ``d/dweight = 0 if x > 0 else x``, summed over
    the axes the weight is broadcast along.

    Args:
      x: input ``[..., C]``; the channel axis is the LAST axis (PyTorch uses axis 1).
      weight: the slopes: a scalar, ``[1]`` (one slope shared by every channel) or
        ``[C]`` (one slope per channel, broadcast over every other axis). The
        ``nn.PReLU`` layer initialises it to 0.25, as PyTorch.

    Returns:
      an array with the shape and floating dtype of ``x``.

    Raises:
      ValueError: ``weight`` is not a scalar, ``[1]`` or ``[C]``.

    PyTorch: ``torch.nn.functional.prelu(x, weight)`` with channels moved last.

    Example:
      >>> fdl.activations.prelu(jnp.array([[-1.0, -1.0], [2.0, 2.0]]), jnp.array([0.25, 0.5]))
      Array([[-0.25, -0.5 ],
             [ 2.  ,  2.  ]], dtype=float32)
    """
    x = as_float(x, fn="prelu")
    weight = jnp.asarray(weight)
    check_ndim("weight", weight, (0, 1), fn="prelu")
    if weight.ndim == 1:
        channels = x.shape[-1] if x.ndim else 1
        if weight.shape[0] not in (1, channels):
            raise ValueError(
                f"prelu: weight must have 1 or C={channels} elements (C = x.shape[-1]), "
                f"got weight.shape={weight.shape} for x.shape={x.shape}"
            )
    if x.ndim == 0:  # no channel axis: a single slope
        weight = weight.reshape(())
    xc = upcast(x)
    return _prelu(xc, weight.astype(xc.dtype)).astype(x.dtype)


def _prelu_examples():
    x = np.concatenate([np.linspace(-6.0, 6.0, 9), [0.0, 20.0, -20.0, 1e4, -1e4, -0.5]])
    x = x.reshape(5, 3)
    return [(x, np.array([0.25, -0.1, 1.5])), (x, np.array([0.3]))]


def _prelu_fd_examples():
    x = (np.linspace(-5.0, 5.0, 15) + 0.123).reshape(5, 3)
    return [(x, np.array([0.25, -0.1, 1.5]))]


grads.register(
    "prelu",
    forward=_prelu_formula,
    backward=_prelu_backward,
    examples=_prelu_examples,
    fd_examples=_prelu_fd_examples,
    argnums=(0, 1),
    public=prelu,
)
