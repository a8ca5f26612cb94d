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
from ._activation import CELU as CELU
from ._activation import ELU as ELU
from ._activation import GELU as GELU
from ._activation import GLU as GLU
from ._activation import SELU as SELU
from ._activation import Hardsigmoid as Hardsigmoid
from ._activation import Hardswish as Hardswish
from ._activation import Hardtanh as Hardtanh
from ._activation import LeakyReLU as LeakyReLU
from ._activation import LogSigmoid as LogSigmoid
from ._activation import LogSoftmax as LogSoftmax
from ._activation import Mish as Mish
from ._activation import PReLU as PReLU
from ._activation import ReLU as ReLU
from ._activation import ReLU6 as ReLU6
from ._activation import Sigmoid as Sigmoid
from ._activation import SiLU as SiLU
from ._activation import Softmax as Softmax
from ._activation import Softplus as Softplus
from ._activation import Softsign as Softsign
from ._activation import Tanh as Tanh
from ._attention import MultiHeadAttention as MultiHeadAttention
from ._containers import Identity as Identity
from ._containers import Residual as Residual
from ._containers import Sequential as Sequential
from ._conv import AvgPool2d as AvgPool2d
from ._conv import Conv1d as Conv1d
from ._conv import Conv2d as Conv2d
from ._conv import ConvTranspose2d as ConvTranspose2d
from ._conv import MaxPool2d as MaxPool2d
from ._core import Layer as Layer
from ._generate import generate as generate
from ._instance_norm import InstanceNorm as InstanceNorm
from ._linear import Dropout as Dropout
from ._linear import Embedding as Embedding
from ._linear import Flatten as Flatten
from ._linear import Linear as Linear
from ._lm import TransformerLM as TransformerLM
from ._norm import BatchNorm as BatchNorm
from ._norm import GroupNorm as GroupNorm
from ._norm import LayerNorm as LayerNorm
from ._norm import RMSNorm as RMSNorm
from ._positional import LearnedPositionalEmbedding as LearnedPositionalEmbedding
from ._positional import RelativePositionBias as RelativePositionBias
from ._recurrent import GRU as GRU
from ._recurrent import LSTM as LSTM
from ._recurrent import RNN as RNN
from ._resample import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from ._resample import AdaptiveMaxPool2d as AdaptiveMaxPool2d
from ._resample import PixelShuffle as PixelShuffle
from ._resample import Upsample as Upsample
from ._seq2seq import Transformer as Transformer
from ._summary import summary as summary
from ._transformer import FeedForward as FeedForward
from ._transformer import TransformerDecoderLayer as TransformerDecoderLayer
from ._transformer import TransformerEncoderLayer as TransformerEncoderLayer

__all__ = [
    "functional",
    "init",
    "Layer",
    "Sequential",
    "Residual",
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
    "MultiHeadAttention",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "Transformer",
    "TransformerLM",
    "generate",
    "FeedForward",
    "LearnedPositionalEmbedding",
    "RelativePositionBias",
    "Conv1d",
    "ConvTranspose2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "Upsample",
    "InstanceNorm",
    "PixelShuffle",
    "Identity",
    "RNN",
    "LSTM",
    "GRU",
]
