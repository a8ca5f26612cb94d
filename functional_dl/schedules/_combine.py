"""Chaining schedules at step boundaries (PyTorch's SequentialLR, optax's join_schedules)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._common import Schedule, as_step, check_milestones


def sequential_lr(schedules: Sequence[Schedule], milestones: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` from ``milestones[i-1]`` on, each restarted at step 0.

    lr(k) = schedules[i](k − milestones[i−1])  for milestones[i−1] <= k < milestones[i]
    (with milestones[−1] = 0 and milestones[n−1] = ∞)

    Args:
      schedules: ``n >= 1`` schedules (``step -> lr``).
      milestones: ``n - 1`` strictly increasing steps (ints >= 0) where the next
        schedule takes over.

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able
      (every piece is evaluated and the active one selected).

    PyTorch: ``SequentialLR(opt, schedulers, milestones)``: at a milestone it calls
    ``scheduler.step(0)`` on the next scheduler, which restarts it from the optimizer's
    initial rate, as here. optax: ``optax.join_schedules(schedules, milestones)``.

    Example:
      >>> from functional_dl.schedules import linear_lr, cosine_annealing_lr
      >>> sched = sequential_lr([linear_lr(1.0, 0.25, 1.0, total_iters=3),
      ...                        cosine_annealing_lr(1.0, T_max=2)], milestones=[3])
      >>> [round(float(sched(k)), 4) for k in range(6)]
      [0.25, 0.5, 0.75, 1.0, 0.5, 0.0]
    """
    fn = "sequential_lr"
    schedules = tuple(schedules)
    milestones = tuple(milestones)
    if not schedules:
        raise ValueError(f"{fn}: schedules must hold at least one schedule, got {schedules!r}")
    for s in schedules:
        if not callable(s):
            raise TypeError(f"{fn}: schedules must be callables step -> lr, got {s!r}")
    if len(milestones) != len(schedules) - 1:
        raise ValueError(
            f"{fn}: milestones must hold len(schedules) - 1 = {len(schedules) - 1} steps, "
            f"got milestones={milestones!r}"
        )
    check_milestones(milestones, fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        out = schedules[0](k)
        for m, s in zip(milestones, schedules[1:], strict=True):
            out = jnp.where(k >= m, s(k - m), out)
        return out

    return schedule


#: optax's name for :func:`sequential_lr` (``boundaries`` are the ``milestones``).
join_schedules = sequential_lr
