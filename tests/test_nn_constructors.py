"""Layer constructors cannot be misread: only output-side sizes are positional.

Walks ``fdl.nn.__all__``, so layers added later are covered as soon as they are exported.
"""

from __future__ import annotations

import inspect

import jax
import pytest

from functional_dl import nn

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# Names a constructor may take positionally: output-side sizes, the defining constant of
# an activation or of dropout, and the wrapped layer of a combinator.
ALLOWED_POSITIONAL = {
    "out_features",
    "out_channels",
    "kernel_size",
    "num_embeddings",
    "embedding_dim",
    "hidden_size",
    "output_size",
    "size",
    "upscale_factor",
    "num_groups",
    "num_parameters",
    "max_length",
    "num_heads",
    "vocab_size",
    "src_vocab_size",
    "tgt_vocab_size",
    "d_model",
    "num_layers",
    "num_encoder_layers",
    "num_decoder_layers",
    "dim_feedforward",
    "rate",
    "negative_slope",
    "alpha",
    "approximate",
    "beta",
    "min_val",
    "axis",
    "layer",
    "shortcut",
}

# The exact positional parameters of the layers defined so far.
EXPECTED = {
    "Linear": ("out_features",),
    "Conv2d": ("out_channels", "kernel_size"),
    "MaxPool2d": ("kernel_size",),
    "AvgPool2d": ("kernel_size",),
    "Flatten": (),
    "BatchNorm": (),
    "LayerNorm": (),
    "RMSNorm": (),
    "GroupNorm": ("num_groups",),
    "Dropout": ("rate",),
    "Embedding": ("num_embeddings", "embedding_dim"),
    "ReLU": (),
    "GELU": ("approximate",),
    "LeakyReLU": ("negative_slope",),
    "Softplus": ("beta",),
    "Hardtanh": ("min_val",),
    "Softmax": ("axis",),
    "PReLU": ("num_parameters",),
    "LearnedPositionalEmbedding": ("max_length",),
    "RelativePositionBias": ("num_heads",),
    "Residual": ("layer",),
}


def _constructors():
    out = []
    for name in nn.__all__:
        obj = getattr(nn, name)
        if not name[:1].isupper() or not callable(obj) or isinstance(obj, type):
            continue  # modules, functions (summary, generate) and the Layer type
        params = inspect.signature(obj).parameters.values()
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            continue  # Sequential(*layers)
        out.append((name, obj))
    return out


def _has_bias(obj) -> bool:
    return "bias" in inspect.signature(obj).parameters


CONSTRUCTORS = _constructors()
IDS = [n for n, _ in CONSTRUCTORS]


def _positional(obj) -> tuple[str, ...]:
    return tuple(
        p.name for p in inspect.signature(obj).parameters.values() if p.kind in _POSITIONAL
    )


def test_walk_finds_the_layers():
    assert sum(_has_bias(o) for _, o in CONSTRUCTORS) >= 10  # test_bias_must_be_a_bool runs
    assert {"Linear", "Conv2d", "BatchNorm", "Embedding", "ReLU", "Residual"} <= set(IDS)
    assert "Sequential" not in IDS and "Layer" not in IDS


@pytest.mark.parametrize("name,obj", CONSTRUCTORS, ids=IDS)
def test_only_output_side_arguments_are_positional(name, obj):
    positional = _positional(obj)
    if name in EXPECTED:
        assert positional == EXPECTED[name], f"{name}: positional {positional}"
    assert set(positional) <= ALLOWED_POSITIONAL, f"{name}: positional {positional}"
    params = inspect.signature(obj).parameters
    if "bias" in params:
        assert params["bias"].kind is inspect.Parameter.KEYWORD_ONLY, name


@pytest.mark.parametrize("name,obj", CONSTRUCTORS, ids=IDS)
def test_one_positional_argument_too_many_raises(name, obj):
    n = len(_positional(obj))
    with pytest.raises(TypeError, match=name):
        obj(*([3] * (n + 1)))


@pytest.mark.parametrize(
    "name,obj",
    [(n, o) for n, o in CONSTRUCTORS if _has_bias(o)],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_bias_must_be_a_bool(name, obj):
    required = [p for p in inspect.signature(obj).parameters.values() if p.default is p.empty]
    with pytest.raises(TypeError, match="bias"):
        obj(*([4] * len(required)), bias=120)


@pytest.mark.parametrize(
    "call,ours",
    [
        (lambda: nn.Conv2d(3, 6, 5), "Conv2d(6, 5)"),
        (lambda: nn.Conv2d(3, 6, 5, 2, 1), "Conv2d(6, 5, stride=2, padding=1)"),
        (lambda: nn.Linear(400, 120), "Linear(120)"),
        (lambda: nn.Linear(400, 120, False), "Linear(120, bias=False)"),
        (lambda: nn.BatchNorm(64), "BatchNorm()"),
        (lambda: nn.LayerNorm(64), "LayerNorm()"),
        (lambda: nn.GroupNorm(4, 16), "GroupNorm(4)"),
        (lambda: nn.MaxPool2d(2, 2), "MaxPool2d(2, stride=2)"),
        (lambda: nn.LeakyReLU(0.2, True), "LeakyReLU(0.2)"),
    ],
)
def test_pytorch_order_error_shows_our_form(call, ours):
    with pytest.raises(TypeError) as info:
        call()
    message = str(info.value)
    assert f"is {ours} here" in message, message
    assert "keyword-only" in message


def test_pytorch_order_used_to_build_another_layer():
    # the bug this guards against: Conv2d(3, 6, 5) built 3 outputs with stride 5
    params, _ = nn.Conv2d(6, 5).init(jax.random.key(0), (1, 32, 32, 3))
    assert params["weight"].shape == (5, 5, 3, 6)
    params, _ = nn.Linear(120).init(jax.random.key(0), (1, 400))
    assert params["weight"].shape == (400, 120) and params["bias"].shape == (120,)


def test_keyword_calls_still_work():
    params, _ = nn.Linear(5, bias=False).init(jax.random.key(0), (2, 3))
    assert set(params) == {"weight"}
    nn.Conv2d(4, 3, stride=2, padding="same", bias=False)
    nn.BatchNorm(momentum=0.2, eps=1e-3)
    nn.Hardtanh(-2.0, max_val=2.0)
    nn.Softplus(2.0, threshold=10.0)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: nn.Conv2d(4, 3, padding="full"), "padding='full'"),
        (lambda: nn.Conv1d(4, 3, padding="SAME"), "padding='SAME'"),
        (lambda: nn.Conv2d(4, 3, stride=0), "stride=0"),
        (lambda: nn.Conv1d(4, 3, dilation=0), "dilation=0"),
        (lambda: nn.Conv2d(4, 3, padding=-1), "padding=-1"),
        (lambda: nn.Conv2d(4, 3, groups=0), "groups=0"),
        (lambda: nn.ConvTranspose2d(4, 3, stride=(1, 0)), r"stride=\(1, 0\)"),
        (lambda: nn.ConvTranspose2d(4, 3, output_padding=-1), "output_padding=-1"),
    ],
)
def test_conv_constructors_check_the_geometry_when_built(build, match):
    # torch.nn.Conv2d(3, 4, 3, padding="full") raises in the constructor, not at forward
    with pytest.raises(ValueError, match=match):
        build()
