"""Normalisation ops: ``batch_norm``, ``layer_norm``, ``rms_norm``, ``group_norm``, and
their hand-derived backward passes.

Batch, layer and group norm share :func:`normalize`: ``(x - mean) / std * weight + bias``
with statistics accumulated in at least float32 in two passes: ``m0 = E[x]``, then with
``d = x - m0`` (the shift ``m0`` held constant) ``mean = m0 + E[d]`` and
``var = E[d^2] - E[d]^2``. The second pass sums centred values, so neither a large mean
(1e4 with std 1e-2) nor an outlier (``x[0] = 1e4`` among 1e5 unit values) costs
digits, and the correction ``E[d]`` removes the rounding of ``m0``: at width 65536 the
outputs are within a few float32 ulps of a float64 reference (PyTorch's accuracy).
The output is computed from ``d - E[d]``.

The gradients are hand-derived and live: :func:`normalize` and ``rms_norm`` are
``jax.custom_jvp`` functions whose tangent rules are linear in the tangents,

.. math:: d\\hat x = rstd\\,(dx - E[dx] - \\hat x\\,E[\\hat x\\,dx]), \\quad
          dy = d\\hat x \\cdot weight + \\hat x \\cdot dweight + dbias

(for RMS norm ``dxhat = r (dx - xhat E[xhat dx])``), so reverse mode (by
transposition), ``jax.jvp``, ``jacfwd`` and ``hessian`` all work. The closed-form vjps
(:func:`normalize_vjp`, :func:`rms_norm_backward`, ...) are registered with
:mod:`functional_dl.grads` next to the plain formulas to check them. Batch norm keeps
PyTorch's running statistics.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import (
    as_arrays,
    check_floating,
    check_in_range,
    check_int,
    check_positive,
    check_vector,
)
from ..._dtypes import compute_dtype
from ._utils import is_zero, param_to, register_grad, tangent_sum, to_rank

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "layer_norm",
    "layer_norm_backward",
    "rms_norm",
    "rms_norm_backward",
    "group_norm",
    "group_norm_backward",
    "normalize",
    "normalize_formula",
    "normalize_vjp",
    "affine",
]


def affine(xhat: Any, x: Any, weight: Any, bias: Any) -> Any:
    """``xhat * weight + bias`` in ``x``'s dtype (absent parameters are skipped)."""
    y = xhat.astype(x.dtype)
    if weight is not None:
        y = y * param_to(weight, y)
    if bias is not None:
        y = y + param_to(bias, y)
    return y


def _mean(x: Any, axes: tuple[int, ...]) -> Any:
    """Mean over ``axes`` (keepdims), summed one axis at a time from the last: a sum of
    per-axis partial sums, whose rounding grows with the axis sizes added, not their
    product (a single reduction over several axes accumulates sequentially)."""
    n = math.prod(x.shape[a] for a in axes)
    if axes == tuple(range(len(axes))):  # leading axes (batch norm): XLA's column sums
        return jnp.sum(x, axis=axes, keepdims=True) / n  # accumulate per element anyway
    for a in sorted(axes, reverse=True):
        x = jnp.sum(x, axis=a, keepdims=True)
    return x / n


def _add_pairs(a: tuple, b: tuple) -> tuple:
    return a[0] + b[0], a[1] + b[1]


def _mean_pair(a: Any, b: Any, axes: tuple[int, ...]) -> tuple[Any, Any]:
    """:func:`_mean` of ``a`` and ``b`` in one variadic reduction per axis (one read of
    the data for both sums; on CPU two separate reductions are ~1.4x slower)."""
    n = math.prod(a.shape[ax] for ax in axes)
    if axes == tuple(range(len(axes))):  # leading axes: XLA fuses the two column sums
        return jnp.sum(a, axis=axes, keepdims=True) / n, jnp.sum(b, axis=axes, keepdims=True) / n
    zero = jnp.zeros((), a.dtype)
    for ax in sorted(axes, reverse=True):
        a, b = jax.lax.reduce((a, b), (zero, zero), _add_pairs, (ax,))
        a, b = jnp.expand_dims(a, ax), jnp.expand_dims(b, ax)
    return a / n, b / n


