"""Core pieces every optimizer is chained from: hyperparameter plumbing and small transforms.

An optimizer is an ``optax.GradientTransformation`` ``(init, update)`` built with
``optax.chain`` from small transforms that each do one thing: ``scale`` (flip the sign
for ``maximize``), ``add_weight_decay`` (``u + wd·p``), ``trace`` (PyTorch's momentum
buffer) and ``scale_by_lr`` (``-lr·u``); the moment estimators (``scale_by_adam``, ...)
live in ``_moments_adam.py`` and ``_moments.py``.

Conventions shared by every transform here:

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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._checks import check_in_range, check_nonnegative, is_concrete

__all__ = [
    "ScalarOrSchedule",
    "ScaleState",
    "TraceState",
    "scale",
    "scale_by_lr",
    "add_weight_decay",
    "trace",
]

ScalarOrSchedule = float | jax.Array | Callable[[jax.Array], Any]


# ---------------------------------------------------------------------------------------
# Helpers shared by the transforms (private)
# ---------------------------------------------------------------------------------------
def value_at(h: ScalarOrSchedule, count: jax.Array) -> jax.Array:
    """``h(count)`` for a schedule, ``h`` itself for a constant, as a default-float scalar."""
    v = h(count) if callable(h) else h
    return jnp.asarray(v, dtype=jnp.result_type(float))


def moment_dtype(param_dtype: Any, state_dtype: Any = None) -> jnp.dtype:
    """dtype of a moment for a parameter: ``state_dtype``, else at least float32."""
    if state_dtype is not None:
        return jnp.dtype(state_dtype)
    return jnp.promote_types(param_dtype, jnp.float32)


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


def ema(beta: Any, m: jax.Array, x: jax.Array) -> jax.Array:
    """Exponential moving average ``beta·m + (1 - beta)·x``."""
    return beta * m + (1 - beta) * x


def check_lr(lr: ScalarOrSchedule, fn: str) -> None:
    """``lr`` is a schedule or a number ``>= 0`` (PyTorch raises on negative rates)."""
    if not callable(lr):
        check_nonnegative("lr", lr, fn=fn)


def check_beta(name: str, beta: ScalarOrSchedule, fn: str) -> None:
    """A decay rate (a beta, momentum-like hyperparameter) lies in ``[0, 1)``."""
    if not callable(beta):
        check_in_range(name, beta, 0.0, 1.0, hi_closed=False, fn=fn)


def check_betas(betas: Any, fn: str) -> tuple:
    """Validate a ``(beta1, beta2)`` pair (each a float in ``[0, 1)`` or a schedule)."""
    try:
        b1, b2 = betas
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: betas must be a pair (beta1, beta2), got betas={betas!r}") from exc
    check_beta("betas[0]", b1, fn)
    check_beta("betas[1]", b2, fn)
    return b1, b2


def leafwise(fn: Callable[..., tuple], n_out: int, updates: Any, *states: Any) -> tuple:
    """Map ``fn(g, *state_leaves) -> (u, *new_state_leaves)`` over the leaves of ``updates``
    and the state trees (same structure) and unzip its ``n_out`` outputs into trees.

    State leaves enter ``fn`` in their dtype promoted to at least float32, and the new
    state leaves are stored back in their own dtype: a ``bfloat16`` moment is updated in
    float32 (``0.999·v`` would otherwise round ``beta2`` to 1) and rounded once when stored.
    """
    treedef = jax.tree.structure(updates)
    flat = [treedef.flatten_up_to(t) for t in (updates, *states)]
    outs = []
    for g, *old in zip(*flat, strict=True):
        out = fn(g, *(s.astype(jnp.promote_types(s.dtype, jnp.float32)) for s in old))
        stored = [
            x if i >= len(old) or x is None else x.astype(old[i].dtype)
            for i, x in enumerate(out[1:])
        ]
        outs.append((out[0], *stored))
    return tuple(treedef.unflatten([o[i] for o in outs]) for i in range(n_out))


# ---------------------------------------------------------------------------------------
# Small transforms
# ---------------------------------------------------------------------------------------
class ScaleState(NamedTuple):
    """State of a scaling by a scheduled factor."""

    count: jax.Array  # int32 scalar: updates done so far (the schedule's step)


def scale(factor: ScalarOrSchedule) -> optax.GradientTransformation:
    """Multiply every update by ``factor`` (a float or a schedule ``step -> factor``).

    ``u ← factor·u``. ``scale(-1.0)`` implements PyTorch's ``maximize=True`` (ascend the
    objective) when placed first in a chain. Equivalent of ``optax.scale`` /
    ``optax.scale_by_schedule``.

    Args:
        factor: constant multiplier or schedule of the step count (0 at the first update).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale(-1.0)
        >>> t.update({"w": jnp.ones(2)}, t.init(None))[0]["w"]
        Array([-1., -1.], dtype=float32)
    """
    if not callable(factor):

        def init_const(params):
            del params
            return optax.EmptyState()

        def update_const(updates, state, params=None):
            del params
            f = jnp.asarray(factor, jnp.result_type(float))
            return jax.tree.map(lambda u: (f * u).astype(u.dtype), updates), state

        return optax.GradientTransformation(init_const, update_const)

    def init(params):
        del params
        return ScaleState(count=zero_count())

    def update(updates, state, params=None):
        del params
        count, step, _ = advance(state.count)
        f = value_at(factor, step)
        updates = jax.tree.map(lambda u: (f * u).astype(u.dtype), updates)
        return updates, ScaleState(count=count)

    return optax.GradientTransformation(init, update)


def scale_by_lr(lr: ScalarOrSchedule) -> optax.GradientTransformation:
    """The final step of every optimizer: ``u ← -lr·u`` (so ``params + u`` descends).

    ``lr`` is a float or a schedule ``step -> lr`` evaluated at 0 on the first update,
    1 on the second, ... (``fdl.schedules`` builds them). Equivalent of
    ``optax.scale_by_learning_rate``.

    Args:
        lr: learning rate (``>= 0``) or schedule.

    Returns:
        An ``optax.GradientTransformation`` (state: ``ScaleState`` for a schedule, empty
        for a constant).

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_lr(lambda step: 0.1 / (1 + step))
        >>> u, s = t.update({"w": jnp.ones(2)}, t.init(None))
        >>> u["w"]
        Array([-0.1, -0.1], dtype=float32)
    """
    check_lr(lr, "scale_by_lr")
    if callable(lr):
        return scale(lambda step: -jnp.asarray(lr(step)))
    return scale(-lr)


def add_weight_decay(weight_decay: float, mask: Any = None) -> optax.GradientTransformation:
    """Add ``weight_decay·p`` to every update: ``u ← u + wd·p``.

    Placed before the moment estimator it is PyTorch's coupled L2 penalty (``SGD``,
    ``Adam``: ``g ← g + λθ``); placed after it and before ``scale_by_lr`` it is decoupled
    weight decay (``AdamW``: ``θ ← θ - lr·(step + λθ) = θ(1 - lr·λ) - lr·step``).
    Equivalent of ``optax.add_decayed_weights``.

    Args:
        weight_decay: ``λ >= 0``.
        mask: ``None`` (decay every leaf), a pytree of bools with the structure of the
            params (or a prefix of it), or a callable ``params -> such a pytree``;
            leaves marked ``False`` (biases, norm scales) are not decayed.

    Returns:
        An ``optax.GradientTransformation``; its ``update`` needs ``params``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.add_weight_decay(0.1, mask={"w": True, "b": False})
        >>> p = {"w": jnp.ones(2), "b": jnp.ones(2)}
        >>> t.update({"w": jnp.zeros(2), "b": jnp.zeros(2)}, t.init(p), p)[0]["w"]
        Array([0.1, 0.1], dtype=float32)
    """
    check_nonnegative("weight_decay", weight_decay, fn="add_weight_decay")

    def init(params):
        del params
        return optax.EmptyState()

    def decay(u, p):
        wd = jnp.asarray(weight_decay, moment_dtype(u.dtype))
        return (u + wd * p.astype(wd.dtype)).astype(u.dtype)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_weight_decay: update() needs params to decay them")
        if mask is None:
            return jax.tree.map(decay, updates, params), state
        m = mask(params) if callable(mask) else mask
        decayed = jax.tree.map(
            lambda keep, u, p: jax.tree.map(decay, u, p) if keep else u,
            m,
            updates,
            params,
            is_leaf=lambda x: x is None,
        )
        return decayed, state

    return optax.GradientTransformation(init, update)


class TraceState(NamedTuple):
    """State of PyTorch's momentum buffer."""

    count: jax.Array | None  # int32 scalar: updates done so far; None for a constant
    # momentum without dampening, where nothing reads it
    momentum_buffer: Any  # pytree like params, in the moment dtype: b_t


