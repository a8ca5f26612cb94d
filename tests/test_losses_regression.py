"""Regression losses against PyTorch's documented formulas (NumPy) and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl.losses as L
from tests.helpers import assert_close, assert_finite
from tests.test_losses_common import check_grads_x64, np_reduce

REDUCTIONS = ["none", "mean", "sum"]


# PyTorch's documented formulas, per element (d = input − target)
def torch_mse(x, y, **_):
    return (x - y) ** 2


def torch_l1(x, y, **_):
    return np.abs(x - y)


def torch_smooth_l1(x, y, beta=1.0):
    d = np.abs(x - y)
    if beta == 0:
        return d
    return np.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta)


def torch_huber(x, y, delta=1.0):
    d = np.abs(x - y)
    return np.where(d <= delta, 0.5 * d**2, delta * (d - 0.5 * delta))


# PyTorch's backward formulas (d/d input), kinks included
def torch_grads(name, d, **kw):
    if name == "mse_loss":
        return 2 * d
    if name == "l1_loss":
        return np.sign(d)
    if name == "smooth_l1_loss":
        beta = kw["beta"]
        return np.sign(d) if beta == 0 else np.where(d < -beta, -1, np.where(d > beta, 1, d / beta))
    delta = kw["delta"]
    return np.where(d < -delta, -delta, np.where(d > delta, delta, d))


rng = np.random.default_rng(0)
X = (rng.normal(size=(2, 3, 4)) * 2).astype(np.float32)  # arbitrary leading axes
Y = (rng.normal(size=(2, 3, 4)) * 2).astype(np.float32)
Y[0, 0, :2] = X[0, 0, :2]  # d = 0
Y[0, 1, 0] = X[0, 1, 0] - 1.0  # |d| = 1: the kink for beta = delta = 1
Y[1, 2, 3] = 1e4  # an outlier

CASES = [
    ("mse_loss", L.mse_loss, torch_mse, {}),
    ("l1_loss", L.l1_loss, torch_l1, {}),
    ("smooth_l1_loss", L.smooth_l1_loss, torch_smooth_l1, {}),
    ("smooth_l1_loss", L.smooth_l1_loss, torch_smooth_l1, {"beta": 0.5}),
    ("smooth_l1_loss", L.smooth_l1_loss, torch_smooth_l1, {"beta": 0.0}),
    ("huber_loss", L.huber_loss, torch_huber, {}),
    ("huber_loss", L.huber_loss, torch_huber, {"delta": 2.5}),
]
IDS = [f"{n}{kw}" for n, _, _, kw in CASES]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,fn,ref,kw", CASES, ids=IDS)
def test_matches_pytorch_formula(name, fn, ref, kw, reduction):
    got = fn(X, Y, reduction=reduction, **kw)
    want = np_reduce(ref(X.astype(np.float64), Y.astype(np.float64), **kw), reduction)
    assert got.shape == want.shape
    assert_close(got, want, rtol=2e-6)


def test_against_optax():
    assert_close(L.mse_loss(X, Y, reduction="none"), optax.losses.squared_error(X, Y))
    assert_close(
        L.huber_loss(X, Y, delta=2.5, reduction="none"),
        optax.losses.huber_loss(X, Y, delta=2.5),
        rtol=2e-6,
    )
    # smooth L1 is Huber divided by beta
    assert_close(
        L.smooth_l1_loss(X, Y, beta=0.5, reduction="none"),
        optax.losses.huber_loss(X, Y, delta=0.5) / 0.5,
        rtol=2e-6,
    )


@pytest.mark.parametrize("name,fn,ref,kw", CASES, ids=IDS)
def test_gradient_follows_pytorch_backward_at_kinks(name, fn, ref, kw):
    x = jnp.asarray(X)
    got = jax.grad(lambda a: fn(a, Y, reduction="sum", **kw))(x)
    assert_close(
        got, torch_grads(name, X.astype(np.float64) - Y, **{"beta": 1.0, "delta": 1.0, **kw})
    )
    got_target = jax.grad(lambda b: fn(X, b, reduction="sum", **kw))(jnp.asarray(Y))
    assert_close(got_target, -got)


def test_gradients_against_finite_differences():
    r = np.random.default_rng(1)
    x, y = r.normal(size=(3, 4)), r.normal(size=(3, 4))
    for fn, kw in [
        (L.mse_loss, {}),
        (L.l1_loss, {}),
        (L.smooth_l1_loss, {"beta": 0.7}),
        (L.huber_loss, {"delta": 0.7}),
    ]:
        check_grads_x64(lambda a, b, fn=fn, kw=kw: fn(a, b, **kw), x, y)


def test_robust_losses_bound_the_gradient_of_an_outlier():
    g = jax.grad(lambda a: L.huber_loss(a, Y, delta=1.0, reduction="sum"))(jnp.asarray(X))
    assert float(jnp.max(jnp.abs(g))) <= 1.0
    assert_finite(g)
    g_mse = jax.grad(lambda a: L.mse_loss(a, Y, reduction="sum"))(jnp.asarray(X))
    assert float(jnp.max(jnp.abs(g_mse))) > 1e4


@pytest.mark.parametrize("fn", [L.mse_loss, L.l1_loss, L.smooth_l1_loss, L.huber_loss])
def test_shape_mismatch_raises(fn):
    with pytest.raises(ValueError, match=r"input and target must have the same shape"):
        fn(X, Y[..., :3])
    with pytest.raises(ValueError, match=r"target.shape=\(3, 4\)"):
        fn(X, Y[0])


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match=r"smooth_l1_loss: beta must be >= 0, got beta=-1"):
        L.smooth_l1_loss(X, Y, beta=-1.0)
    with pytest.raises(ValueError, match=r"huber_loss: delta must be > 0, got delta=0"):
        L.huber_loss(X, Y, delta=0.0)
