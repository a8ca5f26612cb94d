"""Adafactor (Shazeer & Stern, 2018) with PyTorch's choices: ``scale_by_adafactor`` and
``adafactor``.

PyTorch's ``torch.optim.Adafactor`` (2.5+) differs from the paper and from
``optax.adafactor`` in where ``eps1`` enters (a floor on the row mean and on the
variance, not an additive term), in using ``lr`` as the cap of the relative step and as
the coefficient of decoupled weight decay. See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._checks import check_nonnegative, check_positive, is_concrete, nan_if_invalid
from ._base import (
    ScalarOrSchedule,
    advance,
    is_active,
    leafwise,
    moment_dtype,
    validate,
    value_at,
    zero_count,
)
from ._transforms import scale

__all__ = ["ScaleByAdafactorState", "scale_by_adafactor", "adafactor"]


class ScaleByAdafactorState(NamedTuple):
    """State of Adafactor's factored second moment."""

    count: jax.Array  # int32 scalar: updates done so far
    row_var: Any  # pytree like params: [..., n, 1] row means of g² for >=2-D leaves, else []
    col_var: Any  # pytree like params: [..., 1, m] column means of g² for >=2-D leaves, else []
    variance: Any  # pytree like params: g² average for 0/1-D leaves, else []


def _factored(p: Any) -> bool:
    return jnp.ndim(p) >= 2


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.square(x))) if x.size else jnp.zeros([], x.dtype)


def _check_beta2_decay(fn: str, beta2_decay: Any) -> Any:
    """``beta2_decay <= 0``: ``ValueError`` when concrete, NaN when traced (as ``validate``)."""
    if is_concrete(beta2_decay):
        if beta2_decay > 0:
            raise ValueError(f"{fn}: beta2_decay must be <= 0, got beta2_decay={beta2_decay!r}")
        return beta2_decay
    return nan_if_invalid(beta2_decay, beta2_decay <= 0)


def scale_by_adafactor(
    beta2_decay: float = -0.8, eps1: float | None = None, d: float = 1.0
) -> optax.GradientTransformation:
    """Adafactor's clipped direction ``Û_t`` (PyTorch's ``Adafactor``, without the step size).

    With ``1 - β̂₂ₜ = t^beta2_decay`` and, for a leaf of two or more dimensions (factored
    over its last two axes),

    .. math::
        R_t = \\operatorname{lerp}(R_{t-1}, \\overline{G^2}^{\\,\\text{cols}}, 1-\\hat\\beta_{2t}),
        \\quad C_t = \\operatorname{lerp}(C_{t-1}, \\overline{G^2}^{\\,\\text{rows}},
        1-\\hat\\beta_{2t}), \\quad
        \\hat V_t = \\frac{R_t C_t}{\\max(\\bar R_t, \\epsilon_1)}

    (``V_t = lerp(V_{t-1}, G², 1-β̂₂ₜ)`` for a 0/1-D leaf), then
    ``U = G / sqrt(max(V̂, ε₁²))`` and ``Û = U / max(1, RMS(U)/d)``.

    Args:
        beta2_decay: exponent ``<= 0`` of the decay schedule ``1 - β̂₂ₜ = t^beta2_decay``.
        eps1: floor of the variance (``None``: the machine epsilon of each leaf's dtype).
        d: clipping threshold ``> 0`` on the RMS of the update.

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByAdafactorState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_adafactor()
        >>> u, _ = t.update({"w": jnp.full((2, 2), 3.0)}, t.init({"w": jnp.zeros((2, 2))}))
        >>> u["w"]
        Array([[1., 1.],
               [1., 1.]], dtype=float32)
    """
    fn = "scale_by_adafactor"
    beta2_decay = _check_beta2_decay(fn, beta2_decay)
    if eps1 is not None:
        eps1 = check_nonnegative("eps[0]", eps1, fn=fn)
    d = check_positive("d", d, fn=fn)

    def init(params):
        def row(p):
            dt = moment_dtype(jnp.result_type(p))
            shape = jnp.shape(p)[:-1] + (1,) if _factored(p) else ()
            return jnp.zeros(shape, dt)

        def col(p):
            dt = moment_dtype(jnp.result_type(p))
            shape = jnp.shape(p)[:-2] + (1, jnp.shape(p)[-1]) if _factored(p) else ()
            return jnp.zeros(shape, dt)

        def var(p):
            dt = moment_dtype(jnp.result_type(p))
            return jnp.zeros(() if _factored(p) else jnp.shape(p), dt)

        return ScaleByAdafactorState(
            zero_count(),
            jax.tree.map(row, params),
            jax.tree.map(col, params),
            jax.tree.map(var, params),
        )

    def update(updates, state, params=None):
        del params
        count, _, t = advance(state.count)
        w = t**beta2_decay  # 1 - beta2_t, exactly 1 at the first step

        def leaf(g, r, c, v):
            dt = r.dtype
            x = g.astype(dt)
            e1 = jnp.finfo(g.dtype).eps if eps1 is None else eps1
            x2 = x * x
            wt = w.astype(dt)
            if x.ndim >= 2:
                r = r + wt * (jnp.mean(x2, axis=-1, keepdims=True) - r)
                c = c + wt * (jnp.mean(x2, axis=-2, keepdims=True) - c)
                var = (r / jnp.maximum(jnp.mean(r, axis=-2, keepdims=True), e1)) * c
            else:
                v = v + wt * (x2 - v)
                var = v
            u = x * jax.lax.rsqrt(jnp.maximum(var, e1 * e1))
            u = u * (1.0 / jnp.maximum(1.0, _rms(u) / d))
            return u.astype(g.dtype), r, c, v

        updates, r, c, v = leafwise(leaf, 4, updates, state.row_var, state.col_var, state.variance)
        return updates, ScaleByAdafactorState(count, r, c, v)

    return optax.GradientTransformation(init, update)


