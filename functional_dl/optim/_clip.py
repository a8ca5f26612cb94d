"""Gradient utilities: global norm, clipping by norm or value, applying updates."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from .._checks import check_nonnegative, check_positive
from ._base import moment_dtype

__all__ = ["global_norm", "clip_grad_norm", "clip_grad_value", "apply_updates"]


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
    check_positive("norm_type", norm_type, fn="global_norm")
    leaves = [jnp.abs(x.astype(moment_dtype(x.dtype))) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    if math.isinf(norm_type):
        return jnp.max(jnp.stack([jnp.max(x, initial=0.0) for x in leaves]))
    total = sum(jnp.sum(x * x if norm_type == 2.0 else x**norm_type) for x in leaves)
    # the root has an infinite derivative at 0: take the gradient 0 there (no NaN)
    positive = total > 0
    safe = jnp.where(positive, total, 1.0)
    root = jnp.sqrt(safe) if norm_type == 2.0 else safe ** (1.0 / norm_type)
    return jnp.where(positive, root, 0.0)


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
    check_nonnegative("max_norm", max_norm, fn="clip_grad_norm")
    check_positive("norm_type", norm_type, fn="clip_grad_norm")

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates, norm_type=norm_type)
        coef = jnp.minimum(max_norm / (norm + 1e-6), 1.0)
        return jax.tree.map(
            lambda g: (g * coef.astype(moment_dtype(g.dtype))).astype(g.dtype), updates
        ), state

    return optax.GradientTransformation(init, update)


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
    check_nonnegative("clip_value", clip_value, fn="clip_grad_value")

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        return jax.tree.map(
            lambda g: jnp.clip(g, -clip_value, clip_value).astype(g.dtype), updates
        ), state

    return optax.GradientTransformation(init, update)


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
