"""Small helpers shared by the ``nn`` ops: argument normalisation and dtype rules.

Dtype rule of every ``nn.functional`` op: the output has the floating dtype of the
data argument ``x``; parameters (weights, biases, tables) are cast to it, so float32
parameters work with bfloat16 activations (mixed precision). Statistics of the
normalisation layers are accumulated in at least float32
(:func:`functional_dl._dtypes.compute_dtype`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ... import grads
from ..._checks import check_floating, check_int


def as_ints(name: str, value: Any, n: int, *, fn: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int, or ``n`` ints) as ``n`` ints, each ``>= minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            what = {1: "an int", 2: "an int or a pair of ints"}.get(n, f"an int or {n} ints")
            raise ValueError(f"{fn}: {name} must be {what}, got {name}={value!r}")
        ints = tuple(value)
    else:
        ints = (value,) * n
    for v in ints:
        check_int(name, v, fn=fn)
        if v < minimum:
            raise ValueError(f"{fn}: {name} must be >= {minimum}, got {name}={value!r}")
    return tuple(int(v) for v in ints)


def as_pair(name: str, value: Any, *, fn: str, minimum: int = 1) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as ``(h, w)``, each ``>= minimum``."""
    h, w = as_ints(name, value, 2, fn=fn, minimum=minimum)
    return h, w


def param(p: Any, x: Any) -> Any:
    """Parameter ``p`` cast to the dtype of ``x`` (``None`` stays ``None``)."""
    return None if p is None else jnp.asarray(p).astype(x.dtype)


def to_rank(v: Any, ndim: int) -> Any:
    """``v`` with leading size-1 axes added up to rank ``ndim``: the explicit form of
    NumPy's trailing-axis broadcasting, valid under ``jax_numpy_rank_promotion='raise'``
    (``to_rank(bias [C], 4)`` is ``[1, 1, 1, C]``)."""
    v = jnp.asarray(v)
    return jnp.reshape(v, (1,) * (ndim - v.ndim) + v.shape)


def param_to(p: Any, x: Any) -> Any:
    """Parameter ``p`` cast to ``x``'s dtype and broadcast-ready against ``x``
    (:func:`to_rank` of ``x.ndim``); ``None`` stays ``None``."""
    return None if p is None else to_rank(jnp.asarray(p).astype(x.dtype), x.ndim)


def check_input(name: str, x: Any, ndims: Any, *, fn: str, what: str) -> None:
    """Floating ``x`` of rank ``ndims``; the message names the expected layout ``what``."""
    check_floating(name, x, fn=fn)
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if np.ndim(x) not in allowed:
        raise ValueError(
            f"{fn}: {name} must have rank {' or '.join(map(str, allowed))} ({what}), "
            f"got {name}.shape={tuple(np.shape(x))}"
        )


def register_grad(name: str, *, forward: Any, backward: Any, **kwargs: Any) -> None:
    """:func:`functional_dl.grads.register` with ``forward`` and ``backward`` under ``jit``:
    one compilation per example shape instead of one per eager op, for fast checks
    (``public``, the public function whose gradient must be the rule, is jitted too)."""
    if kwargs.get("public") is not None:
        kwargs["public"] = jax.jit(kwargs["public"])
    grads.register(name, forward=jax.jit(forward), backward=jax.jit(backward), **kwargs)


def is_zero(t: Any) -> bool:
    """``True`` for an absent or symbolically zero tangent (``custom_jvp`` with
    ``symbolic_zeros=True`` passes :class:`jax.custom_derivatives.SymbolicZero`)."""
    return t is None or isinstance(t, SymbolicZero)


def tangent_sum(ref: Any, terms: list) -> Any:
    """The sum of the tangent ``terms`` broadcast to ``ref``'s shape and dtype (zeros
    when ``terms`` is empty): the output tangent of a jvp rule."""
    if not terms:
        return jnp.zeros_like(ref)
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return jnp.broadcast_to(total, ref.shape).astype(ref.dtype)
