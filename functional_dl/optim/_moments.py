"""Other moment estimators: ``scale_by_rms`` (RMSprop), ``scale_by_adagrad``,
``scale_by_adadelta`` and ``scale_by_lion``, following PyTorch's documented algorithms
(Lion: its paper). See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._checks import check_nonnegative
from ._base import (
    ScalarOrSchedule,
    advance,
    check_beta,
    ema,
    leafwise,
    value_at,
    zero_count,
    zeros_like_moment,
)

__all__ = [
    "ScaleByRmsState",
    "ScaleByAdagradState",
    "ScaleByAdadeltaState",
    "ScaleByLionState",
    "scale_by_rms",
    "scale_by_adagrad",
    "scale_by_adadelta",
    "scale_by_lion",
]


# ---------------------------------------------------------------------------------------
class ScaleByRmsState(NamedTuple):
    """State of RMSprop's averages."""

    square_avg: Any  # pytree like params: v_t, running mean of g^2
    grad_avg: Any  # pytree like params: running mean of g (centered), else None


def scale_by_rms(
    alpha: float = 0.99, eps: float = 1e-8, *, centered: bool = False, state_dtype: Any = None
) -> optax.GradientTransformation:
    """RMSprop's direction (Hinton, 2012) as in ``torch.optim.RMSprop``.

    .. math::
        v_t = \\alpha v_{t-1} + (1-\\alpha) g_t^2, \\qquad
        u_t = g_t / (\\sqrt{v_t - \\bar g_t^2} + \\epsilon)

    where ``ḡ_t = α ḡ_{t-1} + (1-α) g_t`` if ``centered`` (else the ``ḡ²`` term is
    absent). ``eps`` is outside the root (``optax.scale_by_rms(eps_in_sqrt=False)``); the
    centered variance is clamped at 0 against rounding (PyTorch would give NaN).

    Args:
        alpha: smoothing constant in ``[0, 1)``.
        eps: ``>= 0``, added to the root.
        centered: normalise by the estimated variance instead of the second moment.
        state_dtype: dtype of the averages (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByRmsState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_rms(alpha=0.75, eps=0.0)
        >>> t.update({"w": jnp.array([2.0])}, t.init({"w": jnp.zeros(1)}))[0]["w"]
        Array([2.], dtype=float32)
    """
    check_beta("alpha", alpha, "scale_by_rms")
    check_nonnegative("eps", eps, fn="scale_by_rms")

    def init(params):
        return ScaleByRmsState(
            square_avg=zeros_like_moment(params, state_dtype),
            grad_avg=zeros_like_moment(params, state_dtype) if centered else None,
        )

    def update(updates, state, params=None):
        del params

        def leaf(g, v, gbar=None):
            dt = v.dtype
            x = g.astype(dt)
            v = ema(jnp.asarray(alpha, dt), v, x * x)
            var = v
            if gbar is not None:
                gbar = ema(jnp.asarray(alpha, dt), gbar, x)
                var = jnp.maximum(v - gbar * gbar, 0)
            return (x / (jnp.sqrt(var) + eps)).astype(g.dtype), v, gbar

        trees = (updates, state.square_avg) + ((state.grad_avg,) if centered else ())
        updates, v, gbar = leafwise(leaf, 3, *trees)
        return updates, ScaleByRmsState(v, gbar if centered else None)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
class ScaleByAdagradState(NamedTuple):
    """State of Adagrad's accumulator."""

    sum: Any  # pytree like params: initial_accumulator_value + sum of g^2


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, state_dtype: Any = None
) -> optax.GradientTransformation:
    """Adagrad's direction (Duchi et al., 2011) as in ``torch.optim.Adagrad``.

    .. math::
        s_t = s_{t-1} + g_t^2, \\quad s_0 = \\text{initial\\_accumulator\\_value},
        \\qquad u_t = g_t / (\\sqrt{s_t} + \\epsilon)

    ``optax.scale_by_rss`` puts ``eps`` inside the root; they agree for ``eps = 0``.

    Args:
        initial_accumulator_value: start of the accumulator, ``>= 0``.
        eps: ``>= 0``, added to the root.
        state_dtype: dtype of the accumulator (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByAdagradState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_adagrad(eps=0.0)
        >>> t.update({"w": jnp.array([-2.0])}, t.init({"w": jnp.zeros(1)}))[0]["w"]
        Array([-1.], dtype=float32)
    """
    check_nonnegative("initial_accumulator_value", initial_accumulator_value, fn="scale_by_adagrad")
    check_nonnegative("eps", eps, fn="scale_by_adagrad")

    def init(params):
        start = initial_accumulator_value
        return ScaleByAdagradState(zeros_like_moment(params, state_dtype, start))

    def update(updates, state, params=None):
        del params

        def leaf(g, s):
            x = g.astype(s.dtype)
            s = s + x * x
            return (x / (jnp.sqrt(s) + eps)).astype(g.dtype), s

        updates, s = leafwise(leaf, 2, updates, state.sum)
        return updates, ScaleByAdagradState(s)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
