"""Manual backprop: every layer's hand-derived backward, and whole models, equal jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl.nn as nn
from functional_dl.nn import backprop
from tests.helpers import assert_close, fast_key

RNG = np.random.default_rng(0)
KEY = fast_key(0)


def ce_loss(logits, labels):
    """Mean softmax cross-entropy, written independently of the library."""
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(labels.shape[0]), labels])


def assert_grads_equal(model, x_shape, n_classes, *, train=True):
    with jax.enable_x64(True):
        params, state = jax.jit(model.init, static_argnums=1)(KEY, x_shape)
        params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
        x = jnp.asarray(RNG.standard_normal(x_shape))
        labels = jnp.asarray(RNG.integers(0, n_classes, x_shape[0]))
        key = fast_key(7)

        @jax.jit
        def both(params, state, x, labels, key):
            def loss(p):
                return ce_loss(model.apply(p, state, x, key=key, train=train)[0], labels)

            (loss_hand, _), hand = backprop.cross_entropy_value_and_grad(
                model, params, state, x, labels, key=key, train=train
            )
            return loss_hand, hand, *jax.value_and_grad(loss)(params)

        loss, hand, ref_loss, auto = both(params, state, x, labels, key)
        assert_close(loss, ref_loss)
        scale = max(float(jnp.max(jnp.abs(a))) for a in jax.tree_util.tree_leaves(auto))
        assert_close(hand, auto, rtol=1e-5, atol=1e-12 * scale)  # the rtol=1e-5
        assert jax.tree_util.tree_structure(hand) == jax.tree_util.tree_structure(params)


def test_mlp_manual_backprop_equals_jax_grad():
    model = nn.Sequential(nn.Linear(32), nn.ReLU(), nn.Linear(16), nn.Tanh(), nn.Linear(10))
    assert_grads_equal(model, (16, 12), 10)


def test_cnn_manual_backprop_equals_jax_grad():
    model = nn.Sequential(
        nn.Conv2d(6, 3, padding=1),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(10),
    )
    assert_grads_equal(model, (8, 8, 8, 1), 10, train=True)


LAYERS = {
    "linear": (lambda: nn.Linear(4), (3, 5)),
    "conv2d": (lambda: nn.Conv2d(4, (3, 2), stride=2, padding=1, groups=2), (2, 7, 6, 4)),
    "max_pool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 7, 6, 3)),
    "avg_pool2d": (
        lambda: nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
        (2, 5, 5, 2),
    ),
    "batch_norm": (lambda: nn.BatchNorm(), (6, 2, 3)),
    "group_norm": (lambda: nn.GroupNorm(2), (2, 3, 3, 4)),
    "layer_norm": (lambda: nn.LayerNorm(), (3, 6)),
    "rms_norm": (lambda: nn.RMSNorm(), (3, 6)),
    "dropout": (lambda: nn.Dropout(0.4), (5, 6)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 4)),
    "gelu": (lambda: nn.GELU(), (4, 5)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1), (4, 5)),
    "softmax": (lambda: nn.Softmax(), (4, 5)),
    "prelu": (lambda: nn.PReLU(5), (4, 5)),
    "residual": (lambda: nn.Residual(nn.Sequential(nn.Linear(5), nn.SiLU())), (4, 5)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_backward_equals_vjp(name):
    make, shape = LAYERS[name]
    layer = make()
    params, state = layer.init(KEY, shape)
    params = jax.tree_util.tree_map(lambda a: a + 0.1, params)
    x = jnp.asarray(RNG.standard_normal(shape), jnp.float32)
    key = fast_key(3)

    @jax.jit
    def both(params, x, g):  # (autodiff, hand-derived) in training and in eval mode
        out = []
        for train in (True, False):
            _, vjp = jax.vjp(
                lambda p, x, t=train: layer.apply(p, state, x, key=key, train=t)[0], params, x
            )
            out.append(
                (vjp(g), backprop.backward(layer, params, state, x, g, key=key, train=train))
            )
        return out

    y, _ = jax.eval_shape(lambda p, x: layer.apply(p, state, x), params, x)
    g = jnp.asarray(RNG.standard_normal(y.shape), jnp.float32)
    for auto, hand in both(params, x, g):
        assert_close(hand, auto)


def test_embedding_backward_equals_vjp():
    layer = nn.Embedding(7, 3)
    params, state = layer.init(KEY, (2, 4))
    ids = jnp.asarray([[0, 6, 6, 2], [1, 1, 1, 0]])
    g = jnp.asarray(RNG.standard_normal((2, 4, 3)), jnp.float32)
    _, vjp = jax.vjp(lambda p: layer.apply(p, state, ids)[0], params)
    hand, dx = backprop.backward(layer, params, state, ids, g)
    assert dx is None
    assert_close(hand, vjp(g)[0])


def test_backward_needs_hand_derived_passes():
    plain = nn.Layer(lambda k, s: ({}, {}), lambda p, s, x, key=None, train=False: (x, s), "id")
    assert nn.Sequential(nn.Linear(2), plain).backward is None
    with pytest.raises(ValueError, match="layer 'sequential' .*no hand-derived backward"):
        backprop.backward(nn.Sequential(plain), {}, {}, jnp.ones(2), jnp.ones(2))
