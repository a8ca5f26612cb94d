"""nn.functional dense / normalisation / dropout / embedding ops against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl.nn.functional as F
from tests.helpers import FLOAT_DTYPES, assert_close, assert_eager_jit_vmap, assert_finite, fast_key

RNG = np.random.default_rng(0)


def np_layer_norm(x, w, b, eps):
    """Textbook layer norm over the last axis, in float64."""
    x = np.asarray(x, np.float64)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_rms_norm(x, w, eps):
    x = np.asarray(x, np.float64)
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * w


def np_group_norm(x, g, w, b, eps):
    """PyTorch's group norm on NHWC: statistics per (sample, group) over H, W, C/g."""
    x = np.asarray(x, np.float64)
    n, c = x.shape[0], x.shape[-1]
    out = np.empty_like(x)
    for i in range(n):
        for k in range(g):
            sl = (i, Ellipsis, slice(k * c // g, (k + 1) * c // g))
            v = x[sl]
            out[sl] = (v - v.mean()) / np.sqrt(v.var() + eps)
    return out * w + b


# ---------------------------------------------------------------- linear


def test_linear_matches_numpy():
    x, w, b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((4, 5)), RNG.standard_normal(5)
    expected = np.einsum("nti,io->nto", x, w) + b
    assert_close(
        F.linear(
            jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)
        ),
        expected,
    )
    assert_close(F.linear(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)), expected - b)


def test_linear_bad_shapes():
    with pytest.raises(ValueError, match=r"linear: .*x.shape=\(2, 3\).*w.shape=\(4, 5\)"):
        F.linear(jnp.ones((2, 3)), jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"b must have shape \(5,\)"):
        F.linear(jnp.ones((2, 4)), jnp.ones((4, 5)), jnp.ones(4))
    with pytest.raises(ValueError, match="w must have rank 2"):
        F.linear(jnp.ones((2, 4)), jnp.ones(4))
    with pytest.raises(TypeError, match="x must be a floating array"):
        F.linear(jnp.ones((2, 4), jnp.int32), jnp.ones((4, 5)))


# ---------------------------------------------------------------- layer / rms / group norm


def test_layer_norm_matches_textbook_and_jax_standardize():
    x, w, b = RNG.standard_normal((4, 7)), RNG.standard_normal(7), RNG.standard_normal(7)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    assert_close(F.layer_norm(f32(x), f32(w), f32(b)), np_layer_norm(x, w, b, 1e-5))
    assert_close(F.layer_norm(f32(x), eps=1e-3), jax.nn.standardize(f32(x), axis=-1, epsilon=1e-3))


def test_layer_norm_multiple_trailing_axes():
    x, w = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((3, 4))
    flat = np_layer_norm(x.reshape(2, 12), w.reshape(12), 0.0, 1e-5).reshape(2, 3, 4)
    assert_close(F.layer_norm(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)), flat)


@pytest.mark.parametrize("op", ["layer_norm", "group_norm"])
def test_norm_accurate_for_large_mean_small_spread(op):
    # mean 1e4, std 1e-2: a one-pass E[x^2] - E[x]^2 in float32 loses every digit
    x = (1e4 + 1e-2 * RNG.standard_normal((4, 2, 2, 64))).astype(np.float32)
    if op == "layer_norm":
        got, want = F.layer_norm(jnp.asarray(x)), np_layer_norm(x, 1.0, 0.0, 1e-5)
    else:
        got, want = F.group_norm(jnp.asarray(x), 4), np_group_norm(x, 4, 1.0, 0.0, 1e-5)
    assert_close(got, want)


def test_rms_norm_matches_numpy_and_default_eps():
    x, w = RNG.standard_normal((3, 5)), RNG.standard_normal(5)
    assert_close(
        F.rms_norm(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)),
        np_rms_norm(x, w, np.finfo(np.float32).eps),
    )
    tiny = jnp.full((1, 4), 1e-5, jnp.float32)  # eps = finfo(float32).eps dominates here
    assert_close(F.rms_norm(tiny), np_rms_norm(np.full((1, 4), 1e-5), 1.0, 2.0**-23))
    assert_close(F.rms_norm(tiny, eps=1e-3), np_rms_norm(np.full((1, 4), 1e-5), 1.0, 1e-3))


