"""Smooth activations: sigmoid, tanh, softsign, SiLU/swish, Mish and GELU."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_choice
from ._common import as_float, elementwise, register_elementwise

# -------------------------------------------------------------------- sigmoid, tanh


def _sigmoid_formula(x):
    return jax.lax.logistic(x)


def _sigmoid_grad(x, y):
    """d/dx sigmoid = sigmoid(x) * (1 - sigmoid(x)) = y (1 - y)."""
    return y * (1 - y)


_sigmoid = elementwise(_sigmoid_formula, _sigmoid_grad)


def sigmoid(x: Any) -> jax.Array:
    """Logistic sigmoid.

    Formula: ``sigmoid(x) = 1 / (1 + exp(-x))``; derivative ``y (1 - y)`` with
    ``y = sigmoid(x)``. Finite and in ``[0, 1]`` for every input.

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.sigmoid`` (same); ``jax.nn.sigmoid`` is the same function.

    Example:
      >>> fdl.activations.sigmoid(jnp.array([-1.0, 0.0, 1.0]))
      Array([0.26894143, 0.5       , 0.7310586 ], dtype=float32)
    """
    return _sigmoid(as_float(x, fn="sigmoid"))


register_elementwise(
    "sigmoid", _sigmoid_formula, _sigmoid_grad, public=sigmoid, reference=jax.nn.sigmoid
)


def _tanh_formula(x):
    return jnp.tanh(x)


def _tanh_grad(x, y):
    """d/dx tanh = 1 - tanh(x)^2 = 1 - y^2."""
    return 1 - y * y


_tanh = elementwise(_tanh_formula, _tanh_grad)


def tanh(x: Any) -> jax.Array:
    """Hyperbolic tangent.

    Formula: ``tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``; derivative ``1 - y^2``
    with ``y = tanh(x)``.

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.tanh`` (same); ``jnp.tanh`` is the same function.

    Example:
      >>> fdl.activations.tanh(jnp.array([-1.0, 0.0, 1.0]))
      Array([-0.7615942,  0.       ,  0.7615942], dtype=float32)
    """
    return _tanh(as_float(x, fn="tanh"))


register_elementwise("tanh", _tanh_formula, _tanh_grad, public=tanh, reference=jnp.tanh)

# ------------------------------------------------------------------------- softsign


def _softsign_formula(x):
    return x / (1 + jnp.abs(x))


def _softsign_grad(x, y):
    """d/dx softsign = 1 / (1 + |x|)^2."""
    d = 1 + jnp.abs(x)
    return 1 / (d * d)


_softsign = elementwise(_softsign_formula, _softsign_grad)


def softsign(x: Any) -> jax.Array:
    """Softsign, a slowly saturating sigmoid-shaped function.

    Formula: ``softsign(x) = x / (1 + |x|)``; derivative ``1 / (1 + |x|)^2`` (smooth at 0).

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.softsign`` (same); JAX: ``jax.nn.soft_sign`` (same).

    Example:
      >>> fdl.activations.softsign(jnp.array([-3.0, 1.0]))
      Array([-0.75,  0.5 ], dtype=float32)
    """
    return _softsign(as_float(x, fn="softsign"))


register_elementwise(
    "softsign", _softsign_formula, _softsign_grad, public=softsign, reference=jax.nn.soft_sign
)

# ----------------------------------------------------------------------- silu, mish


def _silu_formula(x):
    return x * jax.lax.logistic(x)


def _silu_grad(x, y):
    """d/dx silu = s + x s (1 - s) = s (1 + x (1 - s)), s = sigmoid(x)."""
    s = jax.lax.logistic(x)
    return s * (1 + x * (1 - s))


_silu = elementwise(_silu_formula, _silu_grad)


def silu(x: Any) -> jax.Array:
    """Sigmoid linear unit, also called swish: ``x * sigmoid(x)``.

    Formula: ``silu(x) = x * sigmoid(x)``; derivative ``s (1 + x (1 - s))`` with
    ``s = sigmoid(x)``. ``swish`` is the same function.

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.silu`` (same); ``jax.nn.silu`` is the same function.
    Papers: Hendrycks & Gimpel, 2016, https://arxiv.org/abs/1606.08415; Ramachandran et
    al., 2017, https://arxiv.org/abs/1710.05941.

    Example:
      >>> fdl.activations.silu(jnp.array([-1.0, 0.0, 1.0]))
      Array([-0.26894143,  0.        ,  0.7310586 ], dtype=float32)
    """
    return _silu(as_float(x, fn="silu"))


swish = silu

register_elementwise("silu", _silu_formula, _silu_grad, public=silu, reference=jax.nn.silu)


def _mish_formula(x):
    return x * jnp.tanh(jnp.logaddexp(x, 0.0))


def _mish_grad(x, y):
    """d/dx mish = t + x sigmoid(x) (1 - t^2), t = tanh(softplus(x))."""
    t = jnp.tanh(jnp.logaddexp(x, 0.0))
    return t + x * jax.lax.logistic(x) * (1 - t * t)


_mish = elementwise(_mish_formula, _mish_grad)


def mish(x: Any) -> jax.Array:
    """Mish: ``x * tanh(softplus(x))``.

    Formula: ``mish(x) = x * tanh(log(1 + exp(x)))``; derivative
    ``t + x sigmoid(x) (1 - t^2)`` with ``t = tanh(softplus(x))``. Softplus is computed
    as ``logaddexp(x, 0)``, so ``mish(1e4) == 1e4`` and ``mish(-1e4) == -0``.

    Args:
      x: input array ``[...]``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    PyTorch: ``torch.nn.functional.mish`` (same); ``jax.nn.mish`` is the same function.
    Paper: Misra, 2019, https://arxiv.org/abs/1908.08681.

    Example:
      >>> fdl.activations.mish(jnp.array([-1.0, 0.0, 1.0]))
      Array([-0.30340144,  0.        ,  0.8650985 ], dtype=float32)
    """
    return _mish(as_float(x, fn="mish"))


register_elementwise("mish", _mish_formula, _mish_grad, public=mish)

# ----------------------------------------------------------------------------- gelu

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_KAPPA = 0.044715


def _gelu_erf_formula(x):
    return x * (0.5 * jax.lax.erfc(-x * _SQRT_HALF))


def _gelu_erf_grad(x, y):
    """d/dx gelu = Phi(x) + x phi(x).

    ``Phi(x) = erfc(-x / sqrt 2) / 2`` is the normal CDF, ``phi(x) = exp(-x^2/2) / sqrt(2 pi)``
    its density.
    """
    z = -x * _SQRT_HALF  # exp(-z^2) is the factor XLA's erfc already computes: shared
    return 0.5 * jax.lax.erfc(z) + x * (_INV_SQRT_2PI * jnp.exp(-(z * z)))


def _gelu_tanh_formula(x):
    inner = _SQRT_2_OVER_PI * (x + _KAPPA * (x * x * x))
    return 0.5 * x * (1 + jnp.tanh(inner))


def _gelu_tanh_grad(x, y):
    """d/dx gelu_tanh = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 kappa x^2).

    with ``t = tanh(sqrt(2/pi) (x + kappa x^3))`` and ``kappa = 0.044715``.
    """
    t = jnp.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * (x * x * x)))
    # for |x| >= 10, t = +-1 exactly (also in float64), so 1 - t^2 = 0: using x clipped
    # to [-10, 10] in the second term keeps x^2 finite (no 0 * inf) and changes no value
    xc = jnp.clip(x, -10.0, 10.0)
    return 0.5 * (1 + t) + (0.5 * xc * (1 - t * t)) * (_SQRT_2_OVER_PI * (1 + 3 * _KAPPA * xc * xc))


_gelu_erf = elementwise(_gelu_erf_formula, _gelu_erf_grad)
_gelu_tanh = elementwise(_gelu_tanh_formula, _gelu_tanh_grad)


def gelu(x: Any, *, approximate: str = "none") -> jax.Array:
    """Gaussian error linear unit, exact (erf) by default or its tanh approximation.

    Formula (``approximate='none'``): ``gelu(x) = x * Phi(x) = x/2 * erfc(-x / sqrt 2)``,
    derivative ``Phi(x) + x * phi(x)`` with ``phi(x) = exp(-x^2/2) / sqrt(2 pi)``.
    Formula (``approximate='tanh'``): ``x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``,
    derivative ``(1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)``.
    Both are PyTorch's expressions, evaluated as PyTorch does; in float32, ``1 + t``
    cancels for ``x < -4``, where the derivative (below 1e-5) has absolute error ~1e-6.

    Args:
      x: input array ``[...]``.
      approximate: ``'none'`` (exact, the default, as PyTorch) or ``'tanh'``.

    Returns:
      an array with the shape and floating dtype of ``x``.

    Raises:
      ValueError: ``approximate`` is not ``'none'`` or ``'tanh'``.

    PyTorch: ``torch.nn.functional.gelu(x, approximate=...)`` (same; ``Phi`` is written
    with ``erfc`` so that it keeps relative accuracy for very negative ``x``).
    ``jax.nn.gelu`` defaults to the tanh form: ``jax.nn.gelu(x, approximate=False)``
    is ``approximate='none'``. Paper: Hendrycks & Gimpel, 2016,
    https://arxiv.org/abs/1606.08415.

    Example:
      >>> fdl.activations.gelu(jnp.array([-1.0, 0.0, 1.0]))
      Array([-0.15865527,  0.        ,  0.8413447 ], dtype=float32)
    """
    check_choice("approximate", approximate, ("none", "tanh"), fn="gelu")
    x = as_float(x, fn="gelu")
    return _gelu_erf(x) if approximate == "none" else _gelu_tanh(x)


register_elementwise(
    "gelu",
    _gelu_erf_formula,
    _gelu_erf_grad,
    public=gelu,
    reference=lambda x: jax.nn.gelu(x, approximate=False),
)
register_elementwise(
    "gelu(approximate='tanh')",
    _gelu_tanh_formula,
    _gelu_tanh_grad,
    public=gelu,
    reference=lambda x: jax.nn.gelu(x, approximate=True),
)
