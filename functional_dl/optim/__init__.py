"""Optimizers: PyTorch's algorithms as optax-compatible GradientTransformations.

Each optimizer is an ``optax.GradientTransformation`` chained from the small transforms
exported here (``scale_by_adam``, ``trace``, ``add_weight_decay``, ``scale_by_lr``, ...),
so it composes with ``optax.chain``, ``optax.masked`` and ``optax.apply_updates``::

    opt = optax.chain(fdl.optim.clip_grad_norm(1.0), fdl.optim.adamw(3e-4))
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = fdl.optim.apply_updates(params, updates)
"""

from ._adagrad import ScaleByAdadeltaState as ScaleByAdadeltaState
from ._adagrad import ScaleByAdagradState as ScaleByAdagradState
from ._adagrad import adadelta as adadelta
from ._adagrad import adagrad as adagrad
from ._adagrad import scale_by_adadelta as scale_by_adadelta
from ._adagrad import scale_by_adagrad as scale_by_adagrad
from ._adam import adam as adam
from ._adam import adamax as adamax
from ._adam import adamw as adamw
from ._adam import nadam as nadam
from ._adam import radam as radam
from ._adam_moments import ScaleByAdamaxState as ScaleByAdamaxState
from ._adam_moments import ScaleByAdamState as ScaleByAdamState
from ._adam_moments import ScaleByNadamState as ScaleByNadamState
from ._adam_moments import scale_by_adam as scale_by_adam
from ._adam_moments import scale_by_adamax as scale_by_adamax
from ._adam_moments import scale_by_nadam as scale_by_nadam
from ._adam_moments import scale_by_radam as scale_by_radam
from ._flatten import FlattenState as FlattenState
from ._flatten import flatten as flatten
from ._lion import ScaleByLionState as ScaleByLionState
from ._lion import lion as lion
from ._lion import scale_by_lion as scale_by_lion
from ._rmsprop import ScaleByRmsState as ScaleByRmsState
from ._rmsprop import rmsprop as rmsprop
from ._rmsprop import scale_by_rms as scale_by_rms
from ._sgd import sgd as sgd
from ._transforms import ScaleState as ScaleState
from ._transforms import TraceState as TraceState
from ._transforms import add_weight_decay as add_weight_decay
from ._transforms import apply_updates as apply_updates
from ._transforms import clip_grad_norm as clip_grad_norm
from ._transforms import clip_grad_value as clip_grad_value
from ._transforms import global_norm as global_norm
from ._transforms import scale as scale
from ._transforms import scale_by_lr as scale_by_lr
from ._transforms import trace as trace

__all__ = [
    # optimizers
    "sgd",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    "nadam",
    "radam",
    "adamax",
    "adadelta",
    "lion",
    # gradient utilities
    "clip_grad_norm",
    "clip_grad_value",
    "global_norm",
    "apply_updates",
    "flatten",
    # building blocks
    "scale",
    "scale_by_lr",
    "add_weight_decay",
    "trace",
    "scale_by_adam",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_adamax",
    "scale_by_rms",
    "scale_by_adagrad",
    "scale_by_adadelta",
    "scale_by_lion",
    # states
    "ScaleState",
    "TraceState",
    "ScaleByAdamState",
    "ScaleByNadamState",
    "ScaleByAdamaxState",
    "ScaleByRmsState",
    "ScaleByAdagradState",
    "ScaleByAdadeltaState",
    "ScaleByLionState",
    "FlattenState",
]
