"""functional_dl: deep-learning building blocks as pure, jit-compiled JAX functions.

Every component is a pure function over arrays and pytrees, with a hand-derived
gradient registered in :mod:`functional_dl.grads` and checked against ``jax.grad``.

    import functional_dl as fdl
    y = fdl.activations.gelu(x)
"""

from . import activations as activations
from . import augment as augment
from . import data as data
from . import grads as grads
from . import losses as losses
from . import models as models
from . import nn as nn
from . import optim as optim
from . import schedules as schedules
from . import train as train

__version__ = "0.1.0"

__all__ = [
    "activations",
    "augment",
    "data",
    "grads",
    "losses",
    "models",
    "nn",
    "optim",
    "schedules",
    "train",
]
