"""Introspects every public function for the conventions of API.md.

It walks every public module of ``functional_dl`` (and their ``__all__``), so new
modules and functions are covered as soon as they are exported.
"""

from __future__ import annotations

import inspect
import types

import pytest

import functional_dl as fdl

# Modules whose functions take data arrays first: hyperparameters must be keyword-only.
DATA_FUNCTION_MODULES = ["activations", "losses", "nn.functional", "augment"]

# Optional arguments that are data (arrays), not hyperparameters: may stay positional.
OPTIONAL_DATA_ARGS = {"weight", "bias", "b", "where", "pos_weight", "mask", "positions", "labels"}
# API.md fixes these optional arguments as positional (PyTorch's order): recurrent biases,
# interpolate's output size.
OPTIONAL_DATA_ARGS |= {"bias_ih", "bias_hh", "size"}

# Random ops: the key is the first positional argument.
RANDOM_OPS = {
    "augment": [
        "random_horizontal_flip",
        "random_resized_crop",
        "color_jitter",
        "random_rotation",
        "random_affine",
        "random_grayscale",
        "gaussian_blur",
        "random_erasing",
        "mixup",
        "cutmix",
    ],
    "nn.functional": ["dropout"],
}

FORBIDDEN_ARG_NAMES = {"rng", "rng_key", "prng", "prng_key", "rngs"}


def _module(path: str) -> types.ModuleType:
    mod = fdl
    for part in path.split("."):
        mod = getattr(mod, part)
    return mod


def _public_modules() -> list[str]:
    out = []
    for name in fdl.__all__:
        mod = getattr(fdl, name)
        if isinstance(mod, types.ModuleType):
            out.append(name)
            for sub in getattr(mod, "__all__", []):
                if isinstance(getattr(mod, sub, None), types.ModuleType):
                    out.append(f"{name}.{sub}")
    return out


def _public_callables(path: str) -> list[tuple[str, object]]:
    mod = _module(path)
    out = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if isinstance(obj, types.ModuleType):
            continue
        if callable(obj):
            out.append((f"{path}.{name}", obj))
    return out


ALL_CALLABLES = [item for path in _public_modules() for item in _public_callables(path)]


def test_every_module_declares_all():
    for path in _public_modules():
        mod = _module(path)
        assert hasattr(mod, "__all__"), f"{path} has no __all__"
        for name in mod.__all__:
            assert hasattr(mod, name), f"{path}.__all__ names missing {name!r}"


@pytest.mark.parametrize("qualname,obj", ALL_CALLABLES, ids=[q for q, _ in ALL_CALLABLES])
def test_docstring_present(qualname, obj):
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"{qualname} has no docstring"


@pytest.mark.parametrize("qualname,obj", ALL_CALLABLES, ids=[q for q, _ in ALL_CALLABLES])
def test_no_rng_argument_names(qualname, obj):
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    bad = FORBIDDEN_ARG_NAMES & set(params)
    assert not bad, f"{qualname} uses {bad}; randomness comes from an explicit `key`"
    if "key" in params:
        p = params["key"]
        first = next(iter(params.values()))
        assert p is first or p.kind is inspect.Parameter.KEYWORD_ONLY, (
            f"{qualname}: `key` must be the first argument or keyword-only"
        )


DATA_CALLABLES = [
    (q, o)
    for path in DATA_FUNCTION_MODULES
    if _module(path) is not None
    for q, o in _public_callables(path)
    if inspect.isfunction(o) or hasattr(o, "__wrapped__")
]


@pytest.mark.parametrize("qualname,obj", DATA_CALLABLES, ids=[q for q, _ in DATA_CALLABLES])
def test_hyperparameters_keyword_only(qualname, obj):
    params = inspect.signature(obj).parameters.values()
    for p in params:
        if p.default is inspect.Parameter.empty or p.kind is not p.POSITIONAL_OR_KEYWORD:
            continue
        assert p.name in OPTIONAL_DATA_ARGS, (
            f"{qualname}: hyperparameter {p.name!r} (default {p.default!r}) must be keyword-only"
        )


@pytest.mark.parametrize(
    "qualname,obj",
    [(q, o) for q, o in ALL_CALLABLES if q.startswith("losses.")],
    ids=[q for q, _ in ALL_CALLABLES if q.startswith("losses.")],
)
def test_losses_take_keyword_only_reduction(qualname, obj):
    params = inspect.signature(obj).parameters
    assert "reduction" in params, f"{qualname} has no `reduction` argument"
    p = params["reduction"]
    assert p.kind is p.KEYWORD_ONLY and p.default == "mean", f"{qualname}: {p}"


