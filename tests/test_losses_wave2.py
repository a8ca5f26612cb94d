"""poisson/gaussian NLL, hinge embedding, soft margin, multilabel margins and the triplet
loss with a distance: NumPy references written here (PyTorch's formulas), gradients
three ways (hand rule = gradient of the public function = autodiff of the plain formula,
and finite differences), reductions, weights, dtypes, bad arguments."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from tests.helpers import assert_close, assert_eager_jit_vmap

L = fdl.losses
NAMES = (
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multilabel_margin_loss",
    "triplet_margin_with_distance_loss",
)
ENTRIES = [n for n in fdl.grads.registry() if n.split("(")[0] in NAMES]


# ------------------------------------------------------------------ NumPy references
def np_poisson(x, y, log_input=True, full=False, eps=1e-8):
    loss = np.exp(x) - y * x if log_input else x - y * np.log(x + eps)
    if full:
        with np.errstate(divide="ignore", invalid="ignore"):
            stirling = y * np.log(y) - y + 0.5 * np.log(2 * np.pi * y)
        loss = loss + np.where(y > 1, stirling, 0.0)
    return loss


def np_gaussian(x, y, var, full=False, eps=1e-6):
    v = np.maximum(var, eps)
    loss = 0.5 * (np.log(v) + (x - y) ** 2 / v)
    return loss + 0.5 * np.log(2 * np.pi) if full else loss


def np_hinge_embedding(x, y, margin=1.0):
    return np.where(y != 1, np.maximum(0, margin - x), 0) + np.where(y != -1, x, 0)


def np_multilabel_margin(x, target):
    """PyTorch's CPU kernel, loop for loop."""
    x, target = np.atleast_2d(x), np.atleast_2d(target)
    n, c = x.shape
    out = np.zeros(n)
    for i in range(n):
        targets = []
        for t in target[i]:
            if t < 0:
                break
            targets.append(t)
        is_target = np.zeros(c, bool)
        is_target[targets] = True
        for j in targets:
            for k in range(c):
                if not is_target[k]:
                    out[i] += max(0.0, 1 - x[i, j] + x[i, k])
    return out / c


def _rand(seed, *shape):
    return np.random.default_rng(seed).normal(size=shape)


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_loss(log_input, full):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5)) if log_input else rng.uniform(0, 3, (3, 5))
    x.flat[0] = 0.0  # log(0 + eps) without log_input
    y = rng.integers(0, 5, (3, 5)).astype(float)  # 0, 1 (no Stirling term) and > 1
    got = L.poisson_nll_loss(x, y, log_input=log_input, full=full, reduction="none")
    assert_close(got, np_poisson(x, y, log_input, full), rtol=1e-5, atol=1e-5)
    assert_close(
        L.poisson_nll_loss(x, y, log_input=log_input, full=full),
        np_poisson(x, y, log_input, full).mean(),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "var_shape", [(4, 3), (4,), (4, 1), ()], ids=["same", "no-last", "last-1", "scalar"]
)
def test_gaussian_nll_loss_var_shapes(var_shape):
    x, y = _rand(1, 4, 3), _rand(2, 4, 3)
    var = np.random.default_rng(3).uniform(0.2, 2, var_shape)
    var_b = var[..., None] if var_shape == (4,) else var
    for full in (False, True):
        got = L.gaussian_nll_loss(x, y, var, full=full, reduction="none")
        assert got.shape == (4, 3)
        assert_close(got, np_gaussian(x, y, np.broadcast_to(var_b, (4, 3)), full), rtol=1e-5)
    assert_close(
        L.gaussian_nll_loss(x, y, var, reduction="sum"), np_gaussian(x, y, var_b).sum(), rtol=1e-5
    )


def test_gaussian_nll_loss_clamps_var_without_gradient():
    x, y, var = np.array([1.0, 2.0]), np.array([0.0, 0.0]), np.array([0.0, 1e-9])
    got = L.gaussian_nll_loss(x, y, var, eps=1e-3, reduction="none")
    assert_close(got, np_gaussian(x, y, var, eps=1e-3), rtol=1e-5)
    # PyTorch clamps under no_grad: the gradient flows to var as if it were 1e-3
    g = jax.grad(lambda v: L.gaussian_nll_loss(x, y, v, eps=1e-3, reduction="sum"))(var)
    v = 1e-3
    assert_close(g, 0.5 * (1 / v - (x - y) ** 2 / v**2), rtol=1e-5)


