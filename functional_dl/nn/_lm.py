"""Decoder-only Transformer language model and cached autoregressive generation."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .._checks import check_choice, check_int, check_positive, check_probability
from . import init as initializers
from ._core import Layer
from ._norm import RMSNorm
from ._transformer import causal_lm_block
from .functional._dropout import dropout as dropout_op
from .functional._embedding import embedding
from .functional._linear import linear

__all__ = ["TransformerLM", "generate"]

_FN = "TransformerLM"


def TransformerLM(
    vocab_size: int,
    d_model: int = 512,
    num_heads: int = 8,
    num_layers: int = 6,
    *,
    num_kv_heads: int | None = None,
    dim_feedforward: int | None = None,
    dropout: float = 0.0,
    norm_eps: float = 1e-6,
    rope_theta: float = 10000.0,
    rope_layout: str = "half",
    tie_embeddings: bool = False,
    implementation: str | None = None,
    init_std: float = 0.02,
) -> Layer:
    """Decoder-only Transformer LM: pre-norm RMSNorm, SwiGLU, RoPE, causal (LLaMA-style).

    .. math::
        h_0 = E[x],\\quad h_{l+1} = h'_l + \\mathrm{SwiGLU}(\\mathrm{RMSNorm}(h'_l)),\\quad
        h'_l = h_l + \\mathrm{Attn}_{causal, RoPE}(\\mathrm{RMSNorm}(h_l)),\\quad
        \\mathrm{logits} = \\mathrm{RMSNorm}(h_L) W

    Args:
      vocab_size: number of tokens ``V``.
      d_model, num_heads, num_layers: width, heads (must divide ``d_model``), depth.
      num_kv_heads: key/value heads for grouped-query attention (default ``num_heads``).
      dim_feedforward: SwiGLU hidden width (default ``8 d / 3`` rounded up to a multiple
        of 8, the parameter count of a ``4 d`` MLP).
      dropout: on embeddings, attention weights and residual branches (default 0).
      norm_eps: RMSNorm epsilon.
      rope_theta, rope_layout: RoPE frequency base and pair layout (``'half'`` or
        ``'interleaved'``).
      tie_embeddings: reuse the embedding table as the output projection.
      implementation: attention path (see ``scaled_dot_product_attention``).
      init_std: every weight is drawn from ``N(0, init_std^2)`` (GPT-2 / LLaMA), norms 1.

    Params: ``{"embed": {"weight": [V, d]}, "layer_{i}": {...}, "norm": {"weight"},
    "lm_head": {"weight": [d, V]}}`` (no ``lm_head`` when tied); no biases.

    ``apply(params, state, tokens, *, key=None, train=False, mask=None, positions=None,
    cache_length=None)``: ``tokens`` int ``[B, L]``; ``mask`` bool ``[B, L]``, True =
    real token (padded keys are ignored; when decoding with a cache it covers the cache
    slots, ``[B, cache_length]``); ``positions`` RoPE positions ``[L]`` or ``[B, L]``;
    ``cache_length`` / a cache in ``state``: incremental decoding (see :func:`generate`).
    Returns ``(logits [B, L, V], state)``.

    Example:
      >>> lm = TransformerLM(100, d_model=64, num_heads=4, num_layers=2)
      >>> params, state = lm.init(jax.random.key(0), (8, 32))
      >>> logits, _ = lm.apply(params, state, jnp.zeros((8, 32), jnp.int32))
      >>> logits.shape
      (8, 32, 100)
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
    check_choice("rope_layout", rope_layout, ("half", "interleaved"), fn=_FN)
    if dim_feedforward is None:
        dim_feedforward = -(-8 * d_model // 3 // 8) * 8
    weight_init = functools.partial(initializers.normal, std=init_std)
    block = causal_lm_block(
        num_heads,
        dim_feedforward,
        num_kv_heads=num_kv_heads,
        dropout=dropout,
        eps=norm_eps,
        rope_theta=rope_theta,
        rope_layout=rope_layout,
        implementation=implementation,
        weight_init=weight_init,
    )
    norm = RMSNorm(eps=norm_eps)
    names = [f"layer_{i}" for i in range(num_layers)]

    def init(key, input_shape=None):
        k_emb, k_head, *k_layers = jax.random.split(key, num_layers + 2)
        params = {"embed": {"weight": weight_init(k_emb, (vocab_size, d_model))}}
        for name, k in zip(names, k_layers, strict=True):
            params[name] = block.init(k, (1, d_model))[0]
        params["norm"] = norm.init(k_head, (d_model,))[0]
        if not tie_embeddings:
            params["lm_head"] = {"weight": weight_init(k_head, (d_model, vocab_size))}
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
        keys = (
            list(jax.random.split(key, num_layers + 1))
            if key is not None
            else [None] * (num_layers + 1)
        )
        h = embedding(tokens, params["embed"]["weight"])  # (B, L, d)
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
                positions=positions,
                cache_length=cache_length,
            )
            if sub:
                new_state[name] = sub
        h = norm.apply(params["norm"], {}, h)[0]
        head = params["embed"]["weight"].T if tie_embeddings else params["lm_head"]["weight"]
        return linear(h, head), new_state

    return Layer(init, apply, "transformer_lm")


