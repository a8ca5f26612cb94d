"""Multi-head attention: fused QKV, cross-attention, grouped-query heads and a KV cache.

The KV cache is the layer's ``state``: an explicit pytree of fixed size, so decoding
steps have static shapes and compile once::

    y, cache = mha.apply(params, {}, prompt, cache_length=64)   # prefill: cache filled
    y, cache = mha.apply(params, cache, next_x)                 # one (or more) new steps

A self-attention cache is ``{"k": [..., Hkv, T, hd], "v": [..., Hkv, T, hd],
"index": int32}`` (keys after RoPE; ``index`` = positions filled); a cross-attention
cache holds the projected memory ``{"k", "v"}`` so it is computed once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_choice, check_int, check_probability
from . import init as initializers
from ._core import Init, Layer, default_weight_init
from .functional._attention import attention_weights, scaled_dot_product_attention
from .functional._linear import linear
from .functional._positional import rope as rope_fn
from .functional._utils import to_rank

__all__ = ["MultiHeadAttention", "split_heads", "merge_heads", "positional_limit"]

_FN = "MultiHeadAttention"


def split_heads(x: Any, num_heads: int) -> jax.Array:
    """``[..., L, H*hd] -> [..., H, L, hd]``."""
    *lead, length, width = x.shape
    x = x.reshape(tuple(lead) + (length, num_heads, width // num_heads))
    return jnp.swapaxes(x, -2, -3)


def merge_heads(x: Any) -> jax.Array:
    """``[..., H, L, hd] -> [..., L, H*hd]``."""
    x = jnp.swapaxes(x, -2, -3)
    return x.reshape(x.shape[:-2] + (x.shape[-2] * x.shape[-1],))


def _projection(key, d_in, widths, bias, weight_init, dtype):
    """One ``[d_in, sum(widths)]`` weight (xavier over the fused shape, as PyTorch's
    ``in_proj_weight``), split into ``len(widths)`` ``{"weight", "bias"}`` dicts."""
    init = weight_init or initializers.xavier_uniform
    w = init(key, (d_in, sum(widths)), dtype)
    out, start = [], 0
    for width in widths:
        p = {"weight": w[:, start : start + width]}
        if bias:
            p["bias"] = jnp.zeros((width,), dtype)
        out.append(p)
        start += width
    return out


def _dense(p, x):
    return linear(x, p["weight"], p.get("bias"))


_F = TypeVar("_F", bound=Callable[..., Any])


def positional_limit(count: int, form: str) -> Callable[[_F], _F]:
    """Decorate a layer constructor so that more than ``count`` positional arguments (a
    PyTorch-order call such as ``MultiHeadAttention(512, 8)``) raise a ``TypeError``
    that shows our form ``form``; the signature seen by ``inspect`` is unchanged."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > count:
                raise TypeError(
                    f"{fn.__name__}: takes at most {count} positional argument(s) "
                    f"(the output-side sizes), got {len(args)}: {args!r}; this looks like "
                    f"PyTorch's argument order. Write {form}"
                )
            if "bias" in kwargs and not isinstance(kwargs["bias"], bool | np.bool_):
                raise TypeError(
                    f"{fn.__name__}: bias must be a bool (True or False), "
                    f"got bias={kwargs['bias']!r}"
                )
            return fn(*args, **kwargs)

        return cast(_F, wrapper)

    return decorate


