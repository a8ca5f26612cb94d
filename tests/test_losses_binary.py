"""Binary losses against PyTorch's / torchvision's documented formulas and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl.losses as L
from functional_dl.losses._binary import _bce_logits_formula
from tests.helpers import assert_close, assert_finite
from tests.test_losses_common import check_grads_x64, np_reduce

REDUCTIONS = ["none", "mean", "sum"]


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def sigmoid(x):
    return np.exp(log_sigmoid(x))


# PyTorch's formulas (forward, backward) in NumPy
def torch_bce(p, y, w=1.0):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -w * (y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))


def torch_bce_grad_input(p, y, w=1.0):
    return w * (p - y) / np.maximum((1 - p) * p, 1e-12)


def torch_bce_grad_target(p, y, w=1.0):
    with np.errstate(divide="ignore"):
        return w * (np.maximum(np.log1p(-p), -100) - np.maximum(np.log(p), -100))


def torch_bce_logits(x, y, w=1.0, pw=None):
    log_weight = 1.0 if pw is None else (pw - 1) * y + 1
    return w * ((1 - y) * x - log_weight * log_sigmoid(x))


def torch_bce_logits_grad_input(x, y, w=1.0, pw=None):
    if pw is None:
        return w * (sigmoid(x) - y)
    t = pw * y
    return w * ((t + 1 - y) * sigmoid(x) - t)


def torch_bce_logits_grad_target(x, y, w=1.0, pw=None):
    if pw is None:
        return -w * x
    return w * (log_sigmoid(-x) - pw * log_sigmoid(x))


def torchvision_focal(x, y, alpha, gamma):
    p = sigmoid(x)
    ce = torch_bce_logits(x, y)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


rng = np.random.default_rng(0)
SHAPE = (2, 3, 4)
X = (rng.normal(size=SHAPE) * 3).astype(np.float32)
Y = rng.integers(0, 2, size=SHAPE).astype(np.float32)
SOFT = rng.uniform(size=SHAPE).astype(np.float32)
P = rng.uniform(0.02, 0.98, size=SHAPE).astype(np.float32)
P[0, 0] = [0.0, 1.0, 0.0, 1.0]  # exact 0 and 1
Y_P = Y.copy()
Y_P[0, 0] = [1.0, 0.0, 0.0, 1.0]  # wrong and right at the ends
WEIGHTS = {
    "none": None,
    "per_class": rng.uniform(0.5, 2, size=4).astype(np.float32),
    "full": rng.uniform(0.5, 2, size=SHAPE).astype(np.float32),
}
POS_WEIGHT = np.array([0.5, 1.0, 2.0, 4.0], np.float32)


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


# -------------------------------------------------------------------- binary_cross_entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", list(WEIGHTS))
def test_bce_matches_pytorch_with_exact_zero_and_one(weight, reduction):
    w = WEIGHTS[weight]
    got = L.binary_cross_entropy(P, Y_P, w, reduction=reduction)
    want = np_reduce(torch_bce(f64(P), f64(Y_P), 1.0 if w is None else f64(w)), reduction)
    assert_close(got, want, rtol=2e-6)
    if reduction == "none" and w is None:  # each log clamped at −100
        assert_close(got[0, 0], np.array([100.0, 100.0, 0.0, 0.0]))


def test_bce_gradient_is_pytorchs_backward_and_finite_at_zero_and_one():
    w = WEIGHTS["full"]
    gp, gy = jax.grad(
        lambda p, y: L.binary_cross_entropy(p, y, w, reduction="sum"), argnums=(0, 1)
    )(P, Y_P)
    assert_finite((gp, gy))
    assert_close(gp, torch_bce_grad_input(f64(P), f64(Y_P), f64(w)), rtol=2e-5)
    assert_close(gy, torch_bce_grad_target(f64(P), f64(Y_P), f64(w)), rtol=2e-5)


def test_bce_out_of_range_probability_is_nan():
    out = L.binary_cross_entropy(
        np.array([1.5, -0.1, 0.5], np.float32),
        np.array([1.0, 0.0, 1.0], np.float32),
        reduction="none",
    )
    assert np.isnan(out[0]) and np.isnan(out[1]) and np.isfinite(out[2])


# ------------------------------------------------------- binary_cross_entropy_with_logits
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [False, True])
@pytest.mark.parametrize("weight", list(WEIGHTS))
def test_bce_logits_matches_pytorch(weight, pos_weight, reduction):
    w, pw = WEIGHTS[weight], POS_WEIGHT if pos_weight else None
    for y in (Y, SOFT):
        got = L.binary_cross_entropy_with_logits(X, y, w, pos_weight=pw, reduction=reduction)
        want = torch_bce_logits(f64(X), f64(y), 1.0 if w is None else f64(w), f64(pw))
        assert_close(got, np_reduce(want, reduction), rtol=2e-6)


@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_logits_gradients_are_pytorchs_backward(pos_weight):
    w, pw = WEIGHTS["per_class"], POS_WEIGHT if pos_weight else None

    def loss(x, y):
        return L.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw, reduction="sum")

    gx, gy = jax.grad(loss, argnums=(0, 1))(X, SOFT)
    assert_close(gx, torch_bce_logits_grad_input(f64(X), f64(SOFT), f64(w), f64(pw)))
    assert_close(gy, torch_bce_logits_grad_target(f64(X), f64(SOFT), f64(w), f64(pw)), rtol=2e-6)


def test_bce_logits_weight_gradients_match_autodiff_and_finite_differences():
    def fused(x, y, w, pw):
        return L.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw)

    def plain(x, y, w, pw):
        return jnp.mean(
            jnp.broadcast_to(w, x.shape) * _bce_logits_formula(x, y, jnp.broadcast_to(pw, x.shape))
        )

    args = (X, SOFT, WEIGHTS["per_class"], POS_WEIGHT)
    assert_close(
        jax.grad(fused, argnums=(0, 1, 2, 3))(*args), jax.grad(plain, argnums=(0, 1, 2, 3))(*args)
    )
    check_grads_x64(fused, *args)


def test_bce_logits_against_optax():
    for y in (Y, SOFT):
        assert_close(
            L.binary_cross_entropy_with_logits(X, y, reduction="none"),
            optax.losses.sigmoid_binary_cross_entropy(X, y),
            rtol=2e-6,
        )


def test_bce_logits_extreme_logits_are_exact_and_finite():
    x = np.array([1e4, -1e4, 1e4, -1e4, 100.0, -100.0, 0.0], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 0.3, 1.0], np.float32)
    pw = np.float32(3.0)
    out = L.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")
    want = (1 - f64(y)) * np.logaddexp(0, f64(x)) + 3.0 * f64(y) * np.logaddexp(0, -f64(x))
    assert_close(out, want)
    g = jax.grad(
        lambda a: L.binary_cross_entropy_with_logits(a, y, pos_weight=pw, reduction="sum")
    )(x)
    assert_finite(g)
    assert_close(g, torch_bce_logits_grad_input(f64(x), f64(y), 1.0, 3.0))
    # tiny losses keep their relative accuracy (no cancellation in (1 − y)·x − log σ(x))
    small = L.binary_cross_entropy_with_logits(np.float32(-30.0), np.float32(0.0))
    assert_close(small, np.log1p(np.exp(-30.0)), rtol=1e-5, atol=0)


def test_hand_backwards_are_used_through_custom_jvp():
    assert "custom_jvp" in str(jax.make_jaxpr(L.binary_cross_entropy_with_logits)(X, Y))
    assert "custom_jvp" in str(jax.make_jaxpr(L.binary_cross_entropy)(P, Y))


# -------------------------------------------------------------------------- hinge, focal
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_matches_formula_and_optax(reduction):
    pm = 2 * Y - 1
    got = L.hinge_loss(X, pm, reduction=reduction)
    assert_close(got, np_reduce(np.maximum(0, 1 - f64(pm) * f64(X)), reduction))
    if reduction == "none":
        assert_close(got, optax.losses.hinge_loss(X, pm))


def test_hinge_gradient_is_zero_at_the_kink():
    x = np.array([1.0, -1.0, 0.5, 2.0], np.float32)  # margins exactly 1 at the first two
    g = jax.grad(lambda a: L.hinge_loss(a, np.array([1.0, -1.0, 1.0, -1.0]), reduction="sum"))(x)
    assert_close(g, np.array([0.0, 0.0, -1.0, 1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1.0, 2.0), (0.6, 0.5), (0.25, 0.0)])
def test_sigmoid_focal_matches_torchvision(alpha, gamma, reduction):
    for y in (Y, SOFT):
        got = L.sigmoid_focal_loss(X, y, alpha=alpha, gamma=gamma, reduction=reduction)
        want = np_reduce(torchvision_focal(f64(X), f64(y), alpha, gamma), reduction)
        assert_close(got, want, rtol=2e-5)


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1.0, 1.5)])
def test_sigmoid_focal_against_optax(alpha, gamma):
    got = L.sigmoid_focal_loss(X, SOFT, alpha=alpha, gamma=gamma, reduction="none")
    want = optax.losses.sigmoid_focal_loss(X, SOFT, alpha=None if alpha < 0 else alpha, gamma=gamma)
    assert_close(got, want, rtol=2e-5)


@pytest.mark.parametrize("gamma", [2.0, 0.5, 0.0])
def test_sigmoid_focal_extreme_logits_finite(gamma):
    x = np.array([100.0, -100.0, 1e4, -1e4, 100.0, -1e4], np.float32)
    y = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 1.0], np.float32)
    out = L.sigmoid_focal_loss(x, y, gamma=gamma, reduction="none")
    g = jax.grad(lambda a: L.sigmoid_focal_loss(a, y, gamma=gamma, reduction="sum"))(x)
    assert_finite((out, g))
    assert_close(out[1], 0.25 * 100.0, rtol=1e-6)  # confidently wrong positive: α·|x|
    assert_close(out[5], 0.25 * 1e4, rtol=1e-6)
    assert float(out[0]) < 1e-30  # confidently right


def test_sigmoid_focal_gradient_finite_differences():
    for gamma in (2.0, 0.5):
        check_grads_x64(lambda a, y, gamma=gamma: L.sigmoid_focal_loss(a, y, gamma=gamma), X, SOFT)


# ------------------------------------------------------------------------------ errors
def test_bad_input_raises():
    with pytest.raises(ValueError, match="input and target must have the same shape"):
        L.binary_cross_entropy_with_logits(X, Y[..., :2])
    with pytest.raises(ValueError, match=r"binary_cross_entropy: weight must broadcast"):
        L.binary_cross_entropy(P, Y, np.ones(3))
    with pytest.raises(ValueError, match=r"pos_weight must broadcast .*pos_weight.shape=\(5,\)"):
        L.binary_cross_entropy_with_logits(X, Y, pos_weight=np.ones(5))
    with pytest.raises(ValueError, match="gamma must be >= 0, got gamma=-1"):
        L.sigmoid_focal_loss(X, Y, gamma=-1.0)
    with pytest.raises(ValueError, match="input and target must have the same shape"):
        L.hinge_loss(X, Y[0])
