"""An MLP and a CNN trained on scikit-learn's digits reach >= 97% held-out accuracy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import functional_dl as fdl
from tests.helpers import fast_key

nn = fdl.nn


@pytest.fixture(scope="module")
def digits():
    """8x8 images in [0, 1] as [N, 8, 8, 1]; a fixed split of 1400 train / 397 test."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    perm = np.random.default_rng(0).permutation(len(d.target))
    tr, te = perm[:1400], perm[1400:]
    return x[tr], d.target[tr], x[te], d.target[te]


def train(model, x, y, *, epochs, lr, batch=50, seed=0):
    """Adam on the mean cross-entropy; one compiled scan per epoch over shuffled batches."""
    params, state = model.init(fast_key(seed), (batch, *x.shape[1:]))
    opt = fdl.optim.adam(lr)
    x, y = jnp.asarray(x), jnp.asarray(y)
    n_batches = len(y) // batch

    def step(carry, inputs):
        params, state, opt_state = carry
        xb, yb, key = inputs

        def loss_fn(p):
            logits, new_state = model.apply(p, state, xb, key=key, train=True)
            return fdl.losses.cross_entropy(logits, yb), new_state

        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (fdl.optim.apply_updates(params, updates), state, opt_state), loss

    @jax.jit
    def epoch(carry, key):
        k_perm, k_drop = jax.random.split(key)
        idx = jax.random.permutation(k_perm, len(y))[: n_batches * batch].reshape(n_batches, -1)
        return jax.lax.scan(step, carry, (x[idx], y[idx], jax.random.split(k_drop, n_batches)))

    carry = (params, state, opt.init(params))
    for e in range(epochs):
        carry, losses = epoch(carry, fast_key(1000 + e))
    return carry[0], carry[1], losses


def accuracy(model, params, state, x, y):
    logits, same_state = model.apply(params, state, jnp.asarray(x))  # eval mode
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: a is b, same_state, state))
    return float(np.mean(np.argmax(np.asarray(logits), -1) == y))


def test_mlp_reaches_97_percent(digits):
    xtr, ytr, xte, yte = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(10))
    params, state, losses = train(model, xtr, ytr, epochs=10, lr=1e-2)
    assert float(losses.mean()) < 0.2
    assert accuracy(model, params, state, xte, yte) >= 0.97


def test_cnn_reaches_97_percent(digits):
    xtr, ytr, xte, yte = digits
    model = nn.Sequential(
        nn.Conv2d(8, 3, padding=1),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 3, padding=1),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(10),
    )
    params, state, losses = train(model, xtr, ytr, epochs=6, lr=1e-2)
    assert float(losses.mean()) < 0.2
    # the running statistics moved away from their initial values (0, 1)
    assert float(jnp.abs(state["1_batch_norm"]["running_mean"]).max()) > 0.01
    assert accuracy(model, params, state, xte, yte) >= 0.97
