"""Averaged SGD (Polyak & Juditsky, 1992): ``scale_by_asgd`` and ``asgd``.

Follows ``torch.optim.ASGD``; the averaged parameters live in the state and are read
with ``averaged_params(state)``. See ``_base.py`` for the dtype rules.
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
    is_active,
    validate,
    value_at,
    zero_count,
    zeros_like_moment,
)
from ._transforms import add_weight_decay, scale

__all__ = ["ScaleByAsgdState", "scale_by_asgd", "asgd"]


class ScaleByAsgdState(NamedTuple):
    """State of ASGD."""

    count: jax.Array  # int32 scalar: updates done so far
    ax: Any  # pytree like params: the averaged parameters (0 before the first update)


def scale_by_asgd(
    lr: ScalarOrSchedule = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6
) -> optax.GradientTransformation:
    """ASGD's step and parameter average (``torch.optim.ASGD`` without weight decay).

    At the ``t``-th update (``t`` from 1), with ``γ`` the learning rate PyTorch holds when
    it computes ``η_t`` at the end of the previous step (``lr(max(t-2, 0))`` for a schedule):

    .. math::
        \\eta_t = \\frac{\\gamma}{(1 + \\lambda\\gamma(t-1))^{\\alpha}}, \\quad
        \\mu_t = \\frac{1}{\\max(1, t - 1 - t_0)}, \\quad
        \\theta_t = \\theta_{t-1}(1 - \\lambda\\eta_t) - \\eta_t g_t, \\quad
        \\bar\\theta_t = \\bar\\theta_{t-1} + \\mu_t(\\theta_t - \\bar\\theta_{t-1})

    (``θ̄_t = θ_t`` while ``μ_t = 1``, i.e. until ``t0`` steps are done).

    Args:
        lr: learning rate ``>= 0`` or schedule.
        lambd: decay term ``λ >= 0``.
        alpha: power ``α >= 0`` of the ``η`` decay.
        t0: the step at which averaging starts.

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByAsgdState`` whose ``update``
        needs ``params``; it includes the learning rate (chain nothing after it).

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_asgd(0.1, lambd=0.0)
        >>> p = {"w": jnp.ones(2)}
        >>> t.update({"w": jnp.ones(2)}, t.init(p), p)[0]["w"]
        Array([-0.1, -0.1], dtype=float32)
    """
    fn = "scale_by_asgd"
    lr = validate(fn, lr=lr)
    lambd = check_nonnegative("lambd", lambd, fn=fn)
    alpha = check_nonnegative("alpha", alpha, fn=fn)

    def init(params):
        return ScaleByAsgdState(zero_count(), zeros_like_moment(params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(f"{fn}: update() needs params (the average is of the params)")
        count, step, t = advance(state.count)
        lr_t = value_at(lr, jnp.maximum(step - 1, 0))
        eta = lr_t / (1.0 + lambd * lr_t * (t - 1.0)) ** alpha
        mu = 1.0 / jnp.maximum(1.0, t - 1.0 - t0)

        def leaf(g, p, ax):
            dt = ax.dtype
            pc = p.astype(dt)
            u = -(lambd * eta).astype(dt) * pc - eta.astype(dt) * g.astype(dt)
            new_p = (pc + u).astype(p.dtype).astype(dt)
            new_ax = jnp.where(mu == 1.0, new_p, ax + mu.astype(dt) * (new_p - ax))
            return u.astype(g.dtype), new_ax.astype(ax.dtype)

        treedef = jax.tree.structure(updates)
        flat = [
            leaf(g, p, a)
            for g, p, a in zip(
                treedef.flatten_up_to(updates),
                treedef.flatten_up_to(params),
                treedef.flatten_up_to(state.ax),
                strict=True,
            )
        ]
        new_updates = treedef.unflatten([f[0] for f in flat])
        ax = treedef.unflatten([f[1] for f in flat])
        return new_updates, ScaleByAsgdState(count, ax)

    return optax.GradientTransformation(init, update)


def asgd(
    lr: ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """Averaged SGD as ``torch.optim.ASGD``; ``averaged_params(state)`` reads the average.

    ``g ← -g`` (maximize), ``g ← g + λ_wd·θ`` (coupled L2), then ``scale_by_asgd``:
    ``θ_t = θ_{t-1}(1 - λη_t) - η_t g_t`` and the running average ``θ̄`` of the iterates
    from step ``t0`` on. optax has no ASGD.

    Args:
        lr: learning rate ``>= 0`` or schedule (PyTorch reads it one step late; so do we).
        lambd: decay term ``>= 0``.
        alpha: power for the ``η`` update.
        t0: point at which to start averaging.
        weight_decay: coupled L2 penalty ``>= 0``.
        maximize: ascend the objective.

    Returns:
        An ``optax.GradientTransformation``; its ``update`` needs ``params``.

    Paper: Polyak & Juditsky, "Acceleration of stochastic approximation by averaging", 1992.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.asgd(0.1, t0=0)
        >>> p = {"w": jnp.ones(1)}
        >>> s = opt.init(p)
        >>> u, s = opt.update({"w": jnp.ones(1)}, s, p)
        >>> fdl.optim.averaged_params(s)["w"]
        Array([0.89999], dtype=float32)
    """
    fn = "asgd"
    lr, weight_decay = validate(fn, lr=lr, weight_decay=weight_decay)
    lambd = check_nonnegative("lambd", lambd, fn=fn)
    alpha = check_nonnegative("alpha", alpha, fn=fn)
    parts = [scale(-1.0)] if maximize else []
    if is_active(weight_decay):
        parts.append(add_weight_decay(weight_decay))
    parts.append(scale_by_asgd(lr, lambd, alpha, t0))
    return optax.chain(*parts)
