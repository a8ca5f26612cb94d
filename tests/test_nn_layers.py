"""Layers: shapes, PyTorch default initialization, state handling, jit, Sequential."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl.nn as nn
from tests.helpers import TraceCounter, assert_close, fast_key

KEY = fast_key(0)
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


@pytest.mark.parametrize("padding_idx", [2, -1])
def test_embedding_padding_idx_row_is_zero_and_gets_no_gradient(padding_idx):
    # torch.nn.Embedding(padding_idx=...): the row starts at zeros and its gradient is 0
    layer = nn.Embedding(6, 3, padding_idx=padding_idx)
    params, _ = layer.init(KEY, (2, 4))
    pad = padding_idx % 6
    table = np.asarray(params["weight"])
    assert np.all(table[pad] == 0) and np.all(np.abs(np.delete(table, pad, axis=0)).sum(1) > 0)
    params = {"weight": params["weight"] + 1.0}  # a trained, nonzero padding row
    ids = np.array([[pad, 1, pad, 0], [5, pad, 1, 3]])
    g = RNG.normal(size=(2, 4, 3)).astype(np.float32)
    y, _ = layer.apply(params, {}, jnp.asarray(ids))
    assert_close(y, np.asarray(params["weight"])[ids])
    want = np.zeros((6, 3), np.float32)  # NumPy scatter-add of g, padding row left at 0
    np.add.at(want, ids.reshape(-1), g.reshape(-1, 3))
    want[pad] = 0.0
    dw = jax.grad(lambda p: jnp.sum(layer.apply(p, {}, jnp.asarray(ids))[0] * g))(params)
    assert_close(dw["weight"], want)
    dw_hand, _ = layer.backward(params, {}, jnp.asarray(ids), jnp.asarray(g))
    assert_close(dw_hand["weight"], want)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(6, 3, padding_idx=6)


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
    model = nn.Sequential(
        nn.Linear(16), nn.LayerNorm(), nn.Dropout(0.1), nn.RMSNorm(), nn.Linear(3)
    )
    params, state = model.init(KEY, (5, 7))
    assert list(params) == ["0_linear", "1_layer_norm", "2_dropout", "3_rms_norm", "4_linear"]
    counter = TraceCounter(lambda p, s, x, k: model.apply(p, s, x, key=k, train=True))
    f = jax.jit(counter)
    for i in range(3):
        y, _ = f(params, state, jnp.ones((5, 7)) * i, fast_key(i))
    assert y.shape == (5, 3) and counter.count == 1


def test_sequential_with_embedding_input_dtype():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(2))
    params, state = model.init(KEY, jax.ShapeDtypeStruct((3, 5), jnp.int32))
    assert params["2_linear"]["weight"].shape == (20, 2)
    y, _ = model.apply(params, state, jnp.zeros((3, 5), jnp.int32))
    assert y.shape == (3, 2)


def test_conv2d_layer_init_follows_pytorch():
    layer = nn.Conv2d(32, (3, 5), groups=2, padding=1)
    params, _ = layer.init(KEY, (2, 9, 9, 8))
    assert params["weight"].shape == (3, 5, 4, 32) and params["bias"].shape == (32,)
    bound = 1 / math.sqrt(3 * 5 * 4)  # fan_in = kh * kw * C / groups
    for leaf in params.values():
        assert np.abs(np.asarray(leaf)).max() <= bound
    assert np.abs(np.asarray(params["weight"])).max() > 0.95 * bound
    y, _ = layer.apply(params, {}, jnp.ones((2, 9, 9, 8)))
    assert y.shape == (2, 9, 7, 32)
    with pytest.raises(ValueError, match=r"Conv2d: input_shape .*groups=3.*\(2, 9, 9, 8\)"):
        nn.Conv2d(6, 3, groups=3).init(KEY, (2, 9, 9, 8))


def np_running_stats(batches, momentum):
    """PyTorch's BatchNorm buffers after one training step per batch."""
    mean, var = np.zeros(batches[0].shape[-1]), np.ones(batches[0].shape[-1])
    for b in batches:
        flat = np.asarray(b, np.float64).reshape(-1, b.shape[-1])
        mean = (1 - momentum) * mean + momentum * flat.mean(0)
        var = (1 - momentum) * var + momentum * flat.var(0, ddof=1)
    return mean, var


