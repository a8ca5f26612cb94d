"""Neural-network layers as ``Layer(init, apply)`` pairs, plus stateless ops.

    params, state = layer.init(key, input_shape)
    y, state = layer.apply(params, state, x, key=None, train=False)

Submodules: :mod:`functional_dl.nn.functional` (stateless array ops, like
``torch.nn.functional``) and :mod:`functional_dl.nn.init` (initializers).
"""

from . import functional as functional
from . import init as init
from ._core import Layer as Layer
from ._core import Residual as Residual
from ._core import Sequential as Sequential

# layers: dense, normalisation, embedding, dropout, reshaping
from ._layers import Dropout as Dropout
from ._layers import Embedding as Embedding
from ._layers import Flatten as Flatten
from ._layers import LayerNorm as LayerNorm
from ._layers import Linear as Linear
from ._layers import RMSNorm as RMSNorm

__all__ = [
    "functional",
    "init",
    "Layer",
    "Sequential",
    "Residual",
    # layers: dense, normalisation, embedding, dropout, reshaping
    "Linear",
    "Flatten",
    "LayerNorm",
    "RMSNorm",
    "Embedding",
    "Dropout",
]
