"""Decoder-only Transformer language model: LLaMA-style by default, GPT-2 by options.

Generation lives in :mod:`functional_dl.nn._generate` (:func:`generate`).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from .._checks import check_choice, check_int, check_positive, check_probability
from . import init as initializers
from ._attention import positional_limit
from ._core import Layer
from ._linear import Embedding, Linear
from ._positional import LearnedPositionalEmbedding
from ._transformer import causal_lm_block, norm_layer
from .functional._dropout import dropout as dropout_op
from .functional._linear import linear

__all__ = ["TransformerLM"]

_FN = "TransformerLM"


@positional_limit(4, "TransformerLM(vocab_size, d_model, num_heads, num_layers, ...)")
def TransformerLM(
    vocab_size: int,
    d_model: int = 512,
    num_heads: int = 8,
    num_layers: int = 6,
    *,
    num_kv_heads: int | None = None,
    dim_feedforward: int | None = None,
    dropout: float = 0.0,
    norm: str = "rms",
    mlp: str = "swiglu",
    positional: str = "rope",
    max_len: int | None = None,
    bias: bool = False,
    norm_eps: float | None = None,
    rope_theta: float = 10000.0,
    rope_layout: str = "half",
    tie_embeddings: bool = False,
    scaled_residual_init: bool = False,
    implementation: str | None = None,
    init_std: float = 0.02,
) -> Layer:
    """Decoder-only Transformer LM, pre-norm and causal: LLaMA-style or GPT-2.

    .. math::
        h_0 = E[x] (+ P[t]),\\quad h'_l = h_l + \\mathrm{Attn}_{causal}(\\mathrm{Norm}(h_l)),\\quad
        h_{l+1} = h'_l + \\mathrm{MLP}(\\mathrm{Norm}(h'_l)),\\quad
        \\mathrm{logits} = \\mathrm{Norm}(h_L) W

    The defaults are LLaMA's (RMSNorm, SwiGLU, RoPE, no biases). GPT-2 is
    ``norm='layer', mlp='gelu', positional='learned', max_len=1024, bias=True,
    tie_embeddings=True, scaled_residual_init=True`` (nanoGPT's ``GPT``; see
    :func:`functional_dl.models.gpt`).

    Args:
      vocab_size: number of tokens ``V``.
      d_model, num_heads, num_layers: width, heads (must divide ``d_model``), depth.
      num_kv_heads: key/value heads for grouped-query attention (default ``num_heads``).
      dim_feedforward: MLP hidden width (default: ``4 d`` for ``'gelu'``; for
        ``'swiglu'`` ``8 d / 3`` rounded up to a multiple of 8, the same parameter count).
      dropout: on embeddings, attention weights and residual branches (default 0).
      norm: ``'rms'`` (RMSNorm) or ``'layer'`` (LayerNorm).
      mlp: ``'swiglu'`` (``down(silu(gate x) * up x)``) or ``'gelu'``
        (``linear2(gelu(linear1 x))``, exact erf GELU as ``torch.nn.GELU()``).
      positional: ``'rope'`` (rotary, in every attention) or ``'learned'`` (a table
        ``P [max_len, d]`` added to the embeddings, GPT-2).
      max_len: number of learned positions (needed for ``'learned'``; with RoPE, an
        optional limit on the sequence length).
      bias: biases in every projection and in the LayerNorms (``False`` removes them all,
        as PyTorch's ``bias=False``); the output head never has one.
      norm_eps: normalisation epsilon (default ``1e-6`` for RMSNorm, ``1e-5`` for LayerNorm).
      rope_theta, rope_layout: RoPE frequency base and pair layout (``'half'`` or
        ``'interleaved'``).
      tie_embeddings: reuse the embedding table as the output projection.
      scaled_residual_init: draw the projections that write into the residual stream
        (attention ``out`` and the MLP's last layer) from ``N(0, (init_std /
        sqrt(2 num_layers))^2)`` (GPT-2).
      implementation: attention path (see ``scaled_dot_product_attention``).
      init_std: every weight is drawn from ``N(0, init_std^2)`` (GPT-2 / LLaMA), norms
        weight 1 and bias 0, biases 0.

    Params: ``{"embed": {"weight": [V, d]}, "pos": {"table": [max_len, d]} (learned),
    "layer_{i}": {"norm1", "self_attn": {"qkv", "out"}, "norm2", "ffn"}, "norm",
    "lm_head": {"weight": [d, V]}}`` (no ``lm_head`` when tied).
    :func:`functional_dl.interop.from_torch_state_dict` maps nanoGPT / LLaMA names to
    these.

    ``apply(params, state, tokens, *, key=None, train=False, mask=None, positions=None,
    cache_length=None)``: ``tokens`` int ``[B, L]``; ``mask`` bool ``[B, L]``, True =
    real token (padded keys are ignored; when decoding with a cache it covers the cache
    slots, ``[B, cache_length]``); ``positions`` ``[L]`` or ``[B, L]`` (RoPE angles or
    rows of the learned table; default ``arange(L)`` after the cached positions);
    ``cache_length`` / a cache in ``state``: incremental decoding (see :func:`generate`).
    Returns ``(logits [B, L, V], state)``.

    Example:
      >>> lm = TransformerLM(100, d_model=64, num_heads=4, num_layers=2)
      >>> params, state = lm.init(jax.random.key(0), (8, 32))
      >>> logits, _ = lm.apply(params, state, jnp.zeros((8, 32), jnp.int32))
      >>> logits.shape
      (8, 32, 100)
      >>> gpt2 = TransformerLM(100, 64, 4, 2, norm="layer", mlp="gelu", positional="learned",
      ...                      max_len=32, bias=True, tie_embeddings=True)
      >>> sorted(gpt2.init(jax.random.key(0), (8, 32))[0])
      ['embed', 'layer_0', 'layer_1', 'norm', 'pos']
    """
    for name, value in (
        ("vocab_size", vocab_size),
        ("d_model", d_model),
        ("num_heads", num_heads),
        ("num_layers", num_layers),
    ):
        check_int(name, value, minimum=1, fn=_FN)
    if d_model % num_heads:
        raise ValueError(f"{_FN}: d_model={d_model} must be divisible by num_heads={num_heads}")
    check_probability("dropout", dropout, fn=_FN)
    check_positive("init_std", init_std, fn=_FN)
    check_choice("norm", norm, ("rms", "layer"), fn=_FN)
    check_choice("mlp", mlp, ("swiglu", "gelu"), fn=_FN)
    check_choice("positional", positional, ("rope", "learned"), fn=_FN)
    check_choice("rope_layout", rope_layout, ("half", "interleaved"), fn=_FN)
    for name, flag in (
        ("bias", bias),
        ("tie_embeddings", tie_embeddings),
        ("scaled_residual_init", scaled_residual_init),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"{_FN}: {name} must be a bool, got {name}={flag!r}")
    if max_len is not None:
        check_int("max_len", max_len, minimum=1, fn=_FN)
    elif positional == "learned":
        raise ValueError(f"{_FN}: positional='learned' needs max_len (the table size), got None")
    if norm_eps is None:
        norm_eps = 1e-6 if norm == "rms" else 1e-5
    check_positive("norm_eps", norm_eps, fn=_FN)
    if dim_feedforward is None:
        dim_feedforward = 4 * d_model if mlp == "gelu" else -(-8 * d_model // 3 // 8) * 8
    weight_init = functools.partial(initializers.normal, std=init_std)
    block = causal_lm_block(
        num_heads,
        dim_feedforward,
        num_kv_heads=num_kv_heads,
        dropout=dropout,
        eps=norm_eps,
        rope_theta=rope_theta,
        rope_layout=rope_layout if positional == "rope" else None,
        implementation=implementation,
        weight_init=weight_init,
        norm="rms_norm" if norm == "rms" else "layer_norm",
        activation=mlp,
        bias=bias,
    )
    final_norm = norm_layer("rms_norm" if norm == "rms" else "layer_norm", norm_eps, bias=bias)
    embed = Embedding(vocab_size, d_model, weight_init=weight_init)
    pos = LearnedPositionalEmbedding(max_len or 1, stddev=init_std)
    head = Linear(vocab_size, bias=False, weight_init=weight_init)
    names = [f"layer_{i}" for i in range(num_layers)]
    residual_std = init_std / math.sqrt(2 * num_layers)
    last_mlp = "down" if mlp == "swiglu" else "linear2"

    def init(key, input_shape=None):
        k_emb, k_head, *k_layers = jax.random.split(key, num_layers + 2)
        params = {"embed": embed.init(k_emb, (1,))[0]}
        if positional == "learned":
            params["pos"] = pos.init(jax.random.fold_in(key, num_layers + 2), (1, d_model))[0]
        for name, k in zip(names, k_layers, strict=True):
            p = block.init(k, (1, d_model))[0]
            if scaled_residual_init:  # GPT-2: the residual-stream writers shrink with depth
                k_out, k_mlp = jax.random.split(jax.random.fold_in(k, 1))
                out, down = p["self_attn"]["out"], p["ffn"][last_mlp]
                out["weight"] = residual_std * jax.random.normal(k_out, out["weight"].shape)
                down["weight"] = residual_std * jax.random.normal(k_mlp, down["weight"].shape)
            if bias:  # GPT-2 starts every bias at zero (FeedForward's are PyTorch's Linear's)
                p["ffn"] = jax.tree_util.tree_map_with_path(
                    lambda path, a: jnp.zeros_like(a) if path[-1].key == "bias" else a, p["ffn"]
                )
            params[name] = p
        params["norm"] = final_norm.init(k_head, (d_model,))[0]
        if not tie_embeddings:
            params["lm_head"] = head.init(k_head, (d_model,))[0]
        return params, {}

    def apply(
        params,
        state,
        tokens,
        *,
        key=None,
        train=False,
        mask=None,
        positions=None,
        cache_length=None,
    ):
        if train and dropout > 0 and key is None:
            raise ValueError(
                f"{_FN}: apply needs a key when train=True (dropout={dropout}), got key=None"
            )
        length = tokens.shape[-1]
        cached = names[0] in state  # decoding: the first layer's cache counts the positions
        index = state[names[0]]["self_attn"]["index"] if cached else 0
        if max_len is not None and (cache_length or length) > max_len:
            raise ValueError(
                f"{_FN}: sequence of length {cache_length or length} (tokens.shape="
                f"{tokens.shape}, cache_length={cache_length}) exceeds max_len={max_len}"
            )
        keys = (
            list(jax.random.split(key, num_layers + 1))
            if key is not None
            else [None] * (num_layers + 1)
        )
        h = embed.apply(params["embed"], {}, tokens)[0]  # (B, L, d)
        if positional == "learned":
            where = index + jnp.arange(length) if positions is None else jnp.asarray(positions)
            h = pos.apply(params["pos"], {}, h, positions=where)[0]
        h = dropout_op(keys[-1], h, dropout, train=train and dropout > 0)
        key_mask = None if mask is None else jnp.asarray(mask, bool)[:, None, None, :]
        new_state = {}
        for name, k in zip(names, keys, strict=False):
            h, sub = block.apply(
                params[name],
                state.get(name, {}),
                h,
                key=k,
                train=train,
                mask=key_mask,
                positions=positions if positional == "rope" else None,
                cache_length=cache_length,
            )
            if sub:
                new_state[name] = sub
        h = final_norm.apply(params["norm"], {}, h)[0]
        w = params["embed"]["weight"].T if tie_embeddings else params["lm_head"]["weight"]
        return linear(h, w), new_state

    # children in data-flow order, for summary()
    children = {"embed": embed}
    if positional == "learned":
        children["pos"] = pos
    children.update({name: block for name in names})
    children["norm"] = final_norm
    if not tie_embeddings:
        children["lm_head"] = head
    return Layer(init, apply, "transformer_lm", layers=children)
