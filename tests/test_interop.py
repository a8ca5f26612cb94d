"""fdl.interop: PyTorch-layout state dicts built with NumPy, checked against NumPy forwards
of the PyTorch-layout models (NCHW, ``[out, in]`` weights), and exact round trips."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import interop, nn
from tests.helpers import assert_close

RNG = np.random.default_rng(0)


def rand(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def assert_round_trip(model, sd, input_shape):
    """torch -> ours -> torch gives the same arrays, and ours -> torch -> ours too."""
    params, state = interop.from_torch_state_dict(model, sd, input_shape)
    back = interop.to_torch_state_dict(model, params, state)
    for k, v in sd.items():
        if k.endswith(("num_batches_tracked", "attn.bias", "inv_freq")):
            continue
        np.testing.assert_array_equal(back[k], v, err_msg=k)
        assert back[k].dtype == v.dtype, k
    again = interop.from_torch_state_dict(model, back, input_shape)
    for a, b in zip(
        jax.tree_util.tree_leaves((params, state)), jax.tree_util.tree_leaves(again), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    return params, state


# ------------------------------------------------------------ NumPy, PyTorch layout
def np_conv2d(x, w, b, stride=1, padding=0):
    """NCHW x, OIHW w (torch.nn.functional.conv2d)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = x[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + b[None, :, None, None]


def np_cnn(sd, x):
    """Conv-BN-ReLU-MaxPool-Conv(stride 2)-ReLU-Flatten-Linear-ReLU-Linear, NCHW."""
    h = np_conv2d(x, sd["0.weight"], sd["0.bias"], padding=1)
    c = lambda v: v[None, :, None, None]  # noqa: E731
    h = (h - c(sd["1.running_mean"])) / np.sqrt(c(sd["1.running_var"]) + 1e-5)
    h = np.maximum(h * c(sd["1.weight"]) + c(sd["1.bias"]), 0)
    n, ch, hh, ww = h.shape
    h = h.reshape(n, ch, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    h = np.maximum(np_conv2d(h, sd["4.weight"], sd["4.bias"], stride=2), 0)
    h = h.reshape(n, -1)  # PyTorch's flatten: (c, h, w)
    h = np.maximum(h @ sd["7.weight"].T + sd["7.bias"], 0)
    return h @ sd["9.weight"].T + sd["9.bias"]


def cnn():
    return nn.Sequential(
        nn.Conv2d(4, 3, padding=1),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(5, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(7),
        nn.ReLU(),
        nn.Linear(3),
    )


def cnn_state_dict():
    return {
        "0.weight": rand(4, 2, 3, 3),
        "0.bias": rand(4),
        "1.weight": rand(4) + 1,
        "1.bias": rand(4),
        "1.running_mean": rand(4),
        "1.running_var": np.abs(rand(4)) + 0.5,
        "1.num_batches_tracked": np.asarray(17, np.int64),
        "4.weight": rand(5, 4, 3, 3),
        "4.bias": rand(5),
        "7.weight": rand(7, 5 * 2 * 2),
        "7.bias": rand(7),
        "9.weight": rand(3, 7),
        "9.bias": rand(3),
    }


def test_cnn_matches_pytorch_layout_forward():
    model, sd = cnn(), cnn_state_dict()
    x_nchw = rand(2, 2, 10, 10, scale=1.0)
    params, state = assert_round_trip(model, sd, (2, 10, 10, 2))
    y, _ = model.apply(params, state, jnp.asarray(x_nchw.transpose(0, 2, 3, 1)))
    assert_close(y, np_cnn(sd, x_nchw), rtol=1e-4, atol=1e-4)
    # the flatten permutation matters: a plain transpose of 7.weight gives other logits
    plain = dict(params)
    plain["7_linear"] = {
        "weight": jnp.asarray(sd["7.weight"].T),
        "bias": params["7_linear"]["bias"],
    }
    y_plain, _ = model.apply(plain, state, jnp.asarray(x_nchw.transpose(0, 2, 3, 1)))
    assert not np.allclose(y_plain, y, atol=1e-3)
    # the channels of the flattened activation are read from the convolutions
    again = interop.to_torch_state_dict(model, params, state)
    np.testing.assert_array_equal(again["7.weight"], sd["7.weight"])
    assert int(again["1.num_batches_tracked"]) == 0


def test_token_model_with_norms_embedding_and_prelu():
    model = nn.Sequential(
        nn.Embedding(13, 6),
        nn.LayerNorm(),
        nn.Linear(8),
        nn.PReLU(),
        nn.RMSNorm(),
        nn.GroupNorm(2),
        nn.Linear(4, bias=False),
    )
    sd = {
        "0.weight": rand(13, 6),
        "1.weight": rand(6) + 1,
        "1.bias": rand(6),
        "2.weight": rand(8, 6),
        "2.bias": rand(8),
        "3.weight": np.asarray([0.25], np.float32),
        "4.weight": rand(8) + 1,
        "5.weight": rand(8) + 1,
        "5.bias": rand(8),
        "6.weight": rand(4, 8),
    }
    spec = jax.ShapeDtypeStruct((3, 5), jnp.int32)
    params, state = assert_round_trip(model, sd, spec)
    ids = RNG.integers(0, 13, (3, 5))
    h = sd["0.weight"][ids].astype(np.float64)
    mu, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    h = (h - mu) / np.sqrt(var + 1e-5) * sd["1.weight"] + sd["1.bias"]
    h = h @ sd["2.weight"].T + sd["2.bias"]
    h = np.where(h > 0, h, sd["3.weight"] * h)
    h = h / np.sqrt((h**2).mean(-1, keepdims=True) + np.finfo(np.float32).eps) * sd["4.weight"]
    g = h.reshape(3, 5, 2, 4)  # GroupNorm: each group's channels and all positions
    g = (g - g.mean((1, 3), keepdims=True)) / np.sqrt(g.var((1, 3), keepdims=True) + 1e-5)
    h = g.reshape(3, 5, 8) * sd["5.weight"] + sd["5.bias"]
    expected = h @ sd["6.weight"].T
    y, _ = model.apply(params, state, jnp.asarray(ids))
    assert_close(y, expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- language models
V, D, H, NL, T = 19, 16, 2, 2, 8


def np_ln(x, w, b, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


def np_attend(q, k, v):
    """[B, H, L, hd] causal attention."""
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    length = q.shape[-2]
    s = np.where(np.tril(np.ones((length, length), bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ v


def heads(x, n):
    b, length, _ = x.shape
    return x.reshape(b, length, n, -1).transpose(0, 2, 1, 3)


def merge(x):
    b, _, length, _ = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, length, -1)


def nanogpt_state_dict(bias=True):
    sd = {"transformer.wte.weight": rand(V, D), "transformer.wpe.weight": rand(T, D)}
    for i in range(NL):
        t = f"transformer.h.{i}"
        for name, shape in (
            ("attn.c_attn", (3 * D, D)),
            ("attn.c_proj", (D, D)),
            ("mlp.c_fc", (4 * D, D)),
            ("mlp.c_proj", (D, 4 * D)),
        ):
            sd[f"{t}.{name}.weight"] = rand(*shape, scale=0.3)
            if bias:
                sd[f"{t}.{name}.bias"] = rand(shape[0])
        for ln in ("ln_1", "ln_2"):
            sd[f"{t}.{ln}.weight"] = rand(D) + 1
            if bias:
                sd[f"{t}.{ln}.bias"] = rand(D)
        sd[f"{t}.attn.bias"] = np.tril(np.ones((T, T), np.float32))[None, None]  # old mask buffer
    sd["transformer.ln_f.weight"] = rand(D) + 1
    if bias:
        sd["transformer.ln_f.bias"] = rand(D)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # nanoGPT ties them
    return sd


def np_nanogpt(sd, ids):
    """nanoGPT's GPT.forward on PyTorch-layout weights (x @ W.T + b, exact GELU)."""
    g = lambda k: sd.get(k, 0.0)  # noqa: E731
    lin = lambda x, n: x @ sd[f"{n}.weight"].T + g(f"{n}.bias")  # noqa: E731
    norm = lambda x, n: np_ln(x, sd[f"{n}.weight"], g(f"{n}.bias"))  # noqa: E731
    erf = np.vectorize(math.erf)
    x = sd["transformer.wte.weight"][ids] + sd["transformer.wpe.weight"][: ids.shape[1]]
    for i in range(NL):
        t = f"transformer.h.{i}"
        q, k, v = np.split(lin(norm(x, f"{t}.ln_1"), f"{t}.attn.c_attn"), 3, axis=-1)
        x = x + lin(merge(np_attend(heads(q, H), heads(k, H), heads(v, H))), f"{t}.attn.c_proj")
        m = lin(norm(x, f"{t}.ln_2"), f"{t}.mlp.c_fc")
        x = x + lin(0.5 * m * (1 + erf(m / math.sqrt(2))), f"{t}.mlp.c_proj")
    return norm(x, "transformer.ln_f") @ sd["lm_head.weight"].T


@pytest.mark.parametrize("bias", [True, False])
def test_nanogpt_state_dict_loads_into_the_gpt_preset(bias):
    model = fdl.models.gpt(V, block_size=T, n_layer=NL, n_head=H, n_embd=D, bias=bias)
    sd = nanogpt_state_dict(bias)
    params, state = assert_round_trip(model, sd, (2, T))
    ids = RNG.integers(0, V, (2, T))
    logits, _ = model.apply(params, state, jnp.asarray(ids))
    assert_close(logits, np_nanogpt(sd, ids), rtol=1e-4, atol=1e-4)
    out = interop.to_torch_state_dict(model, params, state)
    assert "lm_head.weight" in out and "transformer.h.0.attn.bias" not in out


def llama_state_dict(hkv=1, hd=8):
    sd = {"model.embed_tokens.weight": rand(V, D), "model.norm.weight": rand(D) + 1}
    for i in range(NL):
        t = f"model.layers.{i}"
        sd[f"{t}.self_attn.q_proj.weight"] = rand(H * hd, D)
        sd[f"{t}.self_attn.k_proj.weight"] = rand(hkv * hd, D)
        sd[f"{t}.self_attn.v_proj.weight"] = rand(hkv * hd, D)
        sd[f"{t}.self_attn.o_proj.weight"] = rand(D, H * hd)
        sd[f"{t}.mlp.gate_proj.weight"] = rand(24, D)
        sd[f"{t}.mlp.up_proj.weight"] = rand(24, D)
        sd[f"{t}.mlp.down_proj.weight"] = rand(D, 24)
        sd[f"{t}.input_layernorm.weight"] = rand(D) + 1
        sd[f"{t}.post_attention_layernorm.weight"] = rand(D) + 1
        sd[f"{t}.self_attn.rotary_emb.inv_freq"] = rand(hd // 2)  # an old HF buffer
    sd["lm_head.weight"] = rand(V, D)
    return sd


def np_llama(sd, ids, hkv=1, theta=10000.0, eps=1e-6):
    """Hugging Face LlamaForCausalLM.forward (rotate_half RoPE, GQA, SwiGLU, RMSNorm)."""
    lin = lambda x, n: x @ sd[f"{n}.weight"].T  # noqa: E731

    def rms(x, n):
        return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * sd[f"{n}.weight"]

    def rope(x):
        hd = x.shape[-1]
        inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
        ang = np.arange(x.shape[-2])[:, None] * inv[None]
        cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
        rot = np.concatenate([-x[..., hd // 2 :], x[..., : hd // 2]], -1)
        return x * cos + rot * sin

    x = sd["model.embed_tokens.weight"][ids].astype(np.float64)
    for i in range(NL):
        t = f"model.layers.{i}"
        h = rms(x, f"{t}.input_layernorm")
        q = rope(heads(lin(h, f"{t}.self_attn.q_proj"), H))
        k = rope(heads(lin(h, f"{t}.self_attn.k_proj"), hkv))
        v = heads(lin(h, f"{t}.self_attn.v_proj"), hkv)
        k, v = np.repeat(k, H // hkv, axis=1), np.repeat(v, H // hkv, axis=1)
        x = x + lin(merge(np_attend(q, k, v)), f"{t}.self_attn.o_proj")
        h = rms(x, f"{t}.post_attention_layernorm")
        gate = lin(h, f"{t}.mlp.gate_proj")
        x = x + lin(gate / (1 + np.exp(-gate)) * lin(h, f"{t}.mlp.up_proj"), f"{t}.mlp.down_proj")
    return lin(rms(x, "model.norm"), "lm_head")


def test_llama_state_dict_matches_hf_forward():
    model = nn.TransformerLM(V, D, H, NL, num_kv_heads=1, dim_feedforward=24)
    sd = llama_state_dict()
    params, state = assert_round_trip(model, sd, (2, T))
    ids = RNG.integers(0, V, (2, T))
    logits, _ = model.apply(params, state, jnp.asarray(ids))
    assert_close(logits, np_llama(sd, ids), rtol=1e-4, atol=1e-4)


def test_encoder_layer_and_attention_round_trip():
    layer = nn.TransformerEncoderLayer(2, 12, dropout=0.0)
    sd = {
        "self_attn.in_proj_weight": rand(3 * D, D),
        "self_attn.in_proj_bias": rand(3 * D),
        "self_attn.out_proj.weight": rand(D, D),
        "self_attn.out_proj.bias": rand(D),
        "linear1.weight": rand(12, D),
        "linear1.bias": rand(12),
        "linear2.weight": rand(D, 12),
        "linear2.bias": rand(D),
        "norm1.weight": rand(D),
        "norm1.bias": rand(D),
        "norm2.weight": rand(D),
        "norm2.bias": rand(D),
    }
    params, _ = assert_round_trip(layer, sd, (1, 4, D))
    np.testing.assert_array_equal(
        params["self_attn"]["qkv"]["weight"], sd["self_attn.in_proj_weight"].T
    )
    np.testing.assert_array_equal(params["ffn"]["linear1"]["weight"], sd["linear1.weight"].T)


def test_errors_name_the_problem():
    model, sd = cnn(), cnn_state_dict()
    with pytest.raises(ValueError, match=r"missing \['9.bias'\]"):
        interop.from_torch_state_dict(
            model, {k: v for k, v in sd.items() if k != "9.bias"}, (2, 10, 10, 2)
        )
    with pytest.raises(ValueError, match=r"unexpected \['10.weight'\]"):
        interop.from_torch_state_dict(model, {**sd, "10.weight": rand(2)}, (2, 10, 10, 2))
    with pytest.raises(ValueError, match=r"7.weight \(7, 16\).*expects \(20, 7\)"):
        interop.from_torch_state_dict(model, {**sd, "7.weight": rand(7, 16)}, (2, 10, 10, 2))
    with pytest.raises(ValueError, match=r"9.weight \(3, 6\).*expects \(7, 3\)"):
        interop.from_torch_state_dict(model, {**sd, "9.weight": rand(3, 6)}, (2, 10, 10, 2))
    gpt = fdl.models.gpt(V, block_size=T, n_layer=NL, n_head=H, n_embd=D)
    untied = {**nanogpt_state_dict(), "lm_head.weight": rand(V, D)}
    with pytest.raises(ValueError, match="tie_embeddings=False"):
        interop.from_torch_state_dict(gpt, untied, (2, T))
    with pytest.raises(ValueError, match="no PyTorch converter for layer 'custom'"):
        custom = nn.Layer(
            lambda k, s: ({"w": jnp.ones(2)}, {}), lambda p, s, x, **kw: (x, s), "custom"
        )
        interop.from_torch_state_dict(nn.Sequential(custom), {"0.w": np.ones(2)}, (1, 2))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3))
    params, state = mlp.init(jax.random.key(0), (1, 2, 2, 3))
    with pytest.raises(ValueError, match="pass input_shape="):
        interop.to_torch_state_dict(mlp, params, state)
    sd = interop.to_torch_state_dict(mlp, params, state, input_shape=(1, 2, 2, 3))
    back, _ = interop.from_torch_state_dict(mlp, sd, (1, 2, 2, 3))
    np.testing.assert_array_equal(back["1_linear"]["weight"], params["1_linear"]["weight"])
    assert "interop" in dir(fdl) and dir(interop) == sorted(interop.__all__)


def test_recurrent_table_entry_and_state_from_init():
    """A layer named like nn.LSTM with PyTorch's parameter names ([in, 4H] here)."""

    def init(key, input_shape):
        params = {"weight_ih_l0": jnp.zeros((3, 8)), "weight_hh_l0": jnp.zeros((2, 8))}
        params["bias_ih_l0"] = jnp.zeros(8)
        return params, {"h_n": jnp.full((1, input_shape[0], 2), 7.0)}

    lstm = nn.Layer(init, lambda p, s, x, **kw: (x, s), "lstm")
    sd = {"0.weight_ih_l0": rand(8, 3), "0.weight_hh_l0": rand(8, 2), "0.bias_ih_l0": rand(8)}
    params, state = assert_round_trip(nn.Sequential(lstm), sd, (4, 5, 3))
    np.testing.assert_array_equal(params["0_lstm"]["weight_ih_l0"], sd["0.weight_ih_l0"].T)
    np.testing.assert_array_equal(state["0_lstm"]["h_n"], np.full((1, 4, 2), 7.0))


def test_lm_round_trips_in_both_styles_with_biases():
    """Untied, biased, GQA, learned positions: our params -> PyTorch names -> ours exactly."""
    for kw, names in [
        (
            {"bias": True, "num_kv_heads": 1, "dim_feedforward": 24},
            ["model.layers.1.self_attn.k_proj.bias", "model.layers.0.mlp.up_proj.bias"],
        ),
        (
            {"mlp": "gelu", "norm": "layer", "positional": "learned", "max_len": T},
            ["transformer.wpe.weight", "transformer.ln_f.weight", "lm_head.weight"],
        ),
    ]:
        model = nn.TransformerLM(V, D, H, NL, **kw)
        params, state = model.init(jax.random.PRNGKey(4), None)
        params = jax.tree_util.tree_map(lambda a: a + 0.1, params)  # biases not all zero
        sd = interop.to_torch_state_dict(model, params, state)
        assert all(n in sd for n in names), sorted(sd)
        assert sd["lm_head.weight"].shape == (V, D)
        back, _ = interop.from_torch_state_dict(model, sd, (1, T))
        jax.tree_util.tree_map(np.testing.assert_array_equal, back, params)
    # a plain shape for a model starting with Embedding means integer ids
    seq = nn.Sequential(nn.Embedding(5, 3), nn.Linear(2))
    sd = {"0.weight": rand(5, 3), "1.weight": rand(2, 3), "1.bias": rand(2)}
    params, _ = interop.from_torch_state_dict(seq, sd, (4, 7))
    np.testing.assert_array_equal(params["1_linear"]["weight"], sd["1.weight"].T)


def test_decoder_layer_splits_the_fused_cross_attention_projection():
    layer = nn.TransformerDecoderLayer(2, 12, dropout=0.0)
    sd = {}
    for attn in ("self_attn", "multihead_attn"):
        sd[f"{attn}.in_proj_weight"] = rand(3 * D, D)
        sd[f"{attn}.in_proj_bias"] = rand(3 * D)
        sd[f"{attn}.out_proj.weight"] = rand(D, D)
        sd[f"{attn}.out_proj.bias"] = rand(D)
    for name, shape in (("linear1", (12, D)), ("linear2", (D, 12))):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = rand(*shape), rand(shape[0])
    for name in ("norm1", "norm2", "norm3"):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = rand(D), rand(D)
    params, _ = assert_round_trip(layer, sd, (1, 4, D))
    w, b = sd["multihead_attn.in_proj_weight"], sd["multihead_attn.in_proj_bias"]
    for i, name in enumerate("qkv"):
        np.testing.assert_array_equal(
            params["cross_attn"][name]["weight"], w[i * D : (i + 1) * D].T
        )
        np.testing.assert_array_equal(params["cross_attn"][name]["bias"], b[i * D : (i + 1) * D])
    # PyTorch's decoder layer (post-norm), written out: self-attn, cross-attn, FFN
    x, m = rand(1, 4, D, scale=1.0), rand(1, 5, D, scale=1.0)

    def mha(prefix, q_in, kv_in, causal):
        wq, wk, wv = np.split(sd[f"{prefix}.in_proj_weight"], 3)
        bq, bk, bv = np.split(sd[f"{prefix}.in_proj_bias"], 3)
        q, k, v = (
            heads(t @ w_.T + b_, 2)
            for t, w_, b_ in ((q_in, wq, bq), (kv_in, wk, bk), (kv_in, wv, bv))
        )
        s = q @ np.swapaxes(k, -1, -2) / math.sqrt(D // 2)
        if causal:
            s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
        a = np.exp(s - s.max(-1, keepdims=True))
        o = merge((a / a.sum(-1, keepdims=True)) @ v)
        return o @ sd[f"{prefix}.out_proj.weight"].T + sd[f"{prefix}.out_proj.bias"]

    def ln(t, n):
        return np_ln(t, sd[f"{n}.weight"], sd[f"{n}.bias"])

    h = ln(x + mha("self_attn", x, x, True), "norm1")
    h = ln(h + mha("multihead_attn", h, m, False), "norm2")
    f = np.maximum(h @ sd["linear1.weight"].T + sd["linear1.bias"], 0)
    h = ln(h + f @ sd["linear2.weight"].T + sd["linear2.bias"], "norm3")
    y, _ = layer.apply(params, {}, jnp.asarray(x), memory=jnp.asarray(m))
    assert_close(y, h, rtol=1e-4, atol=1e-4)


def test_converted_arrays_share_no_memory_with_the_inputs():
    # jnp.asarray/np.asarray may alias buffers on CPU: the params must not change when the
    # caller's (torch's) arrays are updated in place, and the state dict must be writable
    model = nn.Sequential(nn.Linear(3), nn.BatchNorm())
    sd = {
        "0.weight": np.ones((3, 4), np.float32),
        "0.bias": np.zeros(3, np.float32),
        "1.weight": np.ones(3, np.float32),
        "1.bias": np.zeros(3, np.float32),
        "1.running_mean": np.zeros(3, np.float32),
        "1.running_var": np.ones(3, np.float32),
    }
    params, state = interop.from_torch_state_dict(model, sd, (2, 4))
    for v in sd.values():
        v += 5.0
    leaves = jax.tree_util.tree_leaves((params, state))
    assert all(float(jnp.min(a)) < 5.0 for a in leaves)
    out = interop.to_torch_state_dict(model, params, state)
    for name, v in out.items():
        assert v.flags.writeable, name
        v += 7
    assert all(float(jnp.max(a)) < 5.0 for a in jax.tree_util.tree_leaves((params, state)))
