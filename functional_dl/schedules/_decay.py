"""Piecewise-constant and multiplicative decays: StepLR, MultiStepLR, ExponentialLR, LinearLR."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._checks import check_in_range, check_int, check_nonnegative
from ._common import Schedule, anneal, as_step, check_milestones, count_reached, to_float


def step_lr(base_lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """Decay the learning rate by ``gamma`` every ``step_size`` steps.

    lr(k) = base_lr · gamma ** floor(k / step_size)

    Args:
      base_lr: learning rate at step 0.
      step_size: period of the decay (int >= 1).
      gamma: multiplicative factor (>= 0).

    Returns:
      ``schedule(step) -> lr``: ``step`` an integer array of any shape, the result a float
      array of the same shape; jit-able with a traced ``step``.

    PyTorch: ``torch.optim.lr_scheduler.StepLR(opt, step_size, gamma)``: ``schedule(k)``
    equals ``get_last_lr()`` after ``k`` calls of ``scheduler.step()``.
    optax: ``optax.exponential_decay(base_lr, step_size, gamma, staircase=True)``.

    Example:
      >>> sched = step_lr(0.1, step_size=30)
      >>> float(sched(30))  # doctest: +ELLIPSIS
      0.0100...
    """
    fn = "step_lr"
    check_int("step_size", step_size, minimum=1, fn=fn)
    gamma = check_nonnegative("gamma", gamma, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        return base_lr * jnp.power(gamma, to_float(k // step_size))

    return schedule


def multi_step_lr(base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """Decay the learning rate by ``gamma`` at each of the ``milestones``.

    lr(k) = base_lr · gamma ** (number of milestones m with m <= k)

    Args:
      base_lr: learning rate at step 0.
      milestones: strictly increasing step indices (ints >= 0).
      gamma: multiplicative factor (>= 0).

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``MultiStepLR(opt, milestones, gamma)`` (which also accepts repeated
    milestones, each repetition decaying once more; here they must increase strictly).
    optax: ``optax.piecewise_constant_schedule(base_lr, {m: gamma for m in milestones})``.

    Example:
      >>> sched = multi_step_lr(1.0, milestones=[2, 5], gamma=0.5)
      >>> [float(sched(k)) for k in range(7)]
      [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    """
    fn = "multi_step_lr"
    milestones = check_milestones(milestones, fn)
    gamma = check_nonnegative("gamma", gamma, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        passed = count_reached(k, milestones)
        return base_lr * jnp.power(gamma, to_float(passed))

    return schedule


def exponential_lr(base_lr: float, gamma: float) -> Schedule:
    """Decay the learning rate by ``gamma`` every step.

    lr(k) = base_lr · gamma ** k

    Args:
      base_lr: learning rate at step 0.
      gamma: multiplicative factor per step (>= 0).

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``ExponentialLR(opt, gamma)``. optax: ``optax.exponential_decay(base_lr, 1, gamma)``.
    In float32 the power carries the rounding of gamma, up to about ``k·3e-8`` relative
    at step ``k``; with x64 enabled it is computed in float64.

    Example:
      >>> float(exponential_lr(1.0, gamma=0.5)(3))
      0.125
    """
    fn = "exponential_lr"
    gamma = check_nonnegative("gamma", gamma, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        return base_lr * jnp.power(gamma, to_float(as_step(step, fn)))

    return schedule


def linear_lr(
    base_lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
) -> Schedule:
    """Scale the learning rate by a factor moving linearly from ``start_factor`` to ``end_factor``.

    lr(k) = base_lr · (s + (e − s) · min(k, T) / T)
    with s = start_factor, e = end_factor, T = total_iters;

    constant ``base_lr·end_factor`` from step ``T`` on (``T = 0``: constant
    ``base_lr·start_factor``, as PyTorch's recursion gives).

    Args:
      base_lr: the learning rate the factors multiply.
      start_factor: factor at step 0, in (0, 1].
      end_factor: factor from step ``total_iters`` on, in [0, 1].
      total_iters: number of steps of the ramp (int >= 0).

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``LinearLR(opt, start_factor, end_factor, total_iters)`` (same defaults and
    the same ranges for the factors). optax: ``optax.linear_schedule(base_lr·s, base_lr·e, T)``.

    Example:
      >>> sched = linear_lr(1.0, start_factor=0.5, total_iters=4)
      >>> [float(sched(k)) for k in range(6)]
      [0.5, 0.625, 0.75, 0.875, 1.0, 1.0]
    """
    fn = "linear_lr"
    start_factor = check_in_range("start_factor", start_factor, 0.0, 1.0, lo_closed=False, fn=fn)
    end_factor = check_in_range("end_factor", end_factor, 0.0, 1.0, fn=fn)
    check_int("total_iters", total_iters, minimum=0, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        if total_iters == 0:
            return base_lr * start_factor * jnp.ones(k.shape, to_float(0).dtype)
        done = to_float(jnp.clip(k, 0, total_iters))
        factor = anneal(
            start_factor, end_factor, done, total_iters - done, total_iters, strategy="linear"
        )
        return base_lr * factor

    return schedule
