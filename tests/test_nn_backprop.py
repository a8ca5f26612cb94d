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


# ----------------------------------------------------- independent NumPy backward passes
def _np_standardize_vjp(x2, gw, eps, center=True):
    """Rows of ``x2`` [M, n] standardised over n; the vjp of ``xhat`` for cotangent
    ``gw`` [M, n], built from the explicit Jacobian of every row:
    ``d xhat_i / d x_j = rstd (delta_ij - 1/n - xhat_i xhat_j / n)`` (centred), or
    ``r delta_ij - x_i x_j r^3 / n`` (RMS)."""
    m, n = x2.shape
    dx = np.zeros_like(x2)
    xhat = np.zeros_like(x2)
    for r in range(m):
        x = x2[r]
        if center:
            mu = x.mean()
            rstd = 1.0 / np.sqrt(((x - mu) ** 2).mean() + eps)
            xh = (x - mu) * rstd
            jac = rstd * (np.eye(n) - 1.0 / n - np.outer(xh, xh) / n)
        else:
            rr = 1.0 / np.sqrt((x * x).mean() + eps)
            xh = x * rr
            jac = rr * np.eye(n) - np.outer(x, x) * rr**3 / n
        xhat[r] = xh
        dx[r] = jac.T @ gw[r]
    return dx, xhat


def _np_norm_backward(kind, x, g, w, eps):
    """(dx, dweight, dbias) of the layer ``kind`` in NumPy float64."""
    if kind in ("layer_norm", "rms_norm"):
        n = x.shape[-1]
        dx, xhat = _np_standardize_vjp(
            x.reshape(-1, n), (g * w).reshape(-1, n), eps, center=kind == "layer_norm"
        )
        g2 = g.reshape(-1, n)
        return dx.reshape(x.shape), (g2 * xhat).sum(0), g2.sum(0)
    if kind == "group_norm":  # 2 groups, channels last [N, H, W, C]
        nb, c = x.shape[0], x.shape[-1]
        xg = x.reshape(nb, -1, 2, c // 2).transpose(0, 2, 1, 3).reshape(nb * 2, -1)
        gw = (g * w).reshape(nb, -1, 2, c // 2).transpose(0, 2, 1, 3).reshape(nb * 2, -1)
        dx, xhat = _np_standardize_vjp(xg, gw, eps)
        back = (nb, 2, -1, c // 2)
        dx = dx.reshape(back).transpose(0, 2, 1, 3).reshape(x.shape)
        xhat = xhat.reshape(back).transpose(0, 2, 1, 3).reshape(x.shape)
        lead = tuple(range(x.ndim - 1))
        return dx, (g * xhat).sum(lead), g.sum(lead)
    # batch norm in training: every channel standardised over all the other axes
    c = x.shape[-1]
    dx, xhat = _np_standardize_vjp(x.reshape(-1, c).T, (g * w).reshape(-1, c).T, eps)
    dx, xhat = dx.T.reshape(x.shape), xhat.T.reshape(x.shape)
    lead = tuple(range(x.ndim - 1))
    return dx, (g * xhat).sum(lead), g.sum(lead)


NORMS = {
    "layer_norm": (lambda: nn.LayerNorm(), (3, 7), 1e-5),
    "rms_norm": (lambda: nn.RMSNorm(eps=1e-6), (4, 5), 1e-6),
    "group_norm": (lambda: nn.GroupNorm(2), (2, 3, 2, 4), 1e-5),
    "batch_norm": (lambda: nn.BatchNorm(), (5, 2, 3), 1e-5),
}


@pytest.mark.parametrize("kind", sorted(NORMS))
def test_norm_backward_equals_numpy_jacobian(kind):
    make, shape, eps = NORMS[kind]
    layer = make()
    rng = np.random.default_rng(11)
    with jax.enable_x64(True):
        params, state = layer.init(KEY, shape)
        c = shape[-1]
        w = 1.0 + 0.3 * rng.standard_normal(c)
        params = {k: jnp.asarray(w if k == "weight" else rng.standard_normal(c)) for k in params}
        x = 2.0 + 3.0 * rng.standard_normal(shape)
        g = rng.standard_normal(shape)
        grads, dx = backprop.backward(
            layer, params, state, jnp.asarray(x), jnp.asarray(g), train=True
        )
        ref_dx, ref_dw, ref_db = _np_norm_backward(kind, x, g, w, eps)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(grads["weight"], ref_dw, rtol=1e-9, atol=1e-11)
        if "bias" in grads:
            np.testing.assert_allclose(grads["bias"], ref_db, rtol=1e-9, atol=1e-11)
        # the live gradient of the layer (its custom_jvp rule, transposed) agrees too
        _, vjp = jax.vjp(lambda p, x: layer.apply(p, state, x, train=True)[0], params, x)
        auto_p, auto_x = vjp(jnp.asarray(g))
        np.testing.assert_allclose(auto_x, ref_dx, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(auto_p["weight"], ref_dw, rtol=1e-9, atol=1e-11)


def test_batch_norm_eval_backward_equals_numpy():
    layer = nn.BatchNorm()
    rng = np.random.default_rng(12)
    with jax.enable_x64(True):
        params, state = layer.init(KEY, (4, 3))
        w, b = 1 + rng.standard_normal(3), rng.standard_normal(3)
        rm, rv = rng.standard_normal(3), 0.5 + rng.random(3)
        params = {"weight": jnp.asarray(w), "bias": jnp.asarray(b)}
        state = {"running_mean": jnp.asarray(rm), "running_var": jnp.asarray(rv)}
        x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
        grads, dx = backprop.backward(layer, params, state, jnp.asarray(x), jnp.asarray(g))
        rstd = 1 / np.sqrt(rv + 1e-5)
        np.testing.assert_allclose(dx, g * w * rstd, rtol=1e-12)
        np.testing.assert_allclose(grads["weight"], (g * (x - rm) * rstd).sum(0), rtol=1e-12)
        np.testing.assert_allclose(grads["bias"], g.sum(0), rtol=1e-12)


def test_backprop_uses_no_reverse_mode_autodiff(monkeypatch):
    """Layer backward passes and the loss gradient are closed-form rules: with
    ``jax.vjp``/``jax.grad`` disabled the manual chain still runs."""
    model = nn.Sequential(
        nn.Conv2d(4, 3, padding=1),
        nn.BatchNorm(),
        nn.GELU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.LayerNorm(),
        nn.Linear(6),
        nn.PReLU(6),
        nn.Softmax(),
        nn.Linear(3),
    )
    x = jnp.asarray(RNG.standard_normal((2, 4, 4, 1)), jnp.float32)
    labels = jnp.asarray([0, 2])
    params, state = model.init(KEY, x.shape)

    def loss(p):
        return ce_loss(model.apply(p, state, x, train=True)[0], labels)

    auto = jax.grad(loss)(params)

    def refuse(*args, **kwargs):
        raise AssertionError("reverse-mode autodiff inside a hand-derived backward")

    monkeypatch.setattr(jax, "vjp", refuse)
    monkeypatch.setattr(jax, "grad", refuse)
    monkeypatch.setattr(jax, "value_and_grad", refuse)
    (_, _), hand = backprop.cross_entropy_value_and_grad(model, params, state, x, labels)
    assert_close(hand, auto, rtol=2e-5, atol=1e-6)
