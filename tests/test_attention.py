"""scaled_dot_product_attention: plain and blockwise paths against a NumPy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import grads
from functional_dl.nn import functional as F
from tests.helpers import (
    FLOAT_DTYPES,
    TraceCounter,
    assert_close,
    assert_eager_jit_vmap,
    assert_finite,
    tol,
)

sdpa = F.scaled_dot_product_attention


def np_attention(q, k, v, mask=None, is_causal=False, scale=None, bias=None):
    """PyTorch's documented SDPA in NumPy (float64), with the safe softmax for masked rows."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    lq, lk = q.shape[-2], k.shape[-2]
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = np.einsum("...qd,...kd->...qk", q, k) * scale
    if bias is not None:
        s = s + np.asarray(bias, np.float64)
    allowed = np.ones(s.shape, bool)
    if is_causal:
        allowed &= np.tril(np.ones((lq, lk), bool))
    if mask is not None:
        allowed &= np.asarray(mask)
    out = np.zeros(s.shape[:-1] + (v.shape[-1],))
    for idx in np.ndindex(*s.shape[:-1]):
        row, ok = s[idx], allowed[idx]
        if not ok.any():
            continue  # fully masked query row: output 0
        w = np.where(ok, np.exp(row - row[ok].max()), 0.0)
        w /= w.sum()
        out[idx] = w @ v[idx[:-1]]
    return out


def _qkv(shape_q, shape_k, dv=None, seed=0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    shape_v = shape_k[:-1] + (dv or shape_k[-1],)
    return tuple(jnp.asarray(rng.standard_normal(s), dtype) for s in (shape_q, shape_k, shape_v))


def _mask(shape, seed=1, full_rows=()):
    m = np.random.default_rng(seed).random(shape) > 0.3
    for idx in full_rows:
        m[idx] = False
    return jnp.asarray(m)


IMPLS = [dict(implementation="plain"), dict(implementation="blockwise", block_size=8)]


@pytest.mark.parametrize("impl", IMPLS, ids=["plain", "blockwise"])
@pytest.mark.parametrize(
    "case",
    [
        dict(),
        dict(is_causal=True),
        dict(scale=0.3),
        dict(mask="padding"),
        dict(mask="full", is_causal=True),
        dict(mask="2d"),
        dict(bias=True, is_causal=True),
    ],
    ids=["plain", "causal", "scale", "padding", "full+causal", "2d", "bias+causal"],
)
def test_matches_numpy_reference(impl, case):
    q, k, v = _qkv((2, 3, 19, 8), (2, 3, 21, 8), dv=5)
    case = dict(case)
    if case.get("mask") == "padding":  # [B, 1, 1, Lk] key padding
        lengths = jnp.array([21, 13])[:, None, None, None]
        case["mask"] = jnp.arange(21)[None, None, None, :] < lengths
    elif case.get("mask") == "full":  # with fully masked rows
        case["mask"] = _mask((2, 3, 19, 21), full_rows=[(0, 1, 4), (1, 2, 0)])
    elif case.get("mask") == "2d":
        case["mask"] = _mask((19, 21), full_rows=[(7,)])
    if case.get("bias"):
        case["bias"] = jnp.asarray(
            np.random.default_rng(3).standard_normal((3, 19, 21)), jnp.float32
        )
    out = sdpa(q, k, v, **case, **impl)
    assert out.shape == (2, 3, 19, 5) and out.dtype == jnp.float32
    assert_close(out, np_attention(q, k, v, **case), rtol=2e-5, atol=2e-6)


def test_matches_jax_nn_dot_product_attention():
    # jax.nn layout is [B, L, N, D]; without fully masked rows the semantics match
    q, k, v = _qkv((2, 4, 12, 16), (2, 4, 12, 16))
    mask = _mask((2, 1, 12, 12)) | jnp.eye(12, dtype=bool)[None, None]
    t = lambda x: jnp.swapaxes(x, 1, 2)  # noqa: E731
    for kw in (dict(is_causal=True, scale=0.5), dict(mask=mask)):
        ref = t(
            jax.jit(lambda q, k, v, kw=kw: jax.nn.dot_product_attention(q, k, v, **kw))(
                t(q), t(k), t(v)
            )
        )
        for impl in IMPLS:
            assert_close(sdpa(q, k, v, **kw, **impl), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(is_causal=True),
        dict(mask="full", bias=True, is_causal=True),
    ],
    ids=["causal", "mask+bias+causal"],
)
def test_blockwise_equals_plain_values_and_gradients(kwargs):
    q, k, v = _qkv((2, 2, 70, 16), (2, 2, 90, 16))
    kwargs = dict(kwargs)
    if kwargs.get("mask"):
        kwargs["mask"] = _mask((2, 1, 70, 90), full_rows=[(0, 0, 3), (1, 0, 69)])
    bias = jnp.asarray(np.random.default_rng(4).standard_normal((2, 70, 90)), jnp.float32)
    use_bias = kwargs.pop("bias", False)
    w = jnp.asarray(np.random.default_rng(5).standard_normal((2, 2, 70, 16)), jnp.float32)

    def loss(q, k, v, b, impl):
        out = sdpa(q, k, v, bias=b if use_bias else None, **kwargs, **impl)
        return jnp.sum(out * w)

    vals = [
        sdpa(q, k, v, bias=bias if use_bias else None, **kwargs, **impl)
        for impl in (dict(implementation="plain"), dict(implementation="blockwise", block_size=32))
    ]
    assert_close(vals[1], vals[0], rtol=1e-5, atol=1e-6)
    g_plain = jax.grad(loss, (0, 1, 2, 3))(q, k, v, bias, dict(implementation="plain"))
    g_block = jax.grad(loss, (0, 1, 2, 3))(
        q, k, v, bias, dict(implementation="blockwise", block_size=32)
    )
    assert_close(g_block, g_plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS, ids=["plain", "blockwise"])
