"""The "Coming from PyTorch" table: every PyTorch name functional_dl implements.

Each row is ``(pytorch name, functional_dl name, differences)``. ``AREAS`` groups the rows
and gives the differences shared by a whole area; a row adds only what is particular to
it ("" when the area's notes say everything). ``tests/test_docs.py`` checks that every
functional_dl name here exists and that every public function or layer is either listed
or named in ``NO_TORCH_EQUIVALENT``, so the page generated from this table stays true.
"""

from __future__ import annotations

from typing import NamedTuple


class Area(NamedTuple):
    title: str
    common: str  # differences that hold for every row of the area
    rows: tuple[tuple[str, str, str], ...]


F = "torch.nn.functional."
NN = "torch.nn."
OPT = "torch.optim."
LRS = "torch.optim.lr_scheduler."
TV = "torchvision.transforms.v2."
TVF = "torchvision.transforms.v2.functional."

_ACT_LAYER = "the layer holds no parameters (`init` returns `{}`)"

AREAS: tuple[Area, ...] = (
    Area(
        "Activations",
        "`axis` instead of `dim`; half precision is computed in float32 and cast back; "
        "each derivative is the hand-derived rule (PyTorch's convention at kinks).",
        (
            ("torch.sigmoid", "fdl.activations.sigmoid", ""),
            ("torch.tanh", "fdl.activations.tanh", ""),
            (F + "relu", "fdl.activations.relu", "no `inplace`"),
            (F + "relu6", "fdl.activations.relu6", "no `inplace`"),
            (F + "leaky_relu", "fdl.activations.leaky_relu", "no `inplace`"),
            (F + "elu", "fdl.activations.elu", "no `inplace`"),
            (F + "selu", "fdl.activations.selu", "no `inplace`"),
            (F + "celu", "fdl.activations.celu", "no `inplace`"),
            (
                F + "gelu",
                "fdl.activations.gelu",
                "`approximate` is `'none'` or `'tanh'` as in PyTorch",
            ),
            (F + "silu", "fdl.activations.silu", "`swish` is an alias"),
            (F + "mish", "fdl.activations.mish", ""),
            (F + "softplus", "fdl.activations.softplus", ""),
            (F + "softsign", "fdl.activations.softsign", ""),
            (F + "hardtanh", "fdl.activations.hardtanh", ""),
            (F + "hardsigmoid", "fdl.activations.hardsigmoid", ""),
            (F + "hardswish", "fdl.activations.hardswish", ""),
            (F + "logsigmoid", "fdl.activations.log_sigmoid", "renamed with an underscore"),
            (
                F + "softmax",
                "fdl.activations.softmax",
                "`where=` mask: a fully masked row is zeros, not NaN",
            ),
            (F + "log_softmax", "fdl.activations.log_softmax", "`where=` mask as `softmax`"),
            (F + "glu", "fdl.activations.glu", ""),
            (F + "prelu", "fdl.activations.prelu", "channels on the last axis"),
            (F + "hardshrink", "fdl.activations.hardshrink", ""),
            (F + "softshrink", "fdl.activations.softshrink", ""),
            (F + "tanhshrink", "fdl.activations.tanhshrink", ""),
            (F + "threshold", "fdl.activations.threshold", "no `inplace`"),
            (F + "softmin", "fdl.activations.softmin", "`where=` mask as `softmax`"),
            (F + "rrelu", "fdl.activations.rrelu", "the key comes first; eval by default"),
            (
                F + "gumbel_softmax",
                "fdl.activations.gumbel_softmax",
                "the key comes first; `hard=True` is exactly one-hot",
            ),
        ),
    ),
    Area(
        "Losses",
        "`reduction='mean'|'sum'|'none'` is keyword-only; the class axis is last (PyTorch: axis "
        "1); "
        "any leading batch axes; half precision is computed in float32.",
        (
            (F + "mse_loss", "fdl.losses.mse_loss", ""),
            (F + "l1_loss", "fdl.losses.l1_loss", ""),
            (F + "smooth_l1_loss", "fdl.losses.smooth_l1_loss", ""),
            (F + "huber_loss", "fdl.losses.huber_loss", ""),
            (
                F + "binary_cross_entropy",
                "fdl.losses.binary_cross_entropy",
                "log clamped at -100 as PyTorch",
            ),
            (
                F + "binary_cross_entropy_with_logits",
                "fdl.losses.binary_cross_entropy_with_logits",
                "",
            ),
            (
                F + "cross_entropy",
                "fdl.losses.cross_entropy",
                "class indices or probabilities; logits `[..., C]`",
            ),
            (F + "nll_loss", "fdl.losses.nll_loss", ""),
            (F + "multi_margin_loss", "fdl.losses.multi_margin_loss", ""),
            (F + "kl_div", "fdl.losses.kl_div", ""),
            (F + "cosine_embedding_loss", "fdl.losses.cosine_embedding_loss", ""),
            (F + "triplet_margin_loss", "fdl.losses.triplet_margin_loss", ""),
            (F + "margin_ranking_loss", "fdl.losses.margin_ranking_loss", ""),
            ("torchvision.ops.sigmoid_focal_loss", "fdl.losses.sigmoid_focal_loss", ""),
            (
                F + "ctc_loss",
                "fdl.losses.ctc_loss",
                "batch first `[N, T, C]`, padded targets `[N, S]`; the gradient is the true "
                "partial derivative (PyTorch's: `exp(log_probs) − occupancy`)",
            ),
            (F + "poisson_nll_loss", "fdl.losses.poisson_nll_loss", ""),
            (F + "gaussian_nll_loss", "fdl.losses.gaussian_nll_loss", ""),
            (F + "hinge_embedding_loss", "fdl.losses.hinge_embedding_loss", ""),
            (F + "soft_margin_loss", "fdl.losses.soft_margin_loss", ""),
            (F + "multilabel_soft_margin_loss", "fdl.losses.multilabel_soft_margin_loss", ""),
            (F + "multilabel_margin_loss", "fdl.losses.multilabel_margin_loss", ""),
            (
                F + "triplet_margin_with_distance_loss",
                "fdl.losses.triplet_margin_with_distance_loss",
                "",
            ),
        ),
    ),
    Area(
        "Functional ops (`torch.nn.functional`)",
        "channels last: images are `[N, H, W, C]` (PyTorch: NCHW), conv kernels `[kh, kw, "
        "in/groups, out]` "
        "(PyTorch: OIHW), linear weights `[in, out]` (PyTorch: `[out, in]`); randomness takes an "
        "explicit key.",
        (
            (F + "linear", "fdl.nn.functional.linear", "`w` is `[in, out]`"),
            (F + "conv2d", "fdl.nn.functional.conv2d", ""),
            (F + "max_pool2d", "fdl.nn.functional.max_pool2d", ""),
            (F + "avg_pool2d", "fdl.nn.functional.avg_pool2d", ""),
            (
                F + "batch_norm",
                "fdl.nn.functional.batch_norm",
                "returns the new running statistics instead of updating buffers",
            ),
            (F + "layer_norm", "fdl.nn.functional.layer_norm", ""),
            (F + "rms_norm", "fdl.nn.functional.rms_norm", ""),
            (F + "group_norm", "fdl.nn.functional.group_norm", ""),
            (F + "dropout", "fdl.nn.functional.dropout", "key first"),
            (F + "embedding", "fdl.nn.functional.embedding", ""),
            (F + "conv1d", "fdl.nn.functional.conv1d", "`[N, L, C]`, kernel `[k, in/groups, out]`"),
            (
                F + "conv_transpose2d",
                "fdl.nn.functional.conv_transpose2d",
                "kernel `[kh, kw, in, out/groups]` (PyTorch's permuted `(2, 3, 0, 1)`)",
            ),
            (F + "adaptive_avg_pool2d", "fdl.nn.functional.adaptive_avg_pool2d", ""),
            (F + "adaptive_max_pool2d", "fdl.nn.functional.adaptive_max_pool2d", ""),
            (F + "interpolate", "fdl.nn.functional.interpolate", "nearest, bilinear, bicubic"),
            (F + "instance_norm", "fdl.nn.functional.instance_norm", "no running statistics"),
            (F + "pixel_shuffle", "fdl.nn.functional.pixel_shuffle", ""),
            (F + "pixel_unshuffle", "fdl.nn.functional.pixel_unshuffle", ""),
            (
                "torch.nn.RNN (one layer)",
                "fdl.nn.functional.rnn",
                "batch first; weights `[in, H]` (transposed)",
            ),
            (
                "torch.nn.LSTM (one layer)",
                "fdl.nn.functional.lstm",
                "batch first; weights `[in, 4H]`, gates i, f, g, o",
            ),
            (
                "torch.nn.GRU (one layer)",
                "fdl.nn.functional.gru",
                "batch first; weights `[in, 3H]`, gates r, z, n",
            ),
            (
                F + "scaled_dot_product_attention",
                "fdl.nn.functional.scaled_dot_product_attention",
                "`[N, L, H, D]` layout; blockwise O(L) memory path for long sequences",
            ),
        ),
    ),
    Area(
        "Layers (`torch.nn`)",
        "a layer is an `init`/`apply` pair with explicit `params` and `state`; input sizes are "
        "inferred at "
        "`init` from the input shape, so constructors take output-side sizes only (`Linear(120)` "
        "for "
        "`nn.Linear(400, 120)`); channels last.",
        (
            (NN + "Linear", "fdl.nn.Linear", "`Linear(out_features)`"),
            (NN + "Conv2d", "fdl.nn.Conv2d", "`Conv2d(out_channels, kernel_size, ...)`"),
            (NN + "MaxPool2d", "fdl.nn.MaxPool2d", ""),
            (NN + "AvgPool2d", "fdl.nn.AvgPool2d", ""),
            (
                NN + "Flatten",
                "fdl.nn.Flatten",
                "flattens channels-last `[N, H, W, C]` (see `fdl.interop` for NCHW weights)",
            ),
            (
                NN + "BatchNorm2d",
                "fdl.nn.BatchNorm",
                "one layer for every rank; running statistics in `state`",
            ),
            (NN + "LayerNorm", "fdl.nn.LayerNorm", ""),
            (NN + "RMSNorm", "fdl.nn.RMSNorm", ""),
            (NN + "GroupNorm", "fdl.nn.GroupNorm", ""),
            (NN + "Dropout", "fdl.nn.Dropout", "`apply(..., key=, train=)`"),
            (NN + "Embedding", "fdl.nn.Embedding", ""),
            (NN + "Conv1d", "fdl.nn.Conv1d", "`Conv1d(out_channels, kernel_size, ...)`"),
            (
                NN + "ConvTranspose2d",
                "fdl.nn.ConvTranspose2d",
                "`ConvTranspose2d(out_channels, ...)`",
            ),
            (NN + "AdaptiveAvgPool2d", "fdl.nn.AdaptiveAvgPool2d", ""),
            (NN + "AdaptiveMaxPool2d", "fdl.nn.AdaptiveMaxPool2d", "no `return_indices`"),
            (NN + "Upsample", "fdl.nn.Upsample", ""),
            (
                NN + "InstanceNorm2d",
                "fdl.nn.InstanceNorm",
                "one layer for every rank; running statistics in `state`",
            ),
            (NN + "PixelShuffle", "fdl.nn.PixelShuffle", ""),
            (NN + "Identity", "fdl.nn.Identity", ""),
            (
                NN + "RNN",
                "fdl.nn.RNN",
                "`RNN(hidden_size, ...)`, batch first; `h_0`/`h_n` through `state`",
            ),
            (NN + "LSTM", "fdl.nn.LSTM", "`LSTM(hidden_size, ...)`, batch first; no `proj_size`"),
            (NN + "GRU", "fdl.nn.GRU", "`GRU(hidden_size, ...)`, batch first"),
            (NN + "Sequential", "fdl.nn.Sequential", ""),
            (NN + "ReLU", "fdl.nn.ReLU", _ACT_LAYER),
            (NN + "ReLU6", "fdl.nn.ReLU6", _ACT_LAYER),
            (NN + "LeakyReLU", "fdl.nn.LeakyReLU", _ACT_LAYER),
            (NN + "ELU", "fdl.nn.ELU", _ACT_LAYER),
            (NN + "SELU", "fdl.nn.SELU", _ACT_LAYER),
            (NN + "CELU", "fdl.nn.CELU", _ACT_LAYER),
            (NN + "GELU", "fdl.nn.GELU", _ACT_LAYER),
            (NN + "SiLU", "fdl.nn.SiLU", _ACT_LAYER),
            (NN + "Mish", "fdl.nn.Mish", _ACT_LAYER),
            (NN + "Sigmoid", "fdl.nn.Sigmoid", _ACT_LAYER),
            (NN + "Tanh", "fdl.nn.Tanh", _ACT_LAYER),
            (NN + "Softplus", "fdl.nn.Softplus", _ACT_LAYER),
            (NN + "Softsign", "fdl.nn.Softsign", _ACT_LAYER),
            (NN + "Hardtanh", "fdl.nn.Hardtanh", _ACT_LAYER),
            (NN + "Hardsigmoid", "fdl.nn.Hardsigmoid", _ACT_LAYER),
            (NN + "Hardswish", "fdl.nn.Hardswish", _ACT_LAYER),
            (NN + "LogSigmoid", "fdl.nn.LogSigmoid", _ACT_LAYER),
            (NN + "Softmax", "fdl.nn.Softmax", _ACT_LAYER),
            (NN + "LogSoftmax", "fdl.nn.LogSoftmax", _ACT_LAYER),
            (NN + "GLU", "fdl.nn.GLU", _ACT_LAYER),
            (NN + "PReLU", "fdl.nn.PReLU", "the slope is a parameter, channels last"),
            (
                NN + "MultiheadAttention",
                "fdl.nn.MultiHeadAttention",
                "batch first; separate q/k/v projections",
            ),
            (NN + "TransformerEncoderLayer", "fdl.nn.TransformerEncoderLayer", "batch first"),
            (NN + "TransformerDecoderLayer", "fdl.nn.TransformerDecoderLayer", "batch first"),
            (
                NN + "Transformer",
                "fdl.nn.Transformer",
                "batch first; embeddings and output head included",
            ),
            ("torch.nn.init.calculate_gain", "fdl.nn.init.calculate_gain", ""),
            (
                "torch.nn.init.uniform_",
                "fdl.nn.init.uniform",
                "returns an initializer `(key, shape, dtype)`",
            ),
            ("torch.nn.init.normal_", "fdl.nn.init.normal", "returns an initializer"),
            ("torch.nn.init.zeros_", "fdl.nn.init.zeros", "returns an initializer"),
            ("torch.nn.init.ones_", "fdl.nn.init.ones", "returns an initializer"),
            (
                "torch.nn.init.xavier_uniform_",
                "fdl.nn.init.xavier_uniform",
                "returns an initializer; fans of HWIO kernels",
            ),
            (
                "torch.nn.init.xavier_normal_",
                "fdl.nn.init.xavier_normal",
                "returns an initializer; fans of HWIO kernels",
            ),
            (
                "torch.nn.init.kaiming_uniform_",
                "fdl.nn.init.kaiming_uniform",
                "returns an initializer; fans of HWIO kernels",
            ),
            (
                "torch.nn.init.kaiming_normal_",
                "fdl.nn.init.kaiming_normal",
                "returns an initializer; fans of HWIO kernels",
            ),
            ("torch.nn.init.orthogonal_", "fdl.nn.init.orthogonal", "returns an initializer"),
        ),
    ),
    Area(
        "Optimizers (`torch.optim`)",
        "an optimizer is an `optax.GradientTransformation` whose updates already carry the minus "
        "sign "
        "and the learning rate (apply them with `fdl.optim.apply_updates` or "
        "`optax.apply_updates`); "
        "`lr` may be a schedule `step -> lr`; PyTorch's algorithm and defaults.",
        (
            (OPT + "SGD", "fdl.optim.sgd", ""),
            (OPT + "Adagrad", "fdl.optim.adagrad", ""),
            (OPT + "RMSprop", "fdl.optim.rmsprop", ""),
            (OPT + "Adam", "fdl.optim.adam", ""),
            (OPT + "AdamW", "fdl.optim.adamw", ""),
            (OPT + "NAdam", "fdl.optim.nadam", ""),
            (OPT + "RAdam", "fdl.optim.radam", ""),
            (OPT + "Adamax", "fdl.optim.adamax", ""),
            (OPT + "Adadelta", "fdl.optim.adadelta", ""),
            ("Lion (paper; no torch.optim class)", "fdl.optim.lion", ""),
            (
                "torch.nn.utils.clip_grad_norm_",
                "fdl.optim.clip_grad_norm",
                "a transform in the chain, not an in-place call",
            ),
            (
                "torch.nn.utils.clip_grad_value_",
                "fdl.optim.clip_grad_value",
                "a transform in the chain",
            ),
            ("torch.nn.utils.get_total_norm", "fdl.optim.global_norm", ""),
            (OPT + "Adafactor", "fdl.optim.adafactor", ""),
            (OPT + "Rprop", "fdl.optim.rprop", ""),
            (OPT + "ASGD", "fdl.optim.asgd", "the average is `averaged_params(state)`"),
            (OPT + "Muon", "fdl.optim.muon", "2-D leaves only; pair it via `param_groups`"),
            (
                "optimizer param_groups (list of dicts)",
                "fdl.optim.param_groups",
                "regexes over parameter paths",
            ),
            (
                "loss.backward() k times before optimizer.step()",
                "fdl.optim.accumulate",
                "",
            ),
            (
                "bf16 model + fp32 optimizer copy (apex O2 master weights)",
                "fdl.optim.with_master_weights",
                "wraps any optimizer; the fp32 copy is in its state",
            ),
            (
                "torch.optim.swa_utils.AveragedModel (EMA)",
                "fdl.optim.ema",
                "last transform of a chain",
            ),
            ("torch.optim.swa_utils.AveragedModel", "fdl.optim.swa", "last transform of a chain"),
            ("AveragedModel.module", "fdl.optim.averaged_params", ""),
        ),
    ),
    Area(
        "Learning-rate schedules (`torch.optim.lr_scheduler`)",
        "a schedule is a pure function `step -> lr` (works traced under `jit`); the value at step "
        "`k` "
        "equals PyTorch's `get_last_lr()` after `k` calls of `scheduler.step()`.",
        (
            (LRS + "StepLR", "fdl.schedules.step_lr", ""),
            (LRS + "MultiStepLR", "fdl.schedules.multi_step_lr", ""),
            (LRS + "ExponentialLR", "fdl.schedules.exponential_lr", ""),
            (LRS + "LinearLR", "fdl.schedules.linear_lr", ""),
            (
                LRS + "CosineAnnealingLR",
                "fdl.schedules.cosine_annealing_lr",
                "the closed form (PyTorch's recursive form agrees)",
            ),
            (
                LRS + "CosineAnnealingWarmRestarts",
                "fdl.schedules.cosine_annealing_warm_restarts",
                "",
            ),
            (
                LRS + "OneCycleLR",
                "fdl.schedules.one_cycle_lr",
                "momentum cycling is `one_cycle_momentum`",
            ),
            (LRS + "SequentialLR", "fdl.schedules.sequential_lr", ""),
            (LRS + "ConstantLR", "fdl.schedules.constant_lr", ""),
            (LRS + "PolynomialLR", "fdl.schedules.polynomial_lr", ""),
            (LRS + "LambdaLR", "fdl.schedules.lambda_lr", ""),
            (LRS + "MultiplicativeLR", "fdl.schedules.multiplicative_lr", ""),
            (LRS + "CyclicLR", "fdl.schedules.cyclic_lr", "momentum cycling is `cyclic_momentum`"),
            (
                LRS + "ReduceLROnPlateau",
                "fdl.schedules.reduce_lr_on_plateau",
                "a pure state machine; in training use `scale_by_plateau` in the optimizer chain",
            ),
        ),
    ),
    Area(
        "Image transforms (`torchvision.transforms.v2`)",
        "images are float `[N, H, W, C]` batches (PyTorch: `[C, H, W]` per image); random ops "
        "take a key "
        "first and **each sample draws its own parameters** inside one compiled call.",
        (
            (TV + "RandomHorizontalFlip", "fdl.augment.random_horizontal_flip", ""),
            (TV + "RandomResizedCrop", "fdl.augment.random_resized_crop", ""),
            (TV + "ColorJitter", "fdl.augment.color_jitter", "component order drawn per sample"),
            (TV + "RandomRotation", "fdl.augment.random_rotation", ""),
            (TV + "RandomAffine", "fdl.augment.random_affine", ""),
            (TV + "RandomGrayscale", "fdl.augment.random_grayscale", ""),
            (TV + "GaussianBlur", "fdl.augment.gaussian_blur", ""),
            (TV + "RandomErasing", "fdl.augment.random_erasing", ""),
            (TV + "MixUp", "fdl.augment.mixup", "returns mixed one-hot labels"),
            (TV + "CutMix", "fdl.augment.cutmix", "returns mixed one-hot labels"),
            (TV + "Compose", "fdl.augment.compose", "ops receive split keys"),
            (TVF + "horizontal_flip", "fdl.augment.hflip", ""),
            (TVF + "center_crop", "fdl.augment.center_crop", ""),
            (TVF + "resized_crop", "fdl.augment.resized_crop", ""),
            (TVF + "rotate", "fdl.augment.rotate", ""),
            (TVF + "affine", "fdl.augment.affine", ""),
            (TVF + "adjust_brightness", "fdl.augment.adjust_brightness", ""),
            (TVF + "adjust_contrast", "fdl.augment.adjust_contrast", ""),
            (TVF + "adjust_saturation", "fdl.augment.adjust_saturation", ""),
            (TVF + "adjust_hue", "fdl.augment.adjust_hue", ""),
            (TVF + "rgb_to_grayscale", "fdl.augment.rgb_to_grayscale", ""),
            (TVF + "gaussian_blur", "fdl.augment.gaussian_blur_fixed", ""),
            (TVF + "erase", "fdl.augment.erase", ""),
            (TV + "RandomVerticalFlip", "fdl.augment.random_vertical_flip", ""),
            (TV + "RandomCrop", "fdl.augment.random_crop", ""),
            (TV + "RandomPerspective", "fdl.augment.random_perspective", ""),
            (TV + "ElasticTransform", "fdl.augment.elastic_transform", "one field per sample"),
            (TV + "RandomInvert", "fdl.augment.random_invert", ""),
            (TV + "RandomPosterize", "fdl.augment.random_posterize", ""),
            (TV + "RandomSolarize", "fdl.augment.random_solarize", "threshold on the [0, 1] scale"),
            (TV + "RandomAutocontrast", "fdl.augment.random_autocontrast", ""),
            (TV + "RandomEqualize", "fdl.augment.random_equalize", ""),
            (TV + "RandomAdjustSharpness", "fdl.augment.random_adjust_sharpness", ""),
            (TV + "RandomApply", "fdl.augment.random_apply", "each sample keeps its own choice"),
            (
                TV + "RandomChoice",
                "fdl.augment.random_choice",
                "each sample keeps its own choice; every option runs on the batch",
            ),
            (TV + "RandAugment", "fdl.augment.rand_augment", "ops and signs drawn per sample"),
            (TV + "TrivialAugmentWide", "fdl.augment.trivial_augment_wide", "drawn per sample"),
            (
                TV + "AutoAugment",
                "fdl.augment.auto_augment",
                "`policy` is a string; drawn per sample",
            ),
            (TV + "AugMix", "fdl.augment.augmix", "drawn per sample; `all_ops=True` only"),
            (TV + "Normalize", "fdl.augment.normalize", "float images only"),
            (TVF + "vertical_flip", "fdl.augment.vflip", ""),
            (TVF + "crop", "fdl.augment.crop", ""),
            (TVF + "pad", "fdl.augment.pad", "`padding_mode='edge'` is PyTorch's `'edge'`"),
            (TVF + "resize", "fdl.augment.resize", "`antialias=True` by default, as torchvision"),
            (TVF + "invert", "fdl.augment.invert", ""),
            (
                TVF + "posterize",
                "fdl.augment.posterize",
                "float images are quantised to the 256 levels first",
            ),
            (TVF + "solarize", "fdl.augment.solarize", "threshold on the [0, 1] scale"),
            (TVF + "autocontrast", "fdl.augment.autocontrast", ""),
            (
                TVF + "equalize",
                "fdl.augment.equalize",
                "float images are quantised to the 256 levels first",
            ),
            (TVF + "adjust_sharpness", "fdl.augment.adjust_sharpness", ""),
            (TVF + "adjust_gamma", "fdl.augment.adjust_gamma", ""),
            (TVF + "perspective", "fdl.augment.perspective", ""),
        ),
    ),
)

