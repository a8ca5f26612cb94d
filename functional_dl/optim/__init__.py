"""Optimizers: PyTorch's algorithms as optax-compatible GradientTransformations.

Each optimizer is an ``optax.GradientTransformation`` chained from the small transforms
exported here (``scale_by_adam``, ``trace``, ``add_weight_decay``, ``scale_by_lr``, ...),
so it composes with ``optax.chain``, ``optax.masked`` and ``optax.apply_updates``::

    opt = optax.chain(fdl.optim.clip_grad_norm(1.0), fdl.optim.adamw(3e-4))
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = fdl.optim.apply_updates(params, updates)
"""

from ._accumulate import AccumulateState as AccumulateState
from ._accumulate import accumulate as accumulate
from ._adafactor import ScaleByAdafactorState as ScaleByAdafactorState
from ._adafactor import scale_by_adafactor as scale_by_adafactor
from ._adagrad import ScaleByAdadeltaState as ScaleByAdadeltaState
from ._adagrad import ScaleByAdagradState as ScaleByAdagradState
from ._adagrad import scale_by_adadelta as scale_by_adadelta
from ._adagrad import scale_by_adagrad as scale_by_adagrad
from ._adam_moments import ScaleByAdamaxState as ScaleByAdamaxState
from ._adam_moments import ScaleByAdamState as ScaleByAdamState
from ._adam_moments import ScaleByNadamState as ScaleByNadamState
from ._adam_moments import scale_by_adam as scale_by_adam
from ._adam_moments import scale_by_adamax as scale_by_adamax
from ._adam_moments import scale_by_nadam as scale_by_nadam
from ._adam_moments import scale_by_radam as scale_by_radam
from ._asgd import ScaleByAsgdState as ScaleByAsgdState
from ._asgd import scale_by_asgd as scale_by_asgd
from ._averaging import AveragedState as AveragedState
from ._averaging import averaged_params as averaged_params
from ._averaging import ema as ema
from ._averaging import swa as swa
from ._constructors import adadelta as adadelta
from ._constructors import adafactor as adafactor
from ._constructors import adagrad as adagrad
from ._constructors import adam as adam
from ._constructors import adamax as adamax
from ._constructors import adamw as adamw
from ._constructors import asgd as asgd
from ._constructors import lion as lion
from ._constructors import muon as muon
from ._constructors import nadam as nadam
from ._constructors import radam as radam
from ._constructors import rmsprop as rmsprop
from ._constructors import rprop as rprop
from ._constructors import sgd as sgd
from ._flatten import FlattenState as FlattenState
from ._flatten import flatten as flatten
from ._lion import ScaleByLionState as ScaleByLionState
from ._lion import scale_by_lion as scale_by_lion
from ._master import MasterWeightsState as MasterWeightsState
from ._master import with_master_weights as with_master_weights
from ._muon import ScaleByMuonState as ScaleByMuonState
from ._muon import orthogonalize as orthogonalize
from ._muon import scale_by_muon as scale_by_muon
from ._param_groups import configurable as configurable
from ._param_groups import param_groups as param_groups
from ._rmsprop import ScaleByRmsState as ScaleByRmsState
from ._rmsprop import scale_by_rms as scale_by_rms
from ._rprop import ScaleByRpropState as ScaleByRpropState
from ._rprop import scale_by_rprop as scale_by_rprop
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
    "adafactor",
    "rprop",
    "asgd",
    "muon",
    # composition
    "param_groups",
    "accumulate",
    "with_master_weights",
    "ema",
    "swa",
    "averaged_params",
    "configurable",
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
    "scale_by_adafactor",
    "scale_by_rprop",
    "scale_by_asgd",
    "scale_by_muon",
    "orthogonalize",
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
    "ScaleByAdafactorState",
    "ScaleByRpropState",
    "ScaleByAsgdState",
    "ScaleByMuonState",
    "AccumulateState",
    "MasterWeightsState",
    "AveragedState",
]