def _moments(x: Any, axes: tuple[int, ...], axis_name: Any):
    """``(shift, d_mean, var)`` over ``axes`` (keepdims): mean = shift + d_mean.

    Two passes: ``shift = E[x]`` (held constant), then ``E[d]`` and ``E[d^2]`` of the
    centred ``d = x - shift`` (exact in float32 for ``x`` near ``shift``);
    ``var = E[d^2] - E[d]^2`` loses nothing since ``E[d]`` is of the order of the
    rounding of ``shift``, and ``mean = shift + E[d]`` is finer than float32's grid
    at the mean (needed at mean 1e4, std 1e-2: the grid step there is 1e-3).
    """
    xf = x.astype(compute_dtype(x.dtype))
    shift = _mean(xf, axes)
    if axis_name is not None:  # one shift for every device
        shift = jax.lax.pmean(shift, axis_name)
    shift = jax.lax.stop_gradient(shift)
    d = xf - shift
    m1, m2 = _mean(d, axes), _mean(d * d, axes)
    if axis_name is not None:
        m1, m2 = jax.lax.pmean((m1, m2), axis_name)
    return shift, m1, jnp.maximum(m2 - m1 * m1, 0.0)


def normalize_formula(
    x: Any, weight: Any, bias: Any, axes: tuple[int, ...], eps: float, axis_name: Any = None
) -> tuple[Any, Any, Any]:
    """``(y, mean, var)``: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    Statistics over ``axes`` (and the mapped ``axis_name``), kept as size-1 axes; ``var``
    is the biased variance; ``weight``/``bias`` broadcast against ``x``.
    """
    shift, m1, var = _moments(x, axes, axis_name)
    xhat = (x.astype(shift.dtype) - shift - m1) * jax.lax.rsqrt(var + eps)
    return affine(xhat, x, weight, bias), shift + m1, var


def _normalize_fwd(x, weight, bias, axes, eps, axis_name):
    shift, m1, var = _moments(x, axes, axis_name)
    rstd = jax.lax.rsqrt(var + eps)
    xhat = (x.astype(shift.dtype) - shift - m1) * rstd
    return (affine(xhat, x, weight, bias), shift + m1, var), (x, shift, m1, rstd, weight, bias)


def _normalize_bwd(axes, eps, axis_name, res, cts):
    """Closed form: ``dx = rstd (dxhat - E[dxhat] - xhat E[dxhat xhat])``, ``dxhat = g w``;
    ``dweight = sum(g xhat)``, ``dbias = sum(g)`` over the axes ``weight`` broadcasts on."""
    x, shift, m1, rstd, weight, bias = res
    g = cts[0].astype(rstd.dtype)  # the statistics are buffers: their cotangents are dropped
    xhat = (x.astype(rstd.dtype) - shift - m1) * rstd
    if axes == tuple(range(x.ndim - 1)):  # batch norm: parameters per channel (last axis)
        # weight is constant over the axes, so E[g w] = w E[g]: two sums serve dx and dparams
        s1, s2 = jnp.sum(g, axis=axes), jnp.sum(g * xhat, axis=axes)
        n = x.size // x.shape[-1]
        e1, e2 = s1 / n, s2 / n
        if axis_name is not None:
            e1, e2 = jax.lax.pmean((e1, e2), axis_name)
        e1, e2 = to_rank(e1, x.ndim), to_rank(e2, x.ndim)
        scale = rstd if weight is None else rstd * to_rank(weight, x.ndim)
        dx = scale * (g - e1 - xhat * e2)
        dw = None if weight is None else s2.astype(weight.dtype)
        db = None if bias is None else s1.astype(bias.dtype)
        return dx.astype(x.dtype), dw, db
    dxhat = g if weight is None else g * to_rank(weight, x.ndim)
    e1 = jnp.mean(dxhat, axis=axes, keepdims=True)
    e2 = jnp.mean(dxhat * xhat, axis=axes, keepdims=True)
    if axis_name is not None:
        e1, e2 = jax.lax.pmean((e1, e2), axis_name)
    dx = (rstd * (dxhat - e1 - xhat * e2)).astype(x.dtype)

    def reduce(v, p):
        return None if p is None else jnp.sum(v, axis=tuple(range(x.ndim - p.ndim))).astype(p.dtype)

    return dx, reduce(g * xhat, weight), reduce(g, bias)