def test_fully_masked_rows_output_zero_with_finite_gradients(impl):
    q, k, v = _qkv((1, 2, 6, 4), (1, 2, 7, 4))
    q = q * 1e3  # extreme scores too
    mask = jnp.ones((6, 7), bool).at[2].set(False).at[5].set(False)
    out = sdpa(q, k, v, mask=mask, **impl)
    assert np.all(np.asarray(out[..., 2, :]) == 0) and np.all(np.asarray(out[..., 5, :]) == 0)
    g = jax.grad(lambda q, k, v: jnp.sum(sdpa(q, k, v, mask=mask, **impl) ** 2), (0, 1, 2))(q, k, v)
    assert_finite(g)
    assert np.all(np.asarray(g[0][..., 2, :]) == 0)
    # every row masked: all zeros, zero gradients
    none = jnp.zeros((6, 7), bool)
    assert np.all(np.asarray(sdpa(q, k, v, mask=none, **impl)) == 0)
    g = jax.grad(lambda q: jnp.sum(sdpa(q, k, v, mask=none, **impl)))(q)
    assert np.all(np.asarray(g) == 0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("impl", IMPLS, ids=["plain", "blockwise"])
def test_dtype_preserved(dtype, impl):
    q, k, v = _qkv((2, 9, 8), (2, 11, 8), dtype=dtype)
    out = sdpa(q, k, v, is_causal=True, **impl)
    assert out.dtype == dtype
    ref = np_attention(
        q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32), is_causal=True
    )
    assert_close(out, ref, **tol(dtype))


def test_eager_jit_vmap():
    q, k, v = _qkv((2, 5, 4), (2, 6, 4))
    for impl in IMPLS:
        assert_eager_jit_vmap(
            lambda q, k, v, impl=impl: sdpa(q, k, v, is_causal=True, **impl), q, k, v
        )


def test_auto_selects_blockwise_for_long_sequences():
    q = jax.ShapeDtypeStruct((1, 512, 8), jnp.float32)
    text = jax.jit(lambda q: sdpa(q, q, q)).lower(q).as_text()
    assert "while" in text  # the blockwise loops
    q = jax.ShapeDtypeStruct((1, 64, 8), jnp.float32)
    assert "while" not in jax.jit(lambda q: sdpa(q, q, q)).lower(q).as_text()


