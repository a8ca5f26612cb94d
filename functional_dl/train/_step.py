"""The jitted training step and evaluation, data-parallel over a device mesh."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..data import batches, num_examples
from ..nn import Layer
from ._guard import StepRecipe, train_on_batch
from ._parallel import DATA_AXIS, data_parallel_mesh
from ._sharding import batch_sharding, check_divisible, is_sharding_mesh, sharded_train_step
from ._state import TrainState

__all__ = ["make_train_step", "evaluate"]

Metrics = Mapping[str, Callable[[Any, Any], Any]]


def _metric_items(metrics: Metrics | None, fn: str) -> tuple[tuple[str, Callable], ...]:
    """``metrics`` as a hashable, sorted tuple of ``(name, function)``."""
    if metrics is None:
        return ()
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{fn}: metrics must be a dict name -> function(outputs, targets), "
            f"got metrics={metrics!r}"
        )
    for name, metric in metrics.items():
        if name == "loss" or not callable(metric):
            raise ValueError(
                f"{fn}: metrics needs callables under names other than 'loss', "
                f"got {name!r}: {metric!r}"
            )
    return tuple(sorted(metrics.items()))


def _check_model(model: Any, loss_fn: Any, fn: str) -> None:
    if not isinstance(model, Layer):
        raise TypeError(f"{fn}: model must be a Layer, got model={model!r}")
    if not callable(loss_fn):
        raise TypeError(f"{fn}: loss_fn must be callable(outputs, targets), got {loss_fn!r}")


def _device_mean(mesh: Mesh) -> Callable[[Any], Any]:
    """``pmean`` over the data axis of a tree's floating leaves (identity on one device)."""
    if mesh.shape[DATA_AXIS] == 1:
        return lambda tree: tree

    def mean(tree):
        return jax.tree_util.tree_map(
            lambda a: lax.pmean(a, DATA_AXIS) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree
        )

    return mean


