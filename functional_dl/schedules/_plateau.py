"""ReduceLROnPlateau as a jit-able state machine, and as an optax transform."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from .._checks import check_choice, check_in_range, check_int, check_ndim, check_nonnegative
from ._common import to_float


class PlateauState(NamedTuple):
    """State of :func:`reduce_lr_on_plateau` (every field a scalar array)."""

    lr: jax.Array  # float: the current learning rate
    best: jax.Array  # float: best metric so far (starts at +inf 'min', -inf 'max')
    num_bad_epochs: jax.Array  # int32: consecutive updates without improvement
    cooldown_counter: jax.Array  # int32: updates left before bad epochs count again


class ReduceLROnPlateau(NamedTuple):
    """The pair of pure functions returned by :func:`reduce_lr_on_plateau`."""

    init: Callable[[ArrayLike], PlateauState]  # init(lr) -> state
    update: Callable[[PlateauState, ArrayLike], PlateauState]  # update(state, metric) -> state


def reduce_lr_on_plateau(
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    eps: float = 1e-8,
) -> ReduceLROnPlateau:
    """Reduce the learning rate by ``factor`` when a metric stops improving.

    ``update(state, metric)`` performs one PyTorch ``scheduler.step(metric)``:

    1. improvement (``mode='min'``): ``metric < best·(1 − threshold)`` (``'rel'``) or
       ``metric < best − threshold`` (``'abs'``); ``'max'`` mirrors it
       (``metric > best·(1 + threshold)``, ``metric > best + threshold``). An improvement
       sets ``best = metric`` and ``num_bad_epochs = 0``, otherwise ``num_bad_epochs += 1``.
    2. in cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1`` and
       ``num_bad_epochs = 0``.
    3. if ``num_bad_epochs > patience`` (strictly): ``new = max(lr·factor, min_lr)``,
       applied only if ``lr − new > eps``; then ``cooldown_counter = cooldown`` and
       ``num_bad_epochs = 0``.

    A NaN metric is never an improvement (a bad epoch), as in PyTorch.

    Args:
      mode: ``'min'`` (lower is better) or ``'max'``.
      factor: ``new_lr = lr·factor``, in [0, 1).
      patience: number of bad updates tolerated; the rate drops on the next one (int >= 0).
      threshold: least significant improvement (>= 0).
      threshold_mode: ``'rel'`` or ``'abs'``.
      cooldown: updates after a reduction during which bad epochs are not counted (int >= 0).
      min_lr: lower bound of the rate (>= 0).
      eps: a reduction smaller than ``eps`` is skipped (>= 0).

    Returns:
      ``ReduceLROnPlateau(init, update)``: ``init(lr) -> PlateauState`` and
      ``update(state, metric) -> PlateauState`` are pure and jit-able (usable as a
      ``lax.scan`` body, and under ``vmap``); ``state.lr`` is the current rate. Scalars are
      kept in JAX's default float dtype (float32, float64 with x64), where PyTorch uses
      Python floats: metrics within float32 rounding of the threshold may compare
      differently.

    PyTorch: ``ReduceLROnPlateau(opt, mode, factor, patience, threshold, threshold_mode,
    cooldown, min_lr, eps)``; ``state.lr`` after ``update`` equals the group's ``lr`` after
    ``scheduler.step(metric)``. optax: ``optax.contrib.reduce_on_plateau`` has other
    semantics (reduces when the count *reaches* patience, combined rtol/atol threshold,
    no ``'max'`` mode); :func:`scale_by_plateau` is the optax-style transform here.

    Example:
      >>> plateau = reduce_lr_on_plateau(patience=1, factor=0.5)
      >>> state = plateau.init(1.0)
      >>> for loss in [3.0, 2.0, 2.0, 2.0]:
      ...     state = plateau.update(state, loss)
      >>> float(state.lr)
      0.5
    """
    fn = "reduce_lr_on_plateau"
    check_choice("mode", mode, ("min", "max"), fn=fn)
    check_choice("threshold_mode", threshold_mode, ("rel", "abs"), fn=fn)
    factor = check_in_range("factor", factor, 0.0, 1.0, hi_closed=False, fn=fn)
    check_int("patience", patience, minimum=0, fn=fn)
    threshold = check_nonnegative("threshold", threshold, fn=fn)
    check_int("cooldown", cooldown, minimum=0, fn=fn)
    min_lr = check_nonnegative("min_lr", min_lr, fn=fn)
    eps = check_nonnegative("eps", eps, fn=fn)

    def is_better(metric: jax.Array, best: jax.Array) -> jax.Array:
        if mode == "min":
            bound = best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold
            return metric < bound
        bound = best * (1.0 + threshold) if threshold_mode == "rel" else best + threshold
        return metric > bound

    def init(lr: ArrayLike) -> PlateauState:
        lr = to_float(lr)
        return PlateauState(
            lr=lr,
            best=to_float(jnp.inf if mode == "min" else -jnp.inf),
            num_bad_epochs=jnp.zeros((), jnp.int32),
            cooldown_counter=jnp.zeros((), jnp.int32),
        )

    def update(state: PlateauState, metric: ArrayLike) -> PlateauState:
        check_ndim("metric", metric, 0, fn=fn)
        metric = jnp.asarray(metric).astype(state.best.dtype)
        better = is_better(metric, state.best)
        best = jnp.where(better, metric, state.best)
        bad = jnp.where(better, 0, state.num_bad_epochs + 1)
        in_cooldown = state.cooldown_counter > 0
        cooldown_counter = state.cooldown_counter - in_cooldown.astype(jnp.int32)
        bad = jnp.where(in_cooldown, 0, bad)
        reduce = bad > patience
        new_lr = jnp.maximum(state.lr * factor, min_lr).astype(state.lr.dtype)
        lr = jnp.where(reduce & (state.lr - new_lr > eps), new_lr, state.lr)
        return PlateauState(
            lr=lr,
            best=best,
            num_bad_epochs=jnp.where(reduce, 0, bad).astype(jnp.int32),
            cooldown_counter=jnp.where(reduce, cooldown, cooldown_counter).astype(jnp.int32),
        )

    return ReduceLROnPlateau(init, update)


class PlateauConfig(NamedTuple):
    """The hyperparameters of a plateau rule (the arguments of :func:`reduce_lr_on_plateau`).

    Hashable: kept as static pytree metadata of :class:`ScaleByPlateauState`, so that
    :func:`step_plateau` can step any plateau state it finds in an optimizer state.
    """

    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float = 0.0  # in units of the scale for scale_by_plateau (its min_scale)
    eps: float = 1e-8


@functools.lru_cache(maxsize=64)
def _machine(config: PlateauConfig) -> ReduceLROnPlateau:
    return reduce_lr_on_plateau(**config._asdict())


@dataclasses.dataclass(frozen=True)
class ScaleByPlateauState:
    """State of :func:`scale_by_plateau` (a pytree whose only leaves are ``plateau``'s).

    Fields::

        plateau  # PlateauState: the plateau machine; ``plateau.lr`` is the current scale
        config   # PlateauConfig: static pytree metadata, the rule's hyperparameters
    """

    plateau: PlateauState
    config: PlateauConfig = PlateauConfig()


jax.tree_util.register_dataclass(
    ScaleByPlateauState, data_fields=["plateau"], meta_fields=["config"]
)


def scale_by_plateau(
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_scale: float = 0.0,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """An optax transform that scales updates by a ReduceLROnPlateau factor.

    The scale starts at 1 and follows :func:`reduce_lr_on_plateau` driven by a metric.
    Chained after an optimizer whose update is proportional to its learning rate (every
    ``fdl.optim`` optimizer, decoupled weight decay included, except ``rprop``, whose
    step sizes PyTorch reads from ``lr`` once, ``asgd``, whose ``η_t`` is not linear in
    ``lr``, and ``adafactor``, whose relative step is ``min(lr, 1/√t)``),
    ``optax.chain(opt(lr), scale_by_plateau())`` steps with the rate ``lr·scale``, as
    PyTorch's scheduler would set it. The state (the scale, the best metric, the
    counters) lives in the optimizer state, so it is checkpointed with it.

    The metric reaches the rule in one of two ways:

    - once per epoch (PyTorch's usual loop): ``opt_state = step_plateau(opt_state,
      metric)`` between epochs, while ``update(updates, state, params)`` without
      ``value`` only applies the current scale. :func:`functional_dl.train.fit` does this
      with ``plateau=True``.
    - at every update: ``update(updates, state, params, value=metric)``; the updates of
      a step are scaled by the scale *before* that step's ``value`` is seen, then
      ``value`` updates the scale used from the next step on (``optimizer.step()`` then
      ``scheduler.step(metric)``).

    Args:
      mode, factor, patience, threshold, threshold_mode, cooldown, eps: as in
        :func:`reduce_lr_on_plateau`, with ``eps`` (and ``min_scale``) in units of the
        scale: PyTorch's ``min_lr`` and ``eps`` for a base rate ``lr`` are
        ``min_scale = min_lr / lr`` and ``eps / lr``.
      min_scale: lower bound of the scale (>= 0).

    Returns:
      ``optax.GradientTransformationExtraArgs``: ``init(params) -> ScaleByPlateauState``
      and ``update(updates, state, params=None, *, value=None)``; ``optax.chain``
      forwards ``value`` to it. Each update keeps its dtype.

    optax: ``optax.contrib.reduce_on_plateau`` has the per-update calling convention but
    applies the new scale in the step that sees ``value`` and reduces when the bad count
    reaches (not exceeds) patience.

    Example:
      >>> import optax, jax.numpy as jnp
      >>> tx = optax.chain(optax.sgd(0.1), scale_by_plateau(patience=0, factor=0.5))
      >>> params = {"w": jnp.ones(2)}
      >>> state = tx.init(params)
      >>> for loss in [1.0, 1.0, 1.0]:
      ...     updates, state = tx.update({"w": jnp.ones(2)}, state, params, value=loss)
      >>> round(float(updates["w"][0]), 6)  # the third step uses lr 0.1 * 0.5
      -0.05
      >>> state = tx.init(params)
      >>> for val_loss in [1.0, 1.0]:  # once per epoch
      ...     state = step_plateau(state, val_loss)
      >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
      >>> round(float(updates["w"][0]), 6)
      -0.05
    """
    config = PlateauConfig(
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=min_scale,
        eps=eps,
    )
    machine = _machine(config)  # validates the arguments

    def init_fn(params: Any) -> ScaleByPlateauState:
        del params
        return ScaleByPlateauState(machine.init(1.0), config)

    def update_fn(
        updates: Any,
        state: ScaleByPlateauState,
        params: Any = None,
        *,
        value: ArrayLike | None = None,
        **extra_args: Any,
    ) -> tuple[Any, ScaleByPlateauState]:
        del params, extra_args
        scale = state.plateau.lr
        updates = jax.tree_util.tree_map(lambda u: (u * scale).astype(u.dtype), updates)
        if value is None:
            return updates, state
        return updates, ScaleByPlateauState(machine.update(state.plateau, value), state.config)

    # (optax types states as OptState; ours is a registered dataclass pytree)
    return optax.GradientTransformationExtraArgs(cast(Any, init_fn), cast(Any, update_fn))


def _is_plateau(x: Any) -> bool:
    return isinstance(x, ScaleByPlateauState)


def plateau_states(opt_state: Any) -> list[ScaleByPlateauState]:
    """Every :class:`ScaleByPlateauState` in an optimizer state, in flattening order.

    Args:
        opt_state: any optax state tree (chains, ``optax.masked``, ``multi_transform``...).

    Returns:
        A list, empty when the optimizer has no :func:`scale_by_plateau` transform.

    Example:
        >>> tx = optax.chain(optax.sgd(0.1), scale_by_plateau())
        >>> [float(s.plateau.lr) for s in plateau_states(tx.init(jnp.zeros(2)))]
        [1.0]
    """
    leaves = jax.tree_util.tree_leaves(opt_state, is_leaf=_is_plateau)
    return [x for x in leaves if _is_plateau(x)]


def step_plateau(opt_state: Any, metric: ArrayLike) -> Any:
    """Feed ``metric`` to every :func:`scale_by_plateau` transform of an optimizer state.

    One PyTorch ``scheduler.step(metric)`` (see :func:`reduce_lr_on_plateau`) for each
    :class:`ScaleByPlateauState` found anywhere in ``opt_state`` (inside
    ``optax.chain``, ``optax.masked``, ``fdl.optim.param_groups``...); every other leaf
    is returned as is. Call it once per epoch with the validation metric, between the
    epoch's last update and the next epoch's first. Pure and jit-able.

    Args:
        opt_state: the optimizer state (e.g. ``TrainState.opt_state``).
        metric: a scalar (the monitored loss or score).

    Returns:
        The optimizer state with the plateau states stepped.

    Raises:
        ValueError: ``opt_state`` holds no plateau state (the optimizer has no
            ``scale_by_plateau`` in its chain).

    PyTorch: ``scheduler.step(metric)`` of ``ReduceLROnPlateau``.

    Example:
        >>> tx = optax.chain(optax.sgd(0.1), scale_by_plateau(patience=0, factor=0.5))
        >>> state = tx.init(jnp.zeros(2))
        >>> for val_loss in [2.0, 2.0, 1.0]:
        ...     state = step_plateau(state, val_loss)
        >>> float(plateau_states(state)[0].plateau.lr)
        0.5
    """
    if not plateau_states(opt_state):
        raise ValueError(
            "step_plateau: opt_state holds no scale_by_plateau state; chain the "
            "transform after the optimizer, e.g. optax.chain(fdl.optim.adam(1e-3), "
            "fdl.schedules.scale_by_plateau(patience=2))"
        )

    def step(x: Any) -> Any:
        if not _is_plateau(x):
            return x
        return ScaleByPlateauState(_machine(x.config).update(x.plateau, metric), x.config)

    return jax.tree_util.tree_map(step, opt_state, is_leaf=_is_plateau)
