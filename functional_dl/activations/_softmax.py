"""Normalising activations: softmax and log-softmax with ``where`` masks, and GLU.

Masks follow ``jax.nn.softmax``'s ``where``: ``True`` marks the entries that take part.
A masked entry gets probability exactly 0 (log-probability ``finfo(dtype).min``) and a
zero gradient. A fully masked row is all zeros for ``softmax`` and all
``finfo(dtype).min`` for ``log_softmax``, with zero gradients: no NaN anywhere. Without
a mask, a row whose logits are all ``-inf`` is likewise all zeros for ``softmax`` (and
``-inf``, the log of 0, for ``log_softmax``). ``torch.softmax`` returns NaN for such
rows; zeros are the convention of PyTorch's ``_safe_softmax``, used by its attention.
A row with a ``+inf`` logit is NaN, as in PyTorch and ``jax.nn``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import grads
from .._checks import check_int
from .._dtypes import upcast
from ._common import as_float
from ._smooth import sigmoid

# --------------------------------------------------------------------- validation


def _normalize_axis(axis: Any, ndim: int, fn: str) -> tuple[int, ...]:
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        check_int("axis", a, fn=fn)
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{fn}: axis must be in [-{ndim}, {ndim}) for x.ndim={ndim}, got axis={axis!r}"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis has repeated entries, got axis={axis!r}")
    return tuple(out)


def _check_where(where: Any, shape: tuple[int, ...], fn: str) -> jax.Array | None:
    if where is None:
        return None
    where = jnp.asarray(where)
    try:
        ok = jnp.broadcast_shapes(where.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{fn}: where must broadcast to x.shape={tuple(shape)}, got where.shape={where.shape}"
        )
    return jnp.broadcast_to(where.astype(bool), shape)


# ------------------------------------------------------------------------- formulas


def _shifted(x, axis, where):
    """``x - max(x)`` over ``axis`` (max over unmasked entries; masked entries -> -inf).

    The max starts from ``finfo.min`` instead of ``-inf``, so that a fully masked or all
    ``-inf`` row is shifted by a finite number (no ``-inf - -inf = NaN``); the shift
    carries no gradient (softmax is shift-invariant).
    """
    m = jnp.max(x, axis, where=where, initial=jnp.finfo(x.dtype).min, keepdims=True)
    m = jax.lax.stop_gradient(m)
    if where is None:
        return x - m
    return jnp.where(where, x - m, -jnp.inf)


def _normalizer(x, axis, where):
    """``(z, e, s)``: shifted logits, ``exp(z)`` and its sum over ``axis`` (1 if it is 0)."""
    z = _shifted(x, axis, where)
    e = jnp.exp(z)
    s = jnp.sum(e, axis, keepdims=True)
    return z, e, jnp.where(s > 0, s, jnp.ones_like(s))


def _softmax_formula(x, axis, where):
    _, e, s = _normalizer(x, axis, where)
    return e / s


def _log_softmax_formula(x, axis, where):
    z, _, s = _normalizer(x, axis, where)
    out = z - jnp.log(s)
    if where is None:
        return out
    return jnp.where(where, out, jnp.finfo(x.dtype).min)


def _softmax_backward(x, axis, where, g):
    """d softmax: x_bar = y * (g - sum(g * y)) over ``axis``, y = softmax(x) (0 where masked)."""
    y = _softmax_formula(x, axis, where)
    return y * (g - jnp.sum(g * y, axis, keepdims=True))


def _log_softmax_backward(x, axis, where, g):
    """d log_softmax: x_bar = g - softmax(x) * sum(g) over unmasked entries (0 where masked)."""
    y = _softmax_formula(x, axis, where)
    g = g if where is None else jnp.where(where, g, jnp.zeros_like(g))
    return g - y * jnp.sum(g, axis, keepdims=True)


def _with_jvp(formula, tangent):
    """``formula(x, axis, where)`` as a ``jax.custom_jvp`` (``axis`` static, ``where`` not
    differentiated) whose JVP is ``tangent(x, axis, where, t) -> (value, tangent_out)``."""
    f = jax.custom_jvp(formula, nondiff_argnums=(1,))
    f.defjvp(lambda axis, primals, tangents: tangent(primals[0], axis, primals[1], tangents[0]))
    return f


def _softmax_tangent(x, axis, where, t):
    y = _softmax_formula(x, axis, where)
    return y, y * (t - jnp.sum(y * t, axis, keepdims=True))


def _log_softmax_tangent(x, axis, where, t):
    z, e, s = _normalizer(x, axis, where)
    out = z - jnp.log(s)
    dot = t - jnp.sum(e * t, axis, keepdims=True) / s  # t - <softmax, t>; one multiply
    if where is not None:
        out = jnp.where(where, out, jnp.finfo(x.dtype).min)
        dot = jnp.where(where, dot, jnp.zeros_like(dot))
    return out, dot


_softmax = _with_jvp(_softmax_formula, _softmax_tangent)
_log_softmax = _with_jvp(_log_softmax_formula, _log_softmax_tangent)


def _prepare(x, axis, where, fn):
    x = as_float(x, fn=fn)
    if x.ndim == 0:
        raise ValueError(f"{fn}: x must have at least one axis, got x.shape=()")
    axes = _normalize_axis(axis, x.ndim, fn)
    return x, axes, _check_where(where, x.shape, fn)


# ------------------------------------------------------------------------ public API


def softmax(x: Any, *, axis: int | tuple[int, ...] = -1, where: Any = None) -> jax.Array:
    """Softmax over ``axis``, optionally restricted to the entries where ``where`` is True.

    Formula: ``softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)`` with ``m = max_j x_j``
    (the sum and max over unmasked entries); derivative (vjp)
    ``x_bar = y * (g - sum(g * y))``.

    Args:
      x: logits ``[..., n, ...]``.
      axis: the axis (or tuple of axes) to normalise over (default -1); PyTorch's ``dim``.
      where: optional boolean mask broadcastable to ``x.shape``; False entries are
        excluded: probability exactly 0 and zero gradient.

    Returns:
      probabilities with the shape and floating dtype of ``x``; along ``axis`` they sum
      to 1, except in a fully masked (or all ``-inf``) row, which is all zeros with zero
      gradient (never NaN).

    Raises:
      ValueError: ``axis`` out of range or ``where`` not broadcastable to ``x``.

    PyTorch: ``torch.softmax(x, dim)`` (PyTorch has no mask argument; a fully masked row
    follows its ``_safe_softmax``). ``jax.nn.softmax(x, axis, where)`` is the same where
    at least one entry of the row is unmasked. float16/bfloat16 are computed in float32.

    Example:
      >>> fdl.activations.softmax(jnp.array([1.0, 2.0, 3.0]), where=jnp.array([True, True, False]))
      Array([0.26894143, 0.7310586 , 0.        ], dtype=float32)
    """
    x, axes, where = _prepare(x, axis, where, "softmax")
    return _softmax(upcast(x), axes, where).astype(x.dtype)


def log_softmax(x: Any, *, axis: int | tuple[int, ...] = -1, where: Any = None) -> jax.Array:
    """Log-softmax over ``axis``, computed stably, optionally with a ``where`` mask.

    Formula: ``log_softmax(x)_i = (x_i - m) - log sum_j exp(x_j - m)``, ``m = max_j x_j``
    (over unmasked entries); derivative (vjp) ``x_bar = g - softmax(x) * sum(g)``.

    Args:
      x: logits ``[..., n, ...]``.
      axis: the axis (or tuple of axes) to normalise over (default -1).
      where: optional boolean mask broadcastable to ``x.shape``; False entries are
        excluded and get zero gradient.

    Returns:
      log-probabilities with the shape and floating dtype of ``x``. Masked entries (and
      every entry of a fully masked row) are ``finfo(x.dtype).min``, a finite stand-in for
      ``log 0`` so that ``exp`` gives exactly 0 and ``0 * log_softmax`` stays 0 (``jax.nn``
      returns ``-inf`` there).

    Raises:
      ValueError: ``axis`` out of range or ``where`` not broadcastable to ``x``.

    PyTorch: ``torch.log_softmax(x, dim)`` (no mask argument). ``jax.nn.log_softmax`` is
    the same on unmasked entries. float16/bfloat16 are computed in float32.

    Example:
      >>> fdl.activations.log_softmax(jnp.array([0.0, 0.0]))
      Array([-0.6931472, -0.6931472], dtype=float32)
    """
    x, axes, where = _prepare(x, axis, where, "log_softmax")
    out = _log_softmax(upcast(x), axes, where)
    if where is not None:  # finfo.min of the compute dtype would overflow to -inf in float16
        out = jnp.where(where, out, jnp.finfo(x.dtype).min)
    return out.astype(x.dtype)


def _softmax_examples():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)) * 3
    x[1, :] = [0.0, 1e4, -1e4, 20.0, -20.0, 0.0]
    mask = np.ones((4, 6), bool)
    mask[0, ::2] = False
    mask[2, :] = False  # a fully masked row
    mask[3, 1] = False
    return x, mask


def _register_softmax(name, formula, backward, public, reference):
    """Register ``name`` over the last axis, over axis 0, and with a mask."""

    def forward(x, axis, where):
        out = formula(x, axis, where)
        # masked outputs are constants (finfo.min for log_softmax): zero them so that the
        # finite differences of <f(x), g> do not cancel catastrophically; same gradient
        return out if where is None else jnp.where(where, out, 0.0)

    def entry(name, axis, where, examples, fd_examples):
        grads.register(
            name,
            forward=lambda x, *m: forward(x, axis, m[0] if m else None),
            backward=lambda x, *m_g: backward(x, axis, m_g[0] if where else None, m_g[-1]),
            examples=examples,
            fd_examples=fd_examples,
            public=lambda x, *m: _zero_masked(
                public(x, axis=axis[0], where=m[0] if m else None), m
            ),
            reference=lambda x, *m_g: jax.vjp(
                lambda x: _zero_masked(
                    reference(x, axis=axis[0], where=m_g[0] if where else None), m_g[:-1]
                ),
                x,
            )[1](m_g[-1])[0],
            reference_name="jax.nn",
        )

    def smooth():  # moderate logits for the finite differences
        return np.random.default_rng(1).standard_normal((4, 6)) * 3

    entry(name, (1,), False, lambda: [_softmax_examples()[:1]], lambda: [(smooth(),)])
    entry(
        f"{name}(axis=0)",
        (0,),
        False,
        lambda: [(_softmax_examples()[0].T,)],
        lambda: [(smooth().T,)],
    )
    entry(
        f"{name}(where=mask)",
        (1,),
        True,
        lambda: [_softmax_examples()],
        lambda: [(smooth(), _softmax_examples()[1])],
    )


def _zero_masked(out, m):
    return jnp.where(m[0], out, 0.0) if m else out


_register_softmax("softmax", _softmax_formula, _softmax_backward, softmax, jax.nn.softmax)
_register_softmax(
    "log_softmax", _log_softmax_formula, _log_softmax_backward, log_softmax, jax.nn.log_softmax
)

# ------------------------------------------------------------------------------ glu


def _glu_formula(x, axis):
    a, b = jnp.split(x, 2, axis)
    return a * jax.lax.logistic(b)


def _glu_backward(x, axis, g):
    """d glu: a_bar = g * sigmoid(b), b_bar = g * a * sigmoid(b) * (1 - sigmoid(b))."""
    a, b = jnp.split(x, 2, axis)
    s = jax.lax.logistic(b)
    return jnp.concatenate([g * s, g * a * s * (1 - s)], axis)


def glu(x: Any, *, axis: int = -1) -> jax.Array:
    """Gated linear unit: first half of ``axis`` gated by the sigmoid of the second half.

    Formula: with ``x = [a, b]`` split in two equal halves along ``axis``,
    ``glu(x) = a * sigmoid(b)``; derivative ``a_bar = g * sigmoid(b)``,
    ``b_bar = g * a * sigmoid(b) * (1 - sigmoid(b))``.

    Args:
      x: input ``[..., 2n, ...]``.
      axis: the axis to split (default -1); its size must be even.

    Returns:
      an array ``[..., n, ...]`` with the floating dtype of ``x``.

    Raises:
      ValueError: ``x.shape[axis]`` is odd, or ``axis`` is out of range.

    PyTorch: ``torch.nn.functional.glu(x, dim)`` (same); ``jax.nn.glu`` is the same
    function. Paper: Dauphin et al., 2016, https://arxiv.org/abs/1612.08083.

    Example:
      >>> fdl.activations.glu(jnp.array([1.0, 2.0, 0.0, 100.0]))
      Array([0.5, 2. ], dtype=float32)
    """
    x = as_float(x, fn="glu")
    if x.ndim == 0:
        raise ValueError("glu: x must have at least one axis, got x.shape=()")
    (ax,) = _normalize_axis(axis, x.ndim, "glu")
    if x.shape[ax] % 2:
        raise ValueError(
            f"glu: the size of axis must be even, got x.shape[{axis}]={x.shape[ax]} for axis={axis}"
        )
    a, b = jnp.split(x, 2, ax)
    return a * sigmoid(b)


def _glu_examples():
    x = np.concatenate([np.linspace(-6.0, 6.0, 14), [0.0, 20.0, -20.0, 1e4, -1e4, 0.0]])
    return [(x.reshape(5, 4),)]


def _glu_fd_examples():
    return [((np.linspace(-5.0, 5.0, 20) + 0.123).reshape(5, 4),)]


grads.register(
    "glu",
    forward=lambda x: _glu_formula(x, -1),
    backward=lambda x, g: _glu_backward(x, -1, g),
    examples=_glu_examples,
    fd_examples=_glu_fd_examples,
    public=glu,
    reference=lambda x, g: jax.vjp(jax.nn.glu, x)[1](g)[0],
    reference_name="jax.nn",
)
grads.register(
    "glu(axis=0)",
    forward=lambda x: _glu_formula(x, 0),
    backward=lambda x, g: _glu_backward(x, 0, g),
    examples=lambda: [(_glu_examples()[0][0].reshape(4, 5),)],
    fd_examples=lambda: [(_glu_fd_examples()[0][0].reshape(4, 5),)],
    public=lambda x: glu(x, axis=0),
)
