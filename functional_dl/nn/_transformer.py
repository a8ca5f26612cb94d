"""Transformer encoder and decoder layers (post-norm as Vaswani et al., or pre-norm).

One block implementation serves the encoder layer (self-attention + feed-forward),
the decoder layer (+ cross-attention) and the decoder-only LM block (pre-norm RMSNorm,
SwiGLU, RoPE, causal)::

    post-norm:  x = norm(x + dropout(sublayer(x)))          (Vaswani et al. 2017)
    pre-norm:   x = x + dropout(sublayer(norm(x)))          (Xiong et al. 2020)
"""

from __future__ import annotations

from typing import Any

import jax

from .. import activations
from .._checks import check_choice, check_int, check_positive, check_probability
from ._attention import MultiHeadAttention, positional_limit
from ._core import Init, Layer
from ._linear import Linear
from ._norm import LayerNorm, RMSNorm
from .functional._dropout import dropout as dropout_op
from .functional._linear import linear

__all__ = [
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "FeedForward",
    "norm_layer",
]


def norm_layer(norm: str, eps: float, *, bias: bool = True) -> Layer:
    """``LayerNorm`` (with a bias unless ``bias=False``, as PyTorch's ``bias`` flag) for
    ``norm='layer_norm'``, ``RMSNorm`` for ``'rms_norm'``."""
    check_choice("norm", norm, ("layer_norm", "rms_norm"), fn="norm_layer")
    return LayerNorm(eps=eps, bias=bias) if norm == "layer_norm" else RMSNorm(eps=eps)


@positional_limit(1, "FeedForward(dim_feedforward, activation=..., ...) (d comes from the input)")
def FeedForward(
    dim_feedforward: int,
    *,
    activation: str = "relu",
    dropout: float = 0.0,
    bias: bool = True,
    weight_init: Init | None = None,
) -> Layer:
    """Position-wise feed-forward network on the last axis.

    ``'relu'``/``'gelu'``: ``linear2(dropout(act(linear1(x))))`` (params ``linear1``,
    ``linear2``); ``'swiglu'`` (Shazeer 2020): ``down(silu(gate(x)) * up(x))`` (params
    ``gate``, ``up``, ``down``). The output width equals the input width ``d``.
    ``apply(params, state, x, *, key=None, train=False)``.
    """
    check_int("dim_feedforward", dim_feedforward, minimum=1, fn="FeedForward")
    check_choice("activation", activation, ("relu", "gelu", "swiglu"), fn="FeedForward")
    check_probability("dropout", dropout, fn="FeedForward")
    names = ("gate", "up", "down") if activation == "swiglu" else ("linear1", "linear2")
    inner = Linear(dim_feedforward, bias=bias, weight_init=weight_init)

    def init(key, input_shape):
        d = int(input_shape[-1])
        keys = jax.random.split(key, len(names))
        params = {n: inner.init(k, (d,))[0] for n, k in zip(names[:-1], keys, strict=False)}
        params[names[-1]] = Linear(d, bias=bias, weight_init=weight_init).init(
            keys[-1], (dim_feedforward,)
        )[0]
        return params, {}

    def apply(params, state, x, *, key=None, train=False):
        def dense(name, h):
            return linear(h, params[name]["weight"], params[name].get("bias"))

        if activation == "swiglu":
            h = activations.silu(dense("gate", x)) * dense("up", x)
        else:
            h = getattr(activations, activation)(dense("linear1", x))
        h = dropout_op(key, h, dropout, train=train and dropout > 0)
        return dense(names[-1], h), state

    return Layer(init, apply, "feed_forward")


