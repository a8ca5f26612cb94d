"""Machinery shared by the activations: dtype handling, elementwise custom JVPs, registration.

An elementwise activation is two plain functions of the input ``x`` (and its
hyperparameters ``*hp``):

* ``formula(x, *hp)`` — the forward value, written with ``jnp.where`` so that its
  autodiff derivative already follows PyTorch's convention at kinks;
* ``derivative(x, y, *hp)`` — ``dy/dx`` derived by hand (``y = formula(x, *hp)`` is
  passed in so that e.g. ``sigmoid' = y (1 - y)`` reuses the forward value).

:func:`elementwise` turns the pair into a ``jax.custom_jvp`` function whose tangent
is ``derivative(x, y) * t``: the public function differentiates with the hand-derived
formula (also in forward mode and to any order, since ``derivative`` is itself
differentiable), and XLA fuses value and derivative into one loop.
:func:`register_elementwise` registers the same pair with :mod:`functional_dl.grads`.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import grads
from .._checks import check_in_range
from .._dtypes import upcast


def as_float(x: Any, *, fn: str) -> jax.Array:
    """``x`` as a JAX array with a real floating dtype (integers and bools are promoted)."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: x must be a real floating array, got x.dtype={x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_real(name: str, value: Any, *, fn: str) -> None:
    """Raise unless ``value`` is a finite real scalar (tracers pass unchecked)."""
    value = check_in_range(
        name, value, -math.inf, math.inf, lo_closed=False, hi_closed=False, fn=fn
    )


def elementwise(
    formula: Callable[..., Any], derivative: Callable[..., Any], n_hp: int = 0
) -> Callable[..., jax.Array]:
    """``f(x, *hp)`` = ``formula`` with the hand-derived ``derivative`` as its JVP.

    The ``n_hp`` hyperparameters are non-differentiable (``nondiff_argnums``); they may
    be Python numbers or traced scalars. float16/bfloat16 inputs are computed in
    float32 and the value and tangent are cast back to the input dtype.
    """

    def primal(x, *hp):
        xc = upcast(x)
        return formula(xc, *hp).astype(x.dtype)

    f = jax.custom_jvp(primal, nondiff_argnums=tuple(range(1, 1 + n_hp)))

    @f.defjvp
    def _jvp(*args):
        *hp, (x,), (t,) = args
        xc = upcast(x)
        y = formula(xc, *hp)
        dy = derivative(xc, y, *hp)
        return y.astype(x.dtype), (t.astype(dy.dtype) * dy).astype(t.dtype)

    return f


def smooth_grid(*extra: float) -> np.ndarray:
    """Points for finite differences: a grid >= 0.1 away from every integer, + 2 extra points.

    Every grid has the same length, so the eager checks of all entries share compilations.
    """
    extra = (*extra, 1.55, -1.55)[:2]
    return np.concatenate([np.linspace(-7.0, 7.0, 29) + 0.123, np.asarray(extra, float)])


def edge_grid(*kinks: float) -> np.ndarray:
    """Points for the autodiff comparison: a grid, 0, +-20, +-1e4 and up to 2 kinks."""
    kinks = (*kinks, 0.0, 0.0)[:2]
    edges = [0.0, -20.0, 20.0, -1e4, 1e4, *kinks]
    return np.concatenate([np.linspace(-8.0, 8.0, 33), np.asarray(edges, float)])


def register_elementwise(
    name: str,
    formula: Callable[..., Any],
    derivative: Callable[..., Any],
    *hp: Any,
    kinks: tuple[float, ...] = (),
    fd_extra: tuple[float, ...] = (),
    public: Callable[..., Any] | None = None,
    reference: Callable[..., Any] | None = None,
    reference_name: str = "",
) -> None:
    """Register ``formula``/``derivative`` (hyperparameters ``hp`` baked in) as ``name``.

    ``public`` is the public function; the keyword arguments written in ``name`` (e.g.
    ``"elu(alpha=0.5)"``) are bound to it. ``reference(x)`` is an outside function
    (``jax.nn``) whose autodiff gradient is compared too.
    """
    bound = None
    if public is not None:
        kwargs = {}
        if "(" in name:
            call = ast.parse(name, mode="eval").body
            assert isinstance(call, ast.Call)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
        bound = functools.partial(public, **kwargs)
    ref_vjp: Callable[..., Any] | None = None
    if reference is not None:
        ref_fn = reference

        def _ref_vjp(x, g):
            return jax.vjp(ref_fn, x)[1](g)[0]

        ref_vjp = _ref_vjp

    def forward(x):
        return formula(x, *hp)

    def backward(x, g):
        return g * derivative(x, formula(x, *hp), *hp)

    grads.register(
        name,
        forward=forward,
        backward=backward,
        examples=lambda: [(edge_grid(*kinks),)],
        fd_examples=lambda: [(smooth_grid(*fd_extra),)],
        public=bound,
        reference=ref_vjp,
        reference_name=reference_name or ("jax.nn" if reference is not None else ""),
    )
