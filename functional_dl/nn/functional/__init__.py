"""Stateless neural-network ops (the ``torch.nn.functional`` of functional_dl).

Images are channels-last (``[N, H, W, C]``), linear weights ``[in, out]``. Outputs
keep the floating dtype of the data argument; parameters are cast to it.
"""

from ._adaptive_pool import adaptive_avg_pool2d as adaptive_avg_pool2d
from ._adaptive_pool import adaptive_max_pool2d as adaptive_max_pool2d
from ._attention import attention_weights as attention_weights
from ._attention import scaled_dot_product_attention as scaled_dot_product_attention
from ._conv import conv2d as conv2d
from ._conv1d import conv1d as conv1d
from ._conv_transpose import conv_transpose2d as conv_transpose2d
from ._dropout import dropout as dropout
from ._embedding import embedding as embedding
from ._instance_norm import instance_norm as instance_norm
from ._interpolate import interpolate as interpolate
from ._linear import linear as linear
from ._norm import batch_norm as batch_norm
from ._norm import group_norm as group_norm
from ._norm import layer_norm as layer_norm
from ._norm import rms_norm as rms_norm
from ._pixel_shuffle import pixel_shuffle as pixel_shuffle
from ._pixel_shuffle import pixel_unshuffle as pixel_unshuffle
from ._pool import avg_pool2d as avg_pool2d
from ._pool import max_pool2d as max_pool2d
from ._positional import alibi_bias as alibi_bias
from ._positional import alibi_slopes as alibi_slopes
from ._positional import relative_position_bias as relative_position_bias
from ._positional import relative_position_bucket as relative_position_bucket
from ._positional import rope as rope
from ._positional import sinusoidal_positional_encoding as sinusoidal_positional_encoding
from ._recurrent import gru as gru
from ._recurrent import lstm as lstm
from ._recurrent import rnn as rnn

__all__ = [
    "linear",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "layer_norm",
    "rms_norm",
    "group_norm",
    "dropout",
    "embedding",
    "scaled_dot_product_attention",
    "attention_weights",
    "rope",
    "sinusoidal_positional_encoding",
    "alibi_bias",
    "alibi_slopes",
    "relative_position_bucket",
    "relative_position_bias",
    "conv1d",
    "conv_transpose2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "interpolate",
    "instance_norm",
    "pixel_shuffle",
    "pixel_unshuffle",
    "rnn",
    "lstm",
    "gru",
]
