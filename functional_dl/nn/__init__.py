"""Neural-network layers as ``Layer(init, apply)`` pairs, plus stateless ops.

    params, state = layer.init(key, input_shape)
    y, state = layer.apply(params, state, x, key=None, train=False)

Submodules: :mod:`functional_dl.nn.functional` (stateless array ops, like
``torch.nn.functional``), :mod:`functional_dl.nn.init` (initializers) and
:mod:`functional_dl.nn.backprop` (gradients from the hand-derived backward passes).
"""

from . import backprop as backprop
from . import functional as functional
from . import init as init
from ._activation_layers import CELU as CELU
from ._activation_layers import ELU as ELU
from ._activation_layers import GELU as GELU
from ._activation_layers import GLU as GLU
from ._activation_layers import SELU as SELU
from ._activation_layers import Hardsigmoid as Hardsigmoid
from ._activation_layers import Hardswish as Hardswish
from ._activation_layers import Hardtanh as Hardtanh
from ._activation_layers import LeakyReLU as LeakyReLU
from ._activation_layers import LogSigmoid as LogSigmoid
from ._activation_layers import LogSoftmax as LogSoftmax
from ._activation_layers import Mish as Mish
from ._activation_layers import PReLU as PReLU
from ._activation_layers import ReLU as ReLU
from ._activation_layers import ReLU6 as ReLU6
from ._activation_layers import Sigmoid as Sigmoid
from ._activation_layers import SiLU as SiLU
from ._activation_layers import Softmax as Softmax
from ._activation_layers import Softplus as Softplus
from ._activation_layers import Softsign as Softsign
from ._activation_layers import Tanh as Tanh
from ._conv_layers import AvgPool2d as AvgPool2d
from ._conv_layers import BatchNorm as BatchNorm
from ._conv_layers import Conv2d as Conv2d
from ._conv_layers import GroupNorm as GroupNorm
from ._conv_layers import MaxPool2d as MaxPool2d
from ._core import Layer as Layer
from ._core import Residual as Residual
from ._core import Sequential as Sequential
from ._layers import Dropout as Dropout
from ._layers import Embedding as Embedding
from ._layers import Flatten as Flatten
from ._layers import LayerNorm as LayerNorm
from ._layers import Linear as Linear
from ._layers import RMSNorm as RMSNorm
from ._summary import summary as summary

__all__ = [
    "functional",
    "init",
    "Layer",
    "Sequential",
    "Residual",
    # layers: dense, convolution, pooling, normalisation, embedding, dropout, activations
    "backprop",
    "summary",
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "Flatten",
    "BatchNorm",
    "LayerNorm",
    "RMSNorm",
    "GroupNorm",
    "Dropout",
    "Embedding",
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Softsign",
    "Hardtanh",
    "Hardsigmoid",
    "Hardswish",
    "LogSigmoid",
    "Softmax",
    "LogSoftmax",
    "GLU",
    "PReLU",
]

# attention, positional encodings and Transformers
from ._lm import TransformerLM as TransformerLM  # noqa: E402
from ._lm import generate as generate  # noqa: E402
from ._mha import MultiHeadAttention as MultiHeadAttention  # noqa: E402
from ._positional import LearnedPositionalEmbedding as LearnedPositionalEmbedding  # noqa: E402
from ._positional import RelativePositionBias as RelativePositionBias  # noqa: E402
from ._seq2seq import Transformer as Transformer  # noqa: E402
from ._transformer import FeedForward as FeedForward  # noqa: E402
from ._transformer import TransformerDecoderLayer as TransformerDecoderLayer  # noqa: E402
from ._transformer import TransformerEncoderLayer as TransformerEncoderLayer  # noqa: E402

__all__ += [
    "MultiHeadAttention",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "Transformer",
    "TransformerLM",
    "generate",
    "FeedForward",
    "LearnedPositionalEmbedding",
    "RelativePositionBias",
]
