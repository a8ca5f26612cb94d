"""Activation functions with PyTorch's defaults, argument names and numerics.

Every function is a pure ``jax.Array -> jax.Array`` map that works under ``jit``,
``grad`` and ``vmap`` and keeps the input's floating dtype (float16/bfloat16 are
computed in float32 and rounded once, like PyTorch). Hyperparameters are keyword-only.

Each elementwise activation differentiates with its hand-derived derivative (a
``jax.custom_jvp``; the formula is in the docstrings), which fixes the derivative at
kinks to PyTorch's: ``relu'(0) = 0``, ``leaky_relu'(0) = negative_slope``,
``elu'(0) = alpha``, ``relu6'`` and ``hardtanh'`` are 0 at their bounds, and so on.
The same derivatives are registered in :mod:`functional_dl.grads`, where they are
checked against ``jax.grad`` of the plain formula and finite differences.
Hyperparameters (``alpha``, ``beta``, ...) may be traced under ``jit`` but are not
differentiated (as in PyTorch); ``prelu``'s ``weight`` is data and is differentiated.
"""

from ._exponential import celu as celu
from ._exponential import elu as elu
from ._exponential import log_sigmoid as log_sigmoid
from ._exponential import selu as selu
from ._exponential import softplus as softplus
from ._piecewise import hardsigmoid as hardsigmoid
from ._piecewise import hardswish as hardswish
from ._piecewise import hardtanh as hardtanh
from ._piecewise import leaky_relu as leaky_relu
from ._piecewise import prelu as prelu
from ._piecewise import relu as relu
from ._piecewise import relu6 as relu6
from ._random import gumbel_softmax as gumbel_softmax
from ._random import rrelu as rrelu
from ._shrink import hardshrink as hardshrink
from ._shrink import softmin as softmin
from ._shrink import softshrink as softshrink
from ._shrink import tanhshrink as tanhshrink
from ._shrink import threshold as threshold
from ._smooth import gelu as gelu
from ._smooth import mish as mish
from ._smooth import sigmoid as sigmoid
from ._smooth import silu as silu
from ._smooth import softsign as softsign
from ._smooth import swish as swish
from ._smooth import tanh as tanh
from ._softmax import glu as glu
from ._softmax import log_softmax as log_softmax
from ._softmax import softmax as softmax

__all__ = [
    "sigmoid",
    "tanh",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "softsign",
    "hardtanh",
    "hardsigmoid",
    "hardswish",
    "log_sigmoid",
    "softmax",
    "log_softmax",
    "glu",
    "prelu",
    "hardshrink",
    "softshrink",
    "tanhshrink",
    "threshold",
    "softmin",
    "rrelu",
    "gumbel_softmax",
]
