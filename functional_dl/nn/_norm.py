"""Per-sample normalisation: ``layer_norm``, ``rms_norm``, ``group_norm``, and their backward.

Statistics are accumulated in at least float32 with the shifted-data algorithm of
:func:`centered_moments`, accurate for inputs whose mean is large compared with
their spread (mean 1e4, std 1e-2 in float32).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import grads
from .._checks import check_floating, check_int, check_positive
from ._utils import param, stat_dtype

__all__ = [
    "centered_moments",
    "normalize_backward",
    "affine",
    "layer_norm",
    "layer_norm_backward",
    "rms_norm",
    "rms_norm_backward",
    "group_norm",
    "group_norm_backward",
]


def centered_moments(x: Any, axes: tuple[int, ...], axis_name: Any = None):
    """``(x - mean, var, mean)`` over ``axes`` (keepdims), in at least float32.

    Shifted-data algorithm: with a pivot ``p`` (a first estimate of the mean, held
    constant), ``d = x - p`` is exact (Sterbenz) and small, so
    ``mean = p + E[d]`` and ``var = E[d^2] - E[d]^2`` suffer no cancellation; the
    centred values ``d - E[d]`` keep their accuracy even where ``mean`` itself is not
    representable to that precision. ``var`` is the biased (population) variance.
    With ``axis_name`` every statistic is averaged over that mapped axis (``lax.pmean``).
    """
    xf = x.astype(stat_dtype(x.dtype))

    def mean(v):
        m = jnp.mean(v, axis=axes, keepdims=True)
        return m if axis_name is None else jax.lax.pmean(m, axis_name)

    pivot = jax.lax.stop_gradient(mean(xf))
    d = xf - pivot
    dm = mean(d)
    var = jnp.maximum(mean(d * d) - dm * dm, 0.0)
    return d - dm, var, pivot + dm


def _norm_axes(fn: str, x: Any, weight: Any, bias: Any) -> tuple[int, ...]:
    """The trailing axes normalised: as many as ``weight``/``bias`` have (at least one)."""
    check_floating("x", x, fn=fn)
    n = max([1] + [np.ndim(p) for p in (weight, bias) if p is not None])
    if np.ndim(x) < n:
        raise ValueError(f"{fn}: x must have rank >= {n}, got x.shape={tuple(np.shape(x))}")
    want = tuple(np.shape(x))[np.ndim(x) - n:]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(np.shape(p)) != want:
            raise ValueError(
                f"{fn}: {name} must have the shape of the normalised trailing axes of x, "
                f"{want}, got {name}.shape={tuple(np.shape(p))} with x.shape={tuple(np.shape(x))}"
            )
    return tuple(range(np.ndim(x) - n, np.ndim(x)))


def affine(xhat: Any, x: Any, weight: Any, bias: Any) -> Any:
    """``xhat * weight + bias`` in ``x``'s dtype (absent parameters are skipped)."""
    y = xhat.astype(x.dtype)
    if weight is not None:
        y = y * param(weight, x)
    if bias is not None:
        y = y + param(bias, x)
    return y


def _sum_leading(v: Any, n_lead: int) -> Any:
    return jnp.sum(v, axis=tuple(range(n_lead)))


def layer_norm(x: Any, weight: Any = None, bias: Any = None, *, eps: float = 1e-5) -> Any:
    """Normalise each sample over its trailing axes, then scale and shift.

    .. math:: y = \\frac{x - E[x]}{\\sqrt{Var[x] + \\epsilon}} \\cdot weight + bias

    Args:
      x: ``[..., *normalized_shape]``.
      weight: optional ``normalized_shape`` scale (``gamma``).
      bias: optional ``normalized_shape`` shift (``beta``).
      eps: added to the biased variance.

    The normalised axes are the trailing ``weight.ndim`` axes (the last axis when
    there is no weight). Returns an array of ``x``'s shape and dtype.

    PyTorch: ``torch.nn.functional.layer_norm(x, weight.shape, weight, bias, eps)``.

    Example:
      >>> layer_norm(jnp.array([[1.0, 2.0, 3.0]]))  # ~[[-1.22, 0, 1.22]]
    """
    check_positive("eps", eps, fn="layer_norm")
    axes = _norm_axes("layer_norm", x, weight, bias)
    c, var, _ = centered_moments(x, axes)
    return affine(c * jax.lax.rsqrt(var + eps), x, weight, bias)


