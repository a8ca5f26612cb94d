"""Stateless neural-network ops (the ``torch.nn.functional`` of functional_dl).

Images are channels-last (``[N, H, W, C]``), linear weights ``[in, out]``. Outputs
keep the floating dtype of the data argument; parameters are cast to it.
"""

# dense, normalisation, dropout, embedding
from ._dropout import dropout as dropout
from ._embedding import embedding as embedding
from ._linear import linear as linear
from ._norm import group_norm as group_norm
from ._norm import layer_norm as layer_norm
from ._norm import rms_norm as rms_norm

__all__ = [
    # dense, normalisation, dropout, embedding
    "linear",
    "layer_norm",
    "rms_norm",
    "group_norm",
    "dropout",
    "embedding",
]
