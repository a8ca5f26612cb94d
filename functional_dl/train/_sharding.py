"""Sharded training on a 2-D device mesh: FSDP over ``data``, tensor parallelism over ``model``.

A :func:`make_mesh` has two axes, ``("data", "model")``. :func:`state_shardings` gives
every leaf of a :class:`TrainState` a ``NamedSharding``:

* **tensor parallel** (``model > 1``): the Transformer weights split as in Megatron —
  the attention input projections (``qkv``, ``q``, ``k``, ``v``) and the first MLP
  matrices (``linear1``, ``gate``, ``up``) by columns, the attention output projection
  (``out``) and the last MLP matrix (``linear2``, ``down``) by rows; the other leaves
  are replicated over ``model``;
* **FSDP** (``fsdp=True``, ZeRO-3 style): every leaf of at least :data:`FSDP_MIN_SIZE`
  elements is also split over ``data`` along its largest axis that ``data`` divides, so
  each device holds ``1/data`` of it;
* the optimizer state follows the parameters it belongs to (a moment of a leaf gets the
  leaf's sharding); BatchNorm statistics, the step and the key are replicated.

The step is then one ``jax.jit`` with these shardings on the state and the batch split
over ``data`` (GSPMD): XLA gathers the weights of a layer where it needs them and
reduces the gradients, so the computation is the single-device one, to float rounding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._checks import check_int
from ._guard import StepRecipe, train_on_batch

__all__ = ["MODEL_AXIS", "FSDP_MIN_SIZE", "make_mesh", "state_shardings", "param_spec"]

DATA_AXIS = "data"
MODEL_AXIS = "model"
FSDP_MIN_SIZE = 1024  # leaves smaller than this stay replicated under FSDP

# Megatron's split of a Transformer block: column-parallel then row-parallel matrices.
_COLUMN = re.compile(r"(^|/)(qkv|q|k|v|linear1|gate|up)/(weight|bias)$")
_ROW = re.compile(r"(^|/)(out|linear2|down)/weight$")


def make_mesh(data: int = -1, model: int = 1, devices: Sequence[Any] | None = None) -> Mesh:
    """A 2-D mesh with axes ``("data", "model")`` over ``devices`` (default: all).

    Args:
      data: devices along the data axis; ``-1`` takes all that ``model`` leaves.
      model: devices along the model (tensor-parallel) axis, ``>= 1``.
      devices: the devices to use (default ``jax.devices()``, every host's).

    Returns:
      ``jax.sharding.Mesh`` of shape ``(data, model)``.

    Example:
      >>> mesh = make_mesh()  # every device on the data axis
      >>> mesh.axis_names, mesh.shape["model"]
      (('data', 'model'), 1)
    """
    fn = "make_mesh"
    devices = list(jax.devices() if devices is None else devices)
    check_int("model", model, minimum=1, fn=fn)
    if data != -1:
        check_int("data", data, minimum=1, fn=fn)
    if data == -1:
        if len(devices) % model:
            raise ValueError(
                f"{fn}: model={model} must divide the number of devices ({len(devices)})"
            )
        data = len(devices) // model
    if data * model > len(devices):
        raise ValueError(
            f"{fn}: a mesh of data={data} x model={model} needs {data * model} devices, "
            f"only {len(devices)} are available"
        )
    grid = np.asarray(devices[: data * model], dtype=object).reshape(data, model)
    return Mesh(grid, (DATA_AXIS, MODEL_AXIS), axis_types=(AxisType.Auto, AxisType.Auto))


def _path_str(path: tuple) -> str:
    parts = []
    for k in path:
        name = getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))
        parts.append(str(name))
    return "/".join(parts)


def param_spec(path: str, shape: tuple[int, ...], mesh: Mesh, *, fsdp: bool) -> P:
    """The ``PartitionSpec`` of the parameter at ``path`` (keys joined by ``/``)."""
    spec: list[Any] = [None] * len(shape)
    model = mesh.shape.get(MODEL_AXIS, 1)
    if model > 1 and shape:
        axis = None
        if _COLUMN.search(path):
            axis = len(shape) - 1
        elif _ROW.search(path) and len(shape) >= 2:
            axis = len(shape) - 2
        if axis is not None:
            if shape[axis] % model:
                raise ValueError(
                    f"mesh: model={model} must divide axis {axis} ({shape[axis]}) of the "
                    f"parameter {path!r} (e.g. the attention heads or the MLP width)"
                )
            spec[axis] = MODEL_AXIS
    data = mesh.shape.get(DATA_AXIS, 1)
    if fsdp and data > 1 and math.prod(shape) >= FSDP_MIN_SIZE:
        free = [i for i in range(len(shape)) if spec[i] is None and shape[i] % data == 0]
        if free:
            spec[max(free, key=lambda i: shape[i])] = DATA_AXIS
    return P(*spec)


def state_shardings(state: Any, mesh: Mesh, *, fsdp: bool = False) -> Any:
    """``NamedSharding``s for every leaf of a :class:`TrainState` (see the module docstring).

    Optimizer-state leaves take the spec of the parameter whose path their own path ends
    with and whose shape they have; everything else is replicated.
    """
    params = jax.tree_util.tree_flatten_with_path(state.params)[0]
    specs = {}
    for path, leaf in params:
        key = _path_str(path)
        specs[key] = (np.shape(leaf), param_spec(key, np.shape(leaf), mesh, fsdp=fsdp))
    replicated = NamedSharding(mesh, P())

    def for_params(path: tuple, leaf: Any) -> NamedSharding:
        return NamedSharding(mesh, specs[_path_str(path)][1])

    def for_opt(path: tuple, leaf: Any) -> NamedSharding:
        key = _path_str(path)
        shape = np.shape(leaf)
        for name, (pshape, spec) in specs.items():
            if shape == pshape and (key == name or key.endswith("/" + name)):
                return NamedSharding(mesh, spec)
        return replicated

    return state.replace(
        params=jax.tree_util.tree_map_with_path(for_params, state.params),
        model_state=jax.tree_util.tree_map(lambda _: replicated, state.model_state),
        opt_state=jax.tree_util.tree_map_with_path(for_opt, state.opt_state),
        step=replicated,
        key=replicated,
    )


def is_sharding_mesh(mesh: Any) -> bool:
    """True for a :func:`make_mesh` mesh (axes ``data`` and ``model``)."""
    return isinstance(mesh, Mesh) and MODEL_AXIS in mesh.axis_names


def _put(tree: Any, shardings: Any) -> Any:
    """``tree`` put on ``shardings``; with several processes every process passes the same
    full values and keeps the shards of its devices."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def put(a: Any, s: NamedSharding) -> Any:
        if jax.numpy.issubdtype(a.dtype, jax.dtypes.prng_key):  # typed keys: via their data
            data = put(jax.random.key_data(a), s)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, s, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree, shardings)


