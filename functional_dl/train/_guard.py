"""The end of every training step: apply the optimizer's update, guard against
non-finite steps (the gradient norm, and when asked an update that is not applied when
the loss or the gradient is NaN/inf), and compute the metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .. import optim


def finish_step(
    state: Any,
    grads: Any,
    loss: jax.Array,
    model_state: Any,
    outputs: Any,
    targets: Any,
    *,
    update: Callable[..., Any],
    metric_items: tuple,
    grad_norm: bool,
    skip_nonfinite: bool,
    reduce: Callable[[Any], Any] = lambda v: v,
) -> tuple[Any, dict[str, jax.Array]]:
    """``(new_state, metrics)`` after one step: the update applied (:func:`guard_step`),
    ``metrics = {"loss", ["grad_norm"], *metric_items}``, each metric passed through
    ``reduce`` (the mean over devices on the shard_map path)."""
    updates, opt_state = update(grads, state.opt_state, state.params)
    new_state = state.replace(
        params=optim.apply_updates(state.params, updates),
        model_state=model_state,
        opt_state=opt_state,
        step=state.step + 1,
    )
    new_state, extra = guard_step(
        state, new_state, loss, grads, grad_norm=grad_norm, skip_nonfinite=skip_nonfinite
    )
    metrics = {"loss": loss, **extra}
    for name, metric in metric_items:
        metrics[name] = reduce(jnp.asarray(metric(outputs, targets), jnp.float32))
    return new_state, metrics


def guard_step(
    old: Any, new: Any, loss: jax.Array, grads: Any, *, grad_norm: bool, skip_nonfinite: bool
) -> tuple[Any, dict[str, jax.Array]]:
    """``(state, extra_metrics)``: ``new`` or, with ``skip_nonfinite`` and a non-finite
    loss or gradient, ``old`` with only its step counter advanced (like
    ``optax.apply_if_finite``); ``extra_metrics`` holds ``grad_norm`` when asked."""
    extra: dict[str, jax.Array] = {}
    if not (grad_norm or skip_nonfinite):
        return new, extra
    norm = optim.global_norm(grads)  # NaN when any gradient element is NaN
    if grad_norm:
        extra["grad_norm"] = norm
    if skip_nonfinite:
        ok = jnp.isfinite(loss) & jnp.isfinite(norm)

        def keep(n: Any, o: Any) -> Any:
            return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), n, o)

        new = new.replace(
            params=keep(new.params, old.params),
            model_state=keep(new.model_state, old.model_state),
            opt_state=keep(new.opt_state, old.opt_state),
        )
    return new, extra
