"""The 1cycle policy: OneCycleLR's learning rate and its inverse momentum cycle."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._checks import check_in_range, check_int, check_nonnegative, check_positive
from ._common import Schedule, anneal, as_step, check_strategy, to_float


class _Phase(NamedTuple):
    start_step: float  # PyTorch's float boundary where the phase starts
    end_step: float  # ... and ends (inclusive)
    last: int  # the last integer step of the phase: floor(end_step)


def _phases(total_steps: int, pct_start: float, three_phase: bool, fn: str) -> list[_Phase]:
    """PyTorch's phase boundaries, validated so that no reachable phase has zero length."""
    check_int("total_steps", total_steps, minimum=1, fn=fn)
    pct_start = check_in_range(
        "pct_start", pct_start, 0.0, 1.0, lo_closed=False, hi_closed=False, fn=fn
    )
    ends = [float(pct_start * total_steps) - 1]
    if three_phase:
        ends.append(float(2 * pct_start * total_steps) - 2)
    ends.append(float(total_steps - 1))
    if ends[0] == 0.0 or (three_phase and ends[1] == ends[2]):
        # PyTorch divides by zero here (a phase of length 0 that a step falls into)
        raise ValueError(
            f"{fn}: pct_start={pct_start!r} with total_steps={total_steps} gives a phase of "
            "length zero; choose another pct_start"
        )
    starts = [0.0] + ends[:-1]
    return [_Phase(s, e, math.floor(e)) for s, e in zip(starts, ends, strict=True)]


def _cycle(
    values: list[tuple[float, float]],
    final: float,
    phases: list[_Phase],
    total_steps: int,
    strategy: str,
    fn: str,
) -> Schedule:
    """Anneal ``values[i] = (start, end)`` over phase ``i``; ``final`` past ``total_steps``."""

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        kf = to_float(k)
        # PyTorch takes the first phase with step <= end_step, the last phase otherwise
        vals = [
            anneal(
                start,
                end,
                kf - ph.start_step,
                ph.end_step - kf,
                ph.end_step - ph.start_step,
                strategy,
            )
            for ph, (start, end) in zip(phases, values, strict=True)
        ]
        out = vals[-1]
        for ph, val in zip(phases[-2::-1], vals[-2::-1], strict=True):
            out = jnp.where(k <= ph.last, val, out)
        return jnp.where(k > total_steps, final, out)

    return schedule


def _check_lrs(max_lr: float, div_factor: float, final_div_factor: float, fn: str) -> None:
    max_lr = check_nonnegative("max_lr", max_lr, fn=fn)
    div_factor = check_positive("div_factor", div_factor, fn=fn)
    final_div_factor = check_positive("final_div_factor", final_div_factor, fn=fn)


