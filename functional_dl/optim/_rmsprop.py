"""RMSprop: its moment estimator ``scale_by_rms`` and the optimizer ``rmsprop``,
following ``torch.optim.RMSprop``. See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._base import ScalarOrSchedule, ema, is_active, leafwise, validate, zeros_like_moment
from ._transforms import chain_optimizer, trace

__all__ = ["ScaleByRmsState", "scale_by_rms", "rmsprop"]


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
    alpha, eps = validate("scale_by_rms", alpha=alpha, eps=eps)

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


def rmsprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: ScalarOrSchedule = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """RMSprop, as ``torch.optim.RMSprop``.

    .. math::
        v_t = \\alpha v_{t-1} + (1-\\alpha) g_t^2, \\quad
        d_t = \\sqrt{v_t - \\bar g_t^2} + \\epsilon, \\quad
        b_t = \\mu b_{t-1} + g_t / d_t, \\quad \\theta_t = \\theta_{t-1} - \\gamma b_t

    (``ḡ`` only when ``centered``; without momentum the step is ``g_t / d_t``; ``g`` has
    the L2 term ``λθ`` added first.) ``eps`` is outside the root.

    Equivalent: ``torch.optim.RMSprop`` with the same arguments; for a constant ``lr``,
    ``optax.rmsprop(lr, decay=alpha, eps=eps, eps_in_sqrt=False, centered=centered,
    momentum=momentum)``.

    Args:
        lr: learning rate ``>= 0`` or schedule.
        alpha: smoothing constant in ``[0, 1)``.
        eps: ``>= 0``.
        weight_decay: L2 penalty ``>= 0``.
        momentum: ``μ >= 0`` or a schedule.
        centered: normalise by the estimated variance.
        maximize: ascend the objective.
        state_dtype: dtype of the averages (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.rmsprop(0.01, momentum=0.9, centered=True)
        >>> u, state = opt.update({"w": jnp.array([1.0, -2.0])}, opt.init({"w": jnp.zeros(2)}))
        >>> u["w"].round(4)  # -lr·g / sqrt(v - ḡ²) with v = 0.01·g², ḡ = 0.01·g
        Array([-0.1005,  0.1005], dtype=float32)
    """
    lr, alpha, eps, weight_decay, momentum = validate(
        "rmsprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum
    )
    direction = scale_by_rms(alpha, eps, centered=centered, state_dtype=state_dtype)
    if is_active(momentum):
        direction = optax.chain(direction, trace(momentum, state_dtype=state_dtype))
    return chain_optimizer(direction, lr=lr, weight_decay=weight_decay, maximize=maximize)