def normalize_backward(xhat: Any, rstd: Any, dxhat: Any, axes: tuple[int, ...],
                       axis_name: Any = None) -> Any:
    """``dx`` of ``xhat = (x - mean) * rstd`` given ``dxhat`` (statistics over ``axes``).

    .. math:: dx = rstd \\,(dxhat - E[dxhat] - xhat\\, E[dxhat \\cdot xhat])

    With ``axis_name`` the expectations also average over that mapped axis.
    """
    m1 = jnp.mean(dxhat, axis=axes, keepdims=True)
    m2 = jnp.mean(dxhat * xhat, axis=axes, keepdims=True)
    if axis_name is not None:
        m1, m2 = jax.lax.pmean((m1, m2), axis_name)
    return rstd * (dxhat - m1 - xhat * m2)


def layer_norm_backward(x: Any, weight: Any, bias: Any, g: Any, *, eps: float = 1e-5):
    """Closed-form vjp of :func:`layer_norm`: ``(dx, dweight, dbias)``.

    With ``xhat = (x - mean) * rstd`` and ``dxhat = g * weight`` over the normalised axes:
    ``dx = rstd (dxhat - E[dxhat] - xhat E[dxhat xhat])``, ``dweight = sum(g xhat)``,
    ``dbias = sum(g)`` (sums over the leading axes). ``None`` for absent parameters.
    """
    axes = _norm_axes("layer_norm", x, weight, bias)
    c, var, _ = centered_moments(x, axes)
    rstd = jax.lax.rsqrt(var + eps)
    xhat = c * rstd
    gf = g.astype(xhat.dtype)
    dxhat = gf if weight is None else gf * weight
    dx = normalize_backward(xhat, rstd, dxhat, axes).astype(x.dtype)
    lead = x.ndim - len(axes)
    dw = None if weight is None else _sum_leading(gf * xhat, lead).astype(weight.dtype)
    db = None if bias is None else _sum_leading(gf, lead).astype(bias.dtype)
    return dx, dw, db


def _rms_eps(x: Any, eps: Any) -> Any:
    if eps is None:
        return float(jnp.finfo(x.dtype).eps)
    check_positive("eps", eps, fn="rms_norm")
    return eps


def rms_norm(x: Any, weight: Any = None, *, eps: float | None = None) -> Any:
    """Root-mean-square normalisation of the trailing axes (no centring).

    .. math:: y = \\frac{x}{\\sqrt{E[x^2] + \\epsilon}} \\cdot weight

    Args:
      x: ``[..., *normalized_shape]``.
      weight: optional ``normalized_shape`` scale.
      eps: default ``finfo(x.dtype).eps``, as PyTorch.

    Returns an array of ``x``'s shape and dtype. PyTorch:
    ``torch.nn.functional.rms_norm(x, weight.shape, weight, eps)``. Zhang & Sennrich (2019).

    Example:
      >>> rms_norm(jnp.array([[3.0, 4.0]]))  # [[0.85, 1.13]]
    """
    eps = _rms_eps(x, eps)
    axes = _norm_axes("rms_norm", x, weight, None)
    xf = x.astype(stat_dtype(x.dtype))
    rstd = jax.lax.rsqrt(jnp.mean(xf * xf, axis=axes, keepdims=True) + eps)
    return affine(xf * rstd, x, weight, None)


def rms_norm_backward(x: Any, weight: Any, g: Any, *, eps: float | None = None):
    """Closed-form vjp of :func:`rms_norm`: ``(dx, dweight)``.

    With ``r = (E[x^2] + eps)^{-1/2}``, ``xhat = x r`` and ``dxhat = g * weight``:
    ``dx = r (dxhat - xhat E[dxhat xhat])``, ``dweight = sum(g xhat)``.
    """
    eps = _rms_eps(x, eps)
    axes = _norm_axes("rms_norm", x, weight, None)
    xf = x.astype(stat_dtype(x.dtype))
    r = jax.lax.rsqrt(jnp.mean(xf * xf, axis=axes, keepdims=True) + eps)
    xhat = xf * r
    gf = g.astype(xhat.dtype)
    dxhat = gf if weight is None else gf * weight
    m = jnp.mean(dxhat * xhat, axis=axes, keepdims=True)
    dx = (r * (dxhat - xhat * m)).astype(x.dtype)
    lead = x.ndim - len(axes)
    dw = None if weight is None else _sum_leading(gf * xhat, lead).astype(weight.dtype)
    return dx, dw


