"""Adam-family moment estimators: ``scale_by_adam``, ``scale_by_nadam``, ``scale_by_radam``,
``scale_by_adamax``.

Each turns (already weight-decayed) gradients ``g`` into a step direction; the optimizer
chains it with ``scale_by_lr`` (``-lr·u``). Formulas follow PyTorch's documented
algorithms with ``t`` the 1-based step. Betas may be schedules ``step -> beta``
(evaluated at ``t - 1``); bias corrections then use the current beta, as PyTorch does
when a scheduler rewrites ``param_group['betas']``. See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._base import (
    ScalarOrSchedule,
    advance_betas,
    ema,
    leafwise,
    validate,
    zero_count,
    zeros_like_moment,
)

__all__ = [
    "ScaleByAdamState",
    "ScaleByNadamState",
    "ScaleByAdamaxState",
    "scale_by_adam",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_adamax",
]


def _moments(
    beta1: jax.Array, beta2: jax.Array, g: jax.Array, m: jax.Array, v: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One leaf of Adam's moments in ``m``'s dtype: ``(g, β1·m + (1-β1)·g, β2·v + (1-β2)·g²)``."""
    dt = m.dtype
    x = g.astype(dt)
    return x, ema(beta1.astype(dt), m, x), ema(beta2.astype(dt), v, x * x)


def _zero_moments(params: Any, state_dtype: Any) -> tuple[Any, Any]:
    """The first and second moments at zero, shaped like ``params``."""
    return zeros_like_moment(params, state_dtype), zeros_like_moment(params, state_dtype)


# ---------------------------------------------------------------------------------------
class ScaleByAdamState(NamedTuple):
    """State of Adam's moment estimates."""

    count: jax.Array  # int32 scalar: updates done so far
    exp_avg: Any  # pytree like params: first moment m_t
    exp_avg_sq: Any  # pytree like params: second moment v_t
    max_exp_avg_sq: Any  # pytree like params: max_{s<=t} v_s (amsgrad), else None


def scale_by_adam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    *,
    amsgrad: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adam's direction (Kingma & Ba, 2015) with PyTorch's eps placement.

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2, \\quad
        u_t = \\frac{m_t / (1-\\beta_1^t)}{\\sqrt{\\hat v_t} / \\sqrt{1-\\beta_2^t} + \\epsilon}

    with ``v̂ = v`` or, with ``amsgrad``, the running maximum of ``v`` (PyTorch keeps the
    max of the raw second moment). Same rule as ``optax.scale_by_adam`` (``eps_root=0``).

    Args:
        b1, b2: decay rates in ``[0, 1)`` or schedules ``step -> beta``.
        eps: added to the denominator (outside the root), ``>= 0``.
        amsgrad: use the running maximum of ``v_t`` (Reddi et al., 2018).
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByAdamState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_adam()
        >>> u, _ = t.update({"w": jnp.array([2.0, -3.0])}, t.init({"w": jnp.zeros(2)}))
        >>> u["w"].round(4)  # the first step is sign(g) (up to eps)
        Array([ 1., -1.], dtype=float32)
    """
    b1, b2, eps = validate("scale_by_adam", b1=b1, b2=b2, eps=eps)

    def init(params):
        m, v = _zero_moments(params, state_dtype)
        vmax = zeros_like_moment(params, state_dtype) if amsgrad else None
        return ScaleByAdamState(count=zero_count(), exp_avg=m, exp_avg_sq=v, max_exp_avg_sq=vmax)

    def update(updates, state, params=None):
        del params
        count, t, beta1, beta2 = advance_betas(b1, b2, state.count)
        inv_bc1 = 1 / (1 - beta1**t)
        inv_sqrt_bc2 = jax.lax.rsqrt(1 - beta2**t)

        def leaf(g, m, v, vmax=None):
            _, m, v = _moments(beta1, beta2, g, m, v)
            dt = m.dtype
            if vmax is not None:
                vmax = jnp.maximum(vmax, v)
            denom = jnp.sqrt(v if vmax is None else vmax) * inv_sqrt_bc2.astype(dt) + eps
            return (m * inv_bc1.astype(dt) / denom).astype(g.dtype), m, v, vmax

        trees = (updates, state.exp_avg, state.exp_avg_sq)
        if amsgrad:
            trees += (state.max_exp_avg_sq,)
        updates, m, v, vmax = leafwise(leaf, 4, *trees)
        return updates, ScaleByAdamState(count, m, v, vmax if amsgrad else None)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
class ScaleByNadamState(NamedTuple):
    """State of NAdam's moment estimates."""

    count: jax.Array  # int32 scalar: updates done so far
    mu_product: jax.Array  # float scalar: prod_{i<=t} mu_i (starts at 1)
    exp_avg: Any  # pytree like params: first moment m_t
    exp_avg_sq: Any  # pytree like params: second moment v_t


