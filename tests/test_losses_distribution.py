"""KL divergence and GAN losses against PyTorch's formulas (NumPy) and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import xlogy

import functional_dl.losses as L
from tests.helpers import assert_close, assert_finite
from tests.test_losses_common import np_reduce

rng = np.random.default_rng(0)
LOGQ = np.log(rng.dirichlet(np.ones(5), size=(2, 3))).astype(np.float32)  # [N=2, 3, C=5]
P = rng.dirichlet(np.ones(5), size=(2, 3)).astype(np.float32)
P[0, 0, :2] = 0.0  # zero target probabilities
LOGQ[0, 0, 0] = -np.inf  # ... where the model also gives probability 0


def torch_kl_div(x, t, reduction="mean", log_target=False):
    """aten kl_div: xlogy(t, t) − t·x, or exp(t)·(t − x); batchmean = sum / x.shape[0]."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    with np.errstate(invalid="ignore"):
        loss = np.exp(t) * (t - x) if log_target else xlogy(t, t) - t * x
    loss = np.where(t == (-np.inf if log_target else 0), 0.0, loss)  # our documented 0·(−inf)
    if reduction == "batchmean":
        return loss.sum() / x.shape[0]
    return np_reduce(loss, reduction)


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
def test_kl_div_matches_pytorch(reduction, log_target):
    with np.errstate(divide="ignore"):
        t = np.log(P) if log_target else P
    got = L.kl_div(LOGQ, t, log_target=log_target, reduction=reduction)
    assert_close(got, torch_kl_div(LOGQ, t, reduction, log_target), rtol=2e-6)
    assert_finite(got)
    grad = jax.grad(lambda x: L.kl_div(x, t, log_target=log_target, reduction="sum"))(LOGQ)
    assert_finite(grad)
    assert_close(grad, -P)  # d/dx = −target probability (0 where it is 0, −inf input or not)


def test_kl_div_against_optax_and_batchmean_is_the_true_kl():
    x, p = LOGQ[1], P[1]  # no zero-probability entries with −inf here
    assert_close(
        L.kl_div(x, p, reduction="none").sum(-1), optax.losses.kl_divergence(x, p), rtol=2e-6
    )
    assert_close(
        L.kl_div(x, np.log(p), log_target=True, reduction="none").sum(-1),
        optax.losses.kl_divergence_with_log_targets(x, np.log(p)),
        rtol=2e-6,
    )
    kl = np.sum(p * (np.log(p) - x), axis=-1).mean()
    assert_close(L.kl_div(x, p, reduction="batchmean"), kl, rtol=2e-6)
    assert_close(L.kl_div(x, p), kl / x.shape[-1], rtol=2e-6)  # 'mean' also divides by C


def test_kl_div_gradient_with_respect_to_target():
    t = P[1]
    got = jax.grad(lambda tt: L.kl_div(LOGQ[1], tt, reduction="sum"))(t)
    assert_close(got, np.log(t.astype(np.float64)) + 1 - LOGQ[1], rtol=2e-5)


def test_kl_div_bad_input():
    with pytest.raises(ValueError, match="input and target must have the same shape"):
        L.kl_div(LOGQ, P[0])
    with pytest.raises(ValueError, match=r"kl_div: reduction must be one of .*'batchmean'"):
        L.kl_div(LOGQ, P, reduction="batch")


# ---------------------------------------------------------------------------- GAN
def softplus(x):
    return np.logaddexp(0.0, np.asarray(x, np.float64))


REAL = (rng.normal(size=(4, 3)) * 3).astype(np.float32)
FAKE = (rng.normal(size=(4, 3)) * 3).astype(np.float32)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gan_losses_match_bce_formulas(reduction):
    # −log σ(r) − log(1 − σ(f)) = BCE(r, 1) + BCE(f, 0)
    got = L.gan_discriminator_loss(REAL, FAKE, reduction=reduction)
    if reduction == "none":
        want = softplus(-REAL) + softplus(FAKE)
    else:
        want = np_reduce(softplus(-REAL), reduction) + np_reduce(softplus(FAKE), reduction)
    assert_close(got, want, rtol=2e-6)
    assert_close(
        L.gan_generator_loss(FAKE, reduction=reduction),
        np_reduce(softplus(-FAKE), reduction),
        rtol=2e-6,
    )
    assert_close(
        L.gan_generator_loss(FAKE, non_saturating=False, reduction=reduction),
        np_reduce(-softplus(FAKE), reduction),
        rtol=2e-6,
    )
    bce = optax.losses.sigmoid_binary_cross_entropy
    if reduction == "none":
        assert_close(got, bce(REAL, jnp.ones_like(REAL)) + bce(FAKE, jnp.zeros_like(FAKE)))


def test_gan_batches_of_different_sizes_and_extreme_logits():
    got = L.gan_discriminator_loss(REAL, FAKE[:2])
    assert_close(got, softplus(-REAL).mean() + softplus(FAKE[:2]).mean(), rtol=2e-6)
    with pytest.raises(ValueError, match="real_logits and fake_logits must have the same shape"):
        L.gan_discriminator_loss(REAL, FAKE[:2], reduction="none")
    x = np.array([-1e4, 1e4, -100.0, 0.0], np.float32)
    for fn in (
        lambda a: L.gan_discriminator_loss(a, a),
        L.gan_generator_loss,
        lambda a: L.gan_generator_loss(a, non_saturating=False),
    ):
        assert_finite((fn(x), jax.grad(fn)(x)))


def test_non_saturating_generator_keeps_its_gradient_when_the_discriminator_wins():
    fake = np.array([-10.0], np.float32)  # the discriminator is confident: fake
    g_ns = jax.grad(lambda a: L.gan_generator_loss(a, reduction="sum"))(fake)
    g_sat = jax.grad(lambda a: L.gan_generator_loss(a, non_saturating=False, reduction="sum"))(fake)
    assert_close(g_ns, -1 / (1 + np.exp(-10.0)) * np.ones(1))  # −σ(−f) ≈ −1
    assert_close(g_sat, -1 / (1 + np.exp(10.0)) * np.ones(1))  # −σ(f) ≈ −4.5e-5
