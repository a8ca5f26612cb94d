"""TransformerLM's GPT-2 options against a NumPy forward, GPT-2 init, keyword-only
constructors of the Transformer layers, norm biases and summary rows."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import nn
from tests.helpers import assert_close

KEY = jax.random.PRNGKey(0)
V, D, H, NL, T = 23, 16, 2, 2, 12


def np_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps) * w
    return y if b is None else y + b


def np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def np_gpt2(p, tokens, num_heads, eps=1e-5):
    """GPT-2 (nanoGPT's GPT.forward) in float64 on our parameter names."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), p)
    tokens = np.asarray(tokens)
    _, length = tokens.shape
    h = p["embed"]["weight"][tokens] + p["pos"]["table"][:length]
    causal = np.tril(np.ones((length, length), bool))
    i = 0
    while f"layer_{i}" in p:
        q = p[f"layer_{i}"]
        x = np_layer_norm(h, q["norm1"]["weight"], q["norm1"].get("bias"), eps)
        qkv = x @ q["self_attn"]["qkv"]["weight"] + q["self_attn"]["qkv"].get("bias", 0.0)
        d = h.shape[-1]
        hd = d // num_heads
        heads = [qkv[..., j * d : (j + 1) * d] for j in range(3)]
        qh, kh, vh = (a.reshape(a.shape[:2] + (num_heads, hd)).transpose(0, 2, 1, 3) for a in heads)
        s = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(hd)
        s = np.where(causal, s, -np.inf)
        w = np.exp(s - s.max(-1, keepdims=True))
        w = w / w.sum(-1, keepdims=True)
        o = (w @ vh).transpose(0, 2, 1, 3).reshape(h.shape)
        h = h + o @ q["self_attn"]["out"]["weight"] + q["self_attn"]["out"].get("bias", 0.0)
        x = np_layer_norm(h, q["norm2"]["weight"], q["norm2"].get("bias"), eps)
        f = q["ffn"]
        m = np_gelu(x @ f["linear1"]["weight"] + f["linear1"].get("bias", 0.0))
        h = h + m @ f["linear2"]["weight"] + f["linear2"].get("bias", 0.0)
        i += 1
    h = np_layer_norm(h, p["norm"]["weight"], p["norm"].get("bias"), eps)
    return h @ p["embed"]["weight"].T


def gpt2(bias=True, **kw):
    return nn.TransformerLM(
        V,
        D,
        H,
        NL,
        norm="layer",
        mlp="gelu",
        positional="learned",
        max_len=T,
        bias=bias,
        tie_embeddings=True,
        scaled_residual_init=True,
        **kw,
    )


def perturbed(params, seed=1):
    """Random values in every leaf (norm weights/biases and biases are not 1/0)."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    new = [a + 0.3 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys, strict=True)]
    return jax.tree_util.tree_unflatten(tree, new)


@pytest.mark.parametrize("bias", [True, False])
def test_gpt2_forward_matches_numpy(bias):
    model = gpt2(bias)
    params = perturbed(model.init(KEY, (2, T))[0])
    has_bias = "bias" in params["layer_0"]["norm1"]
    assert has_bias == bias and ("bias" in params["layer_0"]["self_attn"]["qkv"]) == bias
    assert "bias" not in params["layer_0"]["norm1"] or bias
    tokens = jax.random.randint(KEY, (2, T), 0, V)
    logits, _ = jax.jit(model.apply)(params, {}, tokens)
    assert_close(logits, np_gpt2(params, tokens, H), rtol=2e-4, atol=2e-4)


def test_gpt2_init_and_structure():
    model = gpt2()
    params, state = model.init(KEY, (2, T))
    assert state == {} and set(params) == {"embed", "pos", "layer_0", "layer_1", "norm"}
    layer = params["layer_0"]
    assert layer["ffn"]["linear1"]["weight"].shape == (D, 4 * D)
    assert layer["self_attn"]["qkv"]["weight"].shape == (D, 3 * D)
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        if name.endswith("['bias']"):
            np.testing.assert_array_equal(leaf, 0.0, err_msg=name)
        elif "norm" in name:
            np.testing.assert_array_equal(leaf, 1.0, err_msg=name)
    wide = nn.TransformerLM(
        V, 128, 2, 4, norm="layer", mlp="gelu", positional="learned", max_len=8,
        scaled_residual_init=True, dim_feedforward=512,
    )  # fmt: skip
    p = wide.init(KEY, None)[0]
    std = lambda a: float(np.std(np.asarray(a)))  # noqa: E731
    assert abs(std(p["embed"]["weight"]) - 0.02) < 0.002
    assert abs(std(p["pos"]["table"]) - 0.02) < 0.003
    assert abs(std(p["layer_0"]["self_attn"]["qkv"]["weight"]) - 0.02) < 0.002
    scaled = 0.02 / math.sqrt(2 * 4)
    assert abs(std(p["layer_1"]["self_attn"]["out"]["weight"]) - scaled) < 0.1 * scaled
    assert abs(std(p["layer_2"]["ffn"]["linear2"]["weight"]) - scaled) < 0.1 * scaled
    assert "lm_head" in p and "bias" not in p["layer_0"]["norm1"]  # bias=False default


def test_gpt2_cache_and_learned_positions_equal_full_recompute():
    model = gpt2()
    params = perturbed(model.init(KEY, None)[0])
    tokens = jax.random.randint(KEY, (2, T), 0, V)
    apply = jax.jit(model.apply, static_argnames=("cache_length",))
    full, _ = apply(params, {}, tokens)
    logits, cache = apply(params, {}, tokens[:, :5], cache_length=T)
    outs = [logits]
    for t in range(5, T):
        logits, cache = apply(params, cache, tokens[:, t : t + 1])
        outs.append(logits)
    assert_close(jnp.concatenate(outs, 1), full, rtol=1e-5, atol=1e-5)
    greedy = nn.generate(model, params, tokens[:, :4], T - 4)
    np.testing.assert_array_equal(
        greedy, nn.generate(model, params, tokens[:, :4], T - 4, use_cache=False)
    )
    with pytest.raises(ValueError, match="exceeds max_len=12"):
        nn.generate(model, params, tokens[:, :4], T)


@pytest.mark.parametrize(
    "norm, mlp, positional", [("rms", "gelu", "learned"), ("layer", "swiglu", "rope")]
)
def test_mixed_options_train_and_decode(norm, mlp, positional):
    model = nn.TransformerLM(
        V, D, H, 1, norm=norm, mlp=mlp, positional=positional, max_len=T, bias=True
    )
    params = model.init(KEY, None)[0]
    assert ("gate" in params["layer_0"]["ffn"]) == (mlp == "swiglu")
    assert ("pos" in params) == (positional == "learned")
    tokens = jax.random.randint(KEY, (2, 8), 0, V)

    def loss(p):
        return jnp.mean(jax.nn.logsumexp(model.apply(p, {}, tokens)[0], -1))

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree_util.tree_leaves(grads))
    out = nn.generate(model, params, tokens[:, :2], 6)
    np.testing.assert_array_equal(
        out, nn.generate(model, params, tokens[:, :2], 6, use_cache=False)
    )


def test_lm_option_errors():
    with pytest.raises(ValueError, match="max_len"):
        nn.TransformerLM(V, D, H, 1, positional="learned")
    with pytest.raises(ValueError, match="norm"):
        nn.TransformerLM(V, D, H, 1, norm="batch")
    with pytest.raises(ValueError, match="mlp"):
        nn.TransformerLM(V, D, H, 1, mlp="relu")
    with pytest.raises(TypeError, match="bias must be a bool"):
        nn.TransformerLM(V, D, H, 1, bias=1)
    with pytest.raises(TypeError, match=r"TransformerLM\(vocab_size, d_model"):
        nn.TransformerLM(V, D, H, 1, 0.1)


def test_pytorch_order_calls_raise_with_our_form():
    with pytest.raises(TypeError, match=r"MultiHeadAttention\(num_heads"):
        nn.MultiHeadAttention(512, 8)
    with pytest.raises(TypeError, match=r"TransformerEncoderLayer\(num_heads, dim_feedforward"):
        nn.TransformerEncoderLayer(512, 8, 2048)
    with pytest.raises(TypeError, match=r"TransformerDecoderLayer\(num_heads"):
        nn.TransformerDecoderLayer(8, 2048, 0.1)
    with pytest.raises(TypeError, match=r"Transformer\(src_vocab_size"):
        nn.Transformer(10, 10, 32, 4, 1, 1, 64, 0.1)
    with pytest.raises(TypeError, match=r"FeedForward\(dim_feedforward"):
        nn.FeedForward(512, 2048)
    with pytest.raises(TypeError, match="bias must be a bool"):
        nn.TransformerEncoderLayer(2, 16, bias=0)


def test_encoder_layer_bias_false_and_weight_init():
    layer = nn.TransformerEncoderLayer(2, 16, bias=False, weight_init=nn.init.ones)
    params = layer.init(KEY, (1, 4, 8))[0]
    assert params["norm1"] == {"weight": params["norm1"]["weight"]}  # no LayerNorm bias
    assert "bias" not in params["ffn"]["linear1"] and "bias" not in params["self_attn"]["qkv"]
    for name in ("qkv", "out"):
        np.testing.assert_array_equal(params["self_attn"][name]["weight"], 1.0)
    np.testing.assert_array_equal(params["ffn"]["linear2"]["weight"], 1.0)
    # PyTorch's bias=False LayerNorm: (x - mean) / std * weight, no shift
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 4, 8)), jnp.float32)
    p = jax.tree_util.tree_map(lambda a: a * 0.01, params)
    y, _ = layer.apply(p, {}, x)
    assert_close(y.mean(-1), jnp.zeros((1, 4)), atol=1e-5)  # post-norm output, no bias


def test_summary_lists_every_child():
    text = nn.summary(gpt2(), jax.ShapeDtypeStruct((2, T), jnp.int32))
    names = [line.split()[0] for line in text.splitlines()[2:-2]]
    assert names[:3] == ["transformer_lm", "embed", "pos"]
    assert names.count("self_attn") == NL and names.count("ffn") == NL and names[-1] == "norm"
    total = sum(a.size for a in jax.tree_util.tree_leaves(gpt2().init(KEY, None)[0]))
    assert f"total parameters {total:,}" in text
    llama = nn.summary(nn.TransformerLM(V, D, H, 1), jax.ShapeDtypeStruct((2, T), jnp.int32))
    assert "lm_head" in llama and f"(2, {T}, {V})" in llama.splitlines()[-3]
