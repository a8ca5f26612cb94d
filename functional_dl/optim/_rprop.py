"""Resilient backpropagation (Riedmiller & Braun, 1993): ``scale_by_rprop`` and ``rprop``.

Follows ``torch.optim.Rprop``. See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._checks import check_nonnegative, check_pair
from ._base import (
    ScalarOrSchedule,
    leafwise,
    unpack_pair,
    validate,
    value_at,
    zeros_like_moment,
)
from ._transforms import scale

__all__ = ["ScaleByRpropState", "scale_by_rprop", "rprop"]


class ScaleByRpropState(NamedTuple):
    """State of Rprop."""

    prev: Any  # pytree like params: the previous (sign-masked) gradient
    step_size: Any  # pytree like params: per-element step sizes, starting at lr


def _check_etas(fn: str, etas: Any) -> tuple[float, float]:
    eta_minus, eta_plus = unpack_pair(fn, "etas", etas, "(eta_minus, eta_plus)")
    if not 0.0 < eta_minus < 1.0 < eta_plus:
        raise ValueError(f"{fn}: etas must satisfy 0 < etas[0] < 1 < etas[1], got etas={etas!r}")
    return eta_minus, eta_plus


def scale_by_rprop(
    lr: ScalarOrSchedule = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
) -> optax.GradientTransformation:
    """Rprop's update ``-η_t ⊙ sign(g_t)`` with per-element step sizes ``η``.

    .. math::
        s = \\operatorname{sign}(g_t g_{t-1}), \\quad
        \\eta_t = \\operatorname{clip}(\\eta_{t-1}\\cdot
        \\{\\eta_+ \\text{ if } s>0;\\ \\eta_- \\text{ if } s<0;\\ 1\\},\\ \\eta_{\\min},
        \\eta_{\\max}), \\quad g_t \\leftarrow 0 \\text{ where } s < 0

    The masked ``g_t`` is stored as ``g_{t-1}`` of the next step. ``η_0 = lr``: a schedule
    is read at step 0 only (PyTorch's Rprop keeps its step sizes in the state, so a
    scheduler changing ``lr`` later has no effect either). ``optax.rprop`` is the same rule
    except that it does not zero the gradient after a sign change.

    Args:
        lr: initial step size ``>= 0`` (or a schedule, read at step 0).
        etas: ``(eta_minus, eta_plus)`` with ``0 < eta_minus < 1 < eta_plus``.
        step_sizes: ``(min, max)`` step size, ``0 <= min <= max``.

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByRpropState``; it already
        includes the step size (chain nothing after it).

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_rprop(0.1)
        >>> t.update({"w": jnp.array([2.0, -3.0])}, t.init({"w": jnp.zeros(2)}))[0]["w"]
        Array([-0.1,  0.1], dtype=float32)
    """
    fn = "scale_by_rprop"
    lr = validate(fn, lr=lr)
    eta_minus, eta_plus = _check_etas(fn, etas)
    lo, hi = check_pair("step_sizes", step_sizes, fn=fn)
    lo = check_nonnegative("step_sizes[0]", lo, fn=fn)

    def init(params):
        lr0 = value_at(lr, jnp.zeros([], jnp.int32))  # in init: x64 may be on by then
        sizes = jax.tree.map(lambda m: m + lr0.astype(m.dtype), zeros_like_moment(params))
        return ScaleByRpropState(zeros_like_moment(params), sizes)

    def update(updates, state, params=None):
        del params

        def leaf(g, prev, size):
            dt = size.dtype
            x = g.astype(dt)
            s = jnp.sign(x * prev)
            factor = jnp.where(s > 0, eta_plus, jnp.where(s < 0, eta_minus, 1.0)).astype(dt)
            size = jnp.clip(size * factor, lo, hi)
            x = jnp.where(s < 0, jnp.zeros_like(x), x)
            return (-size * jnp.sign(x)).astype(g.dtype), x, size

        updates, prev, size = leafwise(leaf, 3, updates, state.prev, state.step_size)
        return updates, ScaleByRpropState(prev, size)

    return optax.GradientTransformation(init, update)


def rprop(
    lr: ScalarOrSchedule = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
    maximize: bool = False,
) -> optax.GradientTransformation:
    """Rprop as ``torch.optim.Rprop``: sign-based steps with adaptive per-element sizes.

    ``θ_t = θ_{t-1} - η_t ⊙ sign(g_t)`` with ``η_t`` grown by ``eta_plus`` while the
    gradient keeps its sign and shrunk by ``eta_minus`` (and that step skipped) when it
    flips; see ``scale_by_rprop``. For full-batch training (it ignores gradient magnitudes).

    Args:
        lr: initial step size ``>= 0`` (a schedule is read at step 0, as PyTorch).
        etas: ``(eta_minus, eta_plus)``, ``0 < eta_minus < 1 < eta_plus``.
        step_sizes: ``(min, max)`` allowed step sizes.
        maximize: ascend the objective.

    Returns:
        An ``optax.GradientTransformation``.

    Paper: Riedmiller & Braun, "A direct adaptive method for faster backpropagation
    learning: the RPROP algorithm", 1993.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.rprop(0.1)
        >>> s = opt.init({"w": jnp.zeros(1)})
        >>> u, s = opt.update({"w": jnp.array([1.0])}, s)
        >>> opt.update({"w": jnp.array([1.0])}, s)[0]["w"]
        Array([-0.12], dtype=float32)
    """
    fn = "rprop"
    lr = validate(fn, lr=lr)
    _check_etas(fn, etas)
    lo, _ = check_pair("step_sizes", step_sizes, fn=fn)
    lo = check_nonnegative("step_sizes[0]", lo, fn=fn)
    parts = [scale(-1.0)] if maximize else []
    parts.append(scale_by_rprop(lr, etas, step_sizes))
    return optax.chain(*parts)
