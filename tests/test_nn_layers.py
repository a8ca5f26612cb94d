"""Layers: shapes, PyTorch default initialization, state handling, jit, Sequential."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl.nn as nn
from tests.helpers import TraceCounter, assert_close

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)


def test_linear_init_and_apply():
    layer = nn.Linear(5)
    params, state = layer.init(KEY, (4, 3))
    assert set(params) == {"weight", "bias"} and state == {}
    assert params["weight"].shape == (3, 5) and params["bias"].shape == (5,)
    x = jnp.asarray(RNG.standard_normal((4, 3)), jnp.float32)
    y, new_state = layer.apply(params, state, x)
    w, b = np.asarray(params["weight"]), np.asarray(params["bias"])
    assert_close(y, np.asarray(x) @ w + b)
    assert new_state == {}
    assert "bias" not in nn.Linear(5, bias=False).init(KEY, (4, 3))[0]


def test_linear_default_init_is_pytorch_uniform_bound():
    # PyTorch: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in))
    params, _ = nn.Linear(400).init(KEY, (1, 100))
    bound = 1 / math.sqrt(100)
    for leaf in (params["weight"], params["bias"]):
        a = np.asarray(leaf)
        assert np.all(np.abs(a) <= bound) and np.abs(a).max() > 0.95 * bound
    assert abs(np.asarray(params["weight"]).std() - bound / math.sqrt(3)) < 0.05 * bound


def test_norm_layers():
    x = jnp.asarray(RNG.standard_normal((2, 3, 8)), jnp.float32)
    for layer, keys in ((nn.LayerNorm(), {"weight", "bias"}), (nn.RMSNorm(), {"weight"})):
        params, state = layer.init(KEY, x.shape)
        assert set(params) == keys
        assert_close(params["weight"], np.ones(8))
        y, _ = layer.apply(params, state, x)
        assert y.shape == x.shape
    params, _ = nn.LayerNorm(elementwise_affine=False).init(KEY, x.shape)
    assert params == {}


def test_embedding_layer():
    layer = nn.Embedding(10, 4)
    params, _ = layer.init(KEY, (2, 3))
    assert params["weight"].shape == (10, 4)
    assert abs(float(jnp.std(nn.Embedding(1000, 64).init(KEY, (1,))[0]["weight"])) - 1) < 0.02
    ids = jnp.array([[1, 2, 9], [0, 0, 3]])
    y, _ = layer.apply(params, {}, ids)
    assert_close(y, np.asarray(params["weight"])[np.asarray(ids)])


def test_dropout_layer_needs_key_in_training():
    layer = nn.Dropout(0.5)
    x = jnp.ones((4, 4))
    with pytest.raises(ValueError, match="Dropout: apply needs a key when train=True"):
        layer.apply({}, {}, x, train=True)
    y, state = layer.apply({}, {}, x)  # eval: identity
    assert y is x and state == {}
    y, _ = layer.apply({}, {}, x, key=KEY, train=True)
    assert set(np.unique(np.asarray(y))) <= {0.0, 2.0}


def test_sequential_mlp_jits_once():
    model = nn.Sequential(nn.Linear(16), nn.LayerNorm(), nn.Dropout(0.1), nn.RMSNorm(),
                          nn.Linear(3))
    params, state = model.init(KEY, (5, 7))
    assert list(params) == ["0_linear", "1_layer_norm", "2_dropout", "3_rms_norm", "4_linear"]
    counter = TraceCounter(lambda p, s, x, k: model.apply(p, s, x, key=k, train=True))
    f = jax.jit(counter)
    for i in range(3):
        y, _ = f(params, state, jnp.ones((5, 7)) * i, jax.random.key(i))
    assert y.shape == (5, 3) and counter.count == 1


def test_sequential_with_embedding_input_dtype():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(2))
    params, state = model.init(KEY, jax.ShapeDtypeStruct((3, 5), jnp.int32))
    assert params["2_linear"]["weight"].shape == (20, 2)
    y, _ = model.apply(params, state, jnp.zeros((3, 5), jnp.int32))
    assert y.shape == (3, 2)