# The builders are cached on the recipe (its functions are hashable, unlike a Layer holding a
# dict of children), so a second fit of the same model reuses the compiled step.
@functools.lru_cache(maxsize=32)
def _train_step(recipe: StepRecipe, mesh: Mesh) -> Callable:
    mean = _device_mean(mesh)

    def local_step(state: TrainState, batch: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        # each device sees [batch / devices, ...] and draws its own dropout
        key = jax.random.fold_in(state.key, state.step)
        key = jax.random.fold_in(key, lax.axis_index(DATA_AXIS))
        return train_on_batch(recipe, state, batch, key, mean)

    # check_vma=False: the classic data-parallel recipe, where each device differentiates
    # its local loss and the gradients and replicated outputs are averaged explicitly
    # (with the checker on, gradients of replicated inputs would be summed implicitly).
    sharded = jax.shard_map(
        local_step,
        mesh=mesh,
        in_specs=(P(), P(DATA_AXIS)),
        out_specs=(P(), P()),
        check_vma=False,
    )
    replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(DATA_AXIS))
    jitted = jax.jit(
        sharded,
        donate_argnums=0,
        in_shardings=(replicated, split),
        out_shardings=(replicated, replicated),
    )

    @functools.wraps(jitted)
    def step(state: TrainState, batch: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        check_divisible(batch, mesh)
        if getattr(state.step, "sharding", None) != replicated:
            # A state not yet on the mesh (fresh from create_train_state) is moved there
            # first, so that it has the type of the step's output: one trace, one compile.
            state = jax.device_put(state, replicated)
        return jitted(state, batch)

    return step


def make_train_step(
    model: Layer,
    loss_fn: Callable,
    optimizer: Any,
    *,
    metrics: Metrics | None = None,
    mesh: Mesh | None = None,
    grad_norm: bool = False,
    skip_nonfinite: bool = False,
) -> Callable:
    """Build the jitted training step ``step(state, batch) -> (state, metrics)``.

    One step on ``batch = (inputs, targets)``:

    .. code-block:: text

        outputs, model_state = model.apply(params, model_state, inputs,
                                           key=fold_in(key, step), train=True)
        loss = loss_fn(outputs, targets)                   # mean over the global batch
        updates, opt_state = optimizer.update(grad(loss), opt_state, params)
        params = optax.apply_updates(params, updates);  step += 1

    The step runs under ``jax.shard_map`` over ``mesh`` (default: every device): the state
    is replicated, the batch is split along its first axis, the loss and metrics are
    averaged over the ``"data"`` axis, so the update equals the single-device update on
    the whole batch. Layers reducing over the batch (BatchNorm) should be built with
    ``axis_name=DATA_AXIS``. The input ``state`` is donated (its buffers are reused):
    do not use it after the call (a state not yet on the mesh, e.g. fresh from
    :func:`create_train_state`, is first copied there with :func:`replicate`).
    The learning rate belongs to ``optimizer`` alone (a float, a schedule, or an
    ``fdl.schedules.scale_by_plateau`` transform in its chain whose state lives in
    ``state.opt_state``).

    Args:
        model: a :class:`functional_dl.nn.Layer`.
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` (e.g. ``fdl.losses.cross_entropy``).
        optimizer: an ``optax.GradientTransformation`` (``fdl.optim.adam(1e-3)``).
        metrics: extra ``{name: fn(outputs, targets) -> scalar}`` (e.g. ``{"accuracy":
            accuracy}``), returned with ``"loss"``.
        mesh: a :func:`data_parallel_mesh` (``shard_map``, replicated state), or a
            :func:`make_mesh` mesh: one GSPMD ``jit`` that keeps the state's shardings
            (from ``create_train_state(..., mesh=mesh, fsdp=...)``: FSDP over ``data``,
            tensor parallelism over ``model``) and splits the batch over ``data``. The
            batch size must be divisible by the number of devices on ``data``.
        grad_norm: also return the global norm of the (device-averaged) gradient as
            ``metrics["grad_norm"]`` (NaN when any gradient element is NaN).
        skip_nonfinite: when the loss or the gradient is NaN/inf, keep the parameters,
            model state and optimizer state of the input (only ``step`` advances), like
            ``optax.apply_if_finite``; the returned loss shows the non-finite value.

    Returns:
        The jitted step. Calling :func:`make_train_step` again with the same arguments
        returns the same compiled function.

    Example:
        >>> model = fdl.nn.Sequential(fdl.nn.Linear(8), fdl.nn.ReLU(), fdl.nn.Linear(2))
        >>> optimizer = fdl.optim.adam(1e-2)
        >>> state = fdl.train.create_train_state(jax.random.key(0), model, optimizer, (1, 2))
        >>> step = make_train_step(model, fdl.losses.cross_entropy, optimizer,
        ...                        metrics={"accuracy": fdl.metrics.accuracy})
        >>> x, y = fdl.data.make_moons(jax.random.key(1), 16)
        >>> state, metrics = step(state, (x, y))
        >>> sorted(metrics), int(state.step)
        (['accuracy', 'loss'], 1)
    """
    _check_model(model, loss_fn, "make_train_step")
    items = _metric_items(metrics, "make_train_step")
    if not callable(getattr(optimizer, "update", None)):
        raise TypeError(
            "make_train_step: optimizer must be an optax GradientTransformation, "
            f"got optimizer={optimizer!r}"
        )
    recipe = StepRecipe(
        model.apply, loss_fn, optimizer.update, items, bool(grad_norm), bool(skip_nonfinite)
    )
    if is_sharding_mesh(mesh):
        return _sharded_step(recipe, mesh)
    return _train_step(recipe, mesh or data_parallel_mesh())


_sharded_step = functools.lru_cache(maxsize=32)(sharded_train_step)


@functools.lru_cache(maxsize=32)
def _forward(apply: Callable, mesh: Mesh) -> Callable:
    def local(params, model_state, inputs):
        outputs, _ = apply(params, model_state, inputs, train=False)
        return outputs

    return jax.jit(
        jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(P(), P(), P(DATA_AXIS)),
            out_specs=P(DATA_AXIS),
            check_vma=False,
        )
    )


