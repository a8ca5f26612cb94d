"""functional_dl: deep-learning building blocks as pure, jit-compiled JAX functions.

Every component is a pure function over arrays and pytrees, with a hand-derived
gradient registered in :mod:`functional_dl.grads` and checked against ``jax.grad``.

    import functional_dl as fdl
    y = fdl.activations.gelu(x)
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import activations as activations
from . import augment as augment
from . import data as data
from . import grads as grads
from . import interop as interop
from . import losses as losses
from . import metrics as metrics
from . import models as models
from . import nn as nn
from . import optim as optim
from . import schedules as schedules
from . import train as train

try:  # the one version number is pyproject.toml's, read from the installed metadata
    __version__: str = _version("functional_dl")
except _PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "activations",
    "augment",
    "data",
    "grads",
    "interop",
    "losses",
    "metrics",
    "models",
    "nn",
    "optim",
    "schedules",
    "train",
]