def test_group_norm_matches_numpy():
    x, w, b = RNG.standard_normal((2, 3, 3, 6)), RNG.standard_normal(6), RNG.standard_normal(6)
    gn = jax.jit(F.group_norm, static_argnums=1)
    for g in (1, 2, 3, 6):
        got = gn(
            jnp.asarray(x, jnp.float32), g, jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)
        )
        assert_close(got, np_group_norm(x, g, w, b, 1e-5), err_msg=f"num_groups={g}")


def test_norm_bad_input():
    with pytest.raises(ValueError, match=r"num_groups must divide the channels.*num_groups=4.*C=6"):
        F.group_norm(jnp.ones((2, 3, 3, 6)), 4)
    with pytest.raises(ValueError, match=r"weight must have shape \(6,\)"):
        F.group_norm(jnp.ones((2, 3, 6)), 3, jnp.ones(3))
    with pytest.raises(ValueError, match=r"layer_norm: weight must .*\(4,\).*weight.shape=\(3,\)"):
        F.layer_norm(jnp.ones((2, 4)), jnp.ones(3))
    with pytest.raises(ValueError, match="eps must be > 0"):
        F.rms_norm(jnp.ones((2, 4)), eps=0.0)


# ---------------------------------------------------------------- dropout


def test_dropout_statistics_and_scaling():
    x = jnp.ones((200, 100))
    y = F.dropout(fast_key(1), x, 0.3)
    kept = np.asarray(y) != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 20000 Bernoulli(0.7): std 0.003
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.7, rtol=1e-6)
    # same key, same mask; different key, different mask
    assert np.array_equal(y, F.dropout(fast_key(1), x, 0.3))
    assert not np.array_equal(y, F.dropout(fast_key(2), x, 0.3))


def test_dropout_identity_and_rate_one():
    x = jnp.asarray(RNG.standard_normal((3, 4)), jnp.float32)
    assert F.dropout(None, x, 0.5, train=False) is x
    assert F.dropout(None, x, 0.0) is x
    for rate in (1.0, jnp.float32(1.0)):  # concrete and traced rate
        f = jax.jit(lambda x, r: jnp.sum(F.dropout(fast_key(0), x, r) * x))
        assert np.all(np.asarray(F.dropout(fast_key(0), x, rate)) == 0)
        g = jax.grad(f)(x, rate)
        assert_finite(g)
        assert np.all(np.asarray(g) == 0)


def test_dropout_bad_input():
    with pytest.raises(ValueError, match=r"rate must be in \[0.0, 1.0\], got rate=1.5"):
        F.dropout(fast_key(0), jnp.ones(3), 1.5)
    with pytest.raises(ValueError, match="key is required"):
        F.dropout(None, jnp.ones(3), 0.5)


# ---------------------------------------------------------------- embedding


def test_embedding_matches_indexing_and_grad_accumulates():
    table = RNG.standard_normal((6, 3))
    ids = np.array([[0, 5, 5], [2, 0, 1]])
    out = F.embedding(jnp.asarray(ids), jnp.asarray(table, jnp.float32))
    assert_close(out, table[ids])
    g = jax.grad(lambda t: jnp.sum(F.embedding(jnp.asarray(ids), t)))(jnp.asarray(table))
    counts = np.bincount(ids.ravel(), minlength=6)[:, None] * np.ones((1, 3))
    assert_close(g, counts)


def test_embedding_bad_input():
    with pytest.raises(TypeError, match="ids must be an integer array"):
        F.embedding(jnp.ones(3), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="table must have rank 2"):
        F.embedding(jnp.array([1]), jnp.ones(4))


# ---------------------------------------------------------------- shared properties

