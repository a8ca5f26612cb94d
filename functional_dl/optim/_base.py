"""Shared pieces of every optimizer: hyperparameter validation, schedules, moment dtypes.

An optimizer is an ``optax.GradientTransformation`` ``(init, update)`` built with
``optax.chain`` from small transforms that each do one thing (``_transforms.py``:
``scale``, ``add_weight_decay``, ``trace``, ``scale_by_lr``) and one moment estimator
per family (``_adam_moments.py``, ``_rmsprop.py``, ``_adagrad.py``, ``_lion.py``).

Conventions shared by every transform:

- A hyperparameter given as a float is a constant; given as a callable it is a schedule
  ``step -> value`` evaluated at the transform's own ``count`` (0 at the first update).
- Moments are stored in ``state_dtype``; by default ``float32`` for ``bfloat16``/``float16``
  parameters (so ``beta2 = 0.999`` does not round to 1 and small increments do not vanish),
  the parameter's own dtype otherwise. All arithmetic of a leaf happens in that dtype
  promoted to at least float32 (``leafwise``): a ``bfloat16`` ``state_dtype`` saves memory
  and rounds each stored moment, but its decay rates are applied in float32.
- Updates leave a transform with the dtype they came in with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from .._checks import check_in_range, check_nonnegative, check_positive
from .._dtypes import compute_dtype

__all__ = ["ScalarOrSchedule", "validate"]

ScalarOrSchedule = float | jax.Array | Callable[[jax.Array], Any]


# ---------------------------------------------------------------------------------------
# The one hyperparameter validator
# ---------------------------------------------------------------------------------------
def _nonnegative(fn: str, name: str, value: Any) -> Any:
    return check_nonnegative(name, value, fn=fn)


def _positive(fn: str, name: str, value: Any) -> Any:
    return check_positive(name, value, fn=fn)


def _rate(fn: str, name: str, value: Any) -> Any:
    """A schedule or a number ``>= 0`` (PyTorch raises on a negative lr or momentum)."""
    return value if callable(value) else check_nonnegative(name, value, fn=fn)


def _decay_rate(fn: str, name: str, value: Any) -> Any:
    """A schedule or a decay rate (a beta, ``alpha``, ``rho``) in ``[0, 1)``."""
    if callable(value):
        return value
    return check_in_range(name, value, 0.0, 1.0, hi_closed=False, fn=fn)


def unpack_pair(fn: str, name: str, value: Any, parts: str) -> tuple[Any, Any]:
    """``value`` unpacked as a pair; else ``ValueError`` saying it must be ``parts``
    (``"(beta1, beta2)"``)."""
    try:
        first, second = value
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: {name} must be a pair {parts}, got {name}={value!r}") from exc
    return first, second


def _betas(fn: str, name: str, value: Any) -> Any:
    """A pair ``(beta1, beta2)`` of decay rates."""
    b1, b2 = unpack_pair(fn, name, value, "(beta1, beta2)")
    return (_decay_rate(fn, f"{name}[0]", b1), _decay_rate(fn, f"{name}[1]", b2))


_NONNEGATIVE = (
    "eps",
    "weight_decay",
    "dampening",
    "lr_decay",
    "initial_accumulator_value",
    "momentum_decay",
    "max_norm",
    "clip_value",
)
_RULES: dict[str, Callable[[str, str, Any], Any]] = {
    "lr": _rate,
    "momentum": _rate,
    "betas": _betas,
    "b1": _decay_rate,
    "b2": _decay_rate,
    "alpha": _decay_rate,
    "rho": _decay_rate,
    "norm_type": _positive,
    **dict.fromkeys(_NONNEGATIVE, _nonnegative),
}


def validate(fn: str, **hyperparameters: Any) -> Any:
    """Check each hyperparameter by its name; raise ``ValueError`` naming ``fn``, it and its value.

    ``lr`` and ``momentum``: ``>= 0`` or a schedule; ``betas``: a pair of decay rates;
    ``b1``, ``b2``, ``alpha``, ``rho``: in ``[0, 1)`` or a schedule; ``norm_type``: ``> 0``;
    the others (``eps``, ``weight_decay``, ``dampening``, ...): ``>= 0``.

    Returns the values in the order given (one value: itself). Every numeric
    hyperparameter is traceable: a traced value cannot be inspected, so it comes back
    NaN when invalid (:func:`~functional_dl._checks.nan_if_invalid`) and the update is
    NaN, never a plausible step; callers use the returned values.

    >>> validate("adam", lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    (0.001, (0.9, 0.999), 1e-08)
    >>> validate("adam", betas=(0.9, 1.0))
    Traceback (most recent call last):
    ValueError: adam: betas[1] must be in [0.0, 1.0), got betas[1]=1.0
    """
    out = tuple(_RULES[name](fn, name, value) for name, value in hyperparameters.items())
    return out[0] if len(out) == 1 else out


# ---------------------------------------------------------------------------------------
# Helpers shared by the transforms
# ---------------------------------------------------------------------------------------
def value_at(h: ScalarOrSchedule, count: Any) -> jax.Array:
    """``h(count)`` for a schedule, ``h`` itself for a constant, as a default-float scalar."""
    v = h(count) if callable(h) else h
    return jnp.asarray(v, dtype=jnp.result_type(float))


def moment_dtype(param_dtype: Any, state_dtype: Any = None) -> jnp.dtype:
    """dtype of a moment for a parameter: ``state_dtype``, else the compute dtype."""
    if state_dtype is not None:
        return jnp.dtype(state_dtype)
    return compute_dtype(param_dtype)


def zeros_like_moment(params: Any, state_dtype: Any = None, fill: float = 0.0) -> Any:
    """A tree of moments shaped like ``params`` (filled with ``fill``) in the moment dtype."""
    return jax.tree.map(
        lambda p: jnp.full(jnp.shape(p), fill, moment_dtype(jnp.result_type(p), state_dtype)),
        params,
    )


def increment(count: jax.Array) -> jax.Array:
    """``count + 1`` for an int32 step counter, saturating at the int32 maximum (as
    ``optax.safe_increment``) instead of wrapping to a negative step."""
    top = jnp.iinfo(jnp.int32).max
    return jnp.where(count < top, count + jnp.ones_like(count), top).astype(count.dtype)


def zero_count() -> jax.Array:
    """The initial step counter (int32 scalar)."""
    return jnp.zeros([], jnp.int32)


def advance(count: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(new_count, step, t)`` for the update that ``count`` updates have preceded.

    ``new_count = count + 1`` is the counter to store, ``step = new_count - 1`` this
    update's 0-based step (what schedules take) and ``t = new_count`` as a default float
    (the 1-based step of bias corrections). All three derive from the new counter: when
    the old one is read as well, XLA copies the donated counter to keep it readable.
    """
    new_count = increment(count)
    return new_count, new_count - 1, new_count.astype(jnp.result_type(float))


def advance_betas(
    b1: ScalarOrSchedule, b2: ScalarOrSchedule, count: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(new_count, t, beta1, beta2)``: the advanced counter, the 1-based step, and the
    two decay rates (floats or schedules) at this update's step (see :func:`advance`)."""
    count, step, t = advance(count)
    return count, t, value_at(b1, step), value_at(b2, step)


def ema(beta: Any, m: jax.Array, x: jax.Array) -> jax.Array:
    """Exponential moving average ``beta·m + (1 - beta)·x``."""
    return beta * m + (1 - beta) * x


def leafwise(fn: Callable[..., tuple], n_out: int, updates: Any, *states: Any) -> tuple:
    """Map ``fn(g, *state_leaves) -> (u, *new_state_leaves)`` over the leaves of ``updates``
    and the state trees (same structure) and unzip its ``n_out`` outputs into trees.

    State leaves enter ``fn`` in their compute dtype (at least float32), and the new
    state leaves are stored back in their own dtype: a ``bfloat16`` moment is updated in
    float32 (``0.999·v`` would otherwise round ``beta2`` to 1) and rounded once when stored.
    """
    treedef = jax.tree.structure(updates)
    flat = [treedef.flatten_up_to(t) for t in (updates, *states)]
    outs = []
    for g, *old in zip(*flat, strict=True):
        out = fn(g, *(s.astype(compute_dtype(s.dtype)) for s in old))
        stored = [
            x if i >= len(old) or x is None else x.astype(old[i].dtype)
            for i, x in enumerate(out[1:])
        ]
        outs.append((out[0], *stored))
    return tuple(treedef.unflatten([o[i] for o in outs]) for i in range(n_out))


def is_active(x: Any) -> bool:
    """False only for a Python/NumPy zero: a schedule or a JAX array (traced or not)
    keeps its transform, so that ``init`` with a concrete array and a jitted ``update``
    with a traced one build the same chain (``optax.inject_hyperparams`` passes every
    numeric hyperparameter as an array to both)."""
    return callable(x) or isinstance(x, jax.Array) or float(x) != 0.0


def stateless(
    fn: Callable[[Any, Any], Any],
) -> optax.GradientTransformation:
    """A transformation without state: ``update(u, state, params) = (fn(u, params), state)``."""

    def init(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        return fn(updates, params), state

    return optax.GradientTransformation(init, update)