class _RelativeStepState(NamedTuple):
    count: jax.Array  # int32 scalar: updates done so far


def _scale_by_relative_step(
    lr: ScalarOrSchedule, eps2: float, weight_decay: float
) -> optax.GradientTransformation:
    """``u ← -(min(lr, 1/√t)·max(ε₂, RMS(θ))·u + lr·λ·θ)``: Adafactor's step size and decay."""

    def init(params):
        del params
        return _RelativeStepState(zero_count())

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("adafactor: update() needs params (relative step size)")
        count, step, t = advance(state.count)
        lr_t = value_at(lr, step)
        rho = jnp.minimum(lr_t, jax.lax.rsqrt(t))

        def leaf(u, p):
            dt = moment_dtype(u.dtype)
            pc = p.astype(dt)
            alpha = jnp.maximum(eps2, _rms(pc)) * rho.astype(dt)
            out = -alpha * u.astype(dt)
            if is_active(weight_decay):
                out = out - (lr_t * weight_decay).astype(dt) * pc
            return out.astype(u.dtype)

        return jax.tree.map(leaf, updates, params), _RelativeStepState(count)

    return optax.GradientTransformation(init, update)


def adafactor(
    lr: ScalarOrSchedule = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """Adafactor as ``torch.optim.Adafactor``: factored second moments, relative step size.

    .. math::
        \\rho_t = \\min(\\gamma_t, 1/\\sqrt{t}), \\qquad
        \\alpha_t = \\max(\\epsilon_2, \\operatorname{RMS}(\\theta_{t-1}))\\,\\rho_t, \\qquad
        \\theta_t = \\theta_{t-1}(1 - \\gamma_t\\lambda) - \\alpha_t \\hat U_t

    with ``Û_t`` from ``scale_by_adafactor`` (leaves of two or more dimensions keep only
    row and column means of ``g²`` over their last two axes: sublinear memory).
    ``optax.adafactor`` is the paper's variant (``eps`` added inside the factors, momentum
    optional, ``lr`` multiplying the step): a different rule.

    Args:
        lr: learning rate ``>= 0`` or schedule: the cap of the relative step and the
            coefficient of the decoupled weight decay (PyTorch's use of ``lr``).
        beta2_decay: ``<= 0``; ``1 - β̂₂ₜ = t^beta2_decay``.
        eps: ``(eps1, eps2)``: variance floor (``None``: machine epsilon of the leaf's
            dtype) and floor of the parameter RMS.
        d: clipping threshold ``> 0`` of the update RMS.
        weight_decay: decoupled decay ``λ >= 0``.
        maximize: ascend the objective.

    Returns:
        An ``optax.GradientTransformation``; its ``update`` needs ``params``.

    Paper: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
    Cost", 2018.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.adafactor()
        >>> p = {"w": jnp.ones((2, 3))}
        >>> u, _ = opt.update({"w": jnp.ones((2, 3))}, opt.init(p), p)
        >>> u["w"]
        Array([[-0.01, -0.01, -0.01],
               [-0.01, -0.01, -0.01]], dtype=float32)
    """
    fn = "adafactor"
    lr, weight_decay = validate(fn, lr=lr, weight_decay=weight_decay)
    try:
        eps1, eps2 = eps
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: eps must be a pair (eps1, eps2), got eps={eps!r}") from exc
    eps2 = check_nonnegative("eps[1]", eps2, fn=fn)
    if eps1 is not None:
        eps1 = check_nonnegative("eps[0]", eps1, fn=fn)
    d = check_positive("d", d, fn=fn)
    beta2_decay = _check_beta2_decay(fn, beta2_decay)
    parts = [scale(-1.0)] if maximize else []
    parts.append(scale_by_adafactor(beta2_decay, eps1, d))
    parts.append(_scale_by_relative_step(lr, eps2, weight_decay))
    return optax.chain(*parts)
