"""MultiHeadAttention, Transformer layers, Transformer, TransformerLM and generation."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import nn
from tests.helpers import TraceCounter, assert_close, assert_finite, tol
from tests.test_positional import np_rope

KEY = jax.random.PRNGKey(0)
STATIC = ("train", "cache_length", "return_weights", "is_causal")


def jitted(layer):
    """``layer.apply`` under ``jax.jit`` (eager op-by-op execution compiles every op)."""
    names = inspect.signature(layer.apply).parameters
    return jax.jit(layer.apply, static_argnames=[n for n in STATIC if n in names])


def _x(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


# ------------------------------------------------------------------ NumPy reference
def np_mha(params, x, num_heads, num_kv_heads, context=None, mask=None, causal=False, rope=None):
    """Multi-head attention written out per (batch, head) in float64."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    x = np.asarray(x, np.float64)
    if "qkv" in p:
        qkv = x @ p["qkv"]["weight"] + p["qkv"]["bias"]
        width = qkv.shape[-1] // (num_heads + 2 * num_kv_heads)
        q, k, v = np.split(qkv, [num_heads * width, (num_heads + num_kv_heads) * width], -1)
    else:
        c = np.asarray(context, np.float64)
        q = x @ p["q"]["weight"] + p["q"]["bias"]
        k = c @ p["k"]["weight"] + p["k"]["bias"]
        v = c @ p["v"]["weight"] + p["v"]["bias"]
    hd = q.shape[-1] // num_heads
    bsz, lq, ls = x.shape[0], q.shape[1], k.shape[1]
    q = q.reshape(bsz, lq, num_heads, hd).transpose(0, 2, 1, 3)
    k = k.reshape(bsz, ls, num_kv_heads, hd).transpose(0, 2, 1, 3)
    v = v.reshape(bsz, ls, num_kv_heads, hd).transpose(0, 2, 1, 3)
    if rope:
        q, k = np_rope(q, np.arange(lq), layout=rope), np_rope(k, np.arange(ls), layout=rope)
    allowed = np.ones((bsz, num_heads, lq, ls), bool)
    if causal:
        allowed &= np.tril(np.ones((lq, ls), bool))
    if mask is not None:
        allowed &= np.asarray(mask)
    out = np.zeros((bsz, num_heads, lq, hd))
    for b in range(bsz):
        for h in range(num_heads):
            g = h // (num_heads // num_kv_heads)
            s = q[b, h] @ k[b, g].T / np.sqrt(hd)
            s = np.where(allowed[b, h], s, -np.inf)
            w = np.exp(s - s.max(-1, keepdims=True))
            out[b, h] = (w / w.sum(-1, keepdims=True)) @ v[b, g]
    out = out.transpose(0, 2, 1, 3).reshape(bsz, lq, num_heads * hd)
    return out @ p["out"]["weight"] + p["out"]["bias"]


@pytest.mark.parametrize(
    "kv_heads,causal,rope", [(4, False, None), (2, True, "half"), (1, True, "interleaved")]
)
def test_mha_self_attention_matches_numpy(kv_heads, causal, rope):
    mha = nn.MultiHeadAttention(4, num_kv_heads=kv_heads, is_causal=causal, rope=rope)
    x = _x((2, 7, 16))
    params, state = mha.init(KEY, x.shape)
    params = jax.tree_util.tree_map(lambda a: a + 0.1, params)  # non-zero biases
    assert params["qkv"]["weight"].shape == (16, (4 + 2 * kv_heads) * 4)
    mask = jnp.arange(7)[None, None, None, :] < jnp.array([7, 5])[:, None, None, None]
    y, new_state = mha.apply(params, state, x, mask=mask)
    assert y.shape == x.shape and new_state == {}
    assert_close(
        y, np_mha(params, x, 4, kv_heads, mask=mask, causal=causal, rope=rope), rtol=1e-4, atol=1e-5
    )


def test_mha_cross_attention_matches_numpy():
    mha = nn.MultiHeadAttention(2, cross_attention=True, kv_features=6)
    x, ctx = _x((2, 5, 8)), _x((2, 9, 6), seed=1)
    params, state = mha.init(KEY, x.shape)
    params = jax.tree_util.tree_map(lambda a: a + 0.1, params)
    assert set(params) == {"q", "k", "v", "out"} and params["k"]["weight"].shape == (6, 8)
    mask = jnp.arange(9)[None, None, None, :] < 6
    y, _ = mha.apply(params, state, x, context=ctx, mask=mask)
    assert_close(y, np_mha(params, x, 2, 2, context=ctx, mask=mask), rtol=1e-4, atol=1e-5)


