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

__all__ = ["functional", "init", "Layer", "Sequential", "Residual"]

# attention, positional encodings and Transformers
from ._positional import LearnedPositionalEmbedding as LearnedPositionalEmbedding  # noqa: E402
from ._positional import RelativePositionBias as RelativePositionBias  # noqa: E402

__all__ += [
    "LearnedPositionalEmbedding",
    "RelativePositionBias",
]
