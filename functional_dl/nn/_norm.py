"""Per-sample normalisation: ``layer_norm``, ``rms_norm``, ``group_norm``, and their backward.

Layer and group norm share :func:`~functional_dl.nn._normalize.normalize` (one-pass
shifted-data statistics in at least float32, accurate at mean 1e4 and std 1e-2, and a
closed-form backward); ``rms_norm`` has its own closed-form backward. The public
functions differentiate with these hand-derived backward passes (``jax.custom_vjp``);
the plain formulas are registered with :mod:`functional_dl.grads` to check them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_floating, check_int, check_positive
from ._normalize import affine, normalize, normalize_formula, normalize_vjp
from ._utils import register_grad, stat_dtype

__all__ = [
    "layer_norm",
    "layer_norm_backward",
    "rms_norm",
    "rms_norm_backward",
    "group_norm",
    "group_norm_backward",
]


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
    check_positive("eps", eps, fn="layer_norm")
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
    with :func:`layer_norm_backward`.

    PyTorch: ``torch.nn.functional.layer_norm(x, weight.shape, weight, bias, eps)``;
    ``flax.linen.LayerNorm`` (whose default one-pass variance is inaccurate at large means).

    Example:
      >>> layer_norm(jnp.array([[1.0, 2.0, 3.0]]))  # ~[[-1.22, 0, 1.22]]
    """
    return _layer_norm(x, weight, bias, eps, normalize)


def layer_norm_backward(x: Any, weight: Any, bias: Any, g: Any, *, eps: float = 1e-5):
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
    check_positive("eps", eps, fn="rms_norm")
    return eps


def _rms_fwd(x, weight, axes, eps):
    xf = x.astype(stat_dtype(x.dtype))
    r = jax.lax.rsqrt(jnp.mean(xf * xf, axis=axes, keepdims=True) + eps)
    return affine(xf * r, x, weight, None), (x, r, weight)


def _rms_bwd(axes, eps, res, g):
    """``dx = r (dxhat - xhat E[dxhat xhat])``, ``dxhat = g w``; ``dweight = sum(g xhat)``."""
    x, r, weight = res
    xhat = x.astype(r.dtype) * r
    g = g.astype(r.dtype)
    dxhat = g if weight is None else g * weight
    dx = r * (dxhat - xhat * jnp.mean(dxhat * xhat, axis=axes, keepdims=True))
    lead = tuple(range(x.ndim - len(axes)))
    dw = None if weight is None else jnp.sum(g * xhat, axis=lead).astype(weight.dtype)
    return dx.astype(x.dtype), dw


def _rms_formula(x, weight, axes, eps):
    return _rms_fwd(x, weight, axes, eps)[0]


_rms = jax.custom_vjp(_rms_formula, nondiff_argnums=(2, 3))
_rms.defvjp(_rms_fwd, _rms_bwd)


def rms_norm(x: Any, weight: Any = None, *, eps: float | None = None) -> Any:
    """Root-mean-square normalisation of the trailing axes (no centring).

    .. math:: y = \\frac{x}{\\sqrt{E[x^2] + \\epsilon}} \\cdot weight

    Args:
      x: ``[..., *normalized_shape]``.
      weight: optional ``normalized_shape`` scale.
      eps: default ``finfo(x.dtype).eps``, as PyTorch (a Python float).

    Returns an array of ``x``'s shape and dtype; differentiates with
    :func:`rms_norm_backward`. PyTorch: ``torch.nn.functional.rms_norm(x, weight.shape,
    weight, eps)``. Zhang & Sennrich (2019).

    Example:
      >>> rms_norm(jnp.array([[3.0, 4.0]]))  # [[0.85, 1.13]]
    """
    eps = _rms_eps(x, eps)
    return _rms(x, weight, _norm_axes("rms_norm", x, weight, None), eps)


def rms_norm_backward(x: Any, weight: Any, g: Any, *, eps: float | None = None):
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
    check_positive("eps", eps, fn="group_norm")
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

    Returns an array of ``x``'s shape and dtype; differentiates with
    :func:`group_norm_backward`. PyTorch: ``torch.nn.functional.group_norm`` (channels
    first there). Wu & He (2018).

    Example:
      >>> group_norm(jnp.ones((2, 4, 4, 8)), 4).shape
      (2, 4, 4, 8)
    """
    return _group_norm(x, num_groups, weight, bias, eps, normalize)


def group_norm_backward(
    x: Any, num_groups: int, weight: Any, bias: Any, g: Any, *, eps: float = 1e-5
):
    """Closed-form vjp of :func:`group_norm`: ``(dx, dweight, dbias)``.

    The layer-norm formula per (sample, group): ``dx = rstd (dxhat - E[dxhat] -
    xhat E[dxhat xhat])`` with ``dxhat = g * weight``; ``dweight = sum(g xhat)`` and
    ``dbias = sum(g)`` over every axis but the channels.
    """
    xg, wg, bg, axes = _grouped(x, num_groups, weight, bias)
    dx, dw, db = normalize_vjp(xg, wg, bg, jnp.reshape(g, xg.shape), axes, eps, None)
    dw, db = (None if d is None else jnp.reshape(d, (-1,)) for d in (dw, db))
    return jnp.reshape(dx, x.shape), dw, db


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
)
register_grad(
    "rms_norm",
    forward=lambda x, w: _rms_formula(x, w, (x.ndim - 1,), 1e-6),
    backward=lambda x, w, g: rms_norm_backward(x, w, g, eps=1e-6),
    examples=lambda: [e[:2] for e in _ln_ex()],
    fd_examples=lambda: [e[:2] for e in _ln_fd()],
    argnums=(0, 1),
)
_gn_ex, _gn_fd = _norm_examples((2, 3, 2, 4))
register_grad(
    "group_norm(num_groups=2)",
    forward=lambda x, w, b: _group_norm(x, 2, w, b, 1e-5, normalize_formula),
    backward=lambda x, w, b, g: group_norm_backward(x, 2, w, b, g),
    examples=_gn_ex,
    fd_examples=_gn_fd,
    argnums=(0, 1, 2),
)