@functools.lru_cache(maxsize=32)
def _sharded_forward(apply: Callable, mesh: Mesh) -> Callable:
    """Evaluation forward pass on a :func:`make_mesh` mesh (parameters keep their shardings)."""

    def forward(params, model_state, inputs):
        outputs, _ = apply(params, model_state, inputs, train=False)
        return outputs

    jitted = jax.jit(forward)
    sharding = batch_sharding(mesh)

    def run(params, model_state, inputs):
        # every process passes the same full inputs; each keeps the rows of its devices
        inputs = jax.tree_util.tree_map(
            lambda a: jax.make_array_from_callback(
                np.shape(a), sharding, lambda index, a=a: np.asarray(a)[index]
            ),
            inputs,
        )
        out = jitted(params, model_state, inputs)
        if jax.process_count() > 1:
            out = multihost_utils.process_allgather(out, tiled=True)
        return out

    return run


@functools.lru_cache(maxsize=32)
def _scores(loss_fn: Callable, metric_items: tuple) -> Callable:
    def scores(outputs, targets):
        out = {"loss": loss_fn(outputs, targets)}
        for name, metric in metric_items:
            out[name] = metric(outputs, targets)
        return out

    return jax.jit(scores)


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    if len(a) == size:
        return a
    return np.concatenate([a, np.zeros((size - len(a),) + a.shape[1:], a.dtype)])


def evaluate(
    state: TrainState,
    model: Layer,
    loss_fn: Callable,
    data: Any,
    *,
    metrics: Metrics | None = None,
    batch_size: int = 256,
    mesh: Mesh | None = None,
) -> dict[str, float]:
    """Loss and metrics of the model in evaluation mode over a whole data set.

    The model runs with ``train=False`` on batches of ``batch_size`` (the last one padded,
    the padding dropped), spread over the devices of ``mesh``; ``loss_fn`` and the
    metrics are then computed once on all outputs, so the result is exact (not an
    average of batch averages).

    Args:
        state: a :class:`TrainState` (not modified).
        model, loss_fn, metrics, mesh: as in :func:`make_train_step`.
        data: ``(inputs, targets)`` with ``N`` examples on the leading axis (inputs may
            be a tuple of arrays).
        batch_size: examples per forward pass.

    Returns:
        ``{"loss": float, **{name: float}}``.

    Example:
        >>> model = fdl.nn.Sequential(fdl.nn.Linear(2))
        >>> optimizer = fdl.optim.sgd(0.1)
        >>> state = fdl.train.create_train_state(jax.random.key(0), model, optimizer, (1, 2))
        >>> x, y = fdl.data.make_moons(jax.random.key(1), 37)
        >>> scores = evaluate(state, model, fdl.losses.cross_entropy, (x, y),
        ...                   metrics={"accuracy": fdl.metrics.accuracy}, batch_size=8)
        >>> sorted(scores), 0.0 <= scores["accuracy"] <= 1.0
        (['accuracy', 'loss'], True)
    """
    _check_model(model, loss_fn, "evaluate")
    if jax.process_count() > 1 and not is_sharding_mesh(mesh):
        raise NotImplementedError(
            "evaluate with a data_parallel_mesh runs on a single process; with several "
            "hosts pass a mesh from fdl.train.make_mesh (every process passes the same data)"
        )
    items = _metric_items(metrics, "evaluate")
    mesh = mesh or data_parallel_mesh()
    leaves, treedef = jax.tree_util.tree_flatten(data)
    n = num_examples(leaves, fn="evaluate")
    devices = mesh.shape[DATA_AXIS]
    size = -(-min(batch_size, n) // devices) * devices
    forward = (
        _sharded_forward(model.apply, mesh)
        if is_sharding_mesh(mesh)
        else _forward(model.apply, mesh)
    )
    outputs = []
    for chunk in batches(None, *leaves, batch_size=size, shuffle=False):
        inputs, _ = jax.tree_util.tree_unflatten(treedef, [_pad(a, size) for a in chunk])
        out = forward(state.params, state.model_state, inputs)
        outputs.append(jax.tree_util.tree_map(lambda o, k=len(chunk[0]): o[:k], out))
    outputs = jax.tree_util.tree_map(lambda *o: jnp.concatenate(o), *outputs)
    _, targets = jax.tree_util.tree_unflatten(treedef, leaves)
    return {k: float(v) for k, v in _scores(loss_fn, items)(outputs, targets).items()}
