"""Positional encodings against NumPy references written here."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from functional_dl.nn import functional as F
from tests.helpers import FLOAT_DTYPES, assert_close, assert_eager_jit_vmap, tol


# ------------------------------------------------------------------------ sinusoidal
@pytest.mark.parametrize("dim", [16, 7])
def test_sinusoidal_matches_formula(dim):
    length = 30
    ref = np.zeros((length, dim))
    for p in range(length):
        for j in range(dim):
            angle = p / 10000 ** (2 * (j // 2) / dim)
            ref[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    out = F.sinusoidal_positional_encoding(length, dim)
    assert out.shape == (length, dim) and out.dtype == jnp.float32
    assert_close(out, ref, atol=1e-6)
    assert F.sinusoidal_positional_encoding(4, 8, dtype=jnp.bfloat16).dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="length"):
        F.sinusoidal_positional_encoding(-1, 8)


# ------------------------------------------------------------------------------ rope
def np_rope(x, positions, theta=10000.0, layout="interleaved"):
    """RoPE by explicit 2x2 rotations of each feature pair (float64)."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    d = x.shape[-1]
    pos = np.broadcast_to(np.asarray(positions, np.float64), x.shape[:-1])
    for idx in np.ndindex(*x.shape[:-1]):
        for i in range(d // 2):
            a, b = (2 * i, 2 * i + 1) if layout == "interleaved" else (i, i + d // 2)
            phi = pos[idx] * theta ** (-2 * i / d)
            c, s = math.cos(phi), math.sin(phi)
            out[idx + (a,)] = x[idx + (a,)] * c - x[idx + (b,)] * s
            out[idx + (b,)] = x[idx + (a,)] * s + x[idx + (b,)] * c
    return out


@pytest.mark.parametrize("layout", ["interleaved", "half"])
def test_rope_matches_numpy(layout):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 3, 5, 8)), jnp.float32)
    pos = np.array([0, 3, 4, 100, 2047])  # arbitrary positions
    assert_close(
        F.rope(x, pos, layout=layout), np_rope(x, pos, layout=layout), rtol=1e-4, atol=1e-5
    )
    # per-batch positions [B, 1, L] and a custom theta; default positions = arange(L)
    pos_b = np.array([[[0, 1, 2, 3, 4]], [[7, 8, 9, 10, 11]]])
    assert_close(
        F.rope(x, pos_b, theta=500.0, layout=layout),
        np_rope(x, pos_b, theta=500.0, layout=layout),
        rtol=1e-4,
        atol=1e-5,
    )
    assert_close(
        F.rope(x, layout=layout), np_rope(x, np.arange(5), layout=layout), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("layout", ["interleaved", "half"])
def test_rope_scores_depend_only_on_relative_position(layout):
    rng = np.random.default_rng(1)
    q = jnp.asarray(rng.standard_normal(16), jnp.float32)
    k = jnp.asarray(rng.standard_normal(16), jnp.float32)

    def score(m, n):
        qm = F.rope(q[None], jnp.array([m]), layout=layout)[0]
        kn = F.rope(k[None], jnp.array([n]), layout=layout)[0]
        return float(qm @ kn)

    for m, n in [(3, 1), (10, 4), (0, 5)]:
        for shift in (1, 17, 250):
            assert abs(score(m, n) - score(m + shift, n + shift)) < 1e-4
    assert abs(score(3, 1) - score(5, 1)) > 1e-3  # but it does depend on the distance


def test_rope_layouts_agree_after_permutation():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((3, 6, 12)), jnp.float32)
    pos = jnp.arange(6) * 3
    perm = np.concatenate([np.arange(0, 12, 2), np.arange(1, 12, 2)])  # [0,2,..,1,3,..]
    assert_close(
        F.rope(x[..., perm], pos, layout="half"),
        F.rope(x, pos, layout="interleaved")[..., perm],
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_rope_dtype_and_transforms(dtype):
    x = jnp.asarray(np.random.default_rng(3).standard_normal((4, 8)), dtype)
    out = F.rope(x, jnp.arange(4))
    assert out.dtype == dtype
    assert_close(out, np_rope(np.asarray(x, np.float32), np.arange(4)), **tol(dtype))
    if dtype == jnp.float32:
        assert_eager_jit_vmap(lambda x: F.rope(x, jnp.arange(4), layout="half"), x)


def test_rope_gradient_is_inverse_rotation():
    x = jnp.asarray(np.random.default_rng(4).standard_normal((5, 8)), jnp.float32)
    g = jnp.asarray(np.random.default_rng(5).standard_normal((5, 8)), jnp.float32)
    pos = jnp.arange(5) * 7
    dx = jax.grad(lambda x: jnp.sum(F.rope(x, pos) * g))(x)
    assert_close(dx, F.rope(g, -pos), rtol=1e-5, atol=1e-5)


def test_rope_bad_input():
    with pytest.raises(ValueError, match=r"must be even, got x.shape=\(2, 4, 7\)"):
        F.rope(jnp.ones((2, 4, 7)), jnp.arange(4))
    with pytest.raises(ValueError, match="layout"):
        F.rope(jnp.ones((4, 8)), jnp.arange(4), layout="neox")
    with pytest.raises(ValueError, match=r"positions of shape \(5,\)"):
        F.rope(jnp.ones((4, 8)), jnp.arange(5))


# ----------------------------------------------------------------------------- alibi
def np_alibi_slopes(n):
    """The reference implementation of the ALiBi paper's repository."""

    def power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + np_alibi_slopes(2 * closest)[0::2][: n - closest]


@pytest.mark.parametrize("heads", [8, 6, 12])
def test_alibi(heads):
    assert_close(F.alibi_slopes(heads), np.array(np_alibi_slopes(heads)))
    if heads == 8:
        assert_close(F.alibi_slopes(8), 2.0 ** -np.arange(1.0, 9.0))
    q_len, k_len = 3, 7
    ref = np.zeros((heads, q_len, k_len))
    for h, m in enumerate(np_alibi_slopes(heads)):
        for i in range(q_len):
            for j in range(k_len):
                ref[h, i, j] = -m * abs(i + k_len - q_len - j)
    assert_close(F.alibi_bias(heads, q_len, k_len), ref)
    # used as an attention bias with a causal mask (bottom-right aligned keys)
    q = jnp.ones((heads, 7, 4))
    out = F.scaled_dot_product_attention(q, q, q, bias=F.alibi_bias(heads, 7, 7), is_causal=True)
    assert out.shape == (heads, 7, 4)


# -------------------------------------------------------------------------- T5 bias
def hf_t5_bucket(rel, bidirectional, num_buckets, max_distance):
    """HF Transformers' T5Attention._relative_position_bucket, for one Python int."""
    ret = 0
    if bidirectional:
        num_buckets //= 2
        ret += (rel > 0) * num_buckets
        rel = abs(rel)
    else:
        rel = -min(rel, 0)
    max_exact = num_buckets // 2
    if rel < max_exact:
        return ret + rel
    large = max_exact + int(
        math.log(rel / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    )
    return ret + min(large, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_t5_buckets_match_reference(bidirectional):
    rel = np.arange(-300, 301)
    out = F.relative_position_bucket(
        rel, bidirectional=bidirectional, num_buckets=32, max_distance=128
    )
    ref = [hf_t5_bucket(int(r), bidirectional, 32, 128) for r in rel]
    np.testing.assert_array_equal(np.asarray(out), ref)


def test_relative_position_bias_layer():
    layer = fdl.nn.RelativePositionBias(4, num_buckets=16, max_distance=32)
    params, state = layer.init(jax.random.PRNGKey(0), (6, 6))
    rel = jnp.arange(6)[None, :] - jnp.arange(6)[:, None]
    bias, _ = layer.apply(params, state, rel)
    table = np.asarray(params["table"])
    ref = np.zeros((4, 6, 6))
    for i in range(6):
        for j in range(6):
            ref[:, i, j] = table[hf_t5_bucket(j - i, True, 16, 32)]
    assert_close(bias, ref)
    grad = jax.grad(lambda t: jnp.sum(F.relative_position_bias(t, rel, max_distance=32)))(
        params["table"]
    )
    counts = np.bincount(
        [hf_t5_bucket(j - i, True, 16, 32) for i in range(6) for j in range(6)], minlength=16
    )
    assert_close(grad, np.repeat(counts[:, None], 4, axis=1).astype(np.float32))


def test_learned_positional_embedding():
    layer = fdl.nn.LearnedPositionalEmbedding(10)
    params, state = layer.init(jax.random.PRNGKey(0), (2, 5, 8))
    assert params["table"].shape == (10, 8)
    x = jnp.ones((2, 5, 8))
    y, _ = layer.apply(params, state, x)
    assert_close(y, x + params["table"][None, :5])
    y, _ = layer.apply(params, state, x, positions=jnp.arange(5) + 5)
    assert_close(y, x + params["table"][None, 5:])
    with pytest.raises(ValueError, match="max_length=10"):
        layer.apply(params, state, jnp.ones((2, 11, 8)))