def test_blockwise_memory_is_linear_in_sequence_length():
    def temp_bytes(length, impl):
        x = jax.ShapeDtypeStruct((1, 2, length, 32), jnp.float32)
        f = jax.jit(
            jax.grad(
                lambda q, k, v: jnp.sum(
                    sdpa(q, k, v, is_causal=True, implementation=impl, block_size=128)
                ),
                (0, 1, 2),
            )
        )
        return f.lower(x, x, x).compile().memory_analysis().temp_size_in_bytes

    block = [temp_bytes(n, "blockwise") for n in (512, 2048)]
    plain = [temp_bytes(n, "plain") for n in (512, 2048)]
    assert block[1] <= 4.5 * block[0]  # linear (4x the length)
    assert plain[1] >= 12 * plain[0]  # quadratic
    assert block[1] < 2048 * 2048 * 4  # less than one float32 score matrix per head


@pytest.mark.parametrize("impl", IMPLS, ids=["plain", "blockwise"])
def test_dropout_mask_statistics_and_gradient(impl):
    # with v = I the output is the weight matrix itself: P * keep / (1 - p)
    lq, lk, p = 40, 48, 0.25
    q, k, _ = _qkv((4, lq, 8), (4, lk, 8))
    eye = jnp.broadcast_to(jnp.eye(lk), (4, lk, lk))
    gw = jnp.asarray(np.random.default_rng(8).standard_normal((4, lq, lk)), jnp.float32)

    @jax.jit
    def fwd_bwd(q, k, v, key):
        out, vjp = jax.vjp(lambda q, k, v: sdpa(q, k, v, dropout_p=p, key=key, **impl), q, k, v)
        return out, vjp(gw)

    key = jax.random.PRNGKey(3)
    out, grads = fwd_bwd(q, k, eye, key)
    ratio = np.asarray(out, np.float64) / np_attention(q, k, eye)
    assert np.all(np.isclose(ratio, 0) | np.isclose(ratio, 1 / (1 - p), rtol=1e-4))
    kept = np.isclose(ratio, 1 / (1 - p), rtol=1e-4)
    assert abs(kept.mean() - (1 - p)) < 0.02
    # the same key gives the same mask, another key another one
    assert_close(fwd_bwd(q, k, eye, key)[0], out)
    assert not np.allclose(fwd_bwd(q, k, eye, jax.random.PRNGKey(4))[0], out)
    # gradients equal autodiff of the formula with that keep mask
    z = jnp.asarray(kept / (1 - p), jnp.float32)

    def ref(q, k, v):
        s = jnp.einsum("bqd,bkd->bqk", q, k) / np.sqrt(8)
        return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(s, axis=-1) * z, v)

    assert_close(grads, jax.vjp(ref, q, k, eye)[1](gw), rtol=1e-4, atol=1e-5)
    # rate 0 is the identity
    assert_close(sdpa(q, k, eye, dropout_p=0.0, key=key, **impl), sdpa(q, k, eye, **impl))


def test_dropout_rate_one_gives_zeros_with_finite_gradients():
    q, k, v = _qkv((2, 6, 4), (2, 6, 4))
    out, vjp = jax.vjp(lambda q: sdpa(q, k, v, dropout_p=1.0, key=jax.random.PRNGKey(0)), q)
    assert np.all(np.asarray(out) == 0)
    assert np.all(np.asarray(vjp(jnp.ones_like(out))[0]) == 0)


def test_compiles_once():
    counter = TraceCounter(lambda q, k, v: sdpa(q, k, v, is_causal=True))
    f = jax.jit(counter)
    for seed in range(3):
        f(*_qkv((2, 5, 4), (2, 5, 4), seed=seed)).block_until_ready()
    assert counter.count == 1


def test_hand_derived_gradients_are_registered():
    names = [n for n in grads.registry() if n.startswith("scaled_dot_product_attention")]
    assert any("blockwise" in n for n in names) and any("mask" in n for n in names)
    assert any("dropout" in n for n in names) and any("bias" in n for n in names)