normalize = jax.custom_jvp(normalize_formula, nondiff_argnums=(3, 4, 5))


@functools.partial(normalize.defjvp, symbolic_zeros=True)
def _normalize_jvp(axes, eps, axis_name, primals, tangents):
    """``dxhat = rstd (dx - E[dx] - xhat E[xhat dx])``, ``dy = dxhat w + xhat dw + db``;
    ``dmean = E[dx]``, ``dvar = 2 E[xhat dx] / rstd`` (every term linear in the tangents)."""
    (x, weight, bias), (dx, dw, db) = primals, tangents
    shift, m1, var = _moments(x, axes, axis_name)
    rstd = jax.lax.rsqrt(var + eps)
    xhat = (x.astype(shift.dtype) - shift - m1) * rstd
    y = affine(xhat, x, weight, bias)
    mean = shift + m1
    terms = []
    if is_zero(dx):
        dmean, dvar = jnp.zeros_like(mean), jnp.zeros_like(var)
    else:
        dxf = dx.astype(rstd.dtype)
        e1 = jnp.mean(dxf, axis=axes, keepdims=True)
        e2 = jnp.mean(dxf * xhat, axis=axes, keepdims=True)
        if axis_name is not None:
            e1, e2 = jax.lax.pmean((e1, e2), axis_name)
        if axes == tuple(range(x.ndim - 1)):
            # batch norm: the scale s = rstd * weight is per channel (small), so the
            # per-channel products come first; the transpose then needs only the two
            # column sums sum(g) and sum(g xhat) that dbias and dweight need as well
            sc = rstd if weight is None else rstd * param_to(weight, rstd)
            terms.append((sc * dxf - sc * e1 - xhat * (sc * e2)).astype(x.dtype))
        else:
            dxhat = (rstd * (dxf - e1 - xhat * e2)).astype(x.dtype)
            terms.append(dxhat if weight is None else dxhat * param_to(weight, dxhat))
        dmean, dvar = e1, 2.0 * e2 / rstd
    if weight is not None and not is_zero(dw):
        terms.append(xhat.astype(x.dtype) * param_to(dw, x))
    if bias is not None and not is_zero(db):
        terms.append(param_to(db, x))
    return (y, mean, var), (tangent_sum(y, terms), dmean, dvar)


def normalize_vjp(
    x: Any, weight: Any, bias: Any, g: Any, axes: tuple[int, ...], eps: float, axis_name: Any = None
) -> tuple[Any, Any, Any]:
    """Hand-derived vjp of :func:`normalize_formula`'s ``y``: ``(dx, dweight, dbias)``.

    .. math:: dx = rstd\\,(dxhat - E[dxhat] - xhat\\,E[dxhat\\cdot xhat]),\\quad
              dxhat = g \\cdot weight

    with ``xhat = (x - mean) rstd`` and the expectations over ``axes`` (and
    ``axis_name``); ``dweight = sum(g xhat)`` and ``dbias = sum(g)`` over the axes that
    ``weight``/``bias`` broadcast along (``None`` for absent parameters).
    """
    _, res = _normalize_fwd(x, weight, bias, axes, eps, axis_name)
    return _normalize_bwd(axes, eps, axis_name, res, (g, None, None))


# per sample: layer, RMS and group norm


def _norm_axes(fn: str, x: Any, weight: Any, bias: Any) -> tuple[int, ...]:
    """The trailing axes normalised: as many as ``weight``/``bias`` have (at least one)."""
    check_floating("x", x, fn=fn)
    n = max([1] + [np.ndim(p) for p in (weight, bias) if p is not None])
    if np.ndim(x) < n:
        raise ValueError(f"{fn}: x must have rank >= {n}, got x.shape={tuple(np.shape(x))}")
    want = tuple(np.shape(x))[np.ndim(x) - n :]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(np.shape(p)) != want:
            raise ValueError(
                f"{fn}: {name} must have the shape of the normalised trailing axes of x, "
                f"{want}, got {name}.shape={tuple(np.shape(p))} with x.shape={tuple(np.shape(x))}"
            )
    return tuple(range(np.ndim(x) - n, np.ndim(x)))


def _layer_norm(x, weight, bias, eps, norm):
    eps = check_positive("eps", eps, fn="layer_norm")
    axes = _norm_axes("layer_norm", x, weight, bias)
    return norm(x, weight, bias, axes, eps, None)[0]


