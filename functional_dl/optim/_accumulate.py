"""Gradient accumulation: ``accumulate(optimizer, every_k)``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._checks import check_int
from ._base import increment, leafwise, zero_count, zeros_like_moment

__all__ = ["AccumulateState", "accumulate"]


class AccumulateState(NamedTuple):
    """State of ``accumulate``."""

    mini_step: jax.Array  # int32 scalar: micro-batches summed since the last update, < every_k
    grad_sum: Any  # pytree like params, in the moment dtype: sum of those gradients
    inner_state: Any  # the wrapped optimizer's state (advances once per update)


def accumulate(
    optimizer: optax.GradientTransformation, every_k: int
) -> optax.GradientTransformation:
    """Apply ``optimizer`` once every ``every_k`` calls, to the mean of their gradients.

    The first ``every_k - 1`` calls add the gradient to a running sum and return zero
    updates; the ``every_k``-th calls ``optimizer`` on ``sum / every_k`` and resets the sum.
    With gradients of equal-size micro-batches of a loss that averages over the batch
    (no BatchNorm: its statistics see only a micro-batch) this equals one step on the
    concatenated batch, to float rounding. The wrapped optimizer's step counter and
    schedules count updates, not micro-batches. Temporary memory does not depend on
    ``every_k`` (one sum buffer; the inner update runs under ``lax.cond``).

    Equivalent: ``optax.MultiSteps(optimizer, every_k)``; in PyTorch, calling
    ``loss.backward()`` ``k`` times on ``loss / k`` before ``optimizer.step()``.

    Args:
        optimizer: the optimizer to apply.
        every_k: number of micro-batches per update, ``>= 1``.

    Returns:
        An ``optax.GradientTransformation`` with ``AccumulateState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.accumulate(fdl.optim.sgd(1.0), every_k=2)
        >>> p = {"w": jnp.zeros(1)}
        >>> s = opt.init(p)
        >>> u, s = opt.update({"w": jnp.array([1.0])}, s, p)
        >>> float(u["w"][0])
        0.0
        >>> u, s = opt.update({"w": jnp.array([3.0])}, s, p)
        >>> float(u["w"][0])
        -2.0
    """
    check_int("every_k", every_k, minimum=1, fn="accumulate")

    def init(params):
        return AccumulateState(zero_count(), zeros_like_moment(params), optimizer.init(params))

    def update(updates, state, params=None, **extra):
        (grad_sum,) = leafwise(lambda g, s: (s + g.astype(s.dtype),), 1, updates, state.grad_sum)
        last = state.mini_step + 1 >= every_k

        def apply(args):
            grad_sum, inner = args
            mean = jax.tree.map(lambda s, g: (s / every_k).astype(g.dtype), grad_sum, updates)
            new_updates, inner = optimizer.update(mean, inner, params, **extra)
            zero = jax.tree.map(jnp.zeros_like, grad_sum)
            return new_updates, zero, inner

        def hold(args):
            grad_sum, inner = args
            return jax.tree.map(jnp.zeros_like, updates), grad_sum, inner

        new_updates, grad_sum, inner = jax.lax.cond(
            last, apply, hold, (grad_sum, state.inner_state)
        )
        mini_step = jnp.where(last, jnp.zeros_like(state.mini_step), increment(state.mini_step))
        return new_updates, AccumulateState(mini_step, grad_sum, inner)

    return optax.GradientTransformationExtraArgs(init, update)
