"""SGD, RMSprop, Adagrad and Adadelta: PyTorch's algorithms as optax transformations."""

from __future__ import annotations

from typing import Any

import optax

from .._checks import check_nonnegative, is_concrete
from ._base import (
    ScalarOrSchedule,
    chain_optimizer,
    check_beta,
    check_lr,
    is_active,
    scale,
    trace,
)
from ._moments import scale_by_adadelta, scale_by_adagrad, scale_by_rms

__all__ = ["sgd", "rmsprop", "adagrad", "adadelta"]


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
    fn = "sgd"
    check_lr(lr, fn)
    if not callable(momentum):
        check_nonnegative("momentum", momentum, fn=fn)
    check_nonnegative("dampening", dampening, fn=fn)
    check_nonnegative("weight_decay", weight_decay, fn=fn)
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
        >>> state = opt.init({"w": jnp.zeros(2)})
    """
    fn = "rmsprop"
    check_lr(lr, fn)
    check_beta("alpha", alpha, fn)
    check_nonnegative("eps", eps, fn=fn)
    check_nonnegative("weight_decay", weight_decay, fn=fn)
    if not callable(momentum):
        check_nonnegative("momentum", momentum, fn=fn)
    direction = scale_by_rms(alpha, eps, centered=centered, state_dtype=state_dtype)
    if is_active(momentum):
        direction = optax.chain(direction, trace(momentum, state_dtype=state_dtype))
    return chain_optimizer(direction, lr=lr, weight_decay=weight_decay, maximize=maximize)


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
    fn = "adagrad"
    check_lr(lr, fn)
    check_nonnegative("lr_decay", lr_decay, fn=fn)
    check_nonnegative("weight_decay", weight_decay, fn=fn)
    check_nonnegative("initial_accumulator_value", initial_accumulator_value, fn=fn)
    check_nonnegative("eps", eps, fn=fn)
    direction = scale_by_adagrad(initial_accumulator_value, eps, state_dtype=state_dtype)
    if is_active(lr_decay):
        # clr = lr / (1 + (t - 1)·lr_decay): a schedule of the 0-based step
        direction = optax.chain(direction, scale(lambda step: 1.0 / (1.0 + step * lr_decay)))
    return chain_optimizer(direction, lr=lr, weight_decay=weight_decay, maximize=maximize)


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
        >>> state = opt.init({"w": jnp.zeros(2)})
    """
    fn = "adadelta"
    check_lr(lr, fn)
    check_beta("rho", rho, fn)
    check_nonnegative("eps", eps, fn=fn)
    check_nonnegative("weight_decay", weight_decay, fn=fn)
    direction = scale_by_adadelta(rho, eps, state_dtype=state_dtype)
    return chain_optimizer(direction, lr=lr, weight_decay=weight_decay, maximize=maximize)
