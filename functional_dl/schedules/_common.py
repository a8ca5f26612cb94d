"""Helpers shared by the schedules: step conversion and cancellation-free annealing."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._checks import check_choice, check_int

#: A learning-rate schedule: an integer step count (array of any shape) to the rate.
Schedule = Callable[[ArrayLike], jax.Array]

ANNEAL_STRATEGIES = ("cos", "linear")


def as_step(step: ArrayLike, fn: str) -> jax.Array:
    """``step`` as an integer array; ``TypeError`` for a floating or boolean step."""
    step = jnp.asarray(step)
    if not jnp.issubdtype(step.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: step must be an integer array (a count of scheduler steps), "
            f"got step.dtype={step.dtype}"
        )
    return step


def count_reached(k: jax.Array, points: Sequence[int]) -> jax.Array:
    """How many of the sorted ``points`` are ``<= k``, elementwise over ``k`` (int32).

    The points get a trailing axis and ``k`` is broadcast explicitly against it, so no
    implicit rank promotion happens (``jax_numpy_rank_promotion='raise'`` works).
    """
    arr = jnp.asarray(points, k.dtype).reshape((1,) * k.ndim + (-1,))
    return jnp.sum(k[..., None] >= arr, axis=-1, dtype=jnp.int32)


def to_float(x: ArrayLike | Sequence[float]) -> jax.Array:
    """``x`` in JAX's default floating dtype (float32, or float64 with x64 enabled)."""
    return jnp.asarray(x, dtype=float)


def check_strategy(anneal_strategy: str, fn: str) -> None:
    """Raise ``ValueError`` unless ``anneal_strategy`` is ``'cos'`` or ``'linear'``."""
    check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES, fn=fn)


def check_milestones(milestones: Sequence[int], fn: str) -> tuple[int, ...]:
    """``milestones`` as a tuple of strictly increasing ints >= 0, else ``ValueError``."""
    milestones = tuple(milestones)
    for m in milestones:
        check_int("milestones", m, minimum=0, fn=fn)
    if any(b <= a for a, b in zip(milestones[:-1], milestones[1:], strict=True)):
        raise ValueError(
            f"{fn}: milestones must be strictly increasing, got milestones={milestones!r}"
        )
    return milestones


def anneal(
    start: ArrayLike,
    end: ArrayLike,
    done: ArrayLike,
    remaining: ArrayLike,
    total: ArrayLike,
    strategy: str = "cos",
) -> jax.Array:
    """Interpolate from ``start`` to ``end`` after ``done`` of ``total`` units.

    With ``p = done / total`` and ``q = remaining / total = 1 - p``:

    - ``'linear'``: ``start·q + end·p``  (PyTorch: ``(end - start)·p + start``)
    - ``'cos'``:    ``start·sin²(πq/2) + end·sin²(πp/2)``
      (PyTorch: ``end + (start - end)·(1 + cos(πp))/2``; the two agree since
      ``(1 + cos πp)/2 = cos²(πp/2) = sin²(πq/2)``).

    ``remaining`` is passed separately from ``done`` so that neither weight is obtained
    by a cancelling subtraction: both terms are non-negative whenever ``start`` and
    ``end`` are, so the result keeps a few-ulp relative accuracy in float32 also where
    it approaches a tiny final value (``1 + cos πp`` near ``p = 1`` would lose digits).
    The identities hold for every ``p``, including PyTorch's extrapolation past the end.
    """
    p = done / total
    q = remaining / total
    if strategy == "cos":
        w_start = jnp.square(jnp.sin((0.5 * math.pi) * q))
        w_end = jnp.square(jnp.sin((0.5 * math.pi) * p))
    else:
        w_start, w_end = q, p
    return jnp.asarray(start * w_start + end * w_end)
