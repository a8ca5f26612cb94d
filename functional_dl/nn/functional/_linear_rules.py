"""``jax.custom_jvp`` builders for ops that are linear in their data (or bilinear in data
and weights): their tangent is the op itself applied to the tangents.

For a bilinear ``y = f(x, w) + b`` the hand-derived JVP is the product rule
``dy = f(dx, w) + f(x, dw) + db``; for a linear ``y = f(x)`` it is ``dy = f(dx)``. Both
are linear in the tangents, so reverse mode is their transpose and forward mode,
``jacfwd`` and ``hessian`` work too. Tangents of inputs that are not differentiated stay
symbolic zeros (no wasted convolution of zeros).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from jax.custom_derivatives import SymbolicZero

__all__ = ["bilinear_op", "linear_op"]


def _zero(t: Any) -> bool:
    return t is None or isinstance(t, SymbolicZero)


def bilinear_op(plain: Callable[..., Any]) -> Callable[..., Any]:
    """``f(x, w, b, *static)`` = ``plain(x, w, *static) (+ b)`` with the product-rule JVP.

    ``plain`` is bilinear in ``(x, w)``; ``b`` (``None`` or an array broadcast-ready
    against the output) is added; ``static`` are hashable hyperparameters.
    """

    def primal(x, w, b, *static):
        y = plain(x, w, *static)
        return y if b is None else y + b

    f = jax.custom_jvp(primal, nondiff_argnums=tuple(range(3, 3 + _n_static(plain))))

    def jvp(*args):
        static, (primals, tangents) = args[:-2], args[-2:]
        x, w, b = primals
        dx, dw, db = tangents
        y = primal(x, w, b, *static)
        parts = []
        if not _zero(dx):
            parts.append(plain(dx, w, *static))
        if not _zero(dw):
            parts.append(plain(x, dw, *static))
        if b is not None and not _zero(db):
            parts.append(jax.numpy.broadcast_to(db, y.shape).astype(y.dtype))
        t = sum(parts[1:], parts[0]) if parts else jax.numpy.zeros_like(y)
        return y, t

    f.defjvp(jvp, symbolic_zeros=True)
    return f


def linear_op(plain: Callable[..., Any]) -> Callable[..., Any]:
    """``f(x, *static)`` = ``plain(x, *static)`` (linear in ``x``) with JVP ``plain(dx)``."""
    f = jax.custom_jvp(plain, nondiff_argnums=tuple(range(1, 1 + _n_static(plain, 1))))

    def jvp(*args):
        static, ((x,), (dx,)) = args[:-2], args[-2:]
        return plain(x, *static), plain(dx, *static)

    f.defjvp(jvp)
    return f


def _n_static(plain: Callable[..., Any], data: int = 2) -> int:
    """Number of static arguments of ``plain`` after its ``data`` array arguments."""
    import inspect

    return len(inspect.signature(plain).parameters) - data