class ScaleByAdadeltaState(NamedTuple):
    """State of Adadelta's running averages."""

    square_avg: Any  # pytree like params: v_t, running mean of g^2
    acc_delta: Any  # pytree like params: running mean of squared steps


def scale_by_adadelta(
    rho: float = 0.9, eps: float = 1e-6, *, state_dtype: Any = None
) -> optax.GradientTransformation:
    """Adadelta's direction (Zeiler, 2012) as in ``torch.optim.Adadelta``.

    .. math::
        v_t = \\rho v_{t-1} + (1-\\rho) g_t^2, \\quad
        \\Delta_t = \\frac{\\sqrt{a_{t-1} + \\epsilon}}{\\sqrt{v_t + \\epsilon}} g_t, \\quad
        a_t = \\rho a_{t-1} + (1-\\rho) \\Delta_t^2

    Same rule as ``optax.scale_by_adadelta``.

    Args:
        rho: decay rate in ``[0, 1)``.
        eps: ``>= 0``, inside both roots.
        state_dtype: dtype of the averages (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByAdadeltaState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_adadelta(rho=0.0, eps=1.0)
        >>> t.update({"w": jnp.array([0.0])}, t.init({"w": jnp.zeros(1)}))[0]["w"]
        Array([0.], dtype=float32)
    """
    check_beta("rho", rho, "scale_by_adadelta")
    check_nonnegative("eps", eps, fn="scale_by_adadelta")

    def init(params):
        return ScaleByAdadeltaState(
            zeros_like_moment(params, state_dtype), zeros_like_moment(params, state_dtype)
        )

    def update(updates, state, params=None):
        del params

        def leaf(g, v, a):
            dt = v.dtype
            x = g.astype(dt)
            r = jnp.asarray(rho, dt)
            v = ema(r, v, x * x)
            delta = jnp.sqrt(a + eps) / jnp.sqrt(v + eps) * x
            a = ema(r, a, delta * delta)
            return delta.astype(g.dtype), v, a

        updates, v, a = leafwise(leaf, 3, updates, state.square_avg, state.acc_delta)
        return updates, ScaleByAdadeltaState(v, a)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
class ScaleByLionState(NamedTuple):
    """State of Lion's momentum."""

    count: jax.Array  # int32 scalar: updates done so far (for scheduled betas)
    exp_avg: Any  # pytree like params: momentum m_t


def scale_by_lion(
    b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.99, *, state_dtype: Any = None
) -> optax.GradientTransformation:
    """Lion's direction (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms").

    .. math::
        u_t = \\operatorname{sign}(\\beta_1 m_{t-1} + (1-\\beta_1) g_t), \\qquad
        m_t = \\beta_2 m_{t-1} + (1-\\beta_2) g_t

    Same rule as ``optax.scale_by_lion``. (PyTorch has no ``Lion``.)

    Args:
        b1: interpolation rate of the update, in ``[0, 1)`` or a schedule.
        b2: decay rate of the momentum, in ``[0, 1)`` or a schedule.
        state_dtype: dtype of the momentum (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByLionState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_lion()
        >>> t.update({"w": jnp.array([0.3, -2.0])}, t.init({"w": jnp.zeros(2)}))[0]["w"]
        Array([ 1., -1.], dtype=float32)
    """
    check_beta("b1", b1, "scale_by_lion")
    check_beta("b2", b2, "scale_by_lion")

    def init(params):
        return ScaleByLionState(zero_count(), zeros_like_moment(params, state_dtype))

    def update(updates, state, params=None):
        del params
        count, step, _ = advance(state.count)
        beta1, beta2 = value_at(b1, step), value_at(b2, step)

        def leaf(g, m):
            dt = m.dtype
            x = g.astype(dt)
            u = jnp.sign(ema(beta1.astype(dt), m, x))
            return u.astype(g.dtype), ema(beta2.astype(dt), m, x)

        updates, m = leafwise(leaf, 2, updates, state.exp_avg)
        return updates, ScaleByLionState(count, m)

    return optax.GradientTransformation(init, update)