def one_cycle_lr(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    """The 1cycle learning rate: warm up to ``max_lr``, then anneal far below the start.

    With ``initial = max_lr / div_factor``, ``min_lr = initial / final_div_factor`` and
    ``T = total_steps``, the rate is annealed (``'cos'``: half cosine, ``'linear'``)

    - two phases: ``initial → max_lr`` over steps ``0 … pct_start·T − 1``, then
      ``max_lr → min_lr`` until step ``T − 1``;
    - ``three_phase``: ``initial → max_lr`` until ``pct_start·T − 1``, ``max_lr → initial``
      until ``2·pct_start·T − 2``, ``initial → min_lr`` until ``T − 1``.

    Inside a phase from ``s`` to ``e`` the fraction is ``(k − s)/(e − s)``; the boundaries
    are PyTorch's floats (``pct_start·T − 1`` need not be an integer) and a step belongs
    to the first phase whose end it does not exceed.

    Past the end: steps ``k <= total_steps`` equal PyTorch (which also accepts
    ``k = total_steps``, one step past the last phase, extrapolating the last anneal;
    with ``'linear'`` that value lies below ``min_lr`` and can be negative). Where PyTorch
    raises (``k > total_steps``), this schedule is clamped: it returns ``min_lr``.

    Args:
      max_lr: peak learning rate.
      total_steps: number of steps in the cycle (int >= 1).
      pct_start: fraction of the cycle spent increasing the rate, in (0, 1).
      anneal_strategy: ``'cos'`` or ``'linear'``.
      div_factor: ``initial = max_lr / div_factor`` (> 0).
      final_div_factor: ``min_lr = initial / final_div_factor`` (> 0).
      three_phase: use the symmetric warm-up / cool-down plus a final annihilation phase.

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    Raises:
      ValueError: ``total_steps < 1``, ``pct_start`` outside the open interval (0, 1)
        (PyTorch accepts 0 and 1), an unknown ``anneal_strategy``, or a ``pct_start`` that
        makes a reached phase zero steps long (``pct_start·T = 1``, or ``three_phase`` with
        ``2·pct_start·T − 2 = T − 1``; PyTorch divides by zero there).

    PyTorch: ``OneCycleLR(opt, max_lr, total_steps, pct_start, anneal_strategy,
    div_factor=div_factor, final_div_factor=final_div_factor, three_phase=three_phase)``.
    optax's ``cosine_onecycle_schedule`` places its boundaries differently.

    Reference: Smith & Topin, "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates", 2017.

    Example:
      >>> sched = one_cycle_lr(1.0, total_steps=10, anneal_strategy="linear", div_factor=10.0)
      >>> [round(float(sched(k)), 3) for k in range(3)]
      [0.1, 0.55, 1.0]
    """
    fn = "one_cycle_lr"
    _check_lrs(max_lr, div_factor, final_div_factor, fn)
    check_strategy(anneal_strategy, fn)
    phases = _phases(total_steps, pct_start, three_phase, fn)
    initial = max_lr / div_factor
    min_lr = initial / final_div_factor
    if three_phase:
        values = [(initial, max_lr), (max_lr, initial), (initial, min_lr)]
    else:
        values = [(initial, max_lr), (max_lr, min_lr)]
    return _cycle(values, min_lr, phases, total_steps, anneal_strategy, fn)


def one_cycle_momentum(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Schedule:
    """The 1cycle momentum: cycles inversely to :func:`one_cycle_lr` (0.95 → 0.85 → 0.95).

    Same phases as :func:`one_cycle_lr` (same arguments, so one set of keyword
    arguments builds both); the momentum goes ``max_momentum → base_momentum`` while the
    rate rises and ``base_momentum → max_momentum`` while it falls (``three_phase``: then
    stays at ``max_momentum`` in the last phase). Past ``total_steps`` it is clamped at
    ``max_momentum``. ``max_lr``, ``div_factor`` and ``final_div_factor`` do not change
    the momentum; they are accepted (and validated) so the two calls match.

    Use it where a momentum coefficient accepts a schedule: SGD's ``momentum`` or Adam's
    first ``beta`` (PyTorch's ``cycle_momentum=True`` with ``use_beta1``).

    ``max_lr``, ``total_steps``, ``pct_start``, ``anneal_strategy``, ``div_factor``,
    ``final_div_factor`` and ``three_phase`` are those of :func:`one_cycle_lr`.

    Args:
      base_momentum: lowest momentum, reached at the peak of the rate (>= 0).
      max_momentum: highest momentum, at the start and the end (>= 0).

    Returns:
      ``schedule(step) -> momentum``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: the ``momentum`` (or ``betas[0]``) that ``OneCycleLR(...,
    cycle_momentum=True, base_momentum, max_momentum)`` sets after ``k`` steps.

    Example:
      >>> mom = one_cycle_momentum(1.0, total_steps=10, anneal_strategy="linear")
      >>> [round(float(mom(k)), 3) for k in (0, 2, 9)]
      [0.95, 0.85, 0.95]
    """
    fn = "one_cycle_momentum"
    _check_lrs(max_lr, div_factor, final_div_factor, fn)
    check_strategy(anneal_strategy, fn)
    base_momentum = check_nonnegative("base_momentum", base_momentum, fn=fn)
    max_momentum = check_nonnegative("max_momentum", max_momentum, fn=fn)
    phases = _phases(total_steps, pct_start, three_phase, fn)
    lo, hi = base_momentum, max_momentum
    values = [(hi, lo), (lo, hi), (hi, hi)] if three_phase else [(hi, lo), (lo, hi)]
    return _cycle(values, hi, phases, total_steps, anneal_strategy, fn)
