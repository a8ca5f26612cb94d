"""Random activations: randomized leaky ReLU and the Gumbel-softmax sample.

Both take a ``jax.random`` key first (same key, same result). Their gradients are
hand-derived: ``rrelu``'s is the sampled slope (a ``jax.custom_jvp``), ``gumbel_softmax``'s
is the softmax rule scaled by ``1/tau`` (through :func:`softmax`'s custom JVP), passed
straight through the one-hot value when ``hard=True``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import grads
from .._checks import check_choice, check_int, check_positive, is_concrete
from .._dtypes import upcast
from ._common import as_float, check_real, edge_grid, elementwise, smooth_grid
from ._softmax import softmax

_KEY_EXAMPLE_SEED = 0  # the key of the registered gradient examples


def _check_key(key: Any, fn: str) -> None:
    if key is None:
        raise TypeError(f"{fn}: key must be a jax.random key, got key=None")


# --------------------------------------------------------------------------- rrelu
def _rrelu_formula(x, slope):
    return jnp.where(x > 0, x, x * slope)


def _rrelu_grad(x, y, slope):
    """d/dx rrelu = 1 if x > 0 else slope (the sampled slope at 0, as PyTorch)."""
    return jnp.where(x > 0, jnp.ones_like(x), slope * jnp.ones_like(x))


_rrelu = elementwise(_rrelu_formula, _rrelu_grad, n_hp=1)


def _slopes(key, shape, dtype, lower, upper):
    return jax.random.uniform(key, shape, dtype, lower, upper)


def rrelu(
    key: Any,
    x: Any,
    *,
    lower: float = 1.0 / 8.0,
    upper: float = 1.0 / 3.0,
    training: bool = False,
) -> jax.Array:
    """Randomized leaky ReLU (Xu et al., 2015, https://arxiv.org/abs/1505.00853).

    Formula: ``rrelu(x) = x if x > 0 else a·x``. With ``training=True`` each element
    draws its own slope ``a ~ U(lower, upper)`` from ``key``; otherwise
    ``a = (lower + upper)/2`` and ``key`` is not used (it may be ``None``). Derivative
    ``1 if x > 0 else a`` (the slope at 0, as PyTorch).

    Args:
      key: a ``jax.random`` key (used only in training).
      x: input array ``[...]``.
      lower: lower bound of the slope (default 1/8).
      upper: upper bound of the slope (default 1/3), ``>= lower``.
      training: sample the slopes (default False).

    Returns:
      an array with the shape and floating dtype of ``x`` (slopes drawn in float32 for
      half precision).

    Raises:
      ValueError: ``lower > upper``; TypeError: ``key`` is None in training.

    PyTorch: ``torch.nn.functional.rrelu(x, lower, upper, training)`` (same values in
    eval; in training the same distribution, from an explicit key).

    Example:
      >>> fdl.activations.rrelu(None, jnp.array([-3.0, 2.0]), lower=0.1, upper=0.3)
      Array([-0.6,  2. ], dtype=float32)
    """
    fn = "rrelu"
    check_real("lower", lower, fn=fn)
    check_real("upper", upper, fn=fn)
    if is_concrete(lower) and is_concrete(upper) and float(lower) > float(upper):
        raise ValueError(f"{fn}: lower must be <= upper, got lower={lower!r} and upper={upper!r}")
    check_choice("training", training, (False, True), fn=fn)
    x = as_float(x, fn=fn)
    if not training:
        return _rrelu(x, (lower + upper) / 2)
    _check_key(key, fn)
    xc = upcast(x)
    slope = _slopes(key, x.shape, xc.dtype, lower, upper)
    return _rrelu_sampled(xc, slope).astype(x.dtype)


@jax.custom_jvp
def _rrelu_sampled(x, slope):
    return _rrelu_formula(x, slope)


@_rrelu_sampled.defjvp
def _rrelu_sampled_jvp(primals, tangents):
    """Tangent ``(1 if x > 0 else a)·dx``; the sampled slopes are not differentiated."""
    x, slope = primals
    return _rrelu_formula(x, slope), _rrelu_grad(x, None, slope) * tangents[0]


# ------------------------------------------------------------------ gumbel_softmax
def gumbel_softmax(
    key: Any,
    logits: Any,
    *,
    tau: float = 1.0,
    hard: bool = False,
    axis: int = -1,
) -> jax.Array:
    """A sample of the Gumbel-softmax (concrete) distribution (Jang et al., 2016).

    Formula: ``y = softmax((logits + g)/tau)`` along ``axis``, with independent
    ``g ~ Gumbel(0, 1)`` from ``key``; the argmax of ``y`` is distributed as
    ``softmax(logits)`` for every ``tau``. ``hard=True`` returns the one-hot vector at
    ``argmax(y)`` with the gradient of the soft ``y`` (straight-through:
    ``onehot + (y − stop_gradient(y))``, exactly one-hot in value). Derivative
    (vjp) of the soft sample: ``logits_bar = y·(g_out − Σ g_out·y)/tau``.

    Args:
      key: a ``jax.random`` key.
      logits: unnormalised log-probabilities ``[..., C, ...]``.
      tau: temperature, ``> 0`` (default 1.0).
      hard: return one-hot samples (default False).
      axis: the class axis (default -1); PyTorch's ``dim``.

    Returns:
      an array with the shape and floating dtype of ``logits``.

    Raises:
      ValueError: ``tau <= 0`` or ``axis`` out of range.

    PyTorch: ``torch.nn.functional.gumbel_softmax(logits, tau, hard, dim=-1)`` (same
    distribution and straight-through gradient, from an explicit key).

    Example:
      >>> y = fdl.activations.gumbel_softmax(jax.random.key(0), jnp.zeros(3), hard=True)
      >>> float(y.sum()), sorted(y.tolist())
      (1.0, [0.0, 0.0, 1.0])
    """
    fn = "gumbel_softmax"
    _check_key(key, fn)
    tau = check_positive("tau", tau, fn=fn)
    check_choice("hard", hard, (False, True), fn=fn)
    check_int("axis", axis, fn=fn)
    x = as_float(logits, fn=fn)
    if x.ndim == 0:
        raise ValueError(f"{fn}: logits must have a class axis, got logits.shape=()")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fn}: axis must be in [-{x.ndim}, {x.ndim}), got axis={axis!r}")
    xc = upcast(x)
    gumbels = jax.random.gumbel(key, x.shape, xc.dtype)
    y = softmax((xc + gumbels) / tau, axis=axis)
    if hard:
        index = jnp.argmax(y, axis=axis, keepdims=True)
        onehot = jnp.arange(x.shape[axis]).reshape(_axis_shape(x.ndim, axis)) == index
        y = onehot.astype(y.dtype) + (y - jax.lax.stop_gradient(y))
    return y.astype(x.dtype)


def _axis_shape(ndim: int, axis: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


# ---------------------------------------------------------------- gradient registry
for _lo, _hi in ((1.0 / 8.0, 1.0 / 3.0), (0.5, 0.5)):
    _mid = (_lo + _hi) / 2
    grads.register(
        f"rrelu(lower={_lo:.3g}, upper={_hi:.3g})",
        forward=lambda x, _m=_mid: _rrelu_formula(x, _m),
        backward=lambda x, g, _m=_mid: g * _rrelu_grad(x, None, _m),
        examples=lambda: [(edge_grid(),)],
        fd_examples=lambda: [(smooth_grid(),)],
        public=lambda x, _lo=_lo, _hi=_hi: rrelu(None, x, lower=_lo, upper=_hi),
    )


def _example_key():
    return jax.random.key(_KEY_EXAMPLE_SEED)


def _rrelu_train_formula(x):
    """The slopes the public function draws from the example key (in ``x``'s dtype)."""
    return _rrelu_formula(x, _slopes(_example_key(), x.shape, x.dtype, 1.0 / 8.0, 1.0 / 3.0))


grads.register(
    "rrelu(training=True)",
    forward=_rrelu_train_formula,
    backward=lambda x, g: (
        g * _rrelu_grad(x, None, _slopes(_example_key(), x.shape, x.dtype, 1.0 / 8.0, 1.0 / 3.0))
    ),
    examples=lambda: [(edge_grid(),)],
    fd_examples=lambda: [(smooth_grid(),)],
    public=lambda x: rrelu(_example_key(), x, training=True),
)


def _gumbel_soft_formula(x, tau):
    z = (x + jax.random.gumbel(_example_key(), x.shape, x.dtype)) / tau
    e = jnp.exp(z - jax.lax.stop_gradient(jnp.max(z, -1, keepdims=True)))
    return e / jnp.sum(e, -1, keepdims=True)


def _gumbel_backward(x, g, tau):
    """``logits_bar = y·(g − Σ g·y)/tau`` for the soft sample ``y`` (also for ``hard``)."""
    y = _gumbel_soft_formula(x, tau)
    return y * (g - jnp.sum(g * y, -1, keepdims=True)) / tau


def _gumbel_examples():
    x = np.random.default_rng(0).standard_normal((4, 6)) * 2
    x[1] = [0.0, 1e4, -1e4, 20.0, -20.0, 0.0]
    return [(x,)]


def _gumbel_fd():
    return [(np.random.default_rng(1).standard_normal((4, 6)),)]


for _tau in (1.0, 0.5):
    grads.register(
        f"gumbel_softmax(tau={_tau})",
        forward=lambda x, _t=_tau: _gumbel_soft_formula(x, _t),
        backward=lambda x, g, _t=_tau: _gumbel_backward(x, g, _t),
        examples=_gumbel_examples,
        fd_examples=_gumbel_fd,
        public=lambda x, _t=_tau: gumbel_softmax(_example_key(), x, tau=_t),
    )


def _gumbel_hard_formula(x):
    """Straight-through: the one-hot value, the soft sample's gradient."""
    y = _gumbel_soft_formula(x, 0.5)
    onehot = jax.nn.one_hot(jnp.argmax(y, -1), x.shape[-1], dtype=y.dtype)
    return onehot + (y - jax.lax.stop_gradient(y))


grads.register(
    "gumbel_softmax(tau=0.5, hard=True)",
    forward=_gumbel_hard_formula,
    backward=lambda x, g: _gumbel_backward(x, g, 0.5),
    examples=_gumbel_examples,
    # the straight-through gradient is not the derivative of the (piecewise constant)
    # one-hot value: no finite differences
    fd_examples=lambda: [],
    public=lambda x: gumbel_softmax(_example_key(), x, tau=0.5, hard=True),
)
