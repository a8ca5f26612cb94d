"""Value references in NumPy (float64) for the whole Transformer stack on random weights:
every activation layer, FeedForward (ReLU, GELU, SwiGLU), the decoder layer, the
encoder-decoder Transformer and TransformerLM (RMSNorm, SwiGLU, RoPE, GQA)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

from functional_dl import nn
from tests.helpers import assert_close
from tests.test_positional import np_rope

KEY = jax.random.key(0)


def _randomize(params, seed):
    """Every parameter perturbed by noise (norm weights off 1, biases off 0)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda a: a + 0.1 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), params
    )


def _np(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


# ---------------------------------------------------------------- NumPy building blocks
def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_silu(x):
    return x * np_sigmoid(x)


def np_gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def np_dense(p, x):
    return x @ p["weight"] + p.get("bias", 0.0)


def np_layer_norm(x, p, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * p["weight"] + p["bias"]


def np_rms_norm(x, p, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * p["weight"]


def np_ffn(p, x, activation):
    if activation == "swiglu":
        return np_dense(p["down"], np_silu(np_dense(p["gate"], x)) * np_dense(p["up"], x))
    act = {"relu": lambda h: np.maximum(h, 0.0), "gelu": np_gelu}[activation]
    return np_dense(p["linear2"], act(np_dense(p["linear1"], x)))


def np_attention(p, x, heads, kv_heads, *, context=None, causal=False, key_mask=None, rope=None):
    """Grouped-query attention per (batch, head): query head h reads kv head
    h // (heads / kv_heads); ``key_mask`` [B, S] True = real key."""
    if "qkv" in p:
        qkv = np_dense(p["qkv"], x)
        hd = qkv.shape[-1] // (heads + 2 * kv_heads)
        q, k, v = np.split(qkv, [heads * hd, (heads + kv_heads) * hd], -1)
    else:
        q, k, v = np_dense(p["q"], x), np_dense(p["k"], context), np_dense(p["v"], context)
        hd = q.shape[-1] // heads
    b, lq, ls = x.shape[0], q.shape[1], k.shape[1]
    q = q.reshape(b, lq, heads, hd).transpose(0, 2, 1, 3)
    k = k.reshape(b, ls, kv_heads, hd).transpose(0, 2, 1, 3)
    v = v.reshape(b, ls, kv_heads, hd).transpose(0, 2, 1, 3)
    if rope is not None:
        q, k = np_rope(q, np.arange(lq), layout=rope), np_rope(k, np.arange(ls), layout=rope)
    out = np.zeros((b, heads, lq, hd))
    for i in range(b):
        for h in range(heads):
            g = h // (heads // kv_heads)
            s = q[i, h] @ k[i, g].T / math.sqrt(hd)
            ok = np.ones((lq, ls), bool)
            if causal:
                ok &= np.tril(np.ones((lq, ls), bool))
            if key_mask is not None:
                ok &= key_mask[i][None, :]
            s = np.where(ok, s, -np.inf)
            w = np.exp(s - s.max(-1, keepdims=True))
            out[i, h] = w / w.sum(-1, keepdims=True) @ v[i, g]
    return np_dense(p["out"], out.transpose(0, 2, 1, 3).reshape(b, lq, heads * hd))


def np_encoder_layer(p, x, heads, *, norm_first, eps=1e-5, key_mask=None, activation="relu"):
    def attn(h):
        return np_attention(p["self_attn"], h, heads, heads, key_mask=key_mask)

    if norm_first:
        x = x + attn(np_layer_norm(x, p["norm1"], eps))
        return x + np_ffn(p["ffn"], np_layer_norm(x, p["norm2"], eps), activation)
    x = np_layer_norm(x + attn(x), p["norm1"], eps)
    return np_layer_norm(x + np_ffn(p["ffn"], x, activation), p["norm2"], eps)


def np_decoder_layer(p, x, memory, heads, *, norm_first, eps=1e-5, activation="relu"):
    """Causal self-attention, cross-attention to ``memory``, feed-forward."""
    subs = [
        lambda h: np_attention(p["self_attn"], h, heads, heads, causal=True),
        lambda h: np_attention(p["cross_attn"], h, heads, heads, context=memory),
        lambda h: np_ffn(p["ffn"], h, activation),
    ]
    for i, sub in enumerate(subs):
        norm = p[f"norm{i + 1}"]
        if norm_first:
            x = x + sub(np_layer_norm(x, norm, eps))
        else:
            x = np_layer_norm(x + sub(x), norm, eps)
    return x


def np_sinusoid(length, d):
    pos = np.arange(length)[:, None]
    inv = 10000.0 ** (-np.arange(0, d, 2) / d)
    table = np.zeros((length, d))
    table[:, 0::2] = np.sin(pos * inv)
    table[:, 1::2] = np.cos(pos * inv)[:, : d // 2]
    return table


def np_transformer(p, src, tgt, *, heads, n_enc, n_dec, norm_first, shared, learned, d):
    """Encoder-decoder: ``E[ids] sqrt(d) + P``, the stacks, the output projection."""

    def embed(ids, side):
        table = p["embed" if shared else f"{side}_embed"]["weight"]
        pos = p[f"{side}_pos"]["weight"] if learned else np_sinusoid(64, d)
        return table[ids] * math.sqrt(d) + pos[: ids.shape[1]][None]

    m = embed(src, "src")
    for i in range(n_enc):
        m = np_encoder_layer(p["encoder"][f"layer_{i}"], m, heads, norm_first=norm_first)
    if norm_first:
        m = np_layer_norm(m, p["encoder_norm"], 1e-5)
    h = embed(tgt, "tgt")
    for i in range(n_dec):
        h = np_decoder_layer(p["decoder"][f"layer_{i}"], h, m, heads, norm_first=norm_first)
    if norm_first:
        h = np_layer_norm(h, p["decoder_norm"], 1e-5)
    return h @ p["embed"]["weight"].T if shared else np_dense(p["generator"], h)


def np_lm(p, tokens, *, heads, kv_heads, layers, eps, rope="half", tied=False):
    """LLaMA-style: pre-norm RMSNorm, causal RoPE GQA without biases, SwiGLU."""
    h = p["embed"]["weight"][tokens]
    for i in range(layers):
        lp = p[f"layer_{i}"]
        a = np_rms_norm(h, lp["norm1"], eps)
        h = h + np_attention(lp["self_attn"], a, heads, kv_heads, causal=True, rope=rope)
        h = h + np_ffn(lp["ffn"], np_rms_norm(h, lp["norm2"], eps), "swiglu")
    h = np_rms_norm(h, p["norm"], eps)
    return h @ (p["embed"]["weight"].T if tied else p["lm_head"]["weight"])


# ------------------------------------------------------------------- activation layers
ACTIVATIONS = {
    "ReLU": (nn.ReLU(), lambda x: np.maximum(x, 0.0)),
    "ReLU6": (nn.ReLU6(), lambda x: np.clip(x, 0.0, 6.0)),
    "SELU": (
        nn.SELU(),
        lambda x: (
            1.0507009873554805
            * np.where(x > 0, x, 1.6732632423543772 * (np.exp(np.minimum(x, 0)) - 1))
        ),
    ),
    "SiLU": (nn.SiLU(), np_silu),
    "Mish": (nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    "Sigmoid": (nn.Sigmoid(), np_sigmoid),
    "Tanh": (nn.Tanh(), np.tanh),
    "Softsign": (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    "Hardsigmoid": (nn.Hardsigmoid(), lambda x: np.clip(x + 3, 0, 6) / 6),
    "Hardswish": (nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "LogSigmoid": (nn.LogSigmoid(), lambda x: -np.log1p(np.exp(-x))),
    "LeakyReLU": (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "ELU": (nn.ELU(0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(np.minimum(x, 0)) - 1))),
    "CELU": (
        nn.CELU(2.0),
        lambda x: np.maximum(x, 0) + np.minimum(0, 2.0 * (np.exp(x / 2.0) - 1)),
    ),
    "GELU": (nn.GELU(), np_gelu),
    "GELU(tanh)": (
        nn.GELU("tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    ),
    "Softplus": (
        nn.Softplus(2.0, threshold=5.0),
        lambda x: np.where(2 * x > 5, x, np.log1p(np.exp(2 * x)) / 2),
    ),
    "Hardtanh": (nn.Hardtanh(-0.5, max_val=2.0), lambda x: np.clip(x, -0.5, 2.0)),
    "Softmax": (nn.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "LogSoftmax": (nn.LogSoftmax(), lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    "GLU": (nn.GLU(), lambda x: x[..., :3] * np_sigmoid(x[..., 3:])),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layer_values(name):
    layer, ref = ACTIVATIONS[name]
    x = np.random.default_rng(1).uniform(-4, 4, (5, 6)).astype(np.float32)
    params, state = layer.init(KEY, x.shape)
    y, new_state = layer.apply(params, state, jnp.asarray(x))
    assert params == {} and new_state == {}
    assert_close(y, ref(x.astype(np.float64)), rtol=2e-6, atol=2e-6)


def test_prelu_layer_values():
    layer = nn.PReLU(4)
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    params, state = layer.init(KEY, x.shape)
    params = {"weight": jnp.asarray([0.1, -0.3, 0.5, 2.0])}
    y, _ = layer.apply(params, state, jnp.asarray(x))
    assert_close(y, np.where(x > 0, x, np.asarray(params["weight"]) * x), rtol=1e-6)


# ------------------------------------------------------------------------- FeedForward
@pytest.mark.parametrize("activation", ["relu", "gelu", "swiglu"])
def test_feed_forward_values(activation):
    ff = nn.FeedForward(12, activation=activation)
    x = np.random.default_rng(3).standard_normal((2, 5, 8))
    params, _ = ff.init(KEY, x.shape)
    params = _randomize(params, 4)
    y, _ = ff.apply(params, {}, jnp.asarray(x, jnp.float32))
    assert y.shape == x.shape
    assert_close(y, np_ffn(_np(params), x, activation), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------- decoder layer
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_numpy(norm_first):
    layer = nn.TransformerDecoderLayer(2, 24, dropout=0.0, norm_first=norm_first)
    rng = np.random.default_rng(5)
    x, mem = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 7, 8))
    params, _ = layer.init(KEY, x.shape)
    params = _randomize(params, 6)
    y, _ = layer.apply(
        params, {}, jnp.asarray(x, jnp.float32), memory=jnp.asarray(mem, jnp.float32)
    )
    ref = np_decoder_layer(_np(params), x, mem, 2, norm_first=norm_first)
    assert_close(y, ref, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------- Transformer
@pytest.mark.parametrize("norm_first, shared, learned", [(False, False, False), (True, True, True)])
def test_transformer_matches_numpy(norm_first, shared, learned):
    kw = dict(d_model=16, num_heads=2, num_encoder_layers=2, num_decoder_layers=2)
    model = nn.Transformer(
        11,
        **kw,
        dim_feedforward=24,
        dropout=0.0,
        max_length=64,
        norm_first=norm_first,
        share_embeddings=shared,
        positional="learned" if learned else "sinusoidal",
    )
    params, _ = model.init(KEY, None)
    params = _randomize(params, 7)
    rng = np.random.default_rng(8)
    src, tgt = rng.integers(0, 11, (2, 6)), rng.integers(0, 11, (2, 5))
    logits, _ = jax.jit(model.apply)(params, {}, (jnp.asarray(src), jnp.asarray(tgt)))
    ref = np_transformer(
        _np(params),
        src,
        tgt,
        heads=2,
        n_enc=2,
        n_dec=2,
        norm_first=norm_first,
        shared=shared,
        learned=learned,
        d=16,
    )
    assert_close(logits, ref, rtol=2e-4, atol=2e-4)


# ---------------------------------------------------------------------- TransformerLM
@pytest.mark.parametrize("kv_heads, tied", [(2, False), (1, True), (4, False)])
def test_transformer_lm_matches_numpy(kv_heads, tied):
    kw = dict(d_model=16, num_heads=4, num_layers=2, num_kv_heads=kv_heads)
    model = nn.TransformerLM(29, **kw, tie_embeddings=tied)
    params, _ = model.init(KEY, None)
    params = _randomize(params, 9)
    tokens = np.random.default_rng(10).integers(0, 29, (2, 7))
    logits, _ = jax.jit(model.apply)(params, {}, jnp.asarray(tokens))
    ref = np_lm(_np(params), tokens, heads=4, kv_heads=kv_heads, layers=2, eps=1e-6, tied=tied)
    assert logits.shape == (2, 7, 29)
    assert_close(logits, ref, rtol=2e-4, atol=2e-4)
