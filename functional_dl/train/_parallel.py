"""Data parallelism: a mesh over one ``data`` axis, replicated state, sharded batches.

The training step runs under ``jax.shard_map`` over this mesh: every device holds the
whole :class:`TrainState` (replicated) and one slice of the batch. Inside the step the
loss, gradients and metrics are averaged over the ``data`` axis (``lax.pmean``), so the
update is the one of the global-batch loss and every device applies it. Layers that
need statistics over the whole batch (BatchNorm) reduce them through
``axis_name=DATA_AXIS``. On one device the mesh has one entry and the step is the plain
single-device computation. Several hosts: see :func:`data_parallel_mesh`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["DATA_AXIS", "data_parallel_mesh", "replicate", "shard_batch"]

DATA_AXIS = "data"


def data_parallel_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A one-dimensional mesh named ``"data"`` over ``devices`` (default: all devices).

    Several hosts: call ``jax.distributed.initialize()`` at the start of every process
    (on Cloud TPU and SLURM it finds its peers itself; otherwise pass
    ``coordinator_address``, ``num_processes`` and ``process_id``). ``jax.devices()``
    then lists the devices of all hosts and this mesh spans them. Each process passes
    its own part of the training data (e.g. ``x[jax.process_index()::jax.process_count()]``)
    and the per-process ``batch_size`` (the global batch is ``process_count`` times
    larger); :func:`shard_batch` assembles the global batch with
    ``jax.make_array_from_process_local_data``, and only process 0 writes checkpoints.
    :func:`evaluate` runs on a single process. (Tested on one host with 8 simulated
    CPU devices, not on a cluster.)

    Args:
        devices: the devices to use, e.g. ``jax.devices()[:1]`` for a single device.

    Returns:
        ``jax.sharding.Mesh`` with one axis ``DATA_AXIS`` (automatic sharding mode).

    Example:
        >>> mesh = data_parallel_mesh()          # every local (and remote) device
        >>> mesh.shape["data"] == len(jax.devices())
        True
        >>> data_parallel_mesh(jax.devices()[:1]).shape["data"]
        1
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("data_parallel_mesh: devices must not be empty, got devices=[]")
    return jax.make_mesh(
        (len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices
    )


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put a copy of every leaf of ``tree`` on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Split the leading (example) axis of every leaf of ``batch`` across ``mesh``.

    The batch size must be divisible by the number of devices. With several processes
    each one passes its own part and the result is the concatenated global batch.
    """
    n = mesh.shape[DATA_AXIS] // jax.process_count()
    for leaf in jax.tree_util.tree_leaves(batch):
        if np.shape(leaf)[0] % n:
            raise ValueError(
                f"the batch size must be divisible by the number of devices "
                f"({n}), got a batch of shape {np.shape(leaf)}"
            )
    sharding = NamedSharding(mesh, P(DATA_AXIS))
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    return jax.tree_util.tree_map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), batch
    )