def _block(
    num_heads,
    *,
    cross_attention,
    dim_feedforward,
    dropout,
    activation,
    layer_norm_eps,
    norm_first,
    bias,
    norm,
    num_kv_heads,
    rope,
    rope_theta,
    is_causal,
    implementation,
    weight_init=None,
    name,
):
    """The shared encoder/decoder block (see the module docstring)."""
    fn = name
    if not isinstance(bias, bool):
        raise TypeError(f"{fn}: bias must be a bool, got bias={bias!r}")
    check_int("dim_feedforward", dim_feedforward, minimum=1, fn=fn)
    check_probability("dropout", dropout, fn=fn)
    check_positive("layer_norm_eps", layer_norm_eps, fn=fn)
    attn_kw: dict[str, Any] = dict(
        num_kv_heads=num_kv_heads,
        bias=bias,
        dropout=dropout,
        implementation=implementation,
        weight_init=weight_init,
    )
    self_attn = MultiHeadAttention(
        num_heads, is_causal=is_causal, rope=rope, rope_theta=rope_theta, **attn_kw
    )
    cross_attn = MultiHeadAttention(num_heads, cross_attention=True, **attn_kw)
    ffn = FeedForward(
        dim_feedforward, activation=activation, dropout=dropout, bias=bias, weight_init=weight_init
    )
    norm_l = norm_layer(norm, layer_norm_eps, bias=bias)
    subs = [("self_attn", self_attn)] + ([("cross_attn", cross_attn)] if cross_attention else [])
    subs.append(("ffn", ffn))
    # children in the order a summary walks them (each sub-layer after its norm)
    children = {}
    for i, (sub_name, layer) in enumerate(subs):
        children[f"norm{i + 1}"] = norm_l
        children[sub_name] = layer

    def init(key, input_shape):
        d = int(input_shape[-1])
        if d % num_heads:
            raise ValueError(
                f"{fn}: d_model={d} (input_shape[-1]) must be divisible by num_heads={num_heads}"
            )
        params = {}
        for i, ((sub_name, layer), k) in enumerate(
            zip(subs, jax.random.split(key, len(subs)), strict=True)
        ):
            params[sub_name] = layer.init(k, (d,) if sub_name == "ffn" else input_shape)[0]
            params[f"norm{i + 1}"] = norm_l.init(k, (d,))[0]
        return params, {}

    def apply(
        params,
        state,
        x,
        *,
        key=None,
        train=False,
        memory=None,
        mask=None,
        memory_mask=None,
        is_causal=None,
        positions=None,
        bias=None,
        cache_length=None,
        return_weights=False,
    ):
        if cross_attention and memory is None and "cross_attn" not in state:
            raise ValueError(f"{fn}: apply needs memory= (the encoder output), got None")
        if train and dropout > 0 and key is None:
            raise ValueError(
                f"{fn}: apply needs a key when train=True (dropout={dropout}), got key=None"
            )
        n_keys = 2 * len(subs)
        keys = list(jax.random.split(key, n_keys)) if key is not None else [None] * n_keys
        new_state, weights = {}, {}
        for i, (sub_name, layer) in enumerate(subs):
            norm_p = params[f"norm{i + 1}"]
            h = norm_l.apply(norm_p, {}, x)[0] if norm_first else x
            kw = dict(key=keys[2 * i], train=train)
            if sub_name != "ffn":
                kw.update(
                    state=state.get(sub_name, {}),
                    cache_length=cache_length,
                    return_weights=return_weights,
                )
                if sub_name == "self_attn":
                    kw.update(mask=mask, is_causal=is_causal, positions=positions, bias=bias)
                else:
                    kw.update(context=memory, mask=memory_mask)
                y, sub_state = layer.apply(params[sub_name], kw.pop("state"), h, **kw)
                if return_weights:
                    y, weights[sub_name] = y
                if sub_state:
                    new_state[sub_name] = sub_state
            else:
                y, _ = layer.apply(params[sub_name], {}, h, **kw)
            y = dropout_op(keys[2 * i + 1], y, dropout, train=train and dropout > 0)
            x = x + y if norm_first else norm_l.apply(norm_p, {}, x + y)[0]
        return ((x, weights) if return_weights else x), new_state

    # the cross-attention needs the memory, so a decoder layer is one row in a summary
    return Layer(init, apply, name, layers=None if cross_attention else children)