def test_batch_norm_layer_running_stats_after_several_steps():
    layer = nn.BatchNorm(momentum=0.3)
    params, state = layer.init(KEY, (4, 5, 5, 3))
    assert set(params) == {"weight", "bias"} and set(state) == {"running_mean", "running_var"}
    batches = [RNG.standard_normal((4, 5, 5, 3)) * (i + 1) + i for i in range(5)]
    step = jax.jit(lambda p, s, x: layer.apply(p, s, x, train=True))
    for b in batches:
        _, state = step(params, state, jnp.asarray(b, jnp.float32))
    mean, var = np_running_stats(batches, 0.3)
    assert_close((state["running_mean"], state["running_var"]), (mean, var))
    # eval: normalise with the running statistics and return the same state
    x = jnp.asarray(batches[0], jnp.float32)
    y, same = layer.apply(params, state, x)
    assert same is state
    assert_close(y, (batches[0] - mean) / np.sqrt(var + 1e-5))


def test_group_norm_and_pool_layers():
    x = jnp.asarray(RNG.standard_normal((2, 6, 6, 8)), jnp.float32)
    params, _ = nn.GroupNorm(4).init(KEY, x.shape)
    assert_close((params["weight"], params["bias"]), (np.ones(8), np.zeros(8)))
    with pytest.raises(ValueError, match=r"GroupNorm: .*groups=3.*\(2, 6, 6, 8\)"):
        nn.GroupNorm(3).init(KEY, x.shape)
    assert nn.MaxPool2d(2).apply({}, {}, x)[0].shape == (2, 3, 3, 8)
    assert nn.AvgPool2d(3, stride=1, padding=1).apply({}, {}, x)[0].shape == (2, 6, 6, 8)


def every_layer_model():
    return nn.Sequential(
        nn.Conv2d(8, 3, padding="same"),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.GroupNorm(2),
        nn.MaxPool2d(2),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.Dropout(0.2),
        nn.Residual(nn.Sequential(nn.Conv2d(8, 1), nn.GELU())),
        nn.Flatten(),
        nn.Linear(32),
        nn.LayerNorm(),
        nn.SiLU(),
        nn.RMSNorm(),
        nn.Tanh(),
        nn.Linear(10),
    )


def test_sequential_of_every_layer_compiles_once_and_init_shapes_match():
    model = every_layer_model()
    params, state = jax.jit(model.init, static_argnums=1)(KEY, (4, 8, 8, 3))
    counter = TraceCounter(lambda p, s, x, k: model.apply(p, s, x, key=k, train=True))
    f = jax.jit(counter)
    for i in range(3):
        x = jnp.asarray(RNG.standard_normal((4, 8, 8, 3)), jnp.float32)
        y, new_state = f(params, state, x, fast_key(i))
    assert counter.count == 1 and y.shape == (4, 10)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
    # shapes inferred at init (jax.eval_shape) are the shapes apply produces
    table = nn.summary(model, (4, 8, 8, 3))
    assert "(4, 8, 8, 8)" in table and "(4, 4, 4, 8)" in table and "(4, 128)" in table
    n_params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    assert f"total parameters {n_params:,}" in table
    eval_y, eval_state = jax.jit(model.apply)(params, state, x)  # eval: state unchanged
    assert eval_y.shape == (4, 10)
    assert_close(eval_state, state)


def test_summary_rows():
    model = nn.Sequential(nn.Linear(16), nn.ReLU(), nn.Linear(3))
    lines = nn.summary(model, (32, 8)).splitlines()
    rows = {line.split()[0]: line for line in lines[2:-2]}
    assert "(32, 16)" in rows["0_linear"] and rows["0_linear"].endswith(" 144")
    assert "(32, 3)" in rows["2_linear"] and rows["2_linear"].endswith(" 51")
    assert lines[-1] == "input (32, 8), total parameters 195"
