"""Adagrad and Adadelta: their moment estimators (``scale_by_adagrad``,
``scale_by_adadelta``) and optimizers, following ``torch.optim.Adagrad`` and
``torch.optim.Adadelta``. See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._base import ScalarOrSchedule, ema, is_active, leafwise, validate, zeros_like_moment
from ._transforms import chain_optimizer, scale

__all__ = [
    "ScaleByAdagradState",
    "ScaleByAdadeltaState",
    "scale_by_adagrad",
    "scale_by_adadelta",
    "adagrad",
    "adadelta",
]


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
    initial_accumulator_value, eps = validate(
        "scale_by_adagrad", initial_accumulator_value=initial_accumulator_value, eps=eps
    )

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


def adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adagrad, as ``torch.optim.Adagrad``.

    .. math::
        \\tilde\\gamma_t = \\frac{\\gamma}{1 + (t-1)\\eta}, \\quad
        s_t = s_{t-1} + g_t^2, \\quad
        \\theta_t = \\theta_{t-1} - \\tilde\\gamma_t\\, g_t / (\\sqrt{s_t} + \\epsilon)

    with ``s_0 = initial_accumulator_value``, ``η = lr_decay`` and ``g`` carrying the L2
    term. ``lr`` may be a schedule; ``lr_decay`` then divides it further.

    Equivalent: ``torch.optim.Adagrad`` with the same arguments. ``optax.adagrad`` puts
    ``eps`` inside the root and defaults to ``initial_accumulator_value=0.1``.

    Args:
        lr: learning rate ``>= 0`` or schedule.
        lr_decay: ``η >= 0``.
        weight_decay: L2 penalty ``>= 0``.
        initial_accumulator_value: ``>= 0``.
        eps: ``>= 0``, added to the root.
        maximize: ascend the objective.
        state_dtype: dtype of the accumulator (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.adagrad(0.5, eps=0.0)
        >>> u, _ = opt.update({"w": jnp.array([3.0])}, opt.init({"w": jnp.zeros(1)}))
        >>> u["w"]
        Array([-0.5], dtype=float32)
    """
    lr, lr_decay, weight_decay, initial_accumulator_value, eps = validate(
        "adagrad",
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    direction = scale_by_adagrad(initial_accumulator_value, eps, state_dtype=state_dtype)
    if is_active(lr_decay):
        # clr = lr / (1 + (t - 1)·lr_decay): a schedule of the 0-based step
        direction = optax.chain(direction, scale(lambda step: 1.0 / (1.0 + step * lr_decay)))
    return chain_optimizer(direction, lr=lr, weight_decay=weight_decay, maximize=maximize)


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
    rho, eps = validate("scale_by_adadelta", rho=rho, eps=eps)

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


def adadelta(
    lr: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adadelta, as ``torch.optim.Adadelta`` (Zeiler, 2012).

    .. math::
        v_t = \\rho v_{t-1} + (1-\\rho) g_t^2, \\quad
        \\Delta_t = \\frac{\\sqrt{a_{t-1}+\\epsilon}}{\\sqrt{v_t+\\epsilon}} g_t, \\quad
        a_t = \\rho a_{t-1} + (1-\\rho)\\Delta_t^2, \\quad
        \\theta_t = \\theta_{t-1} - \\gamma \\Delta_t

    Equivalent: ``torch.optim.Adadelta`` with the same arguments; ``optax.adadelta``
    (same rule, ``learning_rate=lr``).

    Args:
        lr: learning rate ``>= 0`` (PyTorch's default 1.0) or schedule.
        rho: decay rate in ``[0, 1)``.
        eps: ``>= 0``, inside both roots.
        weight_decay: L2 penalty ``>= 0``.
        maximize: ascend the objective.
        state_dtype: dtype of the averages (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.adadelta()
        >>> u, state = opt.update({"w": jnp.array([1.0])}, opt.init({"w": jnp.zeros(1)}))
        >>> u["w"].round(4)  # -sqrt(eps) / sqrt(0.1·g² + eps) · g
        Array([-0.0032], dtype=float32)
    """
    lr, rho, eps, weight_decay = validate(
        "adadelta", lr=lr, rho=rho, eps=eps, weight_decay=weight_decay
    )
    direction = scale_by_adadelta(rho, eps, state_dtype=state_dtype)
    return chain_optimizer(direction, lr=lr, weight_decay=weight_decay, maximize=maximize)