def layer_norm(x: Any, weight: Any = None, bias: Any = None, *, eps: float = 1e-5) -> Any:
    """Normalise each sample over its trailing axes, then scale and shift.

    .. math:: y = \\frac{x - E[x]}{\\sqrt{Var[x] + \\epsilon}} \\cdot weight + bias

    Args:
      x: ``[..., *normalized_shape]``.
      weight: optional ``normalized_shape`` scale (``gamma``).
      bias: optional ``normalized_shape`` shift (``beta``).
      eps: added to the biased variance (a Python float).

    The normalised axes are the trailing ``weight.ndim`` axes (the last axis when
    there is no weight). Returns an array of ``x``'s shape and dtype; differentiates
    with its hand-derived ``custom_jvp`` rule (module docstring; forward mode too),
    whose closed-form vjp is :func:`layer_norm_backward`.

    PyTorch: ``torch.nn.functional.layer_norm(x, weight.shape, weight, bias, eps)``;
    ``flax.linen.LayerNorm`` (whose default one-pass variance is inaccurate at large means).

    Example:
      >>> [round(float(v), 4) for v in layer_norm(jnp.array([[1.0, 2.0, 3.0]]))[0]]
      [-1.2247, 0.0, 1.2247]
    """
    x, weight, bias = as_arrays(x, weight, bias)
    return _layer_norm(x, weight, bias, eps, normalize)


def layer_norm_backward(
    x: Any, weight: Any, bias: Any, g: Any, *, eps: float = 1e-5
) -> tuple[Any, Any, Any]:
    """Closed-form vjp of :func:`layer_norm`: ``(dx, dweight, dbias)``.

    With ``xhat = (x - mean) * rstd`` and ``dxhat = g * weight`` over the normalised axes:
    ``dx = rstd (dxhat - E[dxhat] - xhat E[dxhat xhat])``, ``dweight = sum(g xhat)``,
    ``dbias = sum(g)`` (sums over the leading axes). ``None`` for absent parameters.
    """
    axes = _norm_axes("layer_norm", x, weight, bias)
    return normalize_vjp(x, weight, bias, g, axes, eps, None)


def _rms_eps(x: Any, eps: Any) -> Any:
    if eps is None:
        return float(jnp.finfo(x.dtype).eps)
    eps = check_positive("eps", eps, fn="rms_norm")
    return eps


def _rms_fwd(x, weight, axes, eps):
    xf = x.astype(compute_dtype(x.dtype))
    r = jax.lax.rsqrt(jnp.mean(xf * xf, axis=axes, keepdims=True) + eps)
    return affine(xf * r, x, weight, None), (x, r, weight)


def _rms_bwd(axes, eps, res, g):
    """``dx = r (dxhat - xhat E[dxhat xhat])``, ``dxhat = g w``; ``dweight = sum(g xhat)``."""
    x, r, weight = res
    xhat = x.astype(r.dtype) * r
    g = g.astype(r.dtype)
    dxhat = g if weight is None else g * to_rank(weight, x.ndim)
    dx = r * (dxhat - xhat * jnp.mean(dxhat * xhat, axis=axes, keepdims=True))
    lead = tuple(range(x.ndim - len(axes)))
    dw = None if weight is None else jnp.sum(g * xhat, axis=lead).astype(weight.dtype)
    return dx.astype(x.dtype), dw


def _rms_formula(x, weight, axes, eps):
    return _rms_fwd(x, weight, axes, eps)[0]


_rms = jax.custom_jvp(_rms_formula, nondiff_argnums=(2, 3))


@functools.partial(_rms.defjvp, symbolic_zeros=True)
def _rms_jvp(axes, eps, primals, tangents):
    """``dxhat = r (dx - xhat E[xhat dx])``, ``dy = dxhat w + xhat dw`` (linear)."""
    (x, weight), (dx, dw) = primals, tangents
    xf = x.astype(compute_dtype(x.dtype))
    r = jax.lax.rsqrt(jnp.mean(xf * xf, axis=axes, keepdims=True) + eps)
    xhat = xf * r
    y = affine(xhat, x, weight, None)
    terms = []
    if not is_zero(dx):
        dxf = dx.astype(r.dtype)
        dxhat = (r * (dxf - xhat * jnp.mean(xhat * dxf, axis=axes, keepdims=True))).astype(x.dtype)
        terms.append(dxhat if weight is None else dxhat * param_to(weight, dxhat))
    if weight is not None and not is_zero(dw):
        terms.append(xhat.astype(x.dtype) * param_to(dw, x))
    return y, tangent_sum(y, terms)