@positional_limit(2, "TransformerEncoderLayer(num_heads, dim_feedforward, dropout=..., ...)")
def TransformerEncoderLayer(
    num_heads: int,
    dim_feedforward: int = 2048,
    *,
    dropout: float = 0.1,
    activation: str = "relu",
    layer_norm_eps: float = 1e-5,
    norm_first: bool = False,
    bias: bool = True,
    norm: str = "layer_norm",
    num_kv_heads: int | None = None,
    rope: str | None = None,
    rope_theta: float = 10000.0,
    is_causal: bool = False,
    implementation: str | None = None,
    weight_init: Init | None = None,
) -> Layer:
    """Transformer encoder layer: self-attention and feed-forward, each with a residual.

    .. math::
        x \\leftarrow \\mathrm{Norm}(x + \\mathrm{Drop}(\\mathrm{SelfAttn}(x))),\\quad
        x \\leftarrow \\mathrm{Norm}(x + \\mathrm{Drop}(\\mathrm{FFN}(x)))

    (post-norm, Vaswani et al. 2017); ``norm_first=True`` gives the pre-norm variant
    ``x + Drop(SelfAttn(Norm(x)))``. Dropout also acts on the attention weights and
    after the feed-forward activation, as in PyTorch. ``d_model = input_shape[-1]``.

    Args:
      num_heads: attention heads (PyTorch's ``nhead``); must divide ``d_model``.
      dim_feedforward: hidden width of the feed-forward network.
      dropout, activation, layer_norm_eps, norm_first, bias: as PyTorch, keyword-only
        (``activation`` is ``'relu'``, ``'gelu'`` or ``'swiglu'``; ``bias=False`` drops
        the biases of the projections and of the LayerNorms, as PyTorch).
      norm: ``'layer_norm'`` or ``'rms_norm'``.
      num_kv_heads, rope, rope_theta, implementation: see :func:`MultiHeadAttention`.
      is_causal: default causal masking of the self-attention.
      weight_init: initializer of every projection weight (default: PyTorch's, see
        :func:`MultiHeadAttention` and :func:`Linear`); biases start at zero.

    Params: ``{"self_attn", "norm1", "ffn", "norm2"}``.

    ``apply(params, state, x, *, key=None, train=False, mask=None, is_causal=None,
    positions=None, bias=None, cache_length=None, return_weights=False)``: ``x`` is
    ``[..., L, d]``; ``mask`` (bool, True = attend, broadcastable to ``[..., H, L, L]``),
    ``is_causal``, ``positions`` (RoPE) and ``bias`` go to the self-attention;
    ``cache_length`` / a cache in ``state`` decode incrementally as in
    :func:`MultiHeadAttention`; ``return_weights=True`` returns
    ``((y, {"self_attn": w}), state)``. ``key`` is needed when ``train=True`` and
    ``dropout > 0``. Returns ``(y [..., L, d], state)``.

    PyTorch: ``torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
    activation, layer_norm_eps, batch_first=True, norm_first, bias)``; its masks mean
    "do not attend", ours True = attend. ``d_model`` comes from the input here, so a
    PyTorch-order call with three or more positional arguments raises ``TypeError``.

    Example:
      >>> layer = TransformerEncoderLayer(4, 64)
      >>> params, state = layer.init(jax.random.key(0), (2, 10, 32))
      >>> y, _ = layer.apply(params, state, jnp.ones((2, 10, 32)))
      >>> y.shape
      (2, 10, 32)
    """
    options = dict(locals())  # the arguments above, by name
    check_int("num_heads", num_heads, minimum=1, fn="TransformerEncoderLayer")
    return _block(cross_attention=False, name="TransformerEncoderLayer", **options)