def test_hinge_embedding_loss_and_other_labels():
    x = np.array([0.3, 0.3, -0.5, 2.0, 0.4])
    y = np.array([1.0, -1.0, -1.0, -1.0, 0.0])  # 0: both terms, as PyTorch
    for margin in (1.0, 0.5):
        got = L.hinge_embedding_loss(x, y, margin=margin, reduction="none")
        assert_close(got, np_hinge_embedding(x, y, margin))
    assert_close(L.hinge_embedding_loss(x, y), np_hinge_embedding(x, y).mean())
    # the kink margin − x = 0 has slope 0 (PyTorch's clamp_min); inside the hinge −1
    g = jax.grad(lambda v: L.hinge_embedding_loss(v, -jnp.ones(2), reduction="sum"))(
        jnp.array([1.0, 0.999])
    )
    assert_close(g, [0.0, -1.0])


def test_soft_margin_loss_extremes():
    x = np.array([0.0, 2.0, -3.0, 1e4, -1e4])
    y = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    got = L.soft_margin_loss(x, y, reduction="none")
    assert_close(got, [math.log(2), math.log1p(math.exp(2)), math.log1p(math.exp(3)), 1e4, 0.0])
    g = jax.grad(lambda v: L.soft_margin_loss(v, y, reduction="sum"))(jnp.asarray(x))
    assert np.all(np.isfinite(g))
    assert_close(g, -y * 0.5 * (1 - np.tanh(y * x / 2)))  # −y·σ(−y·x)


def test_multilabel_soft_margin_loss_with_weight():
    x, y = _rand(4, 3, 5) * 2, np.random.default_rng(5).integers(0, 2, (3, 5)).astype(float)
    w = np.random.default_rng(6).uniform(0.5, 2, 5)
    log_sig = lambda z: -np.logaddexp(0, -z)  # noqa: E731
    ref = -(y * log_sig(x) + (1 - y) * log_sig(-x))
    for weight, scale in ((None, 1.0), (w, w)):
        per = (ref * scale).sum(-1) / 5
        got = L.multilabel_soft_margin_loss(x, y, weight, reduction="none")
        assert_close(got, per, rtol=1e-5)
        assert_close(L.multilabel_soft_margin_loss(x, y, weight), per.mean(), rtol=1e-5)
    # equals binary_cross_entropy_with_logits summed over classes / C
    bce = L.binary_cross_entropy_with_logits(x, y, weight=w, reduction="none").sum(-1) / 5
    assert_close(L.multilabel_soft_margin_loss(x, y, w, reduction="none"), bce, rtol=1e-5)


def test_multilabel_margin_loss_pytorch_example_and_reference():
    x = np.array([[0.1, 0.2, 0.4, 0.8]])
    assert_close(L.multilabel_margin_loss(x, np.array([[3, 0, -1, 1]])), 0.85)
    x = _rand(7, 5, 6)
    target = np.array(
        [
            [3, 0, -1, 1, 2, 2],  # entries after -1 ignored
            [1, 1, 4, -1, 0, 0],  # a repeated class counts twice
            [0, 1, 2, 3, 4, 5],  # every class a target: 0
            [-1, 2, 2, 2, 2, 2],  # no target: 0
            [5, -1, -1, -1, -1, -1],
        ]
    )
    got = L.multilabel_margin_loss(x, target, reduction="none")
    assert_close(got, np_multilabel_margin(x, target), rtol=1e-5)
    one = L.multilabel_margin_loss(x[0], target[0], reduction="none")  # 1-D input
    assert one.shape == () and np.isclose(one, np_multilabel_margin(x[0], target[0])[0])