def _group_shape(x: Any, num_groups: int) -> tuple[int, ...]:
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
    return (*x.shape[:-1], num_groups, c // num_groups)


def _group_stats(x: Any, num_groups: int, weight: Any, bias: Any, eps: float):
    """``(xhat, rstd, axes)`` with ``x`` viewed as ``[N, *spatial, G, C/G]``."""
    shape = _group_shape(x, num_groups)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(np.shape(p)) != (x.shape[-1],):
            raise ValueError(
                f"group_norm: {name} must have shape ({x.shape[-1]},) (the channels of x), "
                f"got {name}.shape={tuple(np.shape(p))}"
            )
    xg = jnp.reshape(x, shape)
    axes = (*range(1, xg.ndim - 2), xg.ndim - 1)  # spatial axes and channels in a group
    c, var, _ = centered_moments(xg, axes)
    rstd = jax.lax.rsqrt(var + eps)
    return c * rstd, rstd, axes


def group_norm(x: Any, num_groups: int, weight: Any = None, bias: Any = None, *,
               eps: float = 1e-5) -> Any:
    """Normalise each sample over groups of channels (and all spatial positions).

    .. math:: y = \\frac{x - E_g[x]}{\\sqrt{Var_g[x] + \\epsilon}} \\cdot weight + bias

    Args:
      x: ``[N, ..., C]`` (channels last).
      num_groups: number of groups; must divide ``C``.
      weight, bias: optional ``[C]`` per-channel affine parameters.
      eps: added to the biased variance.

    Returns an array of ``x``'s shape and dtype. PyTorch:
    ``torch.nn.functional.group_norm`` (channels first there). Wu & He (2018).

    Example:
      >>> group_norm(jnp.ones((2, 4, 4, 8)), 4).shape
      (2, 4, 4, 8)
    """
    check_positive("eps", eps, fn="group_norm")
    xhat, _, _ = _group_stats(x, num_groups, weight, bias, eps)
    return affine(jnp.reshape(xhat, x.shape), x, weight, bias)


def group_norm_backward(x: Any, num_groups: int, weight: Any, bias: Any, g: Any, *,
                        eps: float = 1e-5):
    """Closed-form vjp of :func:`group_norm`: ``(dx, dweight, dbias)``.

    The layer-norm formula per (sample, group): ``dx = rstd (dxhat - E[dxhat] -
    xhat E[dxhat xhat])`` with ``dxhat = g * weight``; ``dweight = sum(g xhat)`` and
    ``dbias = sum(g)`` over every axis but the channels.
    """
    xhat, rstd, axes = _group_stats(x, num_groups, weight, bias, eps)
    gf = g.astype(xhat.dtype)
    dxhat = gf if weight is None else gf * weight
    dx = normalize_backward(xhat, rstd, jnp.reshape(dxhat, xhat.shape), axes)
    lead = x.ndim - 1
    xhat = jnp.reshape(xhat, x.shape)
    dw = None if weight is None else _sum_leading(gf * xhat, lead).astype(weight.dtype)
    db = None if bias is None else _sum_leading(gf, lead).astype(bias.dtype)
    return jnp.reshape(dx, x.shape).astype(x.dtype), dw, db


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


_ln_ex, _ln_fd = _norm_examples((3, 6))
grads.register("layer_norm", forward=layer_norm, backward=layer_norm_backward,
               examples=_ln_ex, fd_examples=_ln_fd, argnums=(0, 1, 2))
grads.register("rms_norm", forward=lambda x, w: rms_norm(x, w, eps=1e-6),
               backward=lambda x, w, g: rms_norm_backward(x, w, g, eps=1e-6),
               examples=lambda: [e[:2] for e in _ln_ex()],
               fd_examples=lambda: [e[:2] for e in _ln_fd()], argnums=(0, 1))
_gn_ex, _gn_fd = _norm_examples((2, 3, 2, 4))
grads.register("group_norm(num_groups=2)", forward=lambda x, w, b: group_norm(x, 2, w, b),
               backward=lambda x, w, b, g: group_norm_backward(x, 2, w, b, g),
               examples=_gn_ex, fd_examples=_gn_fd, argnums=(0, 1, 2))
