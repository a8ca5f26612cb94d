"""hardshrink, softshrink, tanhshrink, threshold, softmin, rrelu, gumbel_softmax: NumPy
references (PyTorch's formulas), PyTorch's kink derivatives, gradients three ways, dtypes,
bad arguments, rrelu train/eval and the Gumbel-softmax distribution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from tests.helpers import assert_close, assert_eager_jit_vmap

A = fdl.activations
NAMES = (
    "hardshrink",
    "softshrink",
    "tanhshrink",
    "threshold",
    "softmin",
    "rrelu",
    "gumbel_softmax",
)
ENTRIES = [n for n in fdl.grads.registry() if n.split("(")[0] in NAMES]
X = np.concatenate([np.linspace(-3, 3, 13), [0.5, -0.5, 1.0, 1e4, -1e4]])


# ------------------------------------------------------------------ NumPy references
def np_hardshrink(x, l=0.5):
    return np.where((x >= -l) & (x <= l), 0.0, x)


def np_softshrink(x, l=0.5):
    return np.where(x > l, x - l, np.where(x < -l, x + l, 0.0))


def np_softmin(x, axis=-1):
    e = np.exp(-(x - x.min(axis, keepdims=True)))
    return e / e.sum(axis, keepdims=True)


ELEMENTWISE = {
    "hardshrink": (lambda x: A.hardshrink(x, lambd=1.0), lambda x: np_hardshrink(x, 1.0)),
    "softshrink": (lambda x: A.softshrink(x, lambd=1.0), lambda x: np_softshrink(x, 1.0)),
    "tanhshrink": (A.tanhshrink, lambda x: x - np.tanh(x)),
    "threshold": (lambda x: A.threshold(x, 1.0, -5.0), lambda x: np.where(x <= 1.0, -5.0, x)),
    "rrelu_eval": (
        lambda x: A.rrelu(None, x, lower=0.1, upper=0.3),
        lambda x: np.where(x > 0, x, 0.2 * x),
    ),
}
# PyTorch's derivative at the kinks (the one-sided value of its backward kernel)
KINK_GRADS = {
    "hardshrink": ([-1.0, 1.0], [0.0, 0.0]),
    "softshrink": ([-1.0, 1.0], [0.0, 0.0]),
    "threshold": ([1.0], [0.0]),
    "rrelu_eval": ([0.0], [0.2]),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_values_and_derivative(name):
    fn, ref = ELEMENTWISE[name]
    assert_close(fn(jnp.asarray(X, jnp.float32)), ref(X).astype(np.float32), rtol=1e-6)
    # derivative: the hand rule against central differences away from the kinks
    with jax.enable_x64(True):
        x = jnp.asarray(np.linspace(-3, 3, 25) + 0.123)
        g = jax.vmap(jax.grad(fn))(x)
        h = 1e-6
        fd = (ref(np.asarray(x) + h) - ref(np.asarray(x) - h)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
        # forward mode uses the same custom JVP
        np.testing.assert_allclose(jax.jvp(fn, (x,), (jnp.ones_like(x),))[1], g)
    if name in KINK_GRADS:
        points, want = KINK_GRADS[name]
        got = jax.vmap(jax.grad(fn))(jnp.asarray(points, jnp.float32))
        assert_close(got, want)


def test_softmin_against_numpy_and_mask():
    x = np.random.default_rng(0).normal(size=(3, 5)) * 3
    assert_close(A.softmin(x), np_softmin(x), rtol=1e-6)
    assert_close(A.softmin(x, axis=0), np_softmin(x, axis=0), rtol=1e-6)
    where = np.array([True, False, True, True, False])
    got = A.softmin(x, where=np.broadcast_to(where, x.shape))
    ref = np_softmin(np.where(where, x, np.inf))
    assert_close(got, ref, rtol=1e-6, atol=1e-7)
    assert_close(A.softmin(x), A.softmax(-x))


# ------------------------------------------------------------------------ gradients
def _to64(args):
    return tuple(jnp.asarray(a, jnp.float64) for a in args)


@pytest.mark.parametrize("name", ENTRIES)
def test_public_gradient_is_the_hand_rule(name):
    """jax.vjp of the public function = the hand vjp = autodiff of the plain formula
    (finite differences: ``fdl.grads.check`` below)."""
    entry = fdl.grads.registry()[name]
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for args in [*entry.examples(), *(entry.fd_examples or entry.examples)()]:
            (x,) = _to64(args)
            g = jnp.asarray(rng.normal(size=x.shape))

            @jax.jit
            def three(x, g):
                out, vjp_public = jax.vjp(entry.public, x)
                ref, vjp_plain = jax.vjp(entry.forward, x)
                return out, ref, vjp_public(g)[0], entry.backward(x, g), vjp_plain(g)[0]

            out, ref, public, hand, plain = three(x, g)
            np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(public, hand, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(hand, plain, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "name", [n for n in ENTRIES if n.startswith(("softmin", "gumbel", "rrelu(t"))]
)
def test_registered_entries_pass_finite_differences(name):
    """The entries the elementwise test above does not difference by hand."""
    assert fdl.grads.check(name).passed


# ------------------------------------------------------------ dtypes, NaN, jit/vmap
def _calls():
    key = jax.random.key(3)
    return {
        "hardshrink": A.hardshrink,
        "softshrink": A.softshrink,
        "tanhshrink": A.tanhshrink,
        "threshold": lambda x: A.threshold(x, 0.1, 2.0),
        "softmin": A.softmin,
        "rrelu": lambda x: A.rrelu(key, x, training=True),
        "gumbel_softmax": lambda x: A.gumbel_softmax(key, x, tau=0.7),
    }


CALLS = _calls()


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_computed_in_float32(name, dtype):
    fn = CALLS[name]
    x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4)), dtype)
    got = fn(x)
    assert got.dtype == dtype
    want = fn(x.astype(jnp.float32)).astype(dtype)
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_nan_out_and_jit_vmap(name):
    fn = CALLS[name]
    x = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    x[1, 2] = np.nan
    out = np.asarray(fn(x))
    assert np.isnan(out[1, 2]) and np.all(np.isfinite(out[0]))
    assert_eager_jit_vmap(fn, jnp.asarray(np.nan_to_num(x)))


# ---------------------------------------------------------------------------- rrelu
def test_rrelu_train_and_eval():
    x = jnp.asarray(np.linspace(-4, 4, 4001), jnp.float32)
    key = jax.random.key(0)
    y = A.rrelu(key, x, lower=0.1, upper=0.4, training=True)
    neg = x < 0
    slopes = np.asarray(y / x)[np.asarray(neg)]
    assert np.all((slopes >= 0.1) & (slopes <= 0.4))
    assert slopes.std() > 0.05  # one slope per element
    assert abs(slopes.mean() - 0.25) < 0.01
    np.testing.assert_array_equal(np.asarray(y)[~np.asarray(neg)], np.asarray(x)[~np.asarray(neg)])
    # same key, same result; another key, another result
    np.testing.assert_array_equal(y, A.rrelu(key, x, lower=0.1, upper=0.4, training=True))
    assert not np.array_equal(y, A.rrelu(jax.random.key(1), x, lower=0.1, upper=0.4, training=True))
    # the gradient is the sampled slope (PyTorch's noise), also at 0
    g = jax.grad(lambda v: jnp.sum(A.rrelu(key, v, lower=0.1, upper=0.4, training=True)))(x)
    assert_close(np.asarray(g)[np.asarray(neg)], slopes, rtol=1e-5)
    # eval: slope (lower + upper) / 2 and the key unused
    assert_close(A.rrelu(None, x, lower=0.1, upper=0.4), np.where(x > 0, x, 0.25 * x))
    assert_close(A.rrelu(key, x), A.rrelu(None, x))


# ------------------------------------------------------------------- gumbel_softmax
@pytest.mark.parametrize("tau", [0.3, 3.0])
def test_gumbel_softmax_argmax_follows_softmax_of_logits(tau):
    """The argmax of a sample is distributed as softmax(logits), whatever tau; sampling
    from softmax(logits / tau) would fail these bounds."""
    logits = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.4]))
    n = 20000
    y = A.gumbel_softmax(jax.random.key(7), jnp.broadcast_to(logits, (n, 4)), tau=tau)
    freq = np.bincount(np.asarray(jnp.argmax(y, -1)), minlength=4) / n
    p = np.array([0.1, 0.2, 0.3, 0.4])
    bound = 5 * np.sqrt(p * (1 - p) / n)  # 5 standard errors
    assert np.all(np.abs(freq - p) < bound), (freq, p)
    wrong = np.exp(np.log(p) / tau) / np.exp(np.log(p) / tau).sum()
    assert np.any(np.abs(freq - wrong) > 5 * bound)
    assert_close(np.asarray(y).sum(-1), np.ones(n), atol=1e-5)


def test_gumbel_softmax_hard_is_straight_through():
    logits = jnp.asarray(np.random.default_rng(4).normal(size=(8, 5)), jnp.float32)
    key = jax.random.key(5)
    soft = A.gumbel_softmax(key, logits, tau=0.5)
    hard = A.gumbel_softmax(key, logits, tau=0.5, hard=True)
    want = np.eye(5)[np.argmax(np.asarray(soft), -1)]
    np.testing.assert_array_equal(np.asarray(hard), want)  # exactly one-hot
    w = jnp.asarray(np.random.default_rng(6).normal(size=(8, 5)), jnp.float32)
    g_soft = jax.grad(lambda v: jnp.sum(w * A.gumbel_softmax(key, v, tau=0.5)))(logits)
    g_hard = jax.grad(lambda v: jnp.sum(w * A.gumbel_softmax(key, v, tau=0.5, hard=True)))(logits)
    assert_close(g_hard, g_soft)
    # the soft sample's gradient, by hand: y·(w − Σ w·y)/tau
    y = np.asarray(soft)
    assert_close(g_soft, y * (w - (w * y).sum(-1, keepdims=True)) / 0.5, rtol=1e-5, atol=1e-6)
    # axis: the same sample transposed
    hard_t = A.gumbel_softmax(key, logits.T, tau=0.5, hard=True, axis=0)
    assert np.all(np.asarray(hard_t).sum(0) == 1)


def test_threshold_replacement_value_may_be_infinite():
    # PyTorch accepts value=±inf: threshold(x, t, -inf) masks logits for a softmax
    x = jnp.array([-1.0, 0.5, 2.0, 3.0])
    got = A.threshold(x, 0.5, -jnp.inf)
    np.testing.assert_array_equal(np.asarray(got), np.array([-np.inf, -np.inf, 2.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(A.threshold(x, 2.5, np.inf))[:3], np.full(3, np.inf))
    p = A.softmax(got)
    e = np.exp(np.array([2.0, 3.0]) - 3.0)
    np.testing.assert_allclose(np.asarray(p), np.r_[0.0, 0.0, e / e.sum()], rtol=1e-6)
    g = jax.grad(lambda v: jnp.sum(A.threshold(v, 0.5, -jnp.inf) * jnp.arange(4.0)))(x)
    np.testing.assert_array_equal(np.asarray(g), np.array([0.0, 0.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="value"):
        A.threshold(x, 0.5, jnp.nan)


# ------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "call,exc,word",
    [
        (lambda: A.softshrink(jnp.ones(2), lambd=-0.1), ValueError, "lambd"),
        (lambda: A.hardshrink(jnp.ones(2), lambd="a"), TypeError, "lambd"),
        (lambda: A.threshold(jnp.ones(2), jnp.inf, 0.0), ValueError, "threshold"),
        (lambda: A.threshold(jnp.ones(2), 0.0, "v"), TypeError, "value"),
        (lambda: A.softmin(jnp.ones(2), axis=3), ValueError, "axis"),
        (lambda: A.rrelu(None, jnp.ones(2), lower=0.5, upper=0.1), ValueError, "lower"),
        (lambda: A.rrelu(None, jnp.ones(2), training=True), TypeError, "key"),
        (lambda: A.rrelu(None, jnp.ones(2), training="yes"), ValueError, "training"),
        (lambda: A.gumbel_softmax(jax.random.key(0), jnp.ones(2), tau=0.0), ValueError, "tau"),
        (lambda: A.gumbel_softmax(jax.random.key(0), jnp.ones(2), axis=1), ValueError, "axis"),
        (lambda: A.gumbel_softmax(jax.random.key(0), jnp.ones(2), hard=2), ValueError, "hard"),
        (lambda: A.gumbel_softmax(None, jnp.ones(2)), TypeError, "key"),
        (lambda: A.gumbel_softmax(jax.random.key(0), jnp.ones(())), ValueError, "logits"),
    ],
)
def test_bad_arguments_name_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