def trace(
    momentum: ScalarOrSchedule,
    *,
    dampening: float = 0.0,
    nesterov: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """PyTorch's momentum buffer (``torch.optim.SGD``), also used by RMSprop's momentum.

    .. math::
        b_1 = g_1, \\qquad b_t = \\mu_t b_{t-1} + (1 - \\tau) g_t, \\qquad
        u_t = g_t + \\mu_t b_t \\text{ (Nesterov) or } b_t

    The buffer starts at zero and the first step uses the factor 1 instead of
    ``1 - dampening``, which gives ``b_1 = g_1`` exactly as PyTorch (without dampening
    ``μ·0 + g_1`` is ``g_1`` already, and no step counter is kept). ``momentum`` may be a
    schedule ``step -> mu`` (e.g. ``fdl.schedules.one_cycle_momentum``). Equal to
    ``optax.trace`` when ``dampening == 0``.

    Args:
        momentum: ``mu >= 0`` or a schedule.
        dampening: ``tau`` (PyTorch's ``dampening``), ``>= 0``.
        nesterov: use the Nesterov update ``g + mu·b``.
        state_dtype: dtype of the buffer (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``TraceState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.trace(0.9)
        >>> s = t.init({"w": jnp.zeros(2)})
        >>> u, s = t.update({"w": jnp.ones(2)}, s)
        >>> t.update({"w": jnp.ones(2)}, s)[0]["w"]
        Array([1.9, 1.9], dtype=float32)
    """
    if not callable(momentum):
        check_nonnegative("momentum", momentum, fn="trace")
    check_nonnegative("dampening", dampening, fn="trace")

    counted = callable(momentum) or is_active(dampening)

    def init(params):
        buf = zeros_like_moment(params, state_dtype)
        return TraceState(count=zero_count() if counted else None, momentum_buffer=buf)

    def update(updates, state, params=None):
        del params
        count, step, _ = advance(state.count) if counted else (None, 0, None)
        mu = value_at(momentum, step)
        # b_1 = g_1 (factor 1 on the first step), then (1 - dampening)
        c = jnp.where(step == 0, 1.0, 1.0 - dampening) if counted else jnp.ones([])
        c = c.astype(mu.dtype)

        def leaf(g, b):
            dt = b.dtype
            b = mu.astype(dt) * b + c.astype(dt) * g.astype(dt)
            u = g.astype(dt) + mu.astype(dt) * b if nesterov else b
            return u.astype(g.dtype), b

        updates, buf = leafwise(leaf, 2, updates, state.momentum_buffer)
        return updates, TraceState(count=count, momentum_buffer=buf)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
# Assembling an optimizer
# ---------------------------------------------------------------------------------------
def is_active(x: Any) -> bool:
    """False only for a concrete zero: a schedule or traced value keeps its transform."""
    return callable(x) or not is_concrete(x) or float(x) != 0.0


def chain_optimizer(
    direction: optax.GradientTransformation | None,
    *,
    lr: ScalarOrSchedule,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    mask: Any = None,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``chain(maximize?, L2?, direction, decoupled decay?, scale_by_lr)``: PyTorch's order.

    PyTorch negates the gradient first (``maximize``), then adds the coupled L2 term
    ``λθ`` to it; decoupled decay ``θ ← θ(1 - lr·λ)`` is ``-lr·λθ`` added to the step.
    """
    parts = []
    if maximize:
        parts.append(scale(-1.0))
    if is_active(weight_decay) and not decoupled:
        parts.append(add_weight_decay(weight_decay, mask))
    if direction is not None:
        parts.append(direction)
    if is_active(weight_decay) and decoupled:
        parts.append(add_weight_decay(weight_decay, mask))
    parts.append(scale_by_lr(lr))
    return optax.chain(*parts)