# Public functions and layers with no PyTorch counterpart of the same role (the optimizer
# building blocks are optax-style transforms; PyTorch's optimizers are monolithic).
NO_TORCH_EQUIVALENT: frozenset[str] = frozenset(
    {
        "fdl.activations.swish",
        "fdl.losses.softmax_focal_loss",
        "fdl.losses.gan_discriminator_loss",
        "fdl.losses.gan_generator_loss",
        "fdl.losses.dice_loss",
        "fdl.losses.hinge_loss",
        "fdl.nn.functional.attention_weights",
        "fdl.nn.functional.rope",
        "fdl.nn.functional.sinusoidal_positional_encoding",
        "fdl.nn.functional.alibi_bias",
        "fdl.nn.functional.alibi_slopes",
        "fdl.nn.functional.relative_position_bucket",
        "fdl.nn.functional.relative_position_bias",
        "fdl.nn.Layer",
        "fdl.nn.Residual",
        "fdl.nn.TransformerLM",
        "fdl.nn.FeedForward",
        "fdl.nn.LearnedPositionalEmbedding",
        "fdl.nn.RelativePositionBias",
        "fdl.nn.init.fans",
        "fdl.nn.init.lecun_normal",
        "fdl.schedules.warmup_cosine",
        "fdl.schedules.join_schedules",
        "fdl.schedules.one_cycle_momentum",
        "fdl.augment.rgb_to_hsv",
        "fdl.augment.hsv_to_rgb",
        "fdl.nn.summary",
        "fdl.nn.generate",
        "fdl.optim.apply_updates",
        "fdl.optim.flatten",
        "fdl.optim.scale",
        "fdl.optim.scale_by_lr",
        "fdl.optim.add_weight_decay",
        "fdl.optim.trace",
        "fdl.optim.scale_by_adam",
        "fdl.optim.scale_by_nadam",
        "fdl.optim.scale_by_radam",
        "fdl.optim.scale_by_adamax",
        "fdl.optim.scale_by_rms",
        "fdl.optim.scale_by_adagrad",
        "fdl.optim.scale_by_adadelta",
        "fdl.optim.scale_by_lion",
        "fdl.optim.scale_by_adafactor",
        "fdl.optim.scale_by_rprop",
        "fdl.optim.scale_by_asgd",
        "fdl.optim.scale_by_muon",
        "fdl.optim.orthogonalize",
        "fdl.optim.configurable",
        "fdl.schedules.cyclic_momentum",
        "fdl.schedules.scale_by_plateau",
        "fdl.schedules.step_plateau",
        "fdl.schedules.plateau_states",
        "fdl.schedules.ReduceLROnPlateau",
    }
)