def test_triplet_with_distance_default_is_triplet_margin_loss():
    a, p, n = _rand(8, 6, 4), _rand(9, 6, 4), _rand(10, 6, 4)
    for swap in (False, True):
        got = L.triplet_margin_with_distance_loss(a, p, n, swap=swap, reduction="none")
        want = L.triplet_margin_loss(a, p, n, swap=swap, reduction="none")
        assert_close(got, want, rtol=1e-5)
        d = lambda u, v: np.linalg.norm(u - v + 1e-6, axis=-1)  # noqa: E731
        neg = np.minimum(d(a, n), d(p, n)) if swap else d(a, n)
        assert_close(got, np.maximum(0, 1.0 + d(a, p) - neg), rtol=1e-5)


def test_triplet_with_custom_distance():
    a, p, n = _rand(11, 5, 3), _rand(12, 5, 3), _rand(13, 5, 3)

    def cosine_distance(u, v):
        return 1 - jnp.sum(u * v, -1) / (jnp.linalg.norm(u, axis=-1) * jnp.linalg.norm(v, axis=-1))

    def np_cos(u, v):
        return 1 - (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))

    got = L.triplet_margin_with_distance_loss(
        a, p, n, distance_function=cosine_distance, margin=0.5, swap=True, reduction="none"
    )
    want = np.maximum(0, 0.5 + np_cos(a, p) - np.minimum(np_cos(a, n), np_cos(p, n)))
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    # gradient: autodiff of the distance, hand-derived hinge
    g = jax.grad(
        lambda v: L.triplet_margin_with_distance_loss(
            v, p, n, distance_function=cosine_distance, reduction="sum"
        )
    )(jnp.asarray(a))
    active = (1.0 + np_cos(a, p) - np_cos(a, n)) > 0
    g_ref = jax.grad(lambda v: jnp.sum(active * (cosine_distance(v, p) - cosine_distance(v, n))))(
        jnp.asarray(a)
    )
    assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ gradients
def _to64(args):
    return tuple(
        jnp.asarray(a, jnp.float64) if np.issubdtype(np.asarray(a).dtype, np.floating) else a
        for a in args
    )