def rms_norm(x: Any, weight: Any = None, *, eps: float | None = None) -> Any:
    """Root-mean-square normalisation of the trailing axes (no centring).

    .. math:: y = \\frac{x}{\\sqrt{E[x^2] + \\epsilon}} \\cdot weight

    Args:
      x: ``[..., *normalized_shape]``.
      weight: optional ``normalized_shape`` scale.
      eps: default ``finfo(x.dtype).eps``, as PyTorch (a Python float).

    Returns an array of ``x``'s shape and dtype; differentiates
    with its hand-derived ``custom_jvp`` rule (module docstring; forward mode too),
    whose closed-form vjp is :func:`rms_norm_backward`. PyTorch:
    ``torch.nn.functional.rms_norm(x, weight.shape, weight, eps)``. Zhang & Sennrich (2019).

    Example:
      >>> [round(float(v), 3) for v in rms_norm(jnp.array([[3.0, 4.0]]))[0]]
      [0.849, 1.131]
    """
    x, weight = as_arrays(x, weight)
    eps = _rms_eps(x, eps)
    return _rms(x, weight, _norm_axes("rms_norm", x, weight, None), eps)


def rms_norm_backward(x: Any, weight: Any, g: Any, *, eps: float | None = None) -> tuple[Any, Any]:
    """Closed-form vjp of :func:`rms_norm`: ``(dx, dweight)``.

    With ``r = (E[x^2] + eps)^{-1/2}``, ``xhat = x r`` and ``dxhat = g * weight``:
    ``dx = r (dxhat - xhat E[dxhat xhat])``, ``dweight = sum(g xhat)``.
    """
    eps = _rms_eps(x, eps)
    axes = _norm_axes("rms_norm", x, weight, None)
    return _rms_bwd(axes, eps, _rms_fwd(x, weight, axes, eps)[1], g)


