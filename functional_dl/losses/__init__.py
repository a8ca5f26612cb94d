"""Loss functions with PyTorch semantics and hand-derived gradients.

Every loss takes ``reduction='mean'|'sum'|'none'`` (keyword-only, default ``'mean'``),
puts the class axis last and accepts any leading batch axes. Half-precision inputs are
computed in float32 and returned in their own dtype. ``cross_entropy`` and
``binary_cross_entropy_with_logits`` use a fused hand-written backward
(``softmax − onehot``, ``sigmoid − y``).
"""

from ._binary import binary_cross_entropy as binary_cross_entropy
from ._binary import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from ._binary import hinge_loss as hinge_loss
from ._binary import sigmoid_focal_loss as sigmoid_focal_loss
from ._cross_entropy import cross_entropy as cross_entropy
from ._cross_entropy import nll_loss as nll_loss
from ._ctc import ctc_loss as ctc_loss
from ._distribution import gan_discriminator_loss as gan_discriminator_loss
from ._distribution import gan_generator_loss as gan_generator_loss
from ._distribution import kl_div as kl_div
from ._metric import cosine_embedding_loss as cosine_embedding_loss
from ._metric import dice_loss as dice_loss
from ._metric import margin_ranking_loss as margin_ranking_loss
from ._metric import triplet_margin_loss as triplet_margin_loss
from ._multiclass import multi_margin_loss as multi_margin_loss
from ._multiclass import softmax_focal_loss as softmax_focal_loss
from ._multilabel import multilabel_margin_loss as multilabel_margin_loss
from ._multilabel import multilabel_soft_margin_loss as multilabel_soft_margin_loss
from ._multilabel import triplet_margin_with_distance_loss as triplet_margin_with_distance_loss
from ._pointwise_more import gaussian_nll_loss as gaussian_nll_loss
from ._pointwise_more import hinge_embedding_loss as hinge_embedding_loss
from ._pointwise_more import poisson_nll_loss as poisson_nll_loss
from ._pointwise_more import soft_margin_loss as soft_margin_loss
from ._regression import huber_loss as huber_loss
from ._regression import l1_loss as l1_loss
from ._regression import mse_loss as mse_loss
from ._regression import smooth_l1_loss as smooth_l1_loss

__all__ = [
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "hinge_loss",
    "sigmoid_focal_loss",
    "cross_entropy",
    "nll_loss",
    "multi_margin_loss",
    "softmax_focal_loss",
    "kl_div",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "margin_ranking_loss",
    "dice_loss",
    "ctc_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multilabel_margin_loss",
    "triplet_margin_with_distance_loss",
]