def test_mha_init_follows_pytorch():
    params, _ = nn.MultiHeadAttention(4).init(KEY, (3, 32))
    bound = np.sqrt(6.0 / (32 + 96))  # xavier over the fused [d, 3d] in_proj weight
    w = np.asarray(params["qkv"]["weight"])
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.all(np.asarray(params["qkv"]["bias"]) == 0)
    assert np.all(np.asarray(params["out"]["bias"]) == 0)


def test_mha_kv_cache_equals_full_recompute():
    mha = nn.MultiHeadAttention(4, num_kv_heads=2, is_causal=True, rope="half")
    x = _x((2, 9, 16))
    params, _ = mha.init(KEY, x.shape)
    full, _ = mha.apply(params, {}, x)
    y0, cache = mha.apply(params, {}, x[:, :4], cache_length=12)
    assert cache["k"].shape == (2, 2, 12, 4) and int(cache["index"]) == 4
    step = jax.jit(lambda c, xt: mha.apply(params, c, xt))
    outs = [y0]
    for t in range(4, 7):
        y, cache = step(cache, x[:, t : t + 1])
        outs.append(y)
    y, cache = mha.apply(params, cache, x[:, 7:9])  # a chunk of two at once
    outs.append(y)
    assert int(cache["index"]) == 9
    assert_close(jnp.concatenate(outs, axis=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_mha_keeps_the_input_dtype(dtype):
    mha = nn.MultiHeadAttention(2, is_causal=True, rope="interleaved")
    x = _x((2, 5, 8))
    params, _ = mha.init(KEY, x.shape)
    y, _ = jitted(mha)(params, {}, x.astype(dtype))
    assert y.dtype == dtype
    assert_close(y, jitted(mha)(params, {}, x)[0], **tol(dtype))


def test_mha_bad_input():
    with pytest.raises(ValueError, match="d_model=10.*num_heads=4"):
        nn.MultiHeadAttention(4).init(KEY, (2, 10))
    with pytest.raises(ValueError, match="num_heads=4 must be divisible by num_kv_heads=3"):
        nn.MultiHeadAttention(4, num_kv_heads=3)
    with pytest.raises(ValueError, match="even head dim, got head_dim=3"):
        nn.MultiHeadAttention(4, rope="half").init(KEY, (2, 12))
    mha = nn.MultiHeadAttention(2)
    params, _ = mha.init(KEY, (2, 5, 8))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 5\)"):
        mha.apply(params, {}, _x((2, 5, 8)), mask=jnp.ones((3, 5), bool))
    with pytest.raises(ValueError, match="longer than cache_length=4"):
        mha.apply(params, {}, _x((2, 5, 8)), cache_length=4)
    _, cache = mha.apply(params, {}, _x((2, 2, 8)), cache_length=4)
    with pytest.raises(ValueError, match="do not fit the cache of length 4"):
        mha.apply(params, cache, _x((2, 5, 8)))
    with pytest.raises(ValueError, match="needs context"):
        cross = nn.MultiHeadAttention(2, cross_attention=True)
        cross.apply(cross.init(KEY, (2, 8))[0], {}, _x((2, 5, 8)))


# ------------------------------------------------------------------------- layers
def _np_layer_norm(x, p, eps=1e-5):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * np.asarray(p["weight"]) + np.asarray(p["bias"])


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_formula(norm_first):
    layer = nn.TransformerEncoderLayer(2, 24, dropout=0.0, norm_first=norm_first)
    x = _x((2, 6, 8))
    params, _ = layer.init(KEY, x.shape)
    params = jax.tree_util.tree_map(lambda a: a + 0.05, params)
    y, _ = layer.apply(params, {}, x)
    xn, pf = np.asarray(x, np.float64), params["ffn"]

    def ffn(h):
        h = np.maximum(
            h @ np.asarray(pf["linear1"]["weight"]) + np.asarray(pf["linear1"]["bias"]), 0
        )
        return h @ np.asarray(pf["linear2"]["weight"]) + np.asarray(pf["linear2"]["bias"])

    def attn(h):
        return np_mha(params["self_attn"], h, 2, 2)

    if norm_first:
        h = xn + attn(_np_layer_norm(xn, params["norm1"]))
        ref = h + ffn(_np_layer_norm(h, params["norm2"]))
    else:
        h = _np_layer_norm(xn + attn(xn), params["norm1"])
        ref = _np_layer_norm(h + ffn(h), params["norm2"])
    assert_close(y, ref, rtol=1e-4, atol=1e-4)


def test_padded_positions_do_not_change_other_outputs():
    layer = nn.TransformerEncoderLayer(2, 16, dropout=0.0)
    x = _x((2, 6, 8))
    params, _ = layer.init(KEY, x.shape)
    mask = (jnp.arange(6) < 4)[None, None, None, :]
    apply = jitted(layer)
    y1, _ = apply(params, {}, x, mask=mask)
    y2, _ = apply(params, {}, x.at[:, 4:].set(100.0), mask=mask)
    assert_close(y1[:, :4], y2[:, :4], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def seq2seq():
    """Pre-norm, shared embeddings, learned positions (the reversal test covers the rest)."""
    model = nn.Transformer(
        10,
        d_model=16,
        num_heads=2,
        num_encoder_layers=1,
        num_decoder_layers=2,
        dim_feedforward=32,
        dropout=0.0,
        max_length=8,
        share_embeddings=True,
        norm_first=True,
        positional="learned",
    )
    return model, model.init(KEY, None)[0], jitted(model)


def test_transformer_padding_does_not_change_other_outputs(seq2seq):
    model, params, apply = seq2seq
    src = jnp.array([[3, 4, 5, 9, 9], [6, 7, 8, 9, 2]])
    src_mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    tgt = jnp.array([[1, 5, 4, 6], [1, 2, 9, 8]])
    logits, _ = apply(params, {}, (src, tgt), src_mask=src_mask)
    # three more padded source positions and other ids under the padding
    longer = jnp.pad(src, ((0, 0), (0, 3))).at[0, 3].set(1)
    longer_mask = jnp.pad(src_mask, ((0, 0), (0, 3)))
    tgt_mask = jnp.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)  # a padded target tail
    logits2, _ = apply(
        params, {}, (longer, tgt.at[0, 3].set(7)), src_mask=longer_mask, tgt_mask=tgt_mask
    )
    assert_close(logits2[:, :3], logits[:, :3], rtol=1e-5, atol=1e-5)
    assert_close(logits2[1], logits[1], rtol=1e-5, atol=1e-5)
    assert_finite(logits2)


def test_decoder_layer_is_causal_and_uses_memory():
    layer = nn.TransformerDecoderLayer(2, 16, dropout=0.0)
    x, mem = _x((1, 5, 8)), _x((1, 7, 8), seed=1)
    params, _ = layer.init(KEY, x.shape)
    assert set(params) == {"self_attn", "norm1", "cross_attn", "norm2", "ffn", "norm3"}
    apply = jitted(layer)
    y1, _ = apply(params, {}, x, memory=mem)
    y2, _ = apply(params, {}, x.at[:, 3:].set(5.0), memory=mem)
    assert_close(y1[:, :3], y2[:, :3], rtol=1e-5, atol=1e-5)
    y3, _ = apply(params, {}, x, memory=mem + 1.0)
    assert not np.allclose(y1, y3)
    with pytest.raises(ValueError, match="memory="):
        layer.apply(params, {}, x)


def test_dropout_in_layers_needs_a_key():
    layer = nn.TransformerEncoderLayer(2, 16, dropout=0.3)
    x = _x((2, 6, 8))
    params, _ = layer.init(KEY, x.shape)
    with pytest.raises(ValueError, match="needs a key"):
        layer.apply(params, {}, x, train=True)
    apply = jitted(layer)
    y_train, _ = apply(params, {}, x, train=True, key=KEY)
    y_eval, _ = apply(params, {}, x)
    assert not np.allclose(y_train, y_eval)
    assert_close(apply(params, {}, x, train=True, key=KEY)[0], y_train)


# ---------------------------------------------------------------------- the models
@pytest.fixture(scope="module")
def lm():
    model = nn.TransformerLM(24, d_model=16, num_heads=4, num_layers=2, num_kv_heads=2)
    params, _ = model.init(KEY, None)
    return model, params


def test_lm_structure_and_causality(lm):
    model, params = lm
    assert set(params) == {"embed", "layer_0", "layer_1", "norm", "lm_head"}
    assert params["layer_0"]["ffn"]["gate"]["weight"].shape == (16, 48)  # 8d/3 -> 48
    assert "bias" not in params["layer_0"]["self_attn"]["qkv"]
    tokens = jax.random.randint(KEY, (2, 10), 0, 24)
    apply = jitted(model)
    logits, _ = apply(params, {}, tokens)
    assert logits.shape == (2, 10, 24)
    changed, _ = apply(params, {}, tokens.at[:, 6:].set(3))
    assert_close(changed[:, :6], logits[:, :6], rtol=1e-5, atol=1e-5)


def test_lm_kv_cache_equals_full_recompute(lm):
    model, params = lm
    tokens = jax.random.randint(KEY, (2, 10), 0, 24)
    apply = jitted(model)
    full, _ = apply(params, {}, tokens)
    logits, cache = apply(params, {}, tokens[:, :6], cache_length=10)
    outs = [logits]
    for t in range(6, 10):
        logits, cache = apply(params, cache, tokens[:, t : t + 1])
        outs.append(logits)
    assert_close(jnp.concatenate(outs, axis=1), full, rtol=1e-5, atol=1e-5)


def _recompute(model, params, prompt, n, src=None, key=None, temperature=1.0, top_k=None):
    """Generation by re-running the whole sequence for each new token (no cache).

    The sequence lives in a fixed buffer (one compilation); by causality the logits at
    position ``t`` are those of the sequence cut after ``t``.
    """
    plen = prompt.shape[1]
    seq = jnp.pad(prompt, ((0, 0), (0, n)))
    apply = jitted(model)
    keys = jax.random.split(key, n) if key is not None else [None] * n
    for i, k in enumerate(keys):
        logits, _ = apply(params, {}, seq if src is None else (src, seq))
        last = logits[:, plen + i - 1] / temperature
        if k is None:
            tok = jnp.argmax(last, -1)
        else:
            if top_k is not None:
                last = jnp.where(last < jnp.sort(last, -1)[:, -top_k][:, None], -jnp.inf, last)
            tok = jax.random.categorical(k, last, -1)
        seq = seq.at[:, plen + i].set(tok.astype(jnp.int32))
    return seq


def test_generate_equals_full_recompute(lm):
    model, params = lm
    prompt = jax.random.randint(KEY, (3, 4), 0, 24).astype(jnp.int32)
    greedy = nn.generate(model, params, prompt, 6)
    np.testing.assert_array_equal(greedy, _recompute(model, params, prompt, 6))
    key = jax.random.PRNGKey(7)
    sampled = nn.generate(model, params, prompt, 6, key=key, temperature=0.7, top_k=5)
    np.testing.assert_array_equal(
        sampled, _recompute(model, params, prompt, 6, key=key, temperature=0.7, top_k=5)
    )
    assert sampled.shape == (3, 10) and not np.array_equal(sampled, greedy)
    with pytest.raises(ValueError, match="temperature"):
        nn.generate(model, params, prompt, 3, key=key, temperature=0.0)


def test_lm_gradients_finite_and_compile_once(lm):
    model, params = lm
    mask = jnp.ones((2, 8), bool).at[1, 5:].set(False)  # a padded sequence

    def loss(p, tokens):
        logits, _ = model.apply(p, {}, tokens, mask=mask)
        return jnp.mean(jax.nn.logsumexp(logits, -1))

    counter = TraceCounter(jax.value_and_grad(loss))
    step = jax.jit(counter)
    for seed in range(3):
        value, grads = step(params, jax.random.randint(jax.random.PRNGKey(seed), (2, 8), 0, 24))
        assert_finite((value, grads))
    assert counter.count == 1


def test_lm_bad_input():
    with pytest.raises(ValueError, match="d_model=30 must be divisible by num_heads=4"):
        nn.TransformerLM(10, d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="num_kv_heads=3"):
        nn.TransformerLM(10, d_model=32, num_heads=4, num_kv_heads=3)


def test_transformer_kv_cache_and_generate_equal_full_recompute(seq2seq):
    model, params, apply = seq2seq
    src = jnp.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
    tgt = jnp.array([[1, 5, 4, 6, 7, 2], [1, 2, 9, 8, 3, 3]])
    full, _ = apply(params, {}, (src, tgt))
    logits, cache = apply(params, {}, (src, tgt[:, :2]), cache_length=6)
    outs = [logits]
    for t in range(2, 6):  # no source needed once the memory is cached
        logits, cache = apply(params, cache, (None, tgt[:, t : t + 1]))
        outs.append(logits)
    assert_close(jnp.concatenate(outs, axis=1), full, rtol=1e-5, atol=1e-5)
    greedy = nn.generate(model, params, tgt[:, :1], 5, src=src)
    np.testing.assert_array_equal(greedy, _recompute(model, params, tgt[:, :1], 5, src=src))


def test_transformer_weights_and_bad_input(seq2seq):
    model, params, apply = seq2seq
    assert "generator" not in params and "encoder_norm" in params and "tgt_pos" in params
    src, tgt = jnp.ones((2, 6), jnp.int32), jnp.ones((2, 5), jnp.int32)
    (logits, weights), _ = apply(params, {}, (src, tgt), return_weights=True)
    assert logits.shape == (2, 5, 10) and len(weights["decoder"]) == 2
    assert weights["decoder"][1]["cross_attn"].shape == (2, 2, 5, 6)
    assert_close(jnp.sum(weights["encoder"][0]["self_attn"], -1), jnp.ones((2, 2, 6)))
    with pytest.raises(ValueError, match="exceeds max_length=8"):
        model.apply(params, {}, (jnp.ones((2, 9), jnp.int32), tgt))
    with pytest.raises(ValueError, match="cache_length=9 exceeds max_length=8"):
        nn.generate(model, params, tgt[:, :1], 8, src=src)
    with pytest.raises(ValueError, match="d_model=18 must be divisible by num_heads=4"):
        nn.Transformer(10, d_model=18, num_heads=4)
    with pytest.raises(ValueError, match="share_embeddings"):
        nn.Transformer(10, 12, share_embeddings=True)