def scale_by_nadam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    *,
    momentum_decay: float = 4e-3,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """NAdam's direction (Dozat, 2016) with PyTorch's momentum schedule (``torch.optim.NAdam``).

    .. math::
        \\mu_t = \\beta_1 (1 - \\tfrac12 0.96^{t\\psi}), \\quad
        \\hat m_t = \\frac{\\mu_{t+1} m_t}{1 - \\prod_{i\\le t+1}\\mu_i}
                  + \\frac{(1-\\mu_t) g_t}{1 - \\prod_{i\\le t}\\mu_i}, \\quad
        u_t = \\hat m_t / (\\sqrt{v_t / (1-\\beta_2^t)} + \\epsilon)

    with ``m_t, v_t`` Adam's moments and ``ψ`` = ``momentum_decay``. ``optax.nadam``
    implements a different (Keras) variant without the ``μ_t`` schedule.

    Args:
        b1, b2: decay rates in ``[0, 1)`` or schedules.
        eps: ``>= 0``, added outside the root.
        momentum_decay: ``ψ >= 0``.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByNadamState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_nadam()
        >>> u, _ = t.update({"w": jnp.ones(1)}, t.init({"w": jnp.zeros(1)}))
        >>> u["w"].round(3)  # (1-mu_1)/(1-mu_1)·g + mu_2/(1-mu_1·mu_2)·m_1, m_1 = 0.1
        Array([1.056], dtype=float32)
    """
    b1, b2, eps, momentum_decay = validate(
        "scale_by_nadam", b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay
    )

    def init(params):
        mu_product = jnp.ones([], jnp.result_type(float))
        return ScaleByNadamState(zero_count(), mu_product, *_zero_moments(params, state_dtype))

    def update(updates, state, params=None):
        del params
        count, t, beta1, beta2 = advance_betas(b1, b2, state.count)
        mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mu
        c_grad = (1 - mu) / (1 - mu_product)
        c_avg = mu_next / (1 - mu_product * mu_next)
        inv_bc2 = 1 / (1 - beta2**t)

        def leaf(g, m, v):
            x, m, v = _moments(beta1, beta2, g, m, v)
            dt = m.dtype
            denom = jnp.sqrt(v * inv_bc2.astype(dt)) + eps
            u = (c_grad.astype(dt) * x + c_avg.astype(dt) * m) / denom
            return u.astype(g.dtype), m, v

        updates, m, v = leafwise(leaf, 3, updates, state.exp_avg, state.exp_avg_sq)
        return updates, ScaleByNadamState(count, mu_product, m, v)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
