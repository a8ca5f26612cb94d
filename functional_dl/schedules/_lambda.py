"""Warm-up factors and user-defined rates: ConstantLR, PolynomialLR, LambdaLR, MultiplicativeLR."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._checks import check_in_range, check_int, check_nonnegative
from ._common import Schedule, as_step, to_float


def constant_lr(base_lr: float, factor: float = 1 / 3, total_iters: int = 5) -> Schedule:
    """Scale the learning rate by ``factor`` for the first ``total_iters`` steps.

    lr(k) = base_lr · factor if k < total_iters else base_lr

    Args:
      base_lr: learning rate after the warm-up.
      factor: multiplier in ``[0, 1]`` during it.
      total_iters: its number of steps (int >= 1; PyTorch accepts 0 and then keeps the
        factor forever, which this rejects).

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``ConstantLR(opt, factor, total_iters)``.

    Example:
      >>> [round(float(constant_lr(0.3, 1/3, total_iters=2)(k)), 3) for k in range(4)]
      [0.1, 0.1, 0.3, 0.3]
    """
    fn = "constant_lr"
    factor = check_in_range("factor", factor, 0.0, 1.0, fn=fn)
    check_int("total_iters", total_iters, minimum=1, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        return jnp.where(k < total_iters, base_lr * factor, base_lr) * jnp.ones_like(to_float(k))

    return schedule


def polynomial_lr(base_lr: float, total_iters: int = 5, power: float = 1.0) -> Schedule:
    """Decay the learning rate to 0 over ``total_iters`` steps with a polynomial.

    lr(k) = base_lr · (1 - min(k, total_iters) / total_iters) ** power

    Args:
      base_lr: learning rate at step 0.
      total_iters: steps until it reaches 0 (int >= 1); it stays 0 afterwards.
      power: exponent ``>= 0``.

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``PolynomialLR(opt, total_iters, power)`` (its recursive form gives the same
    values to rounding). optax: ``optax.polynomial_schedule(base_lr, 0.0, power, total_iters)``.

    Example:
      >>> [float(polynomial_lr(1.0, total_iters=4)(k)) for k in range(6)]
      [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    fn = "polynomial_lr"
    check_int("total_iters", total_iters, minimum=1, fn=fn)
    power = check_nonnegative("power", power, fn=fn)

    def schedule(step: ArrayLike) -> jax.Array:
        k = to_float(as_step(step, fn))
        remaining = (total_iters - jnp.minimum(k, total_iters)) / total_iters
        return base_lr * jnp.power(remaining, power)

    return schedule


def lambda_lr(base_lr: float, lr_lambda: Callable[[jax.Array], ArrayLike]) -> Schedule:
    """The learning rate ``base_lr · lr_lambda(k)``.

    Args:
      base_lr: the rate that ``lr_lambda`` multiplies.
      lr_lambda: ``step -> factor``; receives an integer step array (possibly traced:
        write it with ``jnp``).

    Returns:
      ``schedule(step) -> lr``; jit-able when ``lr_lambda`` is.

    PyTorch: ``LambdaLR(opt, lr_lambda)``.

    Example:
      >>> sched = lambda_lr(0.5, lambda k: 1.0 / (k + 1))
      >>> [float(sched(k)) for k in range(3)]
      [0.5, 0.25, 0.16666667...]
    """
    if not callable(lr_lambda):
        raise TypeError(f"lambda_lr: lr_lambda must be callable, got lr_lambda={lr_lambda!r}")

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, "lambda_lr")
        return base_lr * to_float(lr_lambda(k))

    return schedule


def multiplicative_lr(base_lr: float, lr_lambda: Callable[[jax.Array], ArrayLike]) -> Schedule:
    """Multiply the learning rate by ``lr_lambda(i)`` at each step ``i``.

    lr(k) = base_lr · Π_{i=1..k} lr_lambda(i)

    The product runs in a loop of ``k`` iterations (a ``lax.fori_loop``, per element of
    ``step``); for a constant factor prefer ``exponential_lr``.

    Args:
      base_lr: learning rate at step 0.
      lr_lambda: ``step -> factor``; receives an integer scalar array (possibly traced).

    Returns:
      ``schedule(step) -> lr``, elementwise over an integer ``step`` array; jit-able.

    PyTorch: ``MultiplicativeLR(opt, lr_lambda)``.

    Example:
      >>> sched = multiplicative_lr(1.0, lambda i: 0.5 + 0.0 * i)
      >>> [float(sched(k)) for k in range(4)]
      [1.0, 0.5, 0.25, 0.125]
    """
    fn = "multiplicative_lr"
    if not callable(lr_lambda):
        raise TypeError(f"{fn}: lr_lambda must be callable, got lr_lambda={lr_lambda!r}")

    def one(k: jax.Array) -> jax.Array:
        def body(i, acc):
            return acc * to_float(lr_lambda(i))

        return jax.lax.fori_loop(jnp.ones_like(k), k + 1, body, to_float(base_lr))

    def schedule(step: ArrayLike) -> jax.Array:
        k = as_step(step, fn)
        return jnp.vectorize(one)(k)

    return schedule
