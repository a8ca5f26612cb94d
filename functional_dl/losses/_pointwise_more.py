"""Pointwise losses: Poisson and Gaussian negative log-likelihoods, hinge embedding, soft margin.

Each is a plain formula and its hand-derived partial derivatives, joined by
:func:`with_jvp` into a ``jax.custom_jvp`` whose tangent is ``Σ_i ∂f/∂a_i · da_i``
(linear in the tangents, so reverse mode transposes it into the hand-derived vjp).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_choice, check_nonnegative, is_concrete
from ._common import float_inputs, same_shape_inputs
from ._reduction import check_reduction, reduce_loss

__all__ = ["poisson_nll_loss", "gaussian_nll_loss", "hinge_embedding_loss", "soft_margin_loss"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def with_jvp(formula: Callable, derivative: Callable, n_diff: int, n_hp: int = 0) -> Callable:
    """``formula(*arrays, *hp)`` as a ``jax.custom_jvp`` over its first ``n_diff`` arrays
    (same shape) whose tangent is ``Σ_i derivative(...)[i]·t_i``; ``hp`` are not
    differentiated (Python numbers or traced scalars)."""
    f = jax.custom_jvp(formula, nondiff_argnums=tuple(range(n_diff, n_diff + n_hp)))

    @f.defjvp
    def _jvp(*args):
        hp, primals, tangents = args[:n_hp], args[n_hp], args[n_hp + 1]
        out = formula(*primals, *hp)
        parts = derivative(*primals, *hp)
        tangent = sum(d * t for d, t in zip(parts, tangents, strict=True))
        return out, tangent

    return f


def _check_bool(name, value, fn):
    check_choice(name, value, (False, True), fn=fn)


def _relu(z):
    """``max(z, 0)`` with slope 0 at 0 (PyTorch's ``clamp_min``); NaN in → NaN out."""
    return jnp.where(z > 0, z, jnp.where(jnp.isnan(z), z, jnp.zeros_like(z)))


# ------------------------------------------------------------------- poisson_nll_loss
def _stirling(y):
    """``y·log y − y + ½·log(2πy)`` where ``y > 1``, else 0 (PyTorch's ``full`` term)."""
    big = y > 1
    ys = jnp.where(big, y, 2.0)
    return jnp.where(big, ys * jnp.log(ys) - ys + 0.5 * jnp.log(2 * jnp.pi * ys), 0.0)


def _poisson_formula(x, y, log_input, full, eps):
    if log_input:
        loss = jnp.exp(x) - y * x
    else:
        loss = x - y * jnp.log(x + eps)
    return loss + _stirling(y) if full else loss


def _poisson_derivative(x, y, log_input, full, eps):
    """``∂/∂x = exp(x) − y`` (log input) or ``1 − y/(x + eps)``; ``∂/∂y = −x`` or
    ``−log(x + eps)``, plus ``log y + 1/(2y)`` where ``y > 1`` with ``full``."""
    if log_input:
        dx, dy = jnp.exp(x) - y, -x
    else:
        dx, dy = 1 - y / (x + eps), -jnp.log(x + eps)
    if full:
        big = y > 1
        ys = jnp.where(big, y, 2.0)
        dy = dy + jnp.where(big, jnp.log(ys) + 0.5 / ys, 0.0)
    return dx, dy


_poisson = with_jvp(_poisson_formula, _poisson_derivative, 2, 3)


def poisson_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> jax.Array:
    """Negative log-likelihood of a Poisson target (up to the constant ``log y!``).

    ``loss = exp(input) − target·input`` with ``log_input=True`` (``input`` is the log
    rate), else ``input − target·log(input + eps)``. ``full=True`` adds Stirling's
    approximation of ``log(target!)``, ``target·log(target) − target +
    ½·log(2π·target)``, only where ``target > 1`` (0 elsewhere, as PyTorch). Gradient:
    ``exp(input) − target`` (or ``1 − target/(input + eps)``); with respect to
    ``target``: ``−input`` (or ``−log(input + eps)``), plus ``log target + 1/(2·target)``
    for the Stirling term.

    Args:
      input: ``[...]`` log rates (or rates with ``log_input=False``).
      target: ``[...]`` counts, the shape of ``input``.
      log_input: whether ``input`` is the log of the rate (default True).
      full: add the Stirling term (default False).
      eps: added to ``input`` before the log when ``log_input=False`` (default 1e-8).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[...]`` for ``'none'``; the inputs' dtype.

    Equivalent to ``torch.nn.functional.poisson_nll_loss``.

    Example::

        >>> poisson_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 2.0]))  # (1 + e − 2) / 2
        Array(0.8591409, dtype=float32)
    """
    fn = "poisson_nll_loss"
    check_reduction(reduction, fn=fn)
    _check_bool("log_input", log_input, fn)
    _check_bool("full", full, fn)
    eps = check_nonnegative("eps", eps, fn=fn)
    (x, y), out = same_shape_inputs(fn, input=input, target=target)
    loss = _poisson(x, y, bool(log_input), bool(full), eps)
    return reduce_loss(loss, reduction, dtype=out)


# ------------------------------------------------------------------ gaussian_nll_loss
def _gaussian_formula(x, y, v, full, eps):
    v = v + jax.lax.stop_gradient(jnp.maximum(v, eps) - v)  # clamp without gradient
    d = x - y
    loss = 0.5 * (jnp.log(v) + d * d / v)
    return loss + _HALF_LOG_2PI if full else loss


def _gaussian_derivative(x, y, v, full, eps):
    """With ``v' = max(var, eps)`` (the clamp passes the gradient through, as PyTorch's
    ``no_grad`` clamp): ``∂/∂x = (x − y)/v'``, ``∂/∂y = −(x − y)/v'``,
    ``∂/∂var = ½·(1/v' − (x − y)²/v'²)``."""
    v = jnp.maximum(v, eps)
    d = x - y
    dx = d / v
    return dx, -dx, 0.5 * (1 - d * dx) / v


_gaussian = with_jvp(_gaussian_formula, _gaussian_derivative, 3, 2)


def _gaussian_var(var, shape, fn):
    """PyTorch's ``var`` shapes: the input's, the input's without its last axis, the
    input's with a last axis of 1, or a scalar. Returns ``var`` broadcast to ``shape``."""
    vshape = tuple(np.shape(var))
    if vshape == shape or vshape == ():
        pass
    elif vshape == shape[:-1]:
        var = var[..., None]
    elif len(shape) and vshape == shape[:-1] + (1,):
        pass
    else:
        raise ValueError(
            f"{fn}: var must have the input's shape {shape}, that shape without its last "
            f"axis, or with a last axis of 1, got var.shape={vshape}"
        )
    return jnp.broadcast_to(var, shape)


def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike,
    *,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> jax.Array:
    """Negative log-likelihood of a Gaussian with predicted mean and variance.

    ``loss = ½·(log(max(var, eps)) + (input − target)²/max(var, eps))``, plus
    ``½·log(2π)`` with ``full=True``. The clamp at ``eps`` is taken without gradient,
    as PyTorch (the gradient flows to ``var`` as if unclamped). Gradients:
    ``(input − target)/v``, its negative for ``target``, ``½·(1/v − (input − target)²/v²)``
    for ``var`` (``v = max(var, eps)``).

    Args:
      input: ``[..., D]`` predicted means.
      target: ``[..., D]`` observations, the shape of ``input``.
      var: positive variances: ``input``'s shape, ``[...]`` (one per row, broadcast over
        the last axis), ``[..., 1]``, or a scalar (homoscedastic).
      full: add the constant ``½·log(2π)`` (default False).
      eps: clamp of ``var`` (default 1e-6).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (then ``input``'s shape).

    Returns:
      a scalar, or ``input``'s shape for ``'none'``; the inputs' dtype.

    Raises:
      ValueError: ``var`` has another shape, or a negative entry (when concrete).

    Equivalent to ``torch.nn.functional.gaussian_nll_loss``.

    Example::

        >>> gaussian_nll_loss(jnp.array([1.0]), jnp.array([3.0]), jnp.array([2.0]))  # (log 2 + 2)/2
        Array(1.3465736, dtype=float32)
    """
    fn = "gaussian_nll_loss"
    check_reduction(reduction, fn=fn)
    _check_bool("full", full, fn)
    eps = check_nonnegative("eps", eps, fn=fn)
    (x, y), out = same_shape_inputs(fn, input=input, target=target)
    (v,), _ = float_inputs(fn, var=var)
    if is_concrete(var) and bool(np.any(np.asarray(var) < 0)):
        raise ValueError(f"{fn}: var must be non-negative, got a negative entry in var")
    v = _gaussian_var(v.astype(x.dtype), x.shape, fn)
    return reduce_loss(_gaussian(x, y, v, bool(full), eps), reduction, dtype=out)


# --------------------------------------------------------------- hinge_embedding_loss
def _hinge_embedding_formula(x, y, margin):
    return jnp.where(y != 1, _relu(margin - x), 0.0) + jnp.where(y != -1, x, 0.0)


def _hinge_embedding_derivative(x, y, margin):
    """``∂/∂x = [y ≠ −1] − [y ≠ 1]·[margin − x > 0]`` (PyTorch's clamp_min gradient is 0
    at the kink); the labels get no gradient."""
    dx = jnp.where(y != -1, 1.0, 0.0) - jnp.where((y != 1) & (margin - x > 0), 1.0, 0.0)
    return dx.astype(x.dtype), jnp.zeros_like(y)


_hinge_embedding = with_jvp(_hinge_embedding_formula, _hinge_embedding_derivative, 2, 1)


def hinge_embedding_loss(
    input: ArrayLike, target: ArrayLike, *, margin: float = 1.0, reduction: str = "mean"
) -> jax.Array:
    """Hinge embedding loss for labels in {1, −1} (e.g. ``input`` a distance).

    ``loss = input`` where ``target = 1`` and ``max(0, margin − input)`` where
    ``target = −1`` (PyTorch sums both terms for any other label value). Gradient:
    ``1`` for ``target = 1``, ``−[margin − input > 0]`` for ``target = −1``.

    Args:
      input: ``[...]`` scores or distances.
      target: ``[...]`` labels ``1`` or ``−1``, the shape of ``input``.
      margin: margin (default 1.0).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[...]`` for ``'none'``; the inputs' dtype.

    Equivalent to ``torch.nn.functional.hinge_embedding_loss``.

    Example::

        >>> hinge_embedding_loss(jnp.array([0.3, 0.3]), jnp.array([1.0, -1.0]))  # (0.3 + 0.7)/2
        Array(0.5, dtype=float32)
    """
    fn = "hinge_embedding_loss"
    check_reduction(reduction, fn=fn)
    (x, y), out = same_shape_inputs(fn, input=input, target=target)
    return reduce_loss(_hinge_embedding(x, y, margin), reduction, dtype=out)


# ------------------------------------------------------------------- soft_margin_loss
def _soft_margin_formula(x, y):
    return jnp.logaddexp(0.0, -y * x)


def _soft_margin_derivative(x, y):
    """``∂/∂x = −y·σ(−y·x)``, ``∂/∂y = −x·σ(−y·x)``."""
    s = jax.nn.sigmoid(-y * x)
    return -y * s, -x * s


_soft_margin = with_jvp(_soft_margin_formula, _soft_margin_derivative, 2)


def soft_margin_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Two-class logistic loss for labels in {1, −1}.

    ``loss = log(1 + exp(−target·input))`` (computed as ``logaddexp(0, −y·x)``, finite
    at ±1e4). Gradient ``−y·σ(−y·x)``; with respect to ``target``: ``−x·σ(−y·x)``.

    Args:
      input: ``[...]`` scores.
      target: ``[...]`` labels ``±1``, the shape of ``input``.
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[...]`` for ``'none'``; the inputs' dtype.

    Equivalent to ``torch.nn.functional.soft_margin_loss``.

    Example::

        >>> soft_margin_loss(jnp.array([0.0]), jnp.array([1.0]))  # log 2
        Array(0.6931472, dtype=float32)
    """
    fn = "soft_margin_loss"
    check_reduction(reduction, fn=fn)
    (x, y), out = same_shape_inputs(fn, input=input, target=target)
    return reduce_loss(_soft_margin(x, y), reduction, dtype=out)


# ---------------------------------------------------------------- gradient registry
def _vjp(derivative, *hp):
    def backward(*args):
        *arrays, g = args
        return tuple(g * d for d in derivative(*arrays, *hp))

    return backward


def _rng(seed):
    return np.random.default_rng(seed)


def _poisson_examples(log_input):
    r = _rng(0)
    y = np.concatenate([r.uniform(0, 5, 14), [0.0, 1.0, 2.0, 1e4]])
    x = r.normal(size=18) if log_input else r.uniform(0.1, 4, 18)
    return [(x, y)]


def _poisson_fd(log_input):
    r = _rng(1)
    y = r.uniform(0, 5, 16)
    y[np.abs(y - 1) < 0.1] = 1.5  # away from the Stirling switch at y = 1
    x = r.normal(size=16) if log_input else r.uniform(0.2, 4, 16)
    return [(x, y)]


for _log_input in (True, False):
    for _full in (False, True):
        _hp = (_log_input, _full, 1e-8)
        grads.register(
            f"poisson_nll_loss(log_input={_log_input}, full={_full})",
            forward=lambda x, y, _hp=_hp: _poisson_formula(x, y, *_hp),
            backward=_vjp(_poisson_derivative, *_hp),
            examples=lambda _l=_log_input: _poisson_examples(_l),
            fd_examples=lambda _l=_log_input: _poisson_fd(_l),
            argnums=(0, 1),
            public=lambda x, y, _hp=_hp: poisson_nll_loss(
                x, y, log_input=_hp[0], full=_hp[1], reduction="none"
            ),
        )


def _gaussian_examples():
    r = _rng(2)
    x, y = r.normal(size=(2, 12))
    v = np.concatenate([r.uniform(0.1, 3, 10), [1e-8, 1e4]])  # one clamped at eps
    return [(x, y, v)]


def _gaussian_fd():
    r = _rng(3)
    x, y = r.normal(size=(2, 12))
    return [(x, y, r.uniform(0.2, 3, 12))]


for _full in (False, True):
    grads.register(
        f"gaussian_nll_loss(full={_full})",
        forward=lambda x, y, v, _f=_full: _gaussian_formula(x, y, v, _f, 1e-6),
        backward=_vjp(_gaussian_derivative, _full, 1e-6),
        examples=_gaussian_examples,
        fd_examples=_gaussian_fd,
        argnums=(0, 1, 2),
        public=lambda x, y, v, _f=_full: gaussian_nll_loss(x, y, v, full=_f, reduction="none"),
    )


def _label_examples(kink):
    r = _rng(4)
    x = np.concatenate([r.normal(size=12) * 2, [kink, kink, -1e4, 1e4]])
    y = np.concatenate([r.choice([-1.0, 1.0], 12), [-1.0, 1.0, -1.0, 1.0]])
    return [(x, y)]


def _label_fd():
    r = _rng(5)
    x = r.choice([-1.0, 1.0], 16) * r.uniform(0.1, 0.9, 16) + r.choice([0.0, 2.0], 16)
    return [(x, r.choice([-1.0, 1.0], 16))]


grads.register(
    "hinge_embedding_loss",
    forward=lambda x, y: _hinge_embedding_formula(x, y, 1.0),
    backward=lambda x, y, g: g * _hinge_embedding_derivative(x, y, 1.0)[0],
    examples=lambda: _label_examples(1.0),
    fd_examples=_label_fd,
    public=lambda x, y: hinge_embedding_loss(x, y, reduction="none"),
)
grads.register(
    "soft_margin_loss",
    forward=_soft_margin_formula,
    backward=_vjp(_soft_margin_derivative),
    examples=lambda: _label_examples(0.0),
    fd_examples=_label_fd,
    argnums=(0, 1),
    public=lambda x, y: soft_margin_loss(x, y, reduction="none"),
)
