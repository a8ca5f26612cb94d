"""Small transforms every optimizer is chained from, gradient clipping and ``apply_updates``.

``scale`` (flip the sign for ``maximize``), ``add_weight_decay`` (``u + wd·p``), ``trace``
(PyTorch's momentum buffer) and ``scale_by_lr`` (``-lr·u``); ``global_norm``,
``clip_grad_norm``, ``clip_grad_value``; ``apply_updates``; and ``chain_optimizer``, the
order in which PyTorch applies them. See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._base import (
    ScalarOrSchedule,
    advance,
    is_active,
    leafwise,
    moment_dtype,
    stateless,
    validate,
    value_at,
    zero_count,
    zeros_like_moment,
)

__all__ = [
    "ScaleState",
    "TraceState",
    "scale",
    "scale_by_lr",
    "add_weight_decay",
    "trace",
    "global_norm",
    "clip_grad_norm",
    "clip_grad_value",
    "apply_updates",
]


# ---------------------------------------------------------------------------------------
# Scaling, weight decay, momentum
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

        def scale_const(updates: Any, params: Any) -> Any:
            del params
            f = jnp.asarray(factor, jnp.result_type(float))
            return jax.tree.map(lambda u: (f * u).astype(u.dtype), updates)

        return stateless(scale_const)

    def init(params: Any) -> ScaleState:
        del params
        return ScaleState(count=zero_count())

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, ScaleState]:
        del params
        count, step, _ = advance(state.count)
        f = value_at(factor, step)
        updates = jax.tree.map(lambda u: (f * u).astype(u.dtype), updates)
        return updates, ScaleState(count=count)

    return optax.GradientTransformation(init, update)


def _nonnegative_or_nan(v: jax.Array) -> jax.Array:
    return jnp.where(v >= 0, v, jnp.nan)


def scale_by_lr(lr: ScalarOrSchedule) -> optax.GradientTransformation:
    """The final step of every optimizer: ``u ← -lr·u`` (so ``params + u`` descends).

    ``lr`` is a float or a schedule ``step -> lr`` evaluated at 0 on the first update,
    1 on the second, ... (``fdl.schedules`` builds them). Equivalent of
    ``optax.scale_by_learning_rate``.

    Args:
        lr: learning rate (``>= 0``) or schedule; a traced negative value (a
            schedule's included) makes the updates NaN instead of ascending.

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
    lr = validate("scale_by_lr", lr=lr)
    if callable(lr):
        return scale(lambda step: -_nonnegative_or_nan(jnp.asarray(lr(step))))
    return scale(-lr)  # (validate: a traced negative lr is NaN, so the updates are NaN)


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
    weight_decay = validate("add_weight_decay", weight_decay=weight_decay)

    def decay(u: jax.Array, p: jax.Array) -> jax.Array:
        wd = jnp.asarray(weight_decay, moment_dtype(u.dtype))
        return (u + wd * p.astype(wd.dtype)).astype(u.dtype)

    def add_decay(updates: Any, params: Any) -> Any:
        if params is None:
            raise ValueError("add_weight_decay: update() needs params to decay them")
        if mask is None:
            return jax.tree.map(decay, updates, params)
        m = mask(params) if callable(mask) else mask
        return jax.tree.map(
            lambda keep, u, p: jax.tree.map(decay, u, p) if keep else u,
            m,
            updates,
            params,
            is_leaf=lambda x: x is None,
        )

    return stateless(add_decay)


class TraceState(NamedTuple):
    """State of PyTorch's momentum buffer."""

    count: Any  # int32 scalar: updates done so far; None for a constant momentum without
    # dampening, where nothing reads it
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
    momentum, dampening = validate("trace", momentum=momentum, dampening=dampening)
    counted = callable(momentum) or is_active(dampening)

    def init(params: Any) -> TraceState:
        buf = zeros_like_moment(params, state_dtype)
        return TraceState(count=zero_count() if counted else None, momentum_buffer=buf)

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, TraceState]:
        del params
        count, step, _ = advance(state.count) if counted else (None, 0, None)
        mu = value_at(momentum, step)
        # b_1 = g_1 (factor 1 on the first step), then (1 - dampening)
        c = jnp.where(step == 0, 1.0, 1.0 - dampening) if counted else jnp.ones([])
        c = c.astype(mu.dtype)

        def leaf(g: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
            dt = b.dtype
            b = mu.astype(dt) * b + c.astype(dt) * g.astype(dt)
            u = g.astype(dt) + mu.astype(dt) * b if nesterov else b
            return u.astype(g.dtype), b

        updates, buf = leafwise(leaf, 2, updates, state.momentum_buffer)
        return updates, TraceState(count=count, momentum_buffer=buf)

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------
# Clipping and applying updates
# ---------------------------------------------------------------------------------------
def global_norm(tree: Any, *, norm_type: float = 2.0) -> jax.Array:
    """The norm of all leaves of a pytree taken together, as one long vector.

    .. math::
        \\|g\\|_p = \\Big(\\sum_{\\text{leaves}} \\sum_i |g_i|^p\\Big)^{1/p}, \\qquad
        \\|g\\|_\\infty = \\max_{\\text{leaves}} \\max_i |g_i|

    Low-precision leaves (bf16/fp16) are accumulated in float32; the gradient at an
    all-zero tree is 0 (not NaN). Equivalent:
    ``optax.global_norm`` (``norm_type=2``); the ``total_norm`` that
    ``torch.nn.utils.clip_grad_norm_`` computes.

    Args:
        tree: pytree of arrays (any shapes).
        norm_type: ``p > 0`` or ``math.inf``.

    Returns:
        A scalar (float32, or float64 if a leaf is float64); 0 for an empty tree.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> fdl.optim.global_norm({"a": jnp.array([3.0]), "b": jnp.array([[4.0]])})
        Array(5., dtype=float32)
    """
    norm_type = validate("global_norm", norm_type=norm_type)
    leaves = [jnp.abs(x.astype(moment_dtype(x.dtype))) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    if math.isinf(norm_type):
        return jnp.max(jnp.stack([jnp.max(x, initial=0.0) for x in leaves]))
    total = sum(jnp.sum(x * x if norm_type == 2.0 else x**norm_type) for x in leaves)
    # the root has an infinite derivative at 0: take the gradient 0 there (no NaN); a NaN
    # total (a NaN gradient) is not 0 and comes out as NaN, as in optax
    zero = total == 0
    safe = jnp.where(zero, 1.0, total)
    root = jnp.sqrt(safe) if norm_type == 2.0 else safe ** (1.0 / norm_type)
    return jnp.where(zero, 0.0, root)


def clip_grad_norm(max_norm: float, *, norm_type: float = 2.0) -> optax.GradientTransformation:
    """Rescale the whole gradient so its global norm is at most ``max_norm``.

    .. math::
        g \\leftarrow g \\cdot \\min\\Big(1, \\frac{\\text{max\\_norm}}{\\|g\\| + 10^{-6}}\\Big)

    exactly as ``torch.nn.utils.clip_grad_norm_`` (the ``1e-6`` included): zero gradients
    and ``max_norm = 0`` give zeros, never NaN. ``optax.clip_by_global_norm`` divides by
    the norm itself instead (the same up to the ``1e-6``).

    Args:
        max_norm: ``>= 0``.
        norm_type: ``p`` of the norm (see ``global_norm``).

    Returns:
        A stateless ``optax.GradientTransformation``; chain it first:
        ``optax.chain(fdl.optim.clip_grad_norm(1.0), fdl.optim.adamw(1e-3))``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.clip_grad_norm(1.0)
        >>> clipped, _ = t.update({"g": jnp.array([3.0, 4.0])}, t.init(None))
        >>> fdl.optim.global_norm(clipped).round(4)
        Array(1., dtype=float32)
    """
    max_norm, norm_type = validate("clip_grad_norm", max_norm=max_norm, norm_type=norm_type)

    def clip(updates: Any, params: Any) -> Any:
        del params
        norm = global_norm(updates, norm_type=norm_type)
        coef = jnp.minimum(max_norm / (norm + 1e-6), 1.0)
        return jax.tree.map(
            lambda g: (g * coef.astype(moment_dtype(g.dtype))).astype(g.dtype), updates
        )

    return stateless(clip)


def clip_grad_value(clip_value: float) -> optax.GradientTransformation:
    """Clip every gradient element to ``[-clip_value, clip_value]``.

    Equivalent: ``torch.nn.utils.clip_grad_value_``, ``optax.clip``.

    Args:
        clip_value: ``>= 0``.

    Returns:
        A stateless ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.clip_grad_value(0.5)
        >>> t.update({"g": jnp.array([-2.0, 0.1])}, t.init(None))[0]["g"]
        Array([-0.5,  0.1], dtype=float32)
    """
    clip_value = validate("clip_grad_value", clip_value=clip_value)

    def clip(updates: Any, params: Any) -> Any:
        del params
        return jax.tree.map(lambda g: jnp.clip(g, -clip_value, clip_value).astype(g.dtype), updates)

    return stateless(clip)


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf, each result cast back to its parameter's dtype.

    The sum is taken in the promoted dtype (e.g. a float32 update on a bfloat16 parameter
    is added in float32 and rounded once). ``None`` parameters stay ``None``.
    Equivalent: ``optax.apply_updates``.

    Args:
        params: pytree of arrays.
        updates: pytree with the same structure and shapes.

    Returns:
        The updated pytree, same structure, shapes and dtypes as ``params``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> fdl.optim.apply_updates({"w": jnp.ones(2, jnp.bfloat16)}, {"w": jnp.ones(2)})["w"]
        Array([2, 2], dtype=bfloat16)
    """
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.result_type(p)),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )


# ---------------------------------------------------------------------------------------
# Assembling an optimizer
# ---------------------------------------------------------------------------------------
def chain_optimizer(
    direction: optax.GradientTransformation | None,
    lr: ScalarOrSchedule,
    weight_decay: float = 0.0,
    *,
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