def test_bad_input():
    q, k, v = _qkv((2, 5, 4), (2, 6, 4))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 6\).*\(2, 5, 6\)"):
        sdpa(q, k, v, mask=jnp.ones((3, 6), bool))
    with pytest.raises(ValueError, match=r"bias of shape"):
        sdpa(q, k, v, bias=jnp.ones((5, 7)))
    with pytest.raises(TypeError, match="mask must be boolean"):
        sdpa(q, k, v, mask=jnp.ones((5, 6)))
    with pytest.raises(ValueError, match=r"q.shape=\(2, 5, 4\), k.shape=\(2, 6, 3\)"):
        sdpa(q, k[..., :3], v)
    with pytest.raises(ValueError, match=r"k.shape=\(2, 6, 4\), v.shape=\(2, 5, 4\)"):
        sdpa(q, k, v[:, :5])
    with pytest.raises(ValueError, match="must broadcast"):
        sdpa(q, jnp.concatenate([k, k, k]), jnp.concatenate([v, v, v]))
    with pytest.raises(ValueError, match="needs a random key"):
        sdpa(q, k, v, dropout_p=0.1)
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa(q, k, v, dropout_p=1.5, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="implementation"):
        sdpa(q, k, v, implementation="flash")
    with pytest.raises(TypeError, match="floating"):
        sdpa(jnp.ones((2, 5, 4), jnp.int32), k, v)
    with pytest.raises(ValueError, match="rank"):
        sdpa(jnp.ones(4), k, v)


# --------------------------------------------------- every way of masking a full row
def _masked_row_inputs(way, lq=6, lk=10):
    """(kwargs, masked query rows) where row 2 of head 0 (and row 4 of head 1) cannot
    attend to any key, expressed as ``way``."""
    rng = np.random.default_rng(7)
    bias = rng.standard_normal((2, lq, lk))
    allowed = rng.random((2, lq, lk)) > 0.3
    allowed[0, 2] = False
    allowed[1, 4] = False
    if way == "mask":
        return {"mask": jnp.asarray(allowed), "bias": jnp.asarray(bias)}
    fill = {"-inf": -np.inf, "finfo.min": np.finfo(np.float32).min}[way]
    return {"bias": jnp.asarray(np.where(allowed, bias, fill), jnp.float32)}