@positional_limit(2, "TransformerDecoderLayer(num_heads, dim_feedforward, dropout=..., ...)")
def TransformerDecoderLayer(
    num_heads: int,
    dim_feedforward: int = 2048,
    *,
    dropout: float = 0.1,
    activation: str = "relu",
    layer_norm_eps: float = 1e-5,
    norm_first: bool = False,
    bias: bool = True,
    norm: str = "layer_norm",
    num_kv_heads: int | None = None,
    rope: str | None = None,
    rope_theta: float = 10000.0,
    is_causal: bool = True,
    implementation: str | None = None,
    weight_init: Init | None = None,
) -> Layer:
    """Transformer decoder layer: causal self-attention, cross-attention, feed-forward.

    .. math::
        x \\leftarrow \\mathrm{Norm}(x + \\mathrm{SelfAttn}(x)),\\
        x \\leftarrow \\mathrm{Norm}(x + \\mathrm{CrossAttn}(x, m)),\\
        x \\leftarrow \\mathrm{Norm}(x + \\mathrm{FFN}(x))

    (post-norm; ``norm_first=True`` for pre-norm), with dropout as in
    :func:`TransformerEncoderLayer`. Arguments as there; ``is_causal`` defaults to True
    here (PyTorch needs an explicit ``tgt_mask``).

    Params: ``{"self_attn", "norm1", "cross_attn", "norm2", "ffn", "norm3"}``.

    ``apply(params, state, x, *, memory, key=None, train=False, mask=None,
    memory_mask=None, is_causal=None, positions=None, bias=None, cache_length=None,
    return_weights=False)``: ``x`` is ``[..., L, d]`` and ``memory`` the encoder output
    ``[..., S, d]``; ``mask``, ``is_causal``, ``positions``, ``bias`` go to the
    self-attention, ``memory_mask`` (broadcastable to ``[..., H, L, S]``) to the
    cross-attention. With ``cache_length`` (prefill) the state also holds the projected
    memory, so later decoding calls need no ``memory``. ``return_weights=True`` returns
    ``((y, {"self_attn": w, "cross_attn": w}), state)``.

    PyTorch: ``torch.nn.TransformerDecoderLayer(...)(tgt, memory, tgt_mask, memory_mask)``.

    Example:
      >>> layer = TransformerDecoderLayer(4, 64)
      >>> params, state = layer.init(jax.random.key(0), (2, 7, 32))
      >>> y, _ = layer.apply(params, state, jnp.ones((2, 7, 32)), memory=jnp.ones((2, 9, 32)))
      >>> y.shape
      (2, 7, 32)
    """
    options = dict(locals())  # the arguments above, by name
    check_int("num_heads", num_heads, minimum=1, fn="TransformerDecoderLayer")
    return _block(cross_attention=True, name="TransformerDecoderLayer", **options)


def causal_lm_block(
    num_heads: int,
    dim_feedforward: int,
    *,
    num_kv_heads: int | None,
    dropout: float,
    eps: float,
    rope_theta: float,
    rope_layout: str | None,
    implementation: str | None,
    weight_init: Init | None,
    norm: str = "rms_norm",
    activation: str = "swiglu",
    bias: bool = False,
) -> Layer:
    """The decoder-only block of :func:`TransformerLM`: pre-norm, causal self-attention
    (RoPE unless ``rope_layout`` is None), then the feed-forward network. LLaMA by default
    (RMSNorm, SwiGLU, no biases); GPT-2 with ``norm='layer_norm'``, ``activation='gelu'``
    and ``bias=True``."""
    return _block(
        num_heads,
        cross_attention=False,
        dim_feedforward=dim_feedforward,
        dropout=dropout,
        activation=activation,
        layer_norm_eps=eps,
        norm_first=True,
        bias=bias,
        norm=norm,
        num_kv_heads=num_kv_heads,
        rope=rope_layout,
        rope_theta=rope_theta,
        is_causal=True,
        implementation=implementation,
        weight_init=weight_init,
        name="lm_block",
    )
