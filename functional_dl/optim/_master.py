"""Float32 master weights for low-precision parameters: ``with_master_weights(optimizer)``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["MasterWeightsState", "with_master_weights"]


class MasterWeightsState(NamedTuple):
    """State of ``with_master_weights``."""

    master: Any  # pytree like params: a float32 copy of each low-precision leaf, else None
    inner_state: Any  # the wrapped optimizer's state (its moments see the master weights)


def _is_none(x: Any) -> bool:
    return x is None


def with_master_weights(
    optimizer: optax.GradientTransformation, *, dtype: Any = jnp.float32
) -> optax.GradientTransformation:
    """Run ``optimizer`` on full-precision copies of low-precision parameters.

    A bfloat16 parameter near 1 cannot move by less than ``2**-8``: an Adam step of
    ``lr = 1e-3`` rounds to no change at all, so bf16 parameters trained directly stop
    learning. This wrapper keeps a ``dtype`` (float32) *master* copy of every floating
    parameter narrower than ``dtype`` in its state; each step the gradient is cast up,
    ``optimizer`` updates the master copy (its moments, weight decay and schedule see the
    master weights), and the returned update moves the parameter to the master copy
    rounded to the parameter's dtype::

        g32         = g.astype(float32)
        u, inner    = optimizer.update(g32, inner, master)
        master      = master + u
        update      = master.astype(p.dtype).astype(float32) - p.astype(float32)

    so ``apply_updates(params, update)`` (ours or optax's) gives ``round(master)``. The
    small steps accumulate in the master copy until they cross a bf16 step. Parameters
    already at ``dtype`` or wider (and non-floating leaves) get ``optimizer``'s update
    unchanged, with no copy. The master copy lives in the optimizer state, so it is
    checkpointed with the train state. Memory: 4 bytes per low-precision parameter.

    Wrap the whole optimizer (nothing chained after it) and apply its updates with
    ``apply_updates``; the parameters must only change through those updates (the master
    copy is the truth: a parameter edited outside is overwritten at the next step).

    Equivalent: mixed-precision training's "fp32 master weights" (apex ``O2``,
    ``torch.amp`` with bf16 params and an fp32 optimizer copy);
    ``optax.contrib``-style ``mixed_precision`` wrappers.

    Args:
        optimizer: any ``optax.GradientTransformation``.
        dtype: the master precision, a floating dtype (default float32).

    Returns:
        An ``optax.GradientTransformation`` with state :class:`MasterWeightsState`.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> params = {"w": jnp.ones(2, jnp.bfloat16)}
        >>> opt = fdl.optim.with_master_weights(fdl.optim.sgd(1e-3))
        >>> state = opt.init(params)
        >>> for _ in range(3):  # each step alone is below bf16's resolution at 1.0
        ...     updates, state = opt.update({"w": jnp.ones(2, jnp.bfloat16)}, state, params)
        ...     params = fdl.optim.apply_updates(params, updates)
        >>> params["w"], state.master["w"].round(4)
        (Array([0.996094, 0.996094], dtype=bfloat16), Array([0.997, 0.997], dtype=float32))
        >>> plain = {"w": jnp.ones(2, jnp.bfloat16)}  # sgd alone: 1 - 1e-3 rounds back to 1
        >>> sgd = fdl.optim.sgd(1e-3)
        >>> updates, _ = sgd.update({"w": jnp.ones(2, jnp.bfloat16)}, sgd.init(plain), plain)
        >>> fdl.optim.apply_updates(plain, updates)["w"]
        Array([1, 1], dtype=bfloat16)
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "with_master_weights: optimizer must be an optax.GradientTransformation, "
            f"got optimizer={optimizer!r}"
        )
    try:
        master_dtype = jnp.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"with_master_weights: dtype must be a dtype, got dtype={dtype!r}") from exc
    if not jnp.issubdtype(master_dtype, jnp.floating):
        raise ValueError(
            f"with_master_weights: dtype must be a floating dtype, got dtype={master_dtype}"
        )

    def narrow(p: Any) -> bool:
        dt = jnp.result_type(p)
        return (
            jnp.issubdtype(dt, jnp.floating) and jnp.finfo(dt).bits < jnp.finfo(master_dtype).bits
        )

    def full(master: Any, params: Any) -> Any:
        """The parameters the inner optimizer sees: the master copy where there is one."""
        return jax.tree.map(lambda m, p: p if m is None else m, master, params, is_leaf=_is_none)

    def init_fn(params: Any) -> MasterWeightsState:
        master = jax.tree.map(
            lambda p: jnp.asarray(p, master_dtype) if p is not None and narrow(p) else None,
            params,
            is_leaf=_is_none,
        )
        return MasterWeightsState(master, optimizer.init(full(master, params)))

    def update_fn(
        updates: Any, state: MasterWeightsState, params: Any = None, **extra: Any
    ) -> tuple[Any, MasterWeightsState]:
        if params is None:
            raise ValueError("with_master_weights: update needs params, got params=None")
        grads = jax.tree.map(
            lambda m, g: g if m is None or g is None else g.astype(master_dtype),
            state.master,
            updates,
            is_leaf=_is_none,
        )
        inner_updates, inner_state = optimizer.update(
            grads, state.inner_state, full(state.master, params), **extra
        )
        master = jax.tree.map(
            lambda m, u: None if m is None else m + u.astype(master_dtype),
            state.master,
            inner_updates,
            is_leaf=_is_none,
        )
        out = jax.tree.map(
            lambda m, u, p: (
                u if m is None else m.astype(p.dtype).astype(master_dtype) - p.astype(master_dtype)
            ),
            master,
            inner_updates,
            params,
            is_leaf=_is_none,
        )
        return out, MasterWeightsState(master, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)  # type: ignore[arg-type]
