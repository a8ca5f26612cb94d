"""Training: ``TrainState``, the jitted data-parallel step, ``evaluate``, ``fit``,
safetensors checkpoints and a history plot.

    state = fdl.train.create_train_state(key, model, optimizer, (1, 8, 8, 1))
    result = fdl.train.fit(state, model, fdl.losses.cross_entropy, optimizer,
                           (x_train, y_train), epochs=10, batch_size=64,
                           val_data=(x_val, y_val), metrics={"accuracy": fdl.train.accuracy})

``fit`` also runs by steps (``max_steps``, ``eval_every``) over any iterable of batches,
and calls ``callbacks(step, metrics, state)`` at every record (:class:`MetricsLogger`,
:class:`EarlyStopping`).
"""

from ..metrics import accuracy as accuracy  # the public name of fdl.metrics.accuracy
from ._averaging import update_bn as update_bn
from ._averaging import with_averaged_params as with_averaged_params
from ._callbacks import EarlyStopping as EarlyStopping
from ._callbacks import MetricsLogger as MetricsLogger
from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import checkpoint_metadata as checkpoint_metadata
from ._checkpoint import checkpoint_path as checkpoint_path
from ._checkpoint import latest_checkpoint as latest_checkpoint
from ._checkpoint import restore_checkpoint as restore_checkpoint
from ._checkpoint import save_checkpoint as save_checkpoint
from ._loop import FitResult as FitResult
from ._loop import fit as fit
from ._parallel import DATA_AXIS as DATA_AXIS
from ._parallel import data_parallel_mesh as data_parallel_mesh
from ._parallel import replicate as replicate
from ._parallel import shard_batch as shard_batch
from ._plot import plot_history as plot_history
from ._sharding import MODEL_AXIS as MODEL_AXIS
from ._sharding import make_mesh as make_mesh
from ._sharding import state_shardings as state_shardings
from ._state import TrainState as TrainState
from ._state import create_train_state as create_train_state
from ._step import evaluate as evaluate
from ._step import make_train_step as make_train_step

__all__ = [
    "TrainState",
    "create_train_state",
    "make_train_step",
    "evaluate",
    "accuracy",
    "fit",
    "FitResult",
    "EarlyStopping",
    "MetricsLogger",
    "DATA_AXIS",
    "data_parallel_mesh",
    "make_mesh",
    "state_shardings",
    "MODEL_AXIS",
    "replicate",
    "shard_batch",
    "save_checkpoint",
    "restore_checkpoint",
    "checkpoint_metadata",
    "checkpoint_path",
    "latest_checkpoint",
    "CheckpointError",
    "plot_history",
    "update_bn",
    "with_averaged_params",
]