@pytest.mark.parametrize("way", ["mask", "-inf", "finfo.min"])
@pytest.mark.parametrize("impl", IMPLS, ids=["plain", "blockwise"])
def test_every_way_of_masking_a_row_gives_zero_output_and_gradient(way, impl):
    q, k, v = _qkv((2, 6, 4), (2, 10, 4), seed=3)
    kw = _masked_row_inputs(way)
    bias = kw.pop("bias")
    c = jnp.asarray(np.random.default_rng(8).standard_normal((2, 6, 4)), jnp.float32)

    def loss(q, k, v, bias):
        return jnp.sum(sdpa(q, k, v, bias=bias, **kw, **impl) * c)

    out = sdpa(q, k, v, bias=bias, **kw, **impl)
    dq, dk, dv, db = jax.grad(loss, argnums=(0, 1, 2, 3))(q, k, v, bias)
    for a in (out, dq, dk, dv, db):
        assert_finite(a)
    for h, r in ((0, 2), (1, 4)):
        assert np.all(np.asarray(out[h, r]) == 0.0)
        assert np.all(np.asarray(dq[h, r]) == 0.0)
        assert np.all(np.asarray(db[h, r]) == 0.0)
    # the masked rows contribute nothing to dk, dv: same as with their cotangent zeroed
    c0 = c.at[0, 2].set(0.0).at[1, 4].set(0.0)
    _, vjp = jax.vjp(lambda k, v: sdpa(q, k, v, bias=bias, **kw, **impl), k, v)
    dk0, dv0 = vjp(c0)
    assert_close(dk, dk0, rtol=1e-6, atol=1e-6)
    assert_close(dv, dv0, rtol=1e-6, atol=1e-6)
    # the other rows equal the boolean-mask reference (bias entries <= finfo.min masked)
    allowed = np.isfinite(np.asarray(bias)) & (np.asarray(bias) > np.finfo(np.float32).min)
    if "mask" in kw:
        allowed &= np.asarray(kw["mask"])
    ref_bias = np.where(allowed, np.asarray(bias), 0.0)
    assert_close(out, np_attention(q, k, v, mask=allowed, bias=ref_bias), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("impl", IMPLS, ids=["plain", "blockwise"])
def test_causal_with_fewer_keys_than_queries(impl):
    q, k, v = _qkv((2, 12, 4), (2, 5, 4), seed=4)
    out = sdpa(q, k, v, is_causal=True, **impl)
    assert_close(out, np_attention(q, k, v, is_causal=True), rtol=2e-5, atol=2e-6)
    # combined with a mask that removes the keys a row may still see: zeros, finite grads
    m = np.ones((12, 5), bool)
    m[1, :2] = False  # causal row 1 sees keys 0, 1 only
    g = jax.grad(
        lambda q, k, v: sdpa(q, k, v, mask=jnp.asarray(m), is_causal=True, **impl).sum(), (0, 1, 2)
    )(q, k, v)
    out = sdpa(q, k, v, mask=jnp.asarray(m), is_causal=True, **impl)
    assert np.all(np.asarray(out[:, 1]) == 0.0) and np.all(np.asarray(g[0][:, 1]) == 0.0)
    for a in g:
        assert_finite(a)


@pytest.mark.parametrize("impl", IMPLS + [{}], ids=["plain", "blockwise", "auto"])
@pytest.mark.parametrize("lq, lk", [(4, 0), (0, 5), (0, 0)])
def test_empty_sequences_give_zeros(impl, lq, lk):
    q, k, v = _qkv((2, lq, 4), (2, lk, 4), dv=3)
    out = sdpa(q, k, v, **impl)
    assert out.shape == (2, lq, 3) and out.dtype == jnp.float32
    assert not np.any(np.asarray(out))
    grads_ = jax.grad(lambda q, k, v: sdpa(q, k, v, **impl).sum(), (0, 1, 2))(q, k, v)
    for a, ref in zip(grads_, (q, k, v), strict=True):
        assert a.shape == ref.shape and not np.any(np.asarray(a))
    assert F.attention_weights(q, k).shape == (2, lq, lk)


# ------------------------------------------------------------------ attention_weights
def np_attention_weights(q, k, mask=None, is_causal=False, scale=None, bias=None):
    """The probabilities of :func:`np_attention`: ``np_attention`` with ``v = I``."""
    lk = k.shape[-2]
    eye = np.broadcast_to(np.eye(lk), np.shape(k)[:-2] + (lk, lk))
    return np_attention(q, k, eye, mask=mask, is_causal=is_causal, scale=scale, bias=bias)


def test_attention_weights_values():
    q, k, _ = _qkv((2, 3, 5, 4), (2, 3, 7, 4), seed=9)
    m = _mask((2, 1, 5, 7), full_rows=[(0, 0, 1)])
    bias = jnp.asarray(np.random.default_rng(2).standard_normal((3, 5, 7)), jnp.float32)
    got = F.attention_weights(q, k, mask=m, bias=bias, is_causal=True, scale=0.6)
    ref = np_attention_weights(q, k, mask=np.asarray(m), is_causal=True, scale=0.6, bias=bias)
    assert_close(got, ref, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(got[0, :, 1]) == 0.0)  # the fully masked row
    plain = F.attention_weights(q, k)
    assert_close(plain.sum(-1), np.ones((2, 3, 5)), rtol=1e-6)
    assert_close(plain, np_attention_weights(q, k), rtol=1e-5, atol=1e-6)
    # consistent with attention: weights @ v
    v = jnp.asarray(np.random.default_rng(3).standard_normal((2, 3, 7, 4)), jnp.float32)
    assert_close(
        got @ v, sdpa(q, k, v, mask=m, bias=bias, is_causal=True, scale=0.6), rtol=1e-5, atol=1e-6
    )