def place_state(state: Any, mesh: Mesh, *, fsdp: bool = False) -> Any:
    """``state`` put on ``mesh`` with :func:`state_shardings`."""
    return _put(state, state_shardings(state, mesh, fsdp=fsdp))


def replicate_tree(tree: Any, mesh: Mesh) -> Any:
    """A copy of every leaf of ``tree`` on every device of ``mesh`` (any process count)."""
    replicated = NamedSharding(mesh, P())
    return _put(tree, jax.tree_util.tree_map(lambda _: replicated, tree))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The batch's leading axis split over ``data`` (replicated over ``model``)."""
    return NamedSharding(mesh, P(DATA_AXIS))


def check_divisible(batch: Any, mesh: Mesh) -> None:
    """A clear error, before any compute, for a batch that does not split over ``data``."""
    devices = mesh.shape[DATA_AXIS] if DATA_AXIS in mesh.shape else 1
    leaves = jax.tree_util.tree_leaves(batch)
    size = int(np.shape(leaves[0])[0]) if leaves and np.ndim(leaves[0]) else None
    if size is not None and devices > 1 and size % devices:
        raise ValueError(
            f"the batch holds {size} examples, which do not divide over the {devices} "
            f"devices of the mesh's data axis; use a batch size that is a multiple of "
            f"{devices} (fit: drop_last=True)"
        )


def sharded_train_step(recipe: StepRecipe, mesh: Mesh):
    """The training step as one GSPMD ``jax.jit`` over a :func:`make_mesh` mesh.

    The state keeps the shardings it has (from :func:`place_state`); the batch is split
    over ``data``. The per-step key is ``fold_in(fold_in(key, step), 0)``, the key of the
    single-device data-parallel step, so the run equals the one-device run.
    """

    def step(state: Any, batch: Any) -> tuple[Any, dict[str, jax.Array]]:
        key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), 0)
        return train_on_batch(recipe, state, batch, key)

    replicated = NamedSharding(mesh, P())
    compiled: dict[Any, Any] = {}

    def jitted_for(state: Any) -> Any:
        shardings = jax.tree_util.tree_map(lambda a: getattr(a, "sharding", replicated), state)
        leaves, treedef = jax.tree_util.tree_flatten(shardings)
        cache_key = (treedef, tuple(leaves))
        if cache_key not in compiled:
            compiled[cache_key] = jax.jit(
                step,
                donate_argnums=0,
                in_shardings=(shardings, batch_sharding(mesh)),
                out_shardings=(shardings, replicated),
            )
        return compiled[cache_key]

    def run(state: Any, batch: Any) -> tuple[Any, dict[str, jax.Array]]:
        check_divisible(batch, mesh)
        return jitted_for(state)(state, batch)

    # ``step.lower(state, batch)``: the lowered program, for memory and HLO inspection
    run.lower = lambda state, batch: jitted_for(state).lower(state, batch)  # type: ignore[attr-defined]
    return run
