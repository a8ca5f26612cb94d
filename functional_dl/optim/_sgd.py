"""SGD with momentum: PyTorch's ``torch.optim.SGD`` as an optax transformation."""

from __future__ import annotations

from typing import Any

import optax

from .._checks import is_concrete
from ._base import ScalarOrSchedule, is_active, validate
from ._transforms import chain_optimizer, trace

__all__ = ["sgd"]


def sgd(
    lr: ScalarOrSchedule,
    momentum: ScalarOrSchedule = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    .. math::
        g_t \\leftarrow \\pm g_t + \\lambda \\theta_{t-1}, \\quad
        b_t = \\begin{cases} g_t & t = 1 \\\\ \\mu b_{t-1} + (1-\\tau) g_t & t > 1 \\end{cases},
        \\quad \\theta_t = \\theta_{t-1} - \\gamma\\,(g_t + \\mu b_t \\text{ if Nesterov else } b_t)

    (``-g`` with ``maximize``; without momentum the step is ``g_t``.) ``momentum`` may be
    a schedule ``step -> mu``, e.g. ``fdl.schedules.one_cycle_momentum(...)`` next to
    ``lr=fdl.schedules.one_cycle_lr(...)``; step 0 is the first update.

    Equivalent: ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay,
    nesterov, maximize=maximize)``. ``optax.sgd(lr, momentum, nesterov)`` is the same rule
    when ``dampening == 0`` and ``weight_decay == 0``. Like PyTorch's implementation,
    ``maximize`` negates the gradient before the L2 term is added.

    Args:
        lr: learning rate ``γ >= 0`` or schedule ``step -> lr``.
        momentum: ``μ >= 0`` or a schedule.
        dampening: ``τ >= 0``.
        weight_decay: L2 penalty ``λ >= 0`` (coupled: added to the gradient).
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend the objective.
        state_dtype: dtype of the momentum buffer (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``: ``state = opt.init(params)``,
        ``updates, state = opt.update(grads, state, params)``, then
        ``fdl.optim.apply_updates(params, updates)``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.sgd(0.1, momentum=0.9)
        >>> params = {"w": jnp.ones(3)}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": jnp.ones(3)}, state, params)
        >>> fdl.optim.apply_updates(params, updates)["w"]
        Array([0.9, 0.9, 0.9], dtype=float32)
    """
    lr, momentum, dampening, weight_decay = validate(
        "sgd", lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay
    )
    # what is known here is checked (a schedule or traced value can only be checked as
    # far as the other argument goes)
    no_momentum = not callable(momentum) and is_concrete(momentum) and float(momentum) <= 0
    damped = is_concrete(dampening) and float(dampening) != 0
    if nesterov and (no_momentum or damped):
        raise ValueError(
            "sgd: nesterov=True requires momentum > 0 and dampening == 0 (as PyTorch), "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
    direction = None
    if is_active(momentum):
        direction = trace(momentum, dampening=dampening, nesterov=nesterov, state_dtype=state_dtype)
    return chain_optimizer(direction, lr=lr, weight_decay=weight_decay, maximize=maximize)
