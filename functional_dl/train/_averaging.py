"""Evaluating averaged weights: ``update_bn`` and ``with_averaged_params``.

The averages of ``fdl.optim.ema``/``swa``/``asgd`` live in the optimizer state;
``with_averaged_params`` swaps them into a ``TrainState`` for evaluation, and
``update_bn`` recomputes the BatchNorm running statistics for those weights (the running
statistics gathered during training belong to the raw weights), as
``torch.optim.swa_utils.update_bn``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp

from .. import optim
from ..nn import Layer
from ._state import TrainState

__all__ = ["update_bn", "with_averaged_params"]


def _inputs(batch: Any) -> Any:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def update_bn(
    model: Layer,
    params: Any,
    model_state: Any,
    batches: Iterable[Any],
    *,
    key: jax.Array | None = None,
) -> Any:
    """Recompute the running statistics of ``model_state`` for ``params`` over ``batches``.

    Each running statistic becomes the equal-weight average over the batches of its batch
    value (PyTorch's ``update_bn``: momentum ``None``, a cumulative average over the
    batches), the forward passes running in training mode. Every floating state leaf that
    a training-mode ``apply`` updates as ``(1 - m)·old + m·batch`` (``BatchNorm``'s running
    mean and variance, any momentum ``m > 0``) is recomputed; leaves that ``apply`` leaves
    unchanged are kept. The batch value is recovered exactly from two applications,
    from a state of zeros and a state of ones, so the layers need not expose ``m``.

    Args:
        model: the :class:`~functional_dl.nn.Layer`.
        params: the (averaged) parameters.
        model_state: the model state to replace (its structure and dtypes are kept).
        batches: an iterable of input batches, or of ``(inputs, ...)`` tuples/lists
            whose first element is the inputs (``fit``'s ``(inputs, targets)``).
        key: PRNG key for stochastic layers (batch ``i`` uses ``fold_in(key, i)``);
            default ``jax.random.key(0)``.

    Returns:
        The new model state.

    PyTorch: ``torch.optim.swa_utils.update_bn(loader, model)``.

    Example:
        >>> model = fdl.nn.Sequential(fdl.nn.Linear(2), fdl.nn.BatchNorm())
        >>> params, state = model.init(jax.random.key(0), (1, 3))
        >>> x = jnp.arange(12.0).reshape(4, 3)
        >>> new = update_bn(model, params, state, [x[:2], x[2:]])
        >>> h = x @ params["0_linear"]["weight"] + params["0_linear"]["bias"][None, :]
        >>> bool(jnp.allclose(new["1_batch_norm"]["running_mean"], h.mean(0)))
        True
    """
    key = jax.random.key(0) if key is None else key
    zeros = jax.tree.map(jnp.zeros_like, model_state)
    ones = jax.tree.map(jnp.ones_like, model_state)

    @jax.jit
    def batch_values(params, inputs, k):
        _, f0 = model.apply(params, zeros, inputs, key=k, train=True)
        _, f1 = model.apply(params, ones, inputs, key=k, train=True)

        def value(z, o, old):
            if not jnp.issubdtype(jnp.result_type(old), jnp.floating):
                return jnp.zeros(jnp.shape(old), jnp.float32), jnp.zeros([], bool)
            m = 1.0 - (o.astype(jnp.float32) - z.astype(jnp.float32))
            tracked = jnp.all(jnp.abs(m) > 1e-6)
            return jnp.where(
                tracked, z.astype(jnp.float32) / jnp.where(tracked, m, 1.0), 0.0
            ), tracked

        pairs = jax.tree.map(value, f0, f1, model_state)
        is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
        vals = jax.tree.map(lambda p: p[0], pairs, is_leaf=is_pair)
        tracked = jax.tree.map(lambda p: p[1], pairs, is_leaf=is_pair)
        return vals, tracked

    total, tracked, n = None, None, 0
    for i, batch in enumerate(batches):
        vals, tracked = batch_values(params, _inputs(batch), jax.random.fold_in(key, i))
        total = vals if total is None else jax.tree.map(jnp.add, total, vals)
        n += 1
    if n == 0:
        raise ValueError("update_bn: batches is empty")
    return jax.tree.map(
        lambda s, t, keep: jnp.where(keep, (s / n).astype(jnp.result_type(t)), t),
        total,
        model_state,
        tracked,
    )


def with_averaged_params(
    state: TrainState,
    model: Layer | None = None,
    batches: Iterable[Any] | None = None,
    *,
    key: jax.Array | None = None,
) -> TrainState:
    """``state`` with its params replaced by the average kept in its optimizer state.

    The average of the ``fdl.optim.ema``/``swa`` transform (or ``asgd``) in
    ``state.opt_state`` (``fdl.optim.averaged_params``), cast to each parameter's dtype.
    With ``model`` and ``batches``, the BatchNorm statistics are recomputed for the
    averaged weights (``update_bn``). Use it to evaluate or export the averaged model:
    ``fdl.train.evaluate(model, with_averaged_params(state), ...)``.

    Args:
        state: a :class:`TrainState` whose optimizer holds one average.
        model: the model (only needed to recompute BatchNorm statistics).
        batches: training batches for ``update_bn``.
        key: PRNG key for ``update_bn``.

    Returns:
        A new :class:`TrainState` (optimizer state, step and key unchanged).

    Example:
        >>> import optax
        >>> model = fdl.nn.Linear(1)
        >>> opt = optax.chain(fdl.optim.sgd(0.1), fdl.optim.ema(0.5))
        >>> state = fdl.train.create_train_state(jax.random.key(0), model, opt, (1, 2))
        >>> u, s = opt.update(jax.tree.map(jnp.ones_like, state.params), state.opt_state,
        ...                   state.params)
        >>> state = state.replace(params=fdl.optim.apply_updates(state.params, u), opt_state=s)
        >>> avg = with_averaged_params(state)
        >>> bool(jnp.allclose(avg.params["bias"], state.params["bias"]))
        True
    """
    averaged = optim.averaged_params(state.opt_state)
    params = jax.tree.map(lambda a, p: a.astype(jnp.result_type(p)), averaged, state.params)
    model_state = state.model_state
    if model is not None and batches is not None:
        model_state = update_bn(model, params, model_state, batches, key=key)
    return state.replace(params=params, model_state=model_state)
