"""The training step's guard against non-finite steps: the gradient norm, and (when asked)
an update that is not applied when the loss or the gradient is NaN/inf."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import optim


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
