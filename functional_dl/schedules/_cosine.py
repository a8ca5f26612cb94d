"""Cosine schedules: CosineAnnealingLR, CosineAnnealingWarmRestarts, linear warm-up + cosine."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._checks import check_int
from ._common import Schedule, anneal, as_step, count_reached, to_float


def cosine_annealing_lr(base_lr: float, T_max: int, eta_min: float = 0.0) -> Schedule:
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` steps, then back up.

    lr(k) = eta_min + (base_lr − eta_min) · (1 + cos(π·k / T_max)) / 2

    for every ``k >= 0``: past ``T_max`` the rate climbs back to ``base_lr`` at
    ``2·T_max`` and keeps cycling with period ``2·T_max``.

    PyTorch's ``CosineAnnealingLR`` computes a recursive (chainable) sequence,
    ``lr_k = η + (lr_{k-1} − η)·(1 + cos(πk/T))/(1 + cos(π(k−1)/T))``, with the additive
    step ``lr_k = lr_{k-1} + (base_lr − η)(1 − cos(π/T))/2`` at ``k ≡ T + 1 (mod 2T)``
    where that ratio would divide by zero. The ratios telescope, and the additive step
    equals ``(base_lr − η)(1 + cos(π(T+1)/T))/2`` because ``cos(π + π/T) = −cos(π/T)``; so
    the recursion equals the closed form above at every step, including every cycle
    past ``T_max``. The closed form is evaluated as
    ``base_lr·sin²(πv/2T) + η·cos²(πv/2T)`` with ``v = |(k mod 2T) − T|`` (integer
    arithmetic, no cancellation: float32 keeps ~1e-7 relative accuracy near ``η = 0``).

    Args:
      base_lr: learning rate at step 0.
      T_max: half period, the step at which ``eta_min`` is reached (int >= 1).
      eta_min: minimum learning rate.

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``CosineAnnealingLR(opt, T_max, eta_min)``: ``schedule(k)`` equals
    ``get_last_lr()`` after ``k`` calls of ``scheduler.step()``. optax's
    ``cosine_decay_schedule`` instead stays at its final value after ``decay_steps``.

    Example:
      >>> sched = cosine_annealing_lr(1.0, T_max=4)
      >>> [round(float(sched(k)), 4) for k in range(9)]
      [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.1464, 0.5, 0.8536, 1.0]
    """
    fn = "cosine_annealing_lr"
    check_int("T_max", T_max, minimum=1, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        v = to_float(jnp.abs(jnp.mod(k, 2 * T_max) - T_max))  # distance to the minimum
        return anneal(base_lr, eta_min, T_max - v, v, T_max)

    return schedule


def cosine_annealing_warm_restarts(
    base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0
) -> Schedule:
    """Cosine annealing with warm restarts (SGDR): cycles of length ``T_0·T_mult^i``.

    lr(k) = eta_min + (base_lr − eta_min) · (1 + cos(π·T_cur / T_i)) / 2

    where cycle ``i`` starts at step ``T_0·(T_mult^i − 1)/(T_mult − 1)`` (``i·T_0`` for
    ``T_mult = 1``), lasts ``T_i = T_0·T_mult^i`` steps, and ``T_cur`` counts the steps
    since its start: the rate jumps back to ``base_lr`` at each restart. The cycle is
    found with exact integer arithmetic (a static table of cycle starts), not with the
    floating-point logarithm PyTorch uses for an explicit epoch.

    Args:
      base_lr: learning rate at the start of each cycle.
      T_0: length of the first cycle (int >= 1).
      T_mult: growth factor of the cycle length (int >= 1).
      eta_min: minimum learning rate.

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min)`` stepped with
    ``scheduler.step()`` (no explicit epoch). optax: ``optax.sgdr_schedule`` with
    equal cycles is the ``T_mult = 1`` case.

    Reference: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts", ICLR 2017.

    Example:
      >>> sched = cosine_annealing_warm_restarts(1.0, T_0=2, T_mult=2)
      >>> [round(float(sched(k)), 4) for k in range(7)]
      [1.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 1.0]
    """
    fn = "cosine_annealing_warm_restarts"
    check_int("T_0", T_0, minimum=1, fn=fn)
    check_int("T_mult", T_mult, minimum=1, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        if T_mult == 1:
            t_cur, t_i = jnp.mod(k, T_0), T_0
        else:
            # cycle starts that fit the step's integer type (the next would overflow it)
            limit = int(jnp.iinfo(k.dtype).max)
            starts, length = [0], T_0
            while starts[-1] + length <= limit:
                starts.append(starts[-1] + length)
                length *= T_mult
            lengths = [T_0 * T_mult**i for i in range(len(starts))]
            starts_arr = jnp.asarray(starts, k.dtype)
            cycle = jnp.maximum(count_reached(k, starts) - 1, 0)
            t_cur = k - starts_arr[cycle]
            t_i = to_float(lengths)[cycle]
        t_cur = to_float(t_cur)
        return anneal(base_lr, eta_min, t_cur, t_i - t_cur, t_i)

    return schedule


def warmup_cosine(max_lr: float, min_lr: float, warmup_steps: int, cosine_steps: int) -> Schedule:
    """Linear warm-up from 0 to ``max_lr``, cosine decay to ``min_lr``, then constant.

    lr(k) = max_lr · k / W                                                  for k < W
    lr(k) = min_lr + (max_lr − min_lr) · (1 + cos(π·min(k − W, C) / C)) / 2   for k >= W

    with ``W = warmup_steps`` and ``C = cosine_steps``: the rate is 0 at step 0, reaches
    ``max_lr`` at step ``W``, ``min_lr`` at step ``W + C`` and stays there.

    Args:
      max_lr: peak learning rate, reached at the end of the warm-up.
      min_lr: final learning rate.
      warmup_steps: length of the linear warm-up (int >= 0; 0 starts at ``max_lr``).
      cosine_steps: length of the cosine decay (int >= 1).

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    optax: ``optax.warmup_cosine_decay_schedule(0.0, max_lr, warmup_steps,
    warmup_steps + cosine_steps, end_value=min_lr)``. PyTorch has no single scheduler
    for it: ``SequentialLR`` of a linear warm-up and ``CosineAnnealingLR`` differs
    after the decay (the cosine climbs back up) and ``LinearLR`` cannot start from 0.

    Example:
      >>> sched = warmup_cosine(1.0, 0.0, warmup_steps=2, cosine_steps=2)
      >>> [round(float(sched(k)), 4) for k in range(6)]
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    fn = "warmup_cosine"
    check_int("warmup_steps", warmup_steps, minimum=0, fn=fn)
    check_int("cosine_steps", cosine_steps, minimum=1, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        done = to_float(jnp.clip(k - warmup_steps, 0, cosine_steps))
        decay = anneal(max_lr, min_lr, done, cosine_steps - done, cosine_steps)
        if warmup_steps == 0:
            return decay
        warm = max_lr * (to_float(k) / warmup_steps)
        return jnp.where(k < warmup_steps, warm, decay)

    return schedule
