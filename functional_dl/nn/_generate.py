"""Autoregressive generation for any causal token model, with or without a KV cache.

The cache protocol
------------------
A model decodes incrementally when its ``apply`` takes a keyword ``cache_length``:

1. prefill: ``logits, cache = apply(params, state, prompt, cache_length=T)`` runs the
   prompt ``[B, L]`` and returns its logits ``[B, L, V]`` together with a cache: any
   pytree of fixed shapes, sized for ``T`` positions in all;
2. step: ``logits, cache = apply(params, cache, tokens)`` with ``tokens [B, 1]`` returns
   the next logits ``[B, 1, V]`` and the updated cache of the same structure and shapes.

:func:`MultiHeadAttention` implements it (its state holds ``k``, ``v`` and ``index``),
so a model built from it only passes ``cache_length`` and the per-layer caches through
(see :func:`TransformerLM`). Any other model, ``apply(params, state, tokens) -> (logits
[B, L, V], state)``, is decoded without a cache: the sequence lives in a buffer of its
final length and every step re-runs the whole buffer, reading the logits of the last
filled position. That is exact for a causal model (position ``t`` sees only positions
``<= t``), costs ``O(L)`` per token, and compiles once: the loop is a ``lax.scan``
with fixed shapes.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .._checks import check_int, check_positive
from ._core import Layer

__all__ = ["generate", "supports_cache"]


def _parameters(model: Layer) -> dict:
    try:
        return dict(inspect.signature(model.apply).parameters)
    except (TypeError, ValueError):  # a callable without a signature
        return {}


def supports_cache(model: Layer) -> bool:
    """Whether ``model.apply`` names ``cache_length`` (the cache protocol above)."""
    return "cache_length" in _parameters(model)


def _takes_any_keyword(model: Layer) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in _parameters(model).values())


def _filter(logits, temperature, top_k, top_p):
    """``logits / temperature`` with every token outside the ``top_k`` largest and outside
    the nucleus (the fewest largest whose probabilities sum to ``>= top_p``) set to
    ``-inf``. Ties with the last kept logit are kept."""
    logits = logits.astype(jnp.float32) / temperature
    if top_k is not None:
        kth = lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p is not None and top_p < 1.0:
        ranked = -jnp.sort(-logits, axis=-1)  # descending
        probs = jax.nn.softmax(ranked, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the larger ones
        count = jnp.sum(before < top_p, axis=-1, keepdims=True)  # >= 1
        cutoff = jnp.take_along_axis(ranked, count - 1, axis=-1)
        logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return logits


def _pick(logits, key, temperature, top_k, top_p):
    """Greedy argmax (``key is None``) or a draw from the filtered softmax."""
    if key is None:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    filtered = _filter(logits, temperature, top_k, top_p)
    return jax.random.categorical(key, filtered, axis=-1).astype(jnp.int32)


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
    top_p: float | None = None,
    state: Any = None,
    use_cache: bool | None = None,
    context: int | None = None,
) -> jax.Array:
    """Autoregressive generation: ``prompt`` followed by ``max_new_tokens`` tokens.

    **Cache protocol.** A model decodes incrementally when its ``apply`` takes a keyword
    ``cache_length`` and (1) ``apply(params, state, prompt, cache_length=T)`` returns the
    prompt's logits ``[B, L, V]`` and a cache: any pytree of fixed shapes sized for ``T``
    positions; (2) ``apply(params, cache, tokens [B, 1])`` returns the next logits
    ``[B, 1, V]`` and the updated cache (same structure and shapes).
    :func:`MultiHeadAttention` implements it, so a model built from it only passes
    ``cache_length`` and the per-layer caches through (:func:`TransformerLM`,
    :func:`Transformer`). Then the prompt runs once and each new token costs one cached
    step.

    **Any other causal model** (``apply(params, state, tokens [B, L]) -> (logits
    [B, L, V], state)``) is decoded without a cache: the sequence lives in a buffer of its
    final length (or a window of ``context`` tokens) re-run at every step, reading the
    logits of the last filled position; exact when position ``t`` sees only positions
    ``<= t``. Both loops are a ``lax.scan`` inside one ``jax.jit``: one compilation per
    model, shapes and settings, and both give the same tokens.

    Greedy (argmax) when ``key`` is None. Otherwise token ``t`` is drawn with
    ``jax.random.split(key, max_new_tokens)[t]`` from ``softmax(z)``, where ``z`` is
    ``logits / temperature`` restricted to the ``top_k`` largest, then to the nucleus
    (Holtzman et al. 2020): the fewest largest tokens whose probabilities sum to at least
    ``top_p``; the others get ``-inf`` (Hugging Face's order; ties with the last kept
    logit are kept).

    Args:
      model: a causal token model: ``apply(params, state, tokens [B, L]) -> (logits
        [B, L, V], state)``, or with ``src`` an encoder-decoder taking ``(src, tokens)``.
      params: its parameters.
      prompt: int ``[B, L]`` (``L >= 1``; for the encoder-decoder, e.g. the start token).
      max_new_tokens: number of tokens to append.
      src: int ``[B, S]`` source tokens (encoder-decoder only).
      key: ``jax.random`` key for sampling (None: greedy).
      temperature: softmax temperature (> 0) when sampling.
      top_k: sample among the ``top_k`` largest logits only (None: all).
      top_p: nucleus mass in ``(0, 1]`` (None: no nucleus filtering).
      state: the model's state (e.g. BatchNorm statistics; default ``{}``).
      use_cache: force (True) or forbid (False) the cache protocol; default: use it when
        ``model.apply`` names ``cache_length`` (force it for a wrapper taking ``**kwargs``).
      context: the model sees at most the last ``context`` tokens (nanoGPT's cropping to
        ``block_size``), so a model with ``max_len`` positions can write longer texts;
        when ``L + max_new_tokens`` exceeds it, each step re-runs a window of
        ``context`` tokens (no cache, still one compilation).

    Returns:
      int32 ``[B, L + max_new_tokens]``: the prompt followed by the generated tokens.

    Example:
      >>> lm = fdl.nn.TransformerLM(20, d_model=16, num_heads=2, num_layers=1)
      >>> params, _ = lm.init(jax.random.key(0), (2, 8))
      >>> out = generate(lm, params, jnp.zeros((2, 1), jnp.int32), 16,
      ...                key=jax.random.key(0), temperature=0.8, top_k=10, top_p=0.9)
      >>> out.shape
      (2, 17)
      >>> bigram = Layer(lambda k, s: ({"w": jnp.eye(20)}, {}),
      ...                lambda p, s, x, **kw: (p["w"][(x + 1) % 20], s))
      >>> generate(bigram, {"w": jnp.eye(20)}, jnp.array([[3]]), 4).tolist()  # no cache
      [[3, 4, 5, 6, 7]]
    """
    fn = "generate"
    if not isinstance(model, Layer):
        raise TypeError(f"{fn}: model must be a Layer, got {type(model).__name__}")
    check_int("max_new_tokens", max_new_tokens, minimum=1, fn=fn)
    check_positive("temperature", temperature, fn=fn)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1, fn=fn)
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"{fn}: top_p must be in (0, 1], got top_p={top_p}")
    prompt = jnp.asarray(prompt, jnp.int32)
    if prompt.ndim != 2 or prompt.shape[1] < 1:
        raise ValueError(
            f"{fn}: prompt must be int [B, L] with L >= 1, got prompt.shape={prompt.shape}"
        )
    if context is not None:
        check_int("context", context, minimum=1, fn=fn)
    cached = supports_cache(model)
    window = None
    if context is not None and prompt.shape[1] + max_new_tokens > context:
        if use_cache:
            raise ValueError(
                f"{fn}: use_cache=True needs L + max_new_tokens <= context, got "
                f"{prompt.shape[1]} + {max_new_tokens} > context={context}"
            )
        cached, window = False, context
    if use_cache and not cached and not _takes_any_keyword(model):
        raise ValueError(
            f"{fn}: use_cache=True but {model.name!r}'s apply takes no cache_length "
            f"(see the cache protocol in functional_dl.nn.generate's module)"
        )
    return _generate(
        model.apply,  # hashable, unlike a Layer holding a dict of children
        params,
        prompt,
        src,
        key,
        {} if state is None else state,
        max_new_tokens=max_new_tokens,
        temperature=float(temperature),
        top_k=top_k,
        top_p=None if top_p is None else float(top_p),
        cached=cached if use_cache is None else bool(use_cache),
        window=window,
    )


@functools.partial(
    jax.jit,
    static_argnames=(
        "apply",
        "max_new_tokens",
        "temperature",
        "top_k",
        "top_p",
        "cached",
        "window",
    ),
)
def _generate(
    apply,
    params,
    prompt,
    src,
    key,
    state,
    *,
    max_new_tokens,
    temperature,
    top_k,
    top_p,
    cached,
    window,
):
    def inputs(tokens):
        return tokens if src is None else (src, tokens)

    def pick(logits, k):
        if logits.ndim != 3:
            raise ValueError(
                f"generate: the model must return logits [B, L, V], got shape {logits.shape}"
            )
        return _pick(logits, k, temperature, top_k, top_p)

    n, plen = max_new_tokens, prompt.shape[1]
    keys = None if key is None else jax.random.split(key, n)
    if not cached:  # a fixed buffer re-run at every step (exact for causal models)
        width = plen + n if window is None else window

        def fill(buffer, xs):
            i, k = xs
            start = jnp.maximum(plen + i - width, 0)  # the last `width` tokens so far
            seen = lax.dynamic_slice_in_dim(buffer, start, width, axis=1)
            logits, _ = apply(params, state, inputs(seen))
            last = lax.dynamic_slice_in_dim(logits, plen + i - 1 - start, 1, axis=1)
            token = pick(last, k)[:, 0]
            return lax.dynamic_update_slice_in_dim(buffer, token[:, None], plen + i, 1), None

        buffer = jnp.pad(prompt, ((0, 0), (0, n)))
        return lax.scan(fill, buffer, (jnp.arange(n), keys))[0]

    logits, cache = apply(params, state, inputs(prompt), cache_length=plen + n)
    first_key, step_keys = (None, None) if keys is None else (keys[0], keys[1:])
    first = pick(logits[:, -1:], first_key)[:, 0]

    def step(carry, k):
        cache, token = carry
        logits, cache = apply(params, cache, inputs(token[:, None]))
        token = pick(logits[:, -1:], k)[:, 0]
        return (cache, token), token

    _, rest = lax.scan(step, (cache, first), step_keys, length=n - 1)
    return jnp.concatenate([prompt, first[:, None], rest.T.astype(jnp.int32)], axis=1)
