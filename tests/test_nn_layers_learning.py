"""Learning tests of the wave-2 layers: a small ResNet on the digits, a convolutional
autoencoder with ConvTranspose2d, and the resnet / lstm tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import functional_dl as fdl
from tests.test_nn_training import accuracy, digits, train  # noqa: F401  (fixture)

nn = fdl.nn


def test_resnet_reaches_98_percent_on_digits(digits):  # noqa: F811
    x_tr, y_tr, x_te, y_te = digits
    model = fdl.models.resnet(channels=(8, 16))  # the smallest that reaches it (98.5%)
    params, state, _ = train(model, x_tr, y_tr, epochs=8, lr=3e-3)
    assert accuracy(model, params, state, x_te, y_te) >= 0.98


def test_conv_autoencoder_with_conv_transpose_reconstructs_digits(digits):  # noqa: F811
    """8x8 -> 4x4x8 code -> 8x8: mean squared error below 0.01 on held-out digits
    (pixels in [0, 1]; predicting each pixel's mean gives ~0.1)."""
    x_tr, _, x_te, _ = digits
    model = nn.Sequential(
        nn.Conv2d(16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.Conv2d(1, 3, padding=1),
    )
    params, state = model.init(jax.random.key(0), (50, 8, 8, 1))
    opt = optax.adam(3e-3)
    x = jnp.asarray(x_tr)

    def loss_fn(p, xb):
        return jnp.mean((model.apply(p, state, xb)[0] - xb) ** 2)

    @jax.jit
    def epoch(p, o, key):
        idx = jax.random.permutation(key, len(x))[:1400].reshape(28, 50)

        def step(c, i):
            p, o = c
            loss, g = jax.value_and_grad(loss_fn)(p, x[i])
            u, o = opt.update(g, o, p)
            return (optax.apply_updates(p, u), o), loss

        return jax.lax.scan(step, (p, o), idx)[0]

    o = opt.init(params)
    for e in range(30):
        params, o = epoch(params, o, jax.random.key(e))
    mse = float(loss_fn(params, jnp.asarray(x_te)))
    baseline = float(np.mean((x_te - x_tr.mean(0)) ** 2))
    assert baseline > 0.05
    assert mse < 0.01


def test_resnet_and_lstm_tasks_build():
    for name, shape in (("resnet", (1, 8, 8, 1)), ("lstm", (1, 8, 8))):
        task = fdl.models.task(name)
        assert task.input_shape == shape
        params, state = jax.eval_shape(
            lambda k, t=task: t.model.init(k, t.input_shape), jax.random.key(0)
        )
        x = jax.ShapeDtypeStruct((4, *task.test[0].shape[1:]), jnp.float32)
        logits, _ = jax.eval_shape(task.model.apply, params, state, x)
        assert logits.shape == (4, 10)
