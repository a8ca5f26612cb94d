"""The body of every training step: the loss and its gradient on the batch, the
optimizer's update applied, a guard against non-finite steps (the gradient norm, and when
asked an update that is not applied when the loss or the gradient is NaN/inf), and the
metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import optim


class StepRecipe(NamedTuple):
    """What one training step computes; hashable, so the compiled steps are cached on it."""

    apply: Callable[..., Any]  # model.apply
    loss_fn: Callable[[Any, Any], Any]  # loss_fn(outputs, targets) -> scalar
    update: Callable[..., Any]  # optimizer.update
    metric_items: tuple  # sorted ((name, metric(outputs, targets)), ...)
    grad_norm: bool = False  # also return metrics["grad_norm"]
    skip_nonfinite: bool = False  # keep the old state on a NaN/inf loss or gradient


def train_on_batch(
    recipe: StepRecipe,
    state: Any,
    batch: Any,
    key: Any,
    reduce: Callable[[Any], Any] = lambda v: v,
) -> tuple[Any, dict[str, jax.Array]]:
    """``(new_state, metrics)`` after one step of ``recipe`` on ``batch = (inputs,
    targets)``: the loss and its gradient at ``state.params`` (dropout drawn from
    ``key``), the gradient, loss and model state passed through ``reduce`` (the mean over
    devices on the shard_map path), the update applied (:func:`guard_step`) and
    ``metrics = {"loss", ["grad_norm"], *metric_items}``, each metric reduced too."""
    apply, loss_fn, update, metric_items, grad_norm, skip_nonfinite = recipe
    inputs, targets = batch

    def objective(params):
        outputs, model_state = apply(params, state.model_state, inputs, key=key, train=True)
        return loss_fn(outputs, targets), (outputs, model_state)

    (loss, (outputs, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(
        state.params
    )
    # Mean over devices = gradient of the global-batch loss (equal shard sizes). Cross-
    # device terms through BatchNorm's synchronised statistics arrive in the backward
    # pass of its lax.pmean.
    grads, loss = reduce((grads, loss))
    updates, opt_state = update(grads, state.opt_state, state.params)
    new_state = state.replace(
        params=optim.apply_updates(state.params, updates),
        model_state=reduce(model_state),
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
