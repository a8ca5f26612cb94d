"""The encoder-decoder Transformer of Vaswani et al. (2017), with token embeddings."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_choice, check_int
from . import init as initializers
from ._attention import positional_limit
from ._core import Layer
from ._linear import Linear
from ._transformer import TransformerDecoderLayer, TransformerEncoderLayer, norm_layer
from .functional._dropout import dropout as dropout_op
from .functional._embedding import embedding
from .functional._linear import linear
from .functional._positional import sinusoidal_positional_encoding
from .functional._utils import to_rank

__all__ = ["Transformer"]

_FN = "Transformer"


def _split(key, n):
    return list(jax.random.split(key, n)) if key is not None else [None] * n


@positional_limit(
    7,
    "Transformer(src_vocab_size, tgt_vocab_size, d_model, num_heads, num_encoder_layers, "
    "num_decoder_layers, dim_feedforward, dropout=..., ...)",
)
def Transformer(
    src_vocab_size: int,
    tgt_vocab_size: int | None = None,
    d_model: int = 512,
    num_heads: int = 8,
    num_encoder_layers: int = 6,
    num_decoder_layers: int = 6,
    dim_feedforward: int = 2048,
    *,
    dropout: float = 0.1,
    activation: str = "relu",
    layer_norm_eps: float = 1e-5,
    norm_first: bool = False,
    share_embeddings: bool = False,
    positional: str = "sinusoidal",
    max_length: int = 1024,
    pad_id: int | None = None,
    implementation: str | None = None,
) -> Layer:
    """Encoder-decoder Transformer over token ids, returning next-token logits.

    .. math::
        m = \\mathrm{Encoder}(E_s[src]\\sqrt{d} + P),\\qquad
        \\mathrm{logits} = \\mathrm{Decoder}(E_t[tgt]\\sqrt{d} + P,\\ m)\\, W_{out}

    Post-norm layers as in the paper (``norm_first=True``: pre-norm, plus a final norm
    after each stack); positions ``P`` are sinusoidal (``positional='sinusoidal'``) or
    learned; the decoder self-attention is causal and padded positions (``pad_id``) are
    masked as keys in every attention. ``share_embeddings=True`` uses one table for the
    source and target embeddings and the output projection (needs one vocabulary);
    otherwise there are separate ``src_embed``, ``tgt_embed`` and ``generator``.
    Embeddings are drawn from ``N(0, 1/d_model)`` (so ``E sqrt(d)`` has unit scale).

    ``init(key, input_shape)``: ``input_shape`` is ignored (pass ``((B, S), (B, T))``).

    ``apply(params, state, x, *, key=None, train=False, src_mask=None, tgt_mask=None,
    cache_length=None, return_weights=False)``:

    - ``x = (src, tgt)``: int ``[B, S]`` and ``[B, T]``.
    - ``src_mask``/``tgt_mask``: bool ``[B, S]``/``[B, T]``, True = real token (default
      ``ids != pad_id``, or all tokens when ``pad_id`` is None).
    - ``cache_length``: also return a decoding cache (prefill). With a cache in ``state``
      the encoder is skipped (its keys/values are cached), ``src`` may be None and
      ``tgt`` holds the next position(s) only. See :func:`generate`.
    - ``return_weights``: return ``((logits, {"encoder": [...], "decoder": [...]}), state)``
      with each layer's attention weights.

    Returns ``(logits [B, T, V_tgt], state)``.

    The sizes are positional; ``dropout`` and everything after it are keyword-only.

    PyTorch: ``torch.nn.Transformer`` (which has no embeddings and always ends each
    stack with a LayerNorm, also in post-norm).

    Example:
      >>> model = Transformer(12, d_model=32, num_heads=4, num_encoder_layers=2,
      ...                     num_decoder_layers=2, dim_feedforward=64)
      >>> params, state = model.init(jax.random.key(0), ((2, 9), (2, 9)))
      >>> src = tgt = jnp.ones((2, 9), jnp.int32)
      >>> logits, _ = model.apply(params, state, (src, tgt))
      >>> logits.shape
      (2, 9, 12)
    """
    for name, value in (
        ("src_vocab_size", src_vocab_size),
        ("d_model", d_model),
        ("num_encoder_layers", num_encoder_layers),
        ("num_decoder_layers", num_decoder_layers),
        ("max_length", max_length),
    ):
        check_int(name, value, minimum=1, fn=_FN)
    tgt_vocab_size = src_vocab_size if tgt_vocab_size is None else tgt_vocab_size
    check_int("tgt_vocab_size", tgt_vocab_size, minimum=1, fn=_FN)
    check_choice("positional", positional, ("sinusoidal", "learned"), fn=_FN)
    if share_embeddings and tgt_vocab_size != src_vocab_size:
        raise ValueError(
            f"{_FN}: share_embeddings needs one vocabulary, got "
            f"src_vocab_size={src_vocab_size}, tgt_vocab_size={tgt_vocab_size}"
        )
    if d_model % num_heads:
        raise ValueError(f"{_FN}: d_model={d_model} must be divisible by num_heads={num_heads}")
    kw: dict[str, Any] = dict(
        num_heads=num_heads,
        dim_feedforward=dim_feedforward,
        dropout=dropout,
        activation=activation,
        layer_norm_eps=layer_norm_eps,
        norm_first=norm_first,
        implementation=implementation,
    )
    enc, dec = TransformerEncoderLayer(**kw), TransformerDecoderLayer(**kw)
    final_norm = norm_layer("layer_norm", layer_norm_eps)
    table_init = functools.partial(initializers.normal, std=d_model**-0.5)
    sinusoid = sinusoidal_positional_encoding(max_length, d_model)

    def init(key, input_shape=None):
        k_emb, k_tgt, k_gen, k_pos, k_enc, k_dec = jax.random.split(key, 6)
        params = {}
        if share_embeddings:
            params["embed"] = {"weight": table_init(k_emb, (src_vocab_size, d_model))}
        else:
            params["src_embed"] = {"weight": table_init(k_emb, (src_vocab_size, d_model))}
            params["tgt_embed"] = {"weight": table_init(k_tgt, (tgt_vocab_size, d_model))}
            params["generator"] = Linear(tgt_vocab_size).init(k_gen, (d_model,))[0]
        if positional == "learned":
            for side, k in zip(("src_pos", "tgt_pos"), jax.random.split(k_pos), strict=True):
                params[side] = {"weight": initializers.normal(k, (max_length, d_model), std=0.02)}
        for stack, layer, n, k in (
            ("encoder", enc, num_encoder_layers, k_enc),
            ("decoder", dec, num_decoder_layers, k_dec),
        ):
            params[stack] = {
                f"layer_{i}": layer.init(ki, (1, d_model))[0]
                for i, ki in enumerate(jax.random.split(k, n))
            }
            if norm_first:
                params[f"{stack}_norm"] = final_norm.init(k, (d_model,))[0]
        return params, {}

    def embed(params, ids, side, positions, key, train):
        if ids.shape[-1] > max_length:
            raise ValueError(
                f"{_FN}: sequence of length {ids.shape[-1]} ({side}.shape="
                f"{ids.shape}) exceeds max_length={max_length}"
            )
        table = params["embed" if share_embeddings else f"{side}_embed"]["weight"]
        h = embedding(ids, table) * math.sqrt(d_model)
        pos = params[f"{side}_pos"]["weight"] if positional == "learned" else sinusoid
        h = h + to_rank(jnp.take(pos, positions, axis=0).astype(h.dtype), h.ndim)
        return dropout_op(key, h, dropout, train=train and dropout > 0)

    def padding(ids, given):
        if given is not None:
            return jnp.asarray(given, bool)[:, None, None, :]
        return None if pad_id is None else (ids != pad_id)[:, None, None, :]

    def apply(
        params,
        state,
        x,
        *,
        key=None,
        train=False,
        src_mask=None,
        tgt_mask=None,
        cache_length=None,
        return_weights=False,
    ):
        src, tgt = x
        if cache_length is not None and cache_length > max_length:
            raise ValueError(
                f"{_FN}: cache_length={cache_length} exceeds max_length="
                f"{max_length} (the positions available)"
            )
        k_src, k_tgt, k_enc, k_dec = _split(key, 4)
        weights = {"encoder": [], "decoder": []}

        def run_stack(stack, layer, h, keys, states, **kw):
            """``h`` through the layers of ``stack`` (then its final norm when pre-norm)."""
            new_states = {}
            for i, k in enumerate(keys):
                name = f"layer_{i}"
                h, new_states[name] = layer.apply(
                    params[stack][name],
                    states.get(name, {}),
                    h,
                    key=k,
                    train=train,
                    return_weights=return_weights,
                    **kw,
                )
                if return_weights:
                    h, w = h
                    weights[stack].append(w)
            if norm_first:
                h = final_norm.apply(params[f"{stack}_norm"], {}, h)[0]
            return h, new_states

        decoding = bool(state)
        if decoding:
            memory, memory_mask, index = None, state["memory_mask"], state["index"]
        else:
            memory_mask, index = padding(src, src_mask), 0
            memory = embed(params, src, "src", jnp.arange(src.shape[-1]), k_src, train)
            enc_keys = _split(k_enc, num_encoder_layers)
            memory, _ = run_stack("encoder", enc, memory, enc_keys, {}, mask=memory_mask)
        length = tgt.shape[-1]
        h = embed(params, tgt, "tgt", index + jnp.arange(length), k_tgt, train)
        h, new_layers = run_stack(
            "decoder",
            dec,
            h,
            _split(k_dec, num_decoder_layers),
            state["decoder"] if decoding else {},
            memory=memory,
            mask=None if decoding else padding(tgt, tgt_mask),
            memory_mask=memory_mask,
            cache_length=cache_length,
        )
        if share_embeddings:
            logits = linear(h, params["embed"]["weight"].T)
        else:
            logits = linear(h, params["generator"]["weight"], params["generator"]["bias"])
        new_state = state
        if decoding or cache_length is not None:
            new_state = {
                "decoder": new_layers,
                "memory_mask": memory_mask,
                "index": jnp.asarray(index + length, jnp.int32),
            }
        return ((logits, weights) if return_weights else logits), new_state

    return Layer(init, apply, "transformer")