X = RNG.standard_normal((2, 3, 4, 6)).astype(np.float32)
P6 = RNG.standard_normal(6).astype(np.float32)
W65 = RNG.standard_normal((6, 5)).astype(np.float32)
OPS = {
    "linear": lambda x: F.linear(x, jnp.asarray(W65), jnp.ones(5)),
    "layer_norm": lambda x: F.layer_norm(x, jnp.asarray(P6), jnp.asarray(P6)),
    "rms_norm": lambda x: F.rms_norm(x, jnp.asarray(P6), eps=1e-6),
    "group_norm": lambda x: F.group_norm(x, 3, jnp.asarray(P6), jnp.asarray(P6)),
    "dropout": lambda x: F.dropout(fast_key(0), x, 0.5),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_eager_jit_vmap(name):
    assert_eager_jit_vmap(OPS[name], jnp.asarray(X))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_dtype_preserved(name, dtype):
    x = jnp.asarray(X, dtype)
    y = OPS[name](x)
    assert y.dtype == dtype
    assert_finite(y)
    if name != "dropout":  # low precision agrees with float32 to that precision
        assert_close(y, OPS[name](jnp.asarray(X)), dtype=dtype)


# ---------------------------------------------------------------- custom_vjp == autodiff


def test_public_norms_differentiate_like_the_plain_formula():
    # the public functions differentiate with the closed-form backward (custom_vjp); the
    # registered plain formulas (same arguments) are differentiated by jax
    from functional_dl import grads

    x = jnp.asarray(RNG.standard_normal((4, 3, 6)), jnp.float32)
    w, b = jnp.asarray(1 + 0.1 * RNG.standard_normal(6)), jnp.asarray(RNG.standard_normal(6))
    cases = {
        "layer_norm": (lambda x, w, b: F.layer_norm(x, w, b), (x, w, b)),
        "group_norm(num_groups=2)": (lambda x, w, b: F.group_norm(x, 2, w, b), (x, w, b)),
        "rms_norm": (lambda x, w: F.rms_norm(x, w, eps=1e-6), (x, w)),
        "batch_norm(training=True)": (
            lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, training=True)[0],
            (x, jnp.zeros(6), jnp.ones(6), w, b),
        ),
    }
    g = jnp.asarray(RNG.standard_normal(x.shape), jnp.float32)
    for name, (public, args) in cases.items():
        entry = grads.registry()[name]

        def vjp(f, args, argnums=entry.argnums):
            def of_diff(*diff):
                full = list(args)
                for i, d in zip(argnums, diff, strict=True):
                    full[i] = d
                return f(*full)

            return jax.jit(lambda *d: jax.vjp(of_diff, *d)[1](g))(*(args[i] for i in argnums))

        assert_close(vjp(public, args), vjp(entry.forward, args), err_msg=name)


# ------------------------------------------------- accuracy of the norm statistics
# PyTorch's float32 CPU errors measured on the same inputs (issue: layer_norm d=4096
# 4e-7, group_norm 3.4e-7, outlier case 0.33); the bound is twice that.
TORCH_LAYER_NORM_ERR, TORCH_GROUP_NORM_ERR, TORCH_OUTLIER_ERR = 4e-7, 3.4e-7, 0.33


@pytest.mark.parametrize("d", [4096, 65536])
def test_layer_norm_accurate_at_large_width(d):
    x = np.random.default_rng(d).standard_normal((4, d)).astype(np.float32)
    err = np.abs(
        np.asarray(F.layer_norm(jnp.asarray(x)), np.float64) - np_layer_norm(x, 1, 0, 1e-5)
    )
    assert err.max() <= 2 * TORCH_LAYER_NORM_ERR, err.max()


@pytest.mark.parametrize("shape, groups", [((2, 32, 32, 16), 4), ((1, 64, 64, 32), 2)])
def test_group_norm_accurate_at_large_group(shape, groups):
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    out = np.asarray(F.group_norm(jnp.asarray(x), groups), np.float64)
    err = np.abs(out - np_group_norm(x, groups, 1, 0, 1e-5))
    assert err.max() <= 2 * TORCH_GROUP_NORM_ERR, err.max()


def _outlier():
    x = np.random.default_rng(5).standard_normal(100_000).astype(np.float32)
    x[0] = 1e4 + 3
    return x


@pytest.mark.parametrize("op", ["layer_norm", "group_norm", "batch_norm"])
def test_norms_accurate_with_an_outlier_first_element(op):
    x = _outlier()
    if op == "layer_norm":
        out = F.layer_norm(jnp.asarray(x[None]))[0]
    elif op == "group_norm":
        out = F.group_norm(jnp.asarray(x.reshape(1, -1, 1)), 1).reshape(-1)
    else:
        out = F.batch_norm(jnp.asarray(x[:, None]), None, None, training=True)[0][:, 0]
    ref = np_layer_norm(x[None], 1, 0, 1e-5)[0]
    err = np.abs(np.asarray(out, np.float64) - ref)
    assert err.max() <= 2 * TORCH_OUTLIER_ERR
    assert err.max() <= 1e-6 * np.abs(ref).max()  # in fact a few float32 ulps
