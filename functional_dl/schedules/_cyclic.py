"""The cyclical learning rate policy (Smith, 2017): CyclicLR's rate and its momentum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._checks import check_choice, check_nonnegative, check_positive
from ._common import Schedule, as_step, to_float

MODES = ("triangular", "triangular2", "exp_range")


def _check(fn: str, step_size_up, step_size_down, mode, gamma) -> tuple[float, float]:
    step_size_up = check_positive("step_size_up", step_size_up, fn=fn)
    down = step_size_up if step_size_down is None else step_size_down
    down = check_nonnegative("step_size_down", down, fn=fn)
    check_choice("mode", mode, MODES, fn=fn)
    gamma = check_positive("gamma", gamma, fn=fn)
    return float(step_size_up), float(down)


def _triangle(k: jax.Array, up: float, down: float, mode: str, gamma: float):
    """PyTorch's ``scale_factor`` (0 → 1 → 0 over a cycle) times its ``scale_fn``.

    For whole step sizes the position in the cycle is found in integer arithmetic
    (``r = k mod T``, ``s = r/up`` rising, ``(T − r)/down`` falling): PyTorch's float64
    ``1 + k/T − floor(1 + k/T)`` in float32 would lose the position as ``k`` grows.
    """
    total = up + down
    kf = to_float(k)
    if float(up).is_integer() and float(down).is_integer():
        n = int(total)
        cycle_index = k // n
        r = to_float(k - cycle_index * n)
        cycle = to_float(cycle_index) + 1.0
        rising = r / up
        falling = (total - r) / down if down != 0 else rising
        factor = jnp.where(r <= up, rising, falling)
    else:
        ratio = up / total
        cycle = jnp.floor(1.0 + kf / total)
        x = 1.0 + kf / total - cycle
        falling = (x - 1.0) / (ratio - 1.0) if ratio != 1 else jnp.zeros_like(x)
        factor = jnp.where(x <= ratio, x / ratio, falling)
    if mode == "triangular":
        scale = jnp.ones_like(kf)
    elif mode == "triangular2":
        scale = 1.0 / jnp.power(2.0, cycle - 1.0)
    else:
        scale = jnp.power(jnp.asarray(gamma, kf.dtype), kf)
    return factor, scale


def cyclic_lr(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Schedule:
    """Cycle the learning rate between ``base_lr`` and ``max_lr`` (triangular waves).

    With ``T = up + down``, ``c = floor(1 + k/T)``, ``x = 1 + k/T - c`` and
    ``s = x/r`` if ``x <= r`` else ``(x - 1)/(r - 1)`` (``r = up/T``):

    lr(k) = base_lr + (max_lr - base_lr) · s · f, with ``f = 1`` (``'triangular'``),
    ``1/2^(c-1)`` (``'triangular2'``: the amplitude halves every cycle) or ``gamma^k``
    (``'exp_range'``).

    Args:
      base_lr: lower bound of the cycle (the rate at step 0).
      max_lr: upper bound, reached ``step_size_up`` steps into each cycle.
      step_size_up: steps of the rising half (> 0).
      step_size_down: steps of the falling half (default: ``step_size_up``).
      mode: ``'triangular'``, ``'triangular2'`` or ``'exp_range'``.
      gamma: ``exp_range``'s decay per step (> 0).

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``CyclicLR(opt, base_lr, max_lr, step_size_up, step_size_down, mode, gamma)``
    (the rate; ``cyclic_momentum`` gives the momentum it cycles). optax has no equivalent.
    Paper: Smith, "Cyclical Learning Rates for Training Neural Networks", 2017.

    Example:
      >>> sched = cyclic_lr(0.1, 0.5, step_size_up=2)
      >>> [round(float(sched(k)), 3) for k in range(6)]
      [0.1, 0.3, 0.5, 0.3, 0.1, 0.3]
    """
    fn = "cyclic_lr"
    up, down = _check(fn, step_size_up, step_size_down, mode, gamma)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        factor, scale = _triangle(k, up, down, mode, gamma)
        return base_lr + (max_lr - base_lr) * factor * scale

    return schedule


def cyclic_momentum(
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Schedule:
    """CyclicLR's momentum: cycles inversely to ``cyclic_lr`` (max → base → max).

    momentum(k) = max_momentum - (max_momentum - base_momentum) · s · f, with ``s`` and
    ``f`` those of ``cyclic_lr`` given the same ``step_size_up``, ``step_size_down``,
    ``mode`` and ``gamma``.

    Args:
      base_momentum: lowest momentum, at the peak of the rate (>= 0).
      max_momentum: highest momentum, at the start of each cycle (>= 0).
      step_size_up: steps of the rising half of the rate (> 0).
      step_size_down: steps of its falling half (default: ``step_size_up``).
      mode: ``'triangular'``, ``'triangular2'`` or ``'exp_range'``.
      gamma: ``exp_range``'s decay per step (> 0).

    Returns:
      ``schedule(step) -> momentum``; pass it as SGD's ``momentum`` or Adam's first beta.

    PyTorch: the ``momentum`` that ``CyclicLR(..., cycle_momentum=True, base_momentum,
    max_momentum)`` sets after ``k`` steps.

    Example:
      >>> mom = cyclic_momentum(0.8, 0.9, step_size_up=2)
      >>> [round(float(mom(k)), 3) for k in range(5)]
      [0.9, 0.85, 0.8, 0.85, 0.9]
    """
    fn = "cyclic_momentum"
    base_momentum = check_nonnegative("base_momentum", base_momentum, fn=fn)
    max_momentum = check_nonnegative("max_momentum", max_momentum, fn=fn)
    up, down = _check(fn, step_size_up, step_size_down, mode, gamma)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        factor, scale = _triangle(k, up, down, mode, gamma)
        return max_momentum - (max_momentum - base_momentum) * factor * scale

    return schedule