def _grouped(x: Any, num_groups: int, weight: Any, bias: Any):
    """``x`` as ``[N, *spatial, G, C/G]``, parameters as ``[G, C/G]``, and the axes."""
    check_int("num_groups", num_groups, minimum=1, fn="group_norm")
    check_floating("x", x, fn="group_norm")
    if np.ndim(x) < 2:
        raise ValueError(
            f"group_norm: x must have rank >= 2 ([N, ..., C]), got x.shape={tuple(np.shape(x))}"
        )
    c = x.shape[-1]
    if c % num_groups:
        raise ValueError(
            f"group_norm: num_groups must divide the channels, got num_groups={num_groups} "
            f"and x.shape={tuple(x.shape)} (C={c})"
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(np.shape(p)) != (c,):
            raise ValueError(
                f"group_norm: {name} must have shape ({c},) (the channels of x), "
                f"got {name}.shape={tuple(np.shape(p))}"
            )
    shape = (num_groups, c // num_groups)
    xg = jnp.reshape(x, (*x.shape[:-1], *shape))
    wg, bg = (None if p is None else jnp.reshape(p, shape) for p in (weight, bias))
    axes = (*range(1, xg.ndim - 2), xg.ndim - 1)  # spatial axes and channels in a group
    return xg, wg, bg, axes


def _group_norm(x, num_groups, weight, bias, eps, norm):
    eps = check_positive("eps", eps, fn="group_norm")
    xg, wg, bg, axes = _grouped(x, num_groups, weight, bias)
    return jnp.reshape(norm(xg, wg, bg, axes, eps, None)[0], x.shape)


def group_norm(
    x: Any, num_groups: int, weight: Any = None, bias: Any = None, *, eps: float = 1e-5
) -> Any:
    """Normalise each sample over groups of channels (and all spatial positions).

    .. math:: y = \\frac{x - E_g[x]}{\\sqrt{Var_g[x] + \\epsilon}} \\cdot weight + bias

    Args:
      x: ``[N, ..., C]`` (channels last).
      num_groups: number of groups; must divide ``C``.
      weight, bias: optional ``[C]`` per-channel affine parameters.
      eps: added to the biased variance (a Python float).

    Returns an array of ``x``'s shape and dtype; differentiates
    with its hand-derived ``custom_jvp`` rule (module docstring; forward mode too),
    whose closed-form vjp is :func:`group_norm_backward`. PyTorch:
    ``torch.nn.functional.group_norm`` (channels first there). Wu & He (2018).

    Example:
      >>> group_norm(jnp.ones((2, 4, 4, 8)), 4).shape
      (2, 4, 4, 8)
    """
    x, weight, bias = as_arrays(x, weight, bias)
    return _group_norm(x, num_groups, weight, bias, eps, normalize)


def group_norm_backward(
    x: Any, num_groups: int, weight: Any, bias: Any, g: Any, *, eps: float = 1e-5
) -> tuple[Any, Any, Any]:
    """Closed-form vjp of :func:`group_norm`: ``(dx, dweight, dbias)``.

    The layer-norm formula per (sample, group): ``dx = rstd (dxhat - E[dxhat] -
    xhat E[dxhat xhat])`` with ``dxhat = g * weight``; ``dweight = sum(g xhat)`` and
    ``dbias = sum(g)`` over every axis but the channels.
    """
    xg, wg, bg, axes = _grouped(x, num_groups, weight, bias)
    dx, dw, db = normalize_vjp(xg, wg, bg, jnp.reshape(g, xg.shape), axes, eps, None)
    dw, db = (None if d is None else jnp.reshape(d, (-1,)) for d in (dw, db))
    return jnp.reshape(dx, x.shape), dw, db


# per channel: batch norm with running statistics


def _check_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps):
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
    momentum = check_in_range("momentum", momentum, 0.0, 1.0, fn=fn)
    eps = check_positive("eps", eps, fn=fn)
    return tuple(range(x.ndim - 1))


def _batch_count(x: Any, axis_name: Any) -> int:
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
      >>> x = jnp.arange(8.0).reshape(4, 2)  # [N, C]
      >>> y, rm, rv = batch_norm(x, jnp.zeros(2), jnp.ones(2), training=True)
      >>> [round(float(v), 3) for v in y[:, 0]], rm
      ([-1.342, -0.447, 0.447, 1.342], Array([0.3, 0.4], dtype=float32))
    """
    x, running_mean, running_var, weight, bias = as_arrays(
        x, running_mean, running_var, weight, bias
    )
    return _batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum, eps, axis_name, normalize
    )


def _batch_norm(
    x, running_mean, running_var, weight, bias, training, momentum, eps, axis_name, norm
):
    axes = _check_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm: eval mode (training=False) needs running_mean and "
                "running_var, got None"
            )
        y = _bn_eval(x, running_mean, running_var, weight, bias, eps)
        return y, running_mean, running_var
    count = _batch_count(x, axis_name)
    y, mean, var = norm(x, weight, bias, axes, eps, axis_name)
    mean, var = jax.lax.stop_gradient((mean.reshape(-1), var.reshape(-1)))
    new_mean = new_var = None
    if running_mean is not None:
        new_mean = ((1 - momentum) * running_mean + momentum * mean).astype(running_mean.dtype)
    if running_var is not None:
        unbiased = var * (count / (count - 1))
        new_var = ((1 - momentum) * running_var + momentum * unbiased).astype(running_var.dtype)
    return y, new_mean, new_var


def _bn_eval_formula(x, running_mean, running_var, weight, bias, eps):
    """``(x - running_mean) / sqrt(running_var + eps) * weight + bias`` (an affine map)."""
    xf = x.astype(compute_dtype(x.dtype))
    rstd = jax.lax.rsqrt(running_var.astype(xf.dtype) + eps)
    y = (xf - to_rank(running_mean, x.ndim)) * to_rank(rstd, x.ndim)
    return affine(y, x, weight, bias)


_bn_eval = jax.custom_jvp(_bn_eval_formula, nondiff_argnums=(5,))


@functools.partial(_bn_eval.defjvp, symbolic_zeros=True)
def _bn_eval_jvp(eps, primals, tangents):
    """``dy = (dx - drm) rstd w - xhat rstd^2 drv / 2 w + xhat dw + db`` (linear)."""
    (x, rm, rv, weight, bias), (dx, drm, drv, dw, db) = primals, tangents
    ct = compute_dtype(x.dtype)
    rstd = to_rank(jax.lax.rsqrt(rv.astype(ct) + eps), x.ndim)
    xhat = (x.astype(ct) - to_rank(rm, x.ndim)) * rstd
    y = affine(xhat, x, weight, bias)
    inner = []  # tangent of xhat
    if not is_zero(dx):
        inner.append(dx.astype(ct) * rstd)
    if not is_zero(drm):
        inner.append(-to_rank(drm, x.ndim).astype(ct) * rstd)
    if not is_zero(drv):
        inner.append(-0.5 * xhat * rstd * rstd * to_rank(drv, x.ndim).astype(ct))
    terms = []
    if inner:
        dxhat = tangent_sum(xhat, inner).astype(x.dtype)
        terms.append(dxhat if weight is None else dxhat * param_to(weight, dxhat))
    if weight is not None and not is_zero(dw):
        terms.append(xhat.astype(x.dtype) * param_to(dw, x))
    if bias is not None and not is_zero(db):
        terms.append(param_to(db, x))
    return y, tangent_sum(y, terms)


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
    axes = _check_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps)
    if training:
        _batch_count(x, axis_name)
        return normalize_vjp(x, weight, bias, g, axes, eps, axis_name)
    gf = g.astype(compute_dtype(x.dtype))
    rstd = to_rank(jax.lax.rsqrt(running_var.astype(gf.dtype) + eps), x.ndim)
    xhat = (x.astype(gf.dtype) - to_rank(running_mean, x.ndim)) * rstd
    dx = (gf if weight is None else gf * to_rank(weight, x.ndim)) * rstd
    dw = None if weight is None else jnp.sum(gf * xhat, axis=axes).astype(weight.dtype)
    db = None if bias is None else jnp.sum(gf, axis=axes).astype(bias.dtype)
    return dx.astype(x.dtype), dw, db


def _norm_examples(shape):
    def examples():
        rng = np.random.default_rng(1)
        d = shape[-1]
        return [
            (rng.standard_normal(shape), 1 + 0.1 * rng.standard_normal(d), rng.standard_normal(d)),
            (1e4 + 1e-2 * rng.standard_normal(shape), rng.standard_normal(d), np.zeros(d)),
        ]

    def fd_examples():
        return examples()[:1]

    return examples, fd_examples


# the plain formulas (autodiff) against the hand-derived backward passes
_ln_ex, _ln_fd = _norm_examples((3, 6))
register_grad(
    "layer_norm",
    forward=lambda x, w, b: _layer_norm(x, w, b, 1e-5, normalize_formula),
    backward=layer_norm_backward,
    examples=_ln_ex,
    fd_examples=_ln_fd,
    argnums=(0, 1, 2),
    public=lambda x, w, b: layer_norm(x, w, b, eps=1e-5),
)
register_grad(
    "rms_norm",
    forward=lambda x, w: _rms_formula(x, w, (x.ndim - 1,), 1e-6),
    backward=lambda x, w, g: rms_norm_backward(x, w, g, eps=1e-6),
    examples=lambda: [e[:2] for e in _ln_ex()],
    fd_examples=lambda: [e[:2] for e in _ln_fd()],
    argnums=(0, 1),
    public=lambda x, w: rms_norm(x, w, eps=1e-6),
)
_gn_ex, _gn_fd = _norm_examples((2, 3, 2, 4))
register_grad(
    "group_norm(num_groups=2)",
    forward=lambda x, w, b: _group_norm(x, 2, w, b, 1e-5, normalize_formula),
    backward=lambda x, w, b, g: group_norm_backward(x, 2, w, b, g),
    examples=_gn_ex,
    fd_examples=_gn_fd,
    argnums=(0, 1, 2),
    public=lambda x, w, b: group_norm(x, 2, w, b, eps=1e-5),
)


def _bn_examples():
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
        examples=_bn_examples,
        fd_examples=lambda: _bn_examples()[:1],
        argnums=(0, 3, 4),
        public=lambda x, rm, rv, w, b, t=_training: batch_norm(x, rm, rv, w, b, training=t)[0],
    )