@pytest.mark.parametrize("name", ENTRIES)
def test_public_gradient_is_the_hand_rule(name):
    """jax.vjp of the public function = the registered hand vjp = autodiff of the formula."""
    entry = fdl.grads.registry()[name]
    assert entry.public is not None
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for args in [*entry.examples(), *(entry.fd_examples or entry.examples)()]:
            args = _to64(args)
            primals = [args[i] for i in entry.argnums]

            def with_diff(fn, args=args):
                def f(*diff):
                    full = list(args)
                    for i, d in zip(entry.argnums, diff, strict=True):
                        full[i] = d
                    return fn(*full)

                return f

            g = jnp.asarray(rng.normal(size=np.shape(jax.eval_shape(entry.forward, *args))))

            @jax.jit
            def three(primals, g, with_diff=with_diff, args=args):
                out, vjp_public = jax.vjp(with_diff(entry.public), *primals)
                ref_out, vjp_plain = jax.vjp(with_diff(entry.forward), *primals)
                hand = entry.backward(*_replace(args, entry.argnums, primals), g)
                hand = hand if isinstance(hand, tuple) else (hand,)
                return out, ref_out, vjp_public(g), hand, vjp_plain(g)

            out, ref_out, public, hand, plain = three(primals, g)
            np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
            for a, b, c in zip(public, hand, plain, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
                np.testing.assert_allclose(b, c, rtol=1e-9, atol=1e-12)


def _replace(args, argnums, primals):
    full = list(args)
    for i, d in zip(argnums, primals, strict=True):
        full[i] = d
    return full


@pytest.mark.parametrize("name", ENTRIES)
def test_registered_entries_pass_finite_differences(name):
    assert fdl.grads.check(name).passed


# ------------------------------------------------------------ reductions and dtypes
def _cases():
    x, y = _rand(20, 4, 5), _rand(21, 4, 5)
    pm = np.sign(_rand(22, 4, 5))
    labels = np.array([[1, 0, -1, 2, 3]] * 4)
    return {
        "poisson_nll_loss": (L.poisson_nll_loss, (x, np.abs(y) * 3)),
        "gaussian_nll_loss": (L.gaussian_nll_loss, (x, y, np.abs(y) + 0.1)),
        "hinge_embedding_loss": (L.hinge_embedding_loss, (x, pm)),
        "soft_margin_loss": (L.soft_margin_loss, (x, pm)),
        "multilabel_soft_margin_loss": (L.multilabel_soft_margin_loss, (x, (pm > 0) * 1.0)),
        "multilabel_margin_loss": (L.multilabel_margin_loss, (x, labels)),
        "triplet_margin_with_distance_loss": (
            L.triplet_margin_with_distance_loss,
            (x, y, _rand(23, 4, 5)),
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("name", NAMES)
def test_reductions_jit_vmap(name):
    fn, args = CASES[name]
    none = np.asarray(fn(*args, reduction="none"), np.float64)
    assert_close(fn(*args, reduction="sum"), none.sum(), rtol=1e-5)
    assert_close(fn(*args), none.mean(), rtol=1e-5)
    assert_eager_jit_vmap(lambda *a: fn(*a, reduction="none"), *map(jnp.asarray, args))
    with pytest.raises(ValueError, match="reduction"):
        fn(*args, reduction="avg")


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_computed_in_float32(name, dtype):
    fn, args = CASES[name]
    half = [jnp.asarray(a, dtype) if np.asarray(a).dtype.kind == "f" else a for a in args]
    up = [a.astype(jnp.float32) if hasattr(a, "dtype") and a.dtype == dtype else a for a in half]
    got = fn(*half, reduction="none")
    assert got.dtype == dtype
    np.testing.assert_array_equal(
        np.asarray(got, np.float32), np.asarray(fn(*up, reduction="none").astype(dtype), np.float32)
    )


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_nan_out(name):
    fn, args = CASES[name]
    x = np.array(args[0], copy=True)
    x[1, 2] = np.nan
    out = np.asarray(fn(x, *args[1:], reduction="none"))
    row = out[1] if out.ndim == 1 else out[1, 2]
    assert np.isnan(row)
    assert np.isfinite(out[0]).all()


# ------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "call,exc,word",
    [
        (lambda: L.poisson_nll_loss(np.zeros(3), np.zeros(4)), ValueError, "target"),
        (
            lambda: L.poisson_nll_loss(np.zeros(3), np.zeros(3), log_input="yes"),
            ValueError,
            "log_input",
        ),
        (lambda: L.poisson_nll_loss(np.zeros(3), np.zeros(3), eps=-1.0), ValueError, "eps"),
        (
            lambda: L.gaussian_nll_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3)),
            ValueError,
            "var",
        ),
        (lambda: L.gaussian_nll_loss(np.zeros(3), np.zeros(3), -np.ones(3)), ValueError, "var"),
        (
            lambda: L.gaussian_nll_loss(np.zeros(3), np.zeros(3), np.ones(3), full=2),
            ValueError,
            "full",
        ),
        (lambda: L.soft_margin_loss(np.zeros(3, int), np.zeros(3)), TypeError, "input"),
        (
            lambda: L.multilabel_soft_margin_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(4)),
            ValueError,
            "weight",
        ),
        (lambda: L.multilabel_margin_loss(np.zeros((2, 3)), np.zeros((2, 3))), TypeError, "target"),
        (
            lambda: L.multilabel_margin_loss(np.zeros((2, 3)), np.zeros((2, 2), int)),
            ValueError,
            "target",
        ),
        (
            lambda: L.multilabel_margin_loss(np.zeros((2, 3)), np.full((2, 3), 3)),
            ValueError,
            "target",
        ),
        (
            lambda: L.multilabel_margin_loss(np.zeros((2, 3, 4)), np.zeros((2, 3, 4), int)),
            ValueError,
            "input",
        ),
        (
            lambda: L.triplet_margin_with_distance_loss(*np.zeros((3, 2, 4)), margin=0.0),
            ValueError,
            "margin",
        ),
        (
            lambda: L.triplet_margin_with_distance_loss(*np.zeros((3, 2, 4)), distance_function=3),
            TypeError,
            "distance_function",
        ),
        (
            lambda: L.triplet_margin_with_distance_loss(
                *np.zeros((3, 2, 4)), distance_function=lambda u, v: u - v
            ),
            ValueError,
            "distance_function",
        ),
        (
            lambda: L.triplet_margin_with_distance_loss(
                np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 3))
            ),
            ValueError,
            "negative",
        ),
    ],
)
def test_bad_arguments_name_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