@positional_limit(1, "MultiHeadAttention(num_heads, ...) (d_model comes from the input)")
def MultiHeadAttention(
    num_heads: int,
    *,
    num_kv_heads: int | None = None,
    head_dim: int | None = None,
    cross_attention: bool = False,
    kv_features: int | None = None,
    bias: bool = True,
    dropout: float = 0.0,
    is_causal: bool = False,
    rope: str | None = None,
    rope_theta: float = 10000.0,
    implementation: str | None = None,
    weight_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """Multi-head (grouped-query) attention layer with an optional KV cache.

    .. math::
        \\mathrm{out} = \\mathrm{concat}_h\\big(\\mathrm{attn}(x W^Q_h, c W^K_{g(h)},
        c W^V_{g(h)})\\big) W^O

    with ``c = x`` (self-attention) or ``c = context`` (cross-attention) and query head
    ``h`` sharing key/value head ``g(h) = h // (num_heads / num_kv_heads)`` (GQA, Ainslie
    et al. 2023; ``num_kv_heads=1`` is multi-query attention).

    Params: self-attention ``{"qkv": {"weight": [d, (H + 2 Hkv) hd], "bias"}, "out": ...}``
    (one fused projection); cross-attention ``{"q", "k", "v", "out"}`` (separate, so
    ``context`` may have another width ``kv_features``). ``d = input_shape[-1]``;
    ``hd = d / num_heads`` unless ``head_dim`` is given. Init as PyTorch: input
    projections xavier-uniform over the fused ``[d, 3d]`` shape, zero biases; output
    projection PyTorch's ``Linear`` default with zero bias.

    ``apply(params, state, x, *, key=None, train=False, context=None, mask=None,
    is_causal=None, positions=None, bias=None, cache_length=None, return_weights=False)``:

    - ``x``: ``[..., L, d]`` queries (and keys/values in self-attention).
    - ``context``: ``[..., S, kv_features]`` memory for cross-attention.
    - ``mask``: boolean, broadcastable to ``[..., H, L, S]``, True = may attend (e.g. key
      padding ``[B, 1, 1, S]``); ``is_causal`` overrides the constructor's default.
    - ``positions``: RoPE positions ``[L]`` or ``[B, L]`` (default ``arange(L)``, offset
      by the cache index when decoding); ``bias``: additive ``[..., H, L, S]`` (ALiBi, T5).
    - ``cache_length``: with an empty ``state``, also return a cache of that length holding
      this call's keys/values (prefill). With a cache in ``state`` the call decodes:
      the new keys/values are written at ``index``, the queries attend to every filled
      position up to their own (causal) and the updated cache is returned.
    - ``key``: needed for attention-weight dropout when ``train=True`` and ``dropout > 0``.
    - ``return_weights``: return ``((y, weights [..., H, L, S]), state)``.

    Returns ``(y [..., L, d], state)``; without a cache, ``state`` is returned unchanged.

    PyTorch: ``torch.nn.MultiheadAttention(d, num_heads, dropout, bias, kdim, vdim,
    batch_first=True)``; there the masks mean "do not attend" and weights are averaged
    over heads; here True = attend and weights are per head.

    Example:
      >>> mha = MultiHeadAttention(4, is_causal=True)
      >>> params, state = mha.init(jax.random.key(0), (2, 10, 32))
      >>> y, state = mha.apply(params, state, jnp.ones((2, 10, 32)))
      >>> y.shape
      (2, 10, 32)
    """
    check_int("num_heads", num_heads, minimum=1, fn=_FN)
    hkv = num_heads if num_kv_heads is None else num_kv_heads
    check_int("num_kv_heads", hkv, minimum=1, fn=_FN)
    if num_heads % hkv:
        raise ValueError(f"{_FN}: num_heads={num_heads} must be divisible by num_kv_heads={hkv}")
    if head_dim is not None:
        check_int("head_dim", head_dim, minimum=1, fn=_FN)
    check_probability("dropout", dropout, fn=_FN)
    check_choice("rope", rope, (None, "interleaved", "half"), fn=_FN)
    group = num_heads // hkv

    def head_dim_of(d):
        if head_dim is None and d % num_heads:
            raise ValueError(
                f"{_FN}: d_model={d} (input_shape[-1]) must be divisible by num_heads={num_heads}"
            )
        hd = head_dim or d // num_heads
        if rope is not None and hd % 2:
            raise ValueError(
                f"{_FN}: rope needs an even head dim, got head_dim={hd} "
                f"(d_model={d}, num_heads={num_heads})"
            )
        return hd

    def init(key, input_shape):
        d = int(input_shape[-1])
        hd = head_dim_of(d)
        k_in, k_kv, k_out = jax.random.split(key, 3)
        widths = (num_heads * hd, hkv * hd, hkv * hd)
        if not cross_attention:
            params = {"qkv": _projection(k_in, d, (sum(widths),), bias, weight_init, dtype)[0]}
        elif (kv_features or d) == d:
            params = dict(
                zip("qkv", _projection(k_in, d, widths, bias, weight_init, dtype), strict=True)
            )
        else:
            params = {"q": _projection(k_in, d, widths[:1], bias, weight_init, dtype)[0]}
            kv = _projection(k_kv, kv_features, widths[1:], bias, weight_init, dtype)
            params.update(k=kv[0], v=kv[1])
        out = {"weight": (weight_init or default_weight_init)(k_out, (num_heads * hd, d), dtype)}
        if bias:
            out["bias"] = jnp.zeros((d,), dtype)
        params["out"] = out
        return params, {}

    def project(params, state, x, context, hd):
        """Queries ``[..., H, L, hd]`` and this call's keys/values ``[..., Hkv, S, hd]``."""
        if not cross_attention:
            qkv = _dense(params["qkv"], x)
            q, k, v = jnp.split(qkv, [num_heads * hd, (num_heads + hkv) * hd], axis=-1)
            return split_heads(q, num_heads), split_heads(k, hkv), split_heads(v, hkv)
        q = split_heads(_dense(params["q"], x), num_heads)
        if "k" in state:  # memory keys/values computed at prefill
            return q, state["k"], state["v"]
        if context is None:
            raise ValueError(f"{_FN}: cross-attention needs context= (the memory), got None")
        k = split_heads(_dense(params["k"], context), hkv)
        return q, k, split_heads(_dense(params["v"], context), hkv)

    def apply(
        params,
        state,
        x,
        *,
        key=None,
        train=False,
        context=None,
        mask=None,
        is_causal=None,
        positions=None,
        bias=None,
        cache_length=None,
        return_weights=False,
    ):
        causal = is_causal_default if is_causal is None else is_causal
        hd = params["out"]["weight"].shape[0] // num_heads
        length = x.shape[-2]
        q, k, v = project(params, state, x, context, hd)
        decoding = not cross_attention and "k" in state
        index = state["index"] if decoding else 0
        if decoding and length > state["k"].shape[-2]:
            raise ValueError(
                f"{_FN}: {length} new positions (x.shape={x.shape}) do not fit "
                f"the cache of length {state['k'].shape[-2]} "
                f"(cache k.shape={state['k'].shape})"
            )
        if rope is not None and not cross_attention:
            pos = index + jnp.arange(length) if positions is None else jnp.asarray(positions)
            pos = pos[..., None, :] if pos.ndim >= 2 else pos  # [B, L] -> [B, 1, L]
            q = rope_fn(q, pos, theta=rope_theta, layout=rope)
            k = rope_fn(k, pos, theta=rope_theta, layout=rope)
        new_state = state
        if decoding:  # write this call's keys/values at the cache index
            k = lax.dynamic_update_slice_in_dim(
                state["k"], k.astype(state["k"].dtype), index, axis=k.ndim - 2
            )
            v = lax.dynamic_update_slice_in_dim(
                state["v"], v.astype(state["v"].dtype), index, axis=v.ndim - 2
            )
            new_state = {"k": k, "v": v, "index": index + length}
            slots = jnp.arange(k.shape[-2])
            q_slots = index + jnp.arange(length)
            if causal:  # [length, slots]
                valid = slots[None, :] <= q_slots[:, None]
            else:  # [1, slots]
                valid = (slots < index + length)[None]
            if mask is not None:
                rank = max(valid.ndim, mask.ndim)
                valid = to_rank(valid, rank) & to_rank(mask, rank)
            mask = valid
            causal = False
        elif cache_length is not None:
            new_state = _new_cache(k, v, length, cache_length)
        kr, vr = (jnp.repeat(t, group, axis=t.ndim - 3) if group > 1 else t for t in (k, v))
        drop = dropout if train else 0.0
        if drop > 0 and key is None:
            raise ValueError(
                f"{_FN}: apply needs a key when train=True (dropout={dropout}), got key=None"
            )
        o = scaled_dot_product_attention(
            q,
            kr,
            vr,
            mask=mask,
            is_causal=causal,
            bias=bias,
            dropout_p=drop,
            key=key,
            implementation=implementation,
        )
        y = _dense(params["out"], merge_heads(o).astype(x.dtype))
        if return_weights:
            w = attention_weights(q, kr, mask=mask, is_causal=causal, bias=bias)
            return (y, w), new_state
        return y, new_state

    def _new_cache(k, v, length, cache_length):
        if cross_attention:
            return {"k": k, "v": v}
        check_int("cache_length", cache_length, minimum=1, fn=_FN)
        if length > cache_length:
            raise ValueError(
                f"{_FN}: the sequence of length {length} is longer than "
                f"cache_length={cache_length} (keys shape {k.shape})"
            )
        pad = [(0, 0)] * (k.ndim - 2) + [(0, cache_length - length), (0, 0)]
        return {"k": jnp.pad(k, pad), "v": jnp.pad(v, pad), "index": jnp.asarray(length, jnp.int32)}

    is_causal_default = bool(is_causal)
    return Layer(init, apply, "cross_attention" if cross_attention else "self_attention")
