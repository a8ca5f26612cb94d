"""functional_dl: deep-learning building blocks as pure, jit-compiled JAX functions.

Every component is a pure function over arrays and pytrees, with a hand-derived
gradient registered in :mod:`functional_dl.grads` and checked against ``jax.grad``.

    import functional_dl as fdl
    y = fdl.activations.gelu(x)
"""

import sys as _sys
import types as _types
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


def _show_only_the_api(module: _types.ModuleType) -> None:
    """``dir(module)`` lists its ``__all__`` (not the names it imports), over every public
    submodule too, through PEP 562's module ``__dir__``."""
    if not hasattr(module, "__all__") or "__dir__" in vars(module):
        return
    module.__dir__ = lambda: sorted(  # type: ignore[attr-defined]
        {*module.__all__, *(n for n in vars(module) if n.startswith("__"))}
    )
    for name in module.__all__:
        child = getattr(module, name)
        if isinstance(child, _types.ModuleType):
            _show_only_the_api(child)


_show_only_the_api(_sys.modules[__name__])
