"""Lion (Chen et al., 2023): its direction ``scale_by_lion`` and the optimizer ``lion``.

PyTorch has no ``Lion``; the rule follows the paper and ``lion-pytorch``. See ``_base.py``
for the dtype rules.
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
from ._transforms import chain_optimizer

__all__ = ["ScaleByLionState", "scale_by_lion", "lion"]


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
    b1, b2 = validate("scale_by_lion", b1=b1, b2=b2)

    def init(params):
        return ScaleByLionState(zero_count(), zeros_like_moment(params, state_dtype))

    def update(updates, state, params=None):
        del params
        count, _, beta1, beta2 = advance_betas(b1, b2, state.count)

        def leaf(g, m):
            dt = m.dtype
            x = g.astype(dt)
            u = jnp.sign(ema(beta1.astype(dt), m, x))
            return u.astype(g.dtype), ema(beta2.astype(dt), m, x)

        updates, m = leafwise(leaf, 2, updates, state.exp_avg)
        return updates, ScaleByLionState(count, m)

    return optax.GradientTransformation(init, update)


def lion(
    lr: ScalarOrSchedule = 1e-4,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.99),
    weight_decay: float = 0.0,
    mask: Any = None,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Lion (Chen et al., 2023): the sign of an interpolated momentum, decoupled decay.

    .. math::
        \\theta_t = \\theta_{t-1}(1 - \\gamma\\lambda)
                    - \\gamma\\operatorname{sign}(\\beta_1 m_{t-1} + (1-\\beta_1) g_t),
        \\qquad m_t = \\beta_2 m_{t-1} + (1-\\beta_2) g_t

    PyTorch has no ``Lion``; this follows the paper and ``lion-pytorch`` (defaults
    ``lr=1e-4``, ``betas=(0.9, 0.99)``, ``weight_decay=0``). ``optax.lion`` is the same rule
    (its default ``weight_decay`` is 1e-3). Use a 3-10x smaller ``lr`` than for AdamW.

    Args:
        lr: learning rate ``>= 0`` or schedule.
        betas: ``(beta1, beta2)``, each in ``[0, 1)`` or a schedule.
        weight_decay: decoupled decay ``λ >= 0``.
        mask: leaves to decay, as in ``adamw``.
        maximize: ascend the objective.
        state_dtype: dtype of the momentum (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.lion(0.1)
        >>> u, _ = opt.update({"w": jnp.array([3.0])}, opt.init({"w": jnp.zeros(1)}))
        >>> u["w"]
        Array([-0.1], dtype=float32)
    """
    lr, betas, weight_decay = validate("lion", lr=lr, betas=betas, weight_decay=weight_decay)
    direction = scale_by_lion(*betas, state_dtype=state_dtype)
    return chain_optimizer(
        direction, lr, weight_decay, decoupled=True, mask=mask, maximize=maximize
    )
