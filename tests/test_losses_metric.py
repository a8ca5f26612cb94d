"""Metric-learning and segmentation losses against PyTorch's formulas (NumPy) and optax."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl.losses as L
from tests.helpers import assert_close, assert_finite
from tests.test_losses_common import np_reduce

REDUCTIONS = ["none", "mean", "sum"]
rng = np.random.default_rng(0)
A = rng.normal(size=(2, 3, 4)).astype(np.float32)  # [..., D]
B = rng.normal(size=(2, 3, 4)).astype(np.float32)
N = rng.normal(size=(2, 3, 4)).astype(np.float32)
A[0, 0] = 0.0  # zero vectors / coinciding points
B[0, 0] = 0.0
N[0, 0] = 0.0
SIGN = np.array([[1, -1, 1], [-1, -1, 1]])


def f64(a):
    return np.asarray(a, np.float64)


# ------------------------------------------------------------- cosine_embedding_loss
def torch_cosine_embedding(x1, x2, y, margin=0.0, reduction="mean"):
    eps = 1e-12  # aten: EPSILON added to each squared magnitude
    x1, x2 = f64(x1), f64(x2)
    cos = (x1 * x2).sum(-1) / np.sqrt(((x1 * x1).sum(-1) + eps) * ((x2 * x2).sum(-1) + eps))
    loss = np.where(y == 1, 1 - cos, 0) + np.where(y == -1, np.maximum(cos - margin, 0), 0)
    return np_reduce(loss, reduction)


@pytest.mark.parametrize("margin,reduction", list(itertools.product([0.0, 0.3], REDUCTIONS)))
def test_cosine_embedding_matches_pytorch(margin, reduction):
    got = L.cosine_embedding_loss(A, B, SIGN, margin=margin, reduction=reduction)
    assert_close(got, torch_cosine_embedding(A, B, SIGN, margin, reduction), rtol=2e-6)


def test_cosine_embedding_against_optax_and_zero_vectors():
    ones = np.ones((2, 3), int)
    got = L.cosine_embedding_loss(A[1], B[1], ones[1], reduction="none")
    assert_close(got, 1 - optax.losses.cosine_similarity(A[1], B[1]), rtol=2e-6)
    out = L.cosine_embedding_loss(A, B, SIGN, reduction="none")
    assert_close(out[0, 0], 1.0)  # zero vectors: cos = 0
    grads = jax.grad(lambda a, b: L.cosine_embedding_loss(a, b, SIGN), argnums=(0, 1))(A, B)
    assert_finite(grads)
    with pytest.raises(ValueError, match=r"target must have shape input1.shape\[:-1\]"):
        L.cosine_embedding_loss(A, B, SIGN[0])
    with pytest.raises(ValueError, match="input1 and input2 must have the same shape"):
        L.cosine_embedding_loss(A, B[..., :2], SIGN)


# --------------------------------------------------------------- triplet_margin_loss
def torch_triplet(a, pos, neg, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    def dist(x, y):  # aten pairwise_distance: norm(x − y + eps, p)
        return (np.abs(f64(x) - f64(y) + eps) ** p).sum(-1) ** (1 / p)

    d_neg = dist(a, neg)
    if swap:
        d_neg = np.minimum(d_neg, dist(pos, neg))
    return np_reduce(np.maximum(margin + dist(a, pos) - d_neg, 0), reduction)


TRIPLET_OPTIONS = [
    dict(),
    dict(p=1.0, margin=0.5),
    dict(p=3.0, eps=0.0),
    dict(swap=True),
    dict(p=1.5, swap=True, margin=2.0),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", TRIPLET_OPTIONS, ids=str)
def test_triplet_matches_pytorch(kw, reduction):
    got = L.triplet_margin_loss(A, B, N, reduction=reduction, **kw)
    assert_close(got, torch_triplet(A, B, N, reduction=reduction, **kw), rtol=2e-6)


def test_triplet_against_optax_and_coinciding_points():
    # optax adds eps inside the root (equal for eps = 0) and takes no absolute value
    # (a norm only for even degrees)
    got = L.triplet_margin_loss(A[1], B[1], N[1], eps=0.0, reduction="none")
    assert_close(got, optax.losses.triplet_margin_loss(A[1], B[1], N[1], eps=0.0), rtol=2e-6)
    for kw in TRIPLET_OPTIONS + [dict(eps=0.0)]:
        grads = jax.grad(
            lambda a, b, n, kw=kw: L.triplet_margin_loss(a, b, n, **kw), argnums=(0, 1, 2)
        )(A, B, N)
        assert_finite(grads, str(kw))


def test_triplet_bad_input():
    with pytest.raises(ValueError, match="triplet_margin_loss: p must be > 0, got p=0"):
        L.triplet_margin_loss(A, B, N, p=0.0)
    with pytest.raises(ValueError, match="p must be finite"):
        L.triplet_margin_loss(A, B, N, p=float("inf"))
    with pytest.raises(ValueError, match="anchor and negative must have the same shape"):
        L.triplet_margin_loss(A, B, N[..., :3])


# --------------------------------------------------------------- margin_ranking_loss
@pytest.mark.parametrize("margin,reduction", list(itertools.product([0.0, 0.5], REDUCTIONS)))
def test_margin_ranking_matches_pytorch(margin, reduction):
    x1, x2, y = A[..., 0], B[..., 0], SIGN.astype(np.float32)
    got = L.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction)
    want = np_reduce(np.maximum(-f64(y) * (f64(x1) - f64(x2)) + margin, 0), reduction)
    assert_close(got, want, rtol=2e-6)


def test_clamp_min_kinks_give_zero_gradient_as_pytorch():
    # max(0, z) written as clamp_min in PyTorch: the gradient at z = 0 is 0 (the
    # minimum-norm subgradient, as relu); just off the kink it is the full slope
    g1, g2 = jax.grad(
        lambda a, b: L.margin_ranking_loss(a, b, np.array([1.0, -1.0, 1.0]), reduction="sum"),
        argnums=(0, 1),
    )(np.array([1.0, 2.0, 1.0]), np.array([1.0, 2.0, 1.5]))
    assert_close(g1, np.array([0.0, 0.0, -1.0]))
    assert_close(g2, np.array([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="input1 and target must have the same shape"):
        L.margin_ranking_loss(A[..., 0], B[..., 0], SIGN[0])


def test_cosine_embedding_zero_vector_dissimilar_pair_has_no_gradient():
    # cos(0, x2) = 0 = margin: the kink, where PyTorch's clamp_min gives 0 (and the
    # slope there would be of order 1/sqrt(1e-12) = 1e6)
    x1 = np.zeros((2, 3))
    x2 = np.array([[0.3, -1.2, 0.5], [0.6, 0.8, 0.0]])
    y = np.array([-1.0, -1.0])
    g1, g2 = jax.grad(
        lambda a, b: L.cosine_embedding_loss(a, b, y, reduction="sum"), argnums=(0, 1)
    )(x1, x2)
    assert_close(g1, np.zeros((2, 3)))
    assert_close(g2, np.zeros((2, 3)))
    # a positive margin leaves the zero vector inside the hinge's flat part as well
    g = jax.grad(lambda a: L.cosine_embedding_loss(a, x2, y, margin=0.2, reduction="sum"))(x1)
    assert_close(g, np.zeros((2, 3)))


def test_triplet_margin_kink_gives_zero_gradient():
    # d(a, pos) = 1, d(a, neg) = 2 with eps = 0: margin 1 + 1 − 2 = 0, the kink
    a, pos, neg = np.zeros((1, 2)), np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    for fn in (
        lambda *v, m: L.triplet_margin_loss(*v, margin=m, eps=0.0, reduction="sum"),
        lambda *v, m: L.triplet_margin_with_distance_loss(
            *v, margin=m, distance_function=lambda x, y: jnp.sqrt(((x - y) ** 2).sum(-1))
        ),
    ):
        for g in jax.grad(functools.partial(fn, m=1.0), argnums=(0, 1, 2))(a, pos, neg):
            assert_close(g, np.zeros((1, 2)))
        # inside the hinge: u(x, y) = (x − y)/‖x − y‖, da = u(a, pos) − u(a, neg)
        da, dpos, dneg = jax.grad(functools.partial(fn, m=1.5), argnums=(0, 1, 2))(a, pos, neg)
        assert_close(da, np.array([[-1.0, 1.0]]))
        assert_close(dpos, np.array([[1.0, 0.0]]))
        assert_close(dneg, np.array([[0.0, -1.0]]))


# ------------------------------------------------------------------------- dice_loss
def dice_reference(x, t, smooth=1.0, reduction="mean"):
    axes = tuple(range(1, x.ndim - 1))
    x, t = f64(x), f64(t)
    inter, union = (x * t).sum(axes), x.sum(axes) + t.sum(axes)
    return np_reduce(1 - (2 * inter + smooth) / (union + smooth), reduction)


PROBS = jax.nn.softmax(rng.normal(size=(2, 4, 4, 3)) * 2, axis=-1).astype(np.float32)
MASKS = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=(2, 4, 4))]


@pytest.mark.parametrize("smooth,reduction", list(itertools.product([1.0, 1e-3], REDUCTIONS)))
def test_dice_matches_formula_and_optax(smooth, reduction):
    got = L.dice_loss(PROBS, MASKS, smooth=smooth, reduction=reduction)
    assert got.shape == ((2, 3) if reduction == "none" else ())
    assert_close(got, dice_reference(PROBS, MASKS, smooth, reduction), rtol=2e-5)
    if reduction == "none":
        want = optax.losses.dice_loss(
            PROBS, MASKS, smooth=smooth / 2, apply_softmax=False, reduction="none"
        )
        assert_close(got, want, rtol=2e-5)


def test_dice_empty_class_and_bad_input():
    empty = np.zeros((1, 4, 2), np.float32)
    assert_close(L.dice_loss(empty, empty), 0.0)
    assert_finite(jax.grad(lambda x: L.dice_loss(x, empty))(empty))
    with pytest.raises(ValueError, match=r"dice_loss: input must have rank one of"):
        L.dice_loss(jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match="smooth must be >= 0"):
        L.dice_loss(PROBS, MASKS, smooth=-1.0)