def _pick(logits, key, temperature, top_k):
    """Greedy argmax (``key is None``) or a sample of ``softmax(logits / temperature)``
    restricted to the ``top_k`` largest logits."""
    if key is None:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits.astype(jnp.float32) / temperature
    if top_k is not None:
        kth = lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def generate(
    model: Layer,
    params: Any,
    prompt: Any,
    max_new_tokens: int,
    *,
    src: Any = None,
    key: Any = None,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> jax.Array:
    """Autoregressive generation with the KV cache: ``prompt`` plus ``max_new_tokens``.

    The prompt is run once (prefill, filling a cache of length ``L + max_new_tokens``),
    then each new token costs one cached step inside a ``lax.scan``; the result equals
    recomputing the whole sequence at every step. Greedy (argmax) when ``key`` is None;
    otherwise token ``t`` is drawn with ``jax.random.split(key, max_new_tokens)[t]``
    from ``softmax(logits / temperature)`` over the ``top_k`` most likely tokens.
    Compiled once per model, shapes and settings (``jax.jit`` inside).

    Args:
      model: a :func:`TransformerLM`, or a :func:`Transformer` together with ``src``.
      params: its parameters.
      prompt: int ``[B, L]`` (``L >= 1``; for the encoder-decoder, e.g. the start token).
      max_new_tokens: number of tokens to append.
      src: int ``[B, S]`` source tokens (encoder-decoder only).
      key: ``jax.random`` key for sampling (None: greedy).
      temperature: softmax temperature (> 0) when sampling.
      top_k: sample among the ``top_k`` largest logits only (None: all).

    Returns:
      int32 ``[B, L + max_new_tokens]``: the prompt followed by the generated tokens.

    Example:
      >>> lm = TransformerLM(20, d_model=16, num_heads=2, num_layers=1)
      >>> params, _ = lm.init(jax.random.key(0), (2, 8))
      >>> out = generate(lm, params, jnp.zeros((2, 1), jnp.int32), 16,
      ...                key=jax.random.key(0), temperature=0.8, top_k=10)
      >>> out.shape
      (2, 17)
    """
    check_int("max_new_tokens", max_new_tokens, minimum=1, fn="generate")
    check_positive("temperature", temperature, fn="generate")
    if top_k is not None:
        check_int("top_k", top_k, minimum=1, fn="generate")
    prompt = jnp.asarray(prompt, jnp.int32)
    if prompt.ndim != 2 or prompt.shape[1] < 1:
        raise ValueError(
            f"generate: prompt must be int [B, L] with L >= 1, got prompt.shape={prompt.shape}"
        )
    return _generate(
        model,
        params,
        prompt,
        src,
        key,
        max_new_tokens=max_new_tokens,
        temperature=float(temperature),
        top_k=top_k,
    )


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "temperature", "top_k"))
def _generate(model, params, prompt, src, key, *, max_new_tokens, temperature, top_k):
    def inputs(tokens):
        return tokens if src is None else (src, tokens)

    length = prompt.shape[1] + max_new_tokens
    logits, cache = model.apply(params, {}, inputs(prompt), cache_length=length)
    first_key, step_keys = None, None
    if key is not None:
        keys = jax.random.split(key, max_new_tokens)
        first_key, step_keys = keys[0], keys[1:]
    first = _pick(logits[:, -1], first_key, temperature, top_k)

    def step(carry, k):
        cache, token = carry
        logits, cache = model.apply(params, cache, inputs(token[:, None]))
        token = _pick(logits[:, -1], k, temperature, top_k)
        return (cache, token), token

    _, rest = lax.scan(step, (cache, first), step_keys, length=max_new_tokens - 1)
    return jnp.concatenate([prompt, first[:, None], rest.T.astype(jnp.int32)], axis=1)