RANDOM_CALLABLES = [
    (f"{path}.{name}", getattr(_module(path), name))
    for path, names in RANDOM_OPS.items()
    for name in names
    if hasattr(_module(path), name)
]


@pytest.mark.parametrize("qualname,obj", RANDOM_CALLABLES, ids=[q for q, _ in RANDOM_CALLABLES])
def test_random_ops_take_key_first(qualname, obj):
    first = next(iter(inspect.signature(obj).parameters.values()))
    assert first.name == "key" and first.kind is first.POSITIONAL_OR_KEYWORD, qualname


def test_api_names_present():
    """Every name of API.md that is implemented is exported; grows with the modules."""
    for path in _public_modules():
        mod = _module(path)
        exported = set(getattr(mod, "__all__", []))
        public = {n for n in dir(mod) if not n.startswith("_")}
        # everything exported exists, and no public function is left out of __all__
        assert exported <= public, f"{path}: {exported - public}"


# The names of API.md, per module: each must exist and be exported.
API_NAMES = {
    "activations": "sigmoid tanh relu relu6 leaky_relu elu selu celu gelu silu swish mish "
    "softplus softsign hardtanh hardsigmoid hardswish log_sigmoid softmax "
    "log_softmax glu prelu hardshrink softshrink tanhshrink threshold softmin rrelu "
    "gumbel_softmax",
    "losses": "mse_loss l1_loss smooth_l1_loss huber_loss binary_cross_entropy "
    "binary_cross_entropy_with_logits hinge_loss sigmoid_focal_loss cross_entropy "
    "nll_loss multi_margin_loss softmax_focal_loss kl_div gan_discriminator_loss "
    "gan_generator_loss cosine_embedding_loss triplet_margin_loss margin_ranking_loss "
    "dice_loss ctc_loss poisson_nll_loss gaussian_nll_loss hinge_embedding_loss "
    "soft_margin_loss multilabel_soft_margin_loss multilabel_margin_loss "
    "triplet_margin_with_distance_loss",
    "optim": "sgd adagrad rmsprop adam adamw nadam radam adamax adadelta lion clip_grad_norm "
    "clip_grad_value apply_updates global_norm "
    "adafactor rprop asgd muon param_groups accumulate ema swa averaged_params "
    "with_master_weights",
    "schedules": "step_lr multi_step_lr exponential_lr linear_lr cosine_annealing_lr "
    "cosine_annealing_warm_restarts one_cycle_lr one_cycle_momentum warmup_cosine "
    "reduce_lr_on_plateau "
    "constant_lr polynomial_lr lambda_lr multiplicative_lr cyclic_lr cyclic_momentum",
    "nn.functional": "linear conv2d max_pool2d avg_pool2d batch_norm layer_norm rms_norm "
    "group_norm dropout embedding scaled_dot_product_attention rope "
    "sinusoidal_positional_encoding alibi_bias conv1d conv_transpose2d adaptive_avg_pool2d "
    "adaptive_max_pool2d interpolate instance_norm pixel_shuffle rnn lstm gru",
    "nn": "Linear Conv2d MaxPool2d AvgPool2d Flatten BatchNorm LayerNorm RMSNorm GroupNorm "
    "Dropout Embedding MultiHeadAttention TransformerEncoderLayer TransformerDecoderLayer "
    "Transformer TransformerLM ReLU GELU Sequential Residual Conv1d ConvTranspose2d "
    "AdaptiveAvgPool2d AdaptiveMaxPool2d Upsample InstanceNorm PixelShuffle Identity RNN LSTM GRU",
    "nn.init": "xavier_uniform xavier_normal kaiming_uniform kaiming_normal lecun_normal "
    "orthogonal normal zeros ones",
    "grads": "registry check",
    "interop": "from_torch_state_dict to_torch_state_dict",
    "augment": "random_horizontal_flip random_resized_crop center_crop color_jitter "
    "random_rotation random_affine random_grayscale gaussian_blur random_erasing "
    "mixup cutmix compose hflip resized_crop rotate affine adjust_brightness "
    "adjust_contrast adjust_saturation adjust_hue rgb_to_grayscale rgb_to_hsv "
    "hsv_to_rgb gaussian_blur_fixed erase",
}


@pytest.mark.parametrize("path", sorted(API_NAMES))
def test_api_md_names_exported(path):
    mod = _module(path)
    missing = [n for n in API_NAMES[path].split() if n not in getattr(mod, "__all__", [])]
    assert not missing, f"{path} does not export {missing}"
