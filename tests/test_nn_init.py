"""Initializers: PyTorch's gain and fan conventions, checked on large samples."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl.nn import init
from tests.helpers import fast_key

KEY = fast_key(0)


def test_fans_follow_pytorch_for_linear_and_conv_layouts():
    assert init.fans((100, 30)) == (100, 30)  # [in, out]
    assert init.fans((3, 5, 16, 32)) == (3 * 5 * 16, 3 * 5 * 32)  # [kh, kw, C, O]
    with pytest.raises(ValueError, match=r"shape=\(7,\)"):
        init.fans((7,))


def test_calculate_gain_values():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="nonlinearity='swish'"):
        init.calculate_gain("swish")


SHAPE = (3, 3, 64, 128)  # fan_in 576, fan_out 1152; 73728 samples
FAN_IN, FAN_OUT = 576, 1152
CASES = [
    ("xavier_uniform", {}, "uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_uniform", {"gain": 2.0}, "uniform", 2 * math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_normal", {}, "normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("kaiming_uniform", {}, "uniform", math.sqrt(2) * math.sqrt(3 / FAN_IN)),
    ("kaiming_uniform", {"a": math.sqrt(5)}, "uniform", 1 / math.sqrt(FAN_IN)),
    (
        "kaiming_uniform",
        {"mode": "fan_out", "nonlinearity": "relu"},
        "uniform",
        math.sqrt(2) * math.sqrt(3 / FAN_OUT),
    ),
    ("kaiming_normal", {"nonlinearity": "relu"}, "normal", math.sqrt(2 / FAN_IN)),
    (
        "kaiming_normal",
        {"mode": "fan_out", "nonlinearity": "tanh"},
        "normal",
        5 / 3 / math.sqrt(FAN_OUT),
    ),
    ("lecun_normal", {}, "normal", 1 / math.sqrt(FAN_IN)),
    ("normal", {"std": 0.02}, "normal", 0.02),
]


@pytest.mark.parametrize("name,kwargs,kind,scale", CASES, ids=[f"{c[0]}{c[1]}" for c in CASES])
def test_distribution_scale(name, kwargs, kind, scale):
    w = getattr(init, name)(KEY, SHAPE, **kwargs)
    assert w.shape == SHAPE and w.dtype == jnp.float32
    w = np.asarray(w, np.float64)
    assert abs(w.mean()) < 0.02 * scale * 3
    if kind == "uniform":  # scale is the bound b of U(-b, b): std b/sqrt(3)
        assert np.abs(w).max() <= scale and np.abs(w).max() > 0.99 * scale
        assert w.std() == pytest.approx(scale / math.sqrt(3), rel=0.02)
    else:  # scale is the std of an (untruncated) normal
        assert w.std() == pytest.approx(scale, rel=0.02)
        assert np.abs(w).max() > 3.5 * scale  # not truncated at 2 std


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (3, 3, 8, 16)])
def test_orthogonal(shape):
    w = np.asarray(init.orthogonal(KEY, shape, gain=2.0), np.float64)
    m = w.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[1] <= m.shape[0] else m @ m.T
    np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-4)


def test_constant_and_dtype():
    assert np.all(np.asarray(init.zeros(KEY, (2, 3))) == 0)
    assert np.all(np.asarray(init.ones(KEY, (2, 3), jnp.bfloat16)) == 1)
    for name in ("xavier_uniform", "kaiming_normal", "orthogonal", "lecun_normal"):
        assert getattr(init, name)(KEY, (4, 4), jnp.bfloat16).dtype == jnp.bfloat16


def test_same_key_same_values():
    a = init.kaiming_uniform(KEY, (8, 8))
    assert np.array_equal(a, init.kaiming_uniform(KEY, (8, 8)))
    assert not np.array_equal(a, init.kaiming_uniform(fast_key(1), (8, 8)))