def scale_by_radam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    *,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """RAdam's rectified direction (Liu et al., 2020) as in ``torch.optim.RAdam``.

    .. math::
        \\rho_\\infty = \\frac{2}{1-\\beta_2} - 1, \\quad
        \\rho_t = \\rho_\\infty - \\frac{2 t \\beta_2^t}{1-\\beta_2^t}, \\quad
        u_t = \\hat m_t \\cdot \\begin{cases}
            r_t \\sqrt{1-\\beta_2^t} / (\\sqrt{v_t} + \\epsilon) & \\rho_t > 5 \\\\
            1 & \\text{otherwise} \\end{cases}

    with ``m̂_t = m_t/(1-β1^t)`` and ``r_t = sqrt((ρt-4)(ρt-2)ρ∞ / ((ρ∞-4)(ρ∞-2)ρt))``.
    ``optax.scale_by_radam`` adds ``eps`` to ``sqrt(v̂_t)`` instead and switches at
    ``ρ_t >= 5``.

    Args:
        b1, b2: decay rates in ``[0, 1)`` or schedules.
        eps: ``>= 0``.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByAdamState`` (no max moment).

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_radam()
        >>> t.update({"w": jnp.array([0.5])}, t.init({"w": jnp.zeros(1)}))[0]["w"]
        Array([0.5], dtype=float32)
    """
    b1, b2, eps = validate("scale_by_radam", b1=b1, b2=b2, eps=eps)

    def init(params):
        return ScaleByAdamState(zero_count(), *_zero_moments(params, state_dtype), None)

    def update(updates, state, params=None):
        del params
        count, t, beta1, beta2 = advance_betas(b1, b2, state.count)
        inv_bc1 = 1 / (1 - beta1**t)
        bc2 = 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / bc2
        rectify = rho_t > 5
        safe_rho = jnp.where(rectify, rho_t, rho_inf)
        r = jnp.sqrt(
            (safe_rho - 4) * (safe_rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe_rho)
        )
        c = r * jnp.sqrt(bc2)

        def leaf(g, m, v):
            _, m, v = _moments(beta1, beta2, g, m, v)
            dt = m.dtype
            m_hat = m * inv_bc1.astype(dt)
            adaptive = c.astype(dt) / (jnp.sqrt(v) + eps)
            u = jnp.where(rectify, m_hat * adaptive, m_hat)
            return u.astype(g.dtype), m, v

        updates, m, v = leafwise(leaf, 3, updates, state.exp_avg, state.exp_avg_sq)
        return updates, ScaleByAdamState(count, m, v, None)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
class ScaleByAdamaxState(NamedTuple):
    """State of Adamax's moment estimates."""

    count: jax.Array  # int32 scalar: updates done so far
    exp_avg: Any  # pytree like params: first moment m_t
    exp_inf: Any  # pytree like params: infinity norm u_t


def scale_by_adamax(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    *,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adamax's direction (Kingma & Ba, 2015, §7) as in ``torch.optim.Adamax``.

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad
        u_t = \\max(\\beta_2 u_{t-1}, |g_t| + \\epsilon), \\quad
        \\text{step} = m_t / ((1-\\beta_1^t)\\, u_t)

    Same rule as ``optax.scale_by_adamax``.

    Args:
        b1, b2: decay rates in ``[0, 1)`` or schedules.
        eps: ``>= 0``.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByAdamaxState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_adamax(eps=0.0)
        >>> t.update({"w": jnp.array([-4.0])}, t.init({"w": jnp.zeros(1)}))[0]["w"]
        Array([-1.], dtype=float32)
    """
    b1, b2, eps = validate("scale_by_adamax", b1=b1, b2=b2, eps=eps)

    def init(params):
        return ScaleByAdamaxState(zero_count(), *_zero_moments(params, state_dtype))

    def update(updates, state, params=None):
        del params
        count, t, beta1, beta2 = advance_betas(b1, b2, state.count)
        inv_bc1 = 1 / (1 - beta1**t)

        def leaf(g, m, n):
            dt = m.dtype
            x = g.astype(dt)
            m = ema(beta1.astype(dt), m, x)
            n = jnp.maximum(beta2.astype(dt) * n, jnp.abs(x) + eps)
            return (m * inv_bc1.astype(dt) / n).astype(g.dtype), m, n

        updates, m, n = leafwise(leaf, 3, updates, state.exp_avg, state.exp_inf)
        return updates, ScaleByAdamaxState(count, m, n)

    return optax.GradientTransformation(init, update)
