"""The per-layer-type table of PyTorch conversions (see :mod:`functional_dl.interop`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Entry", "Shapes", "CONVERTERS", "paths_of", "with_prefix"]


class Entry(NamedTuple):
    """PyTorch tensors ``torch_names`` <-> one leaf of ours at ``path``.

    ``where`` is ``'params'`` or ``'state'``; ``path`` the keys into it (relative to the
    layer); ``to_ours(*torch_arrays) -> array`` and ``to_torch(array) -> tuple`` convert
    the layouts (identity for same-layout tensors). One PyTorch tensor may also fill
    several leaves of ours: then ``path`` is a tuple of paths, ``to_ours`` returns a tuple
    of arrays and ``to_torch`` takes one array per path."""

    torch_names: tuple[str, ...]
    where: str
    path: tuple[Any, ...]
    to_ours: Callable[..., Any]
    to_torch: Callable[[Any], tuple[Any, ...]]


class Shapes(NamedTuple):
    """What a converter may need besides the parameters: for the first ``Linear`` after
    a ``Flatten`` of a channels-last activation ``[N, *spatial, C]``, the number of
    flattened positions ``prod(spatial)`` and channels ``C`` (None otherwise)."""

    flattened: tuple[int, int] | None = None


def _same(name: str, *path: str, where: str = "params") -> Entry:
    return Entry((name,), where, path or (name,), lambda a: a, lambda a: (a,))


def _transposed(name: str, *path: str) -> Entry:
    return Entry((name,), "params", path or (name,), lambda a: a.T, lambda a: (a.T,))


def _optional(params: Any, state: Any, names: tuple[str, ...], where: str = "params") -> list:
    tree = params if where == "params" else state
    return [_same(n, where=where) for n in names if n in tree]


def _linear(params, state, shapes: Shapes) -> list[Entry]:
    """``nn.Linear``: ``weight [out, in]`` transposed; after a flatten of ``[P, C]``
    positions x channels, PyTorch's input index ``c P + p`` becomes ours ``p C + c``."""
    entries = _optional(params, state, ("bias",))
    if shapes.flattened is None or shapes.flattened[0] == 1:
        return [_transposed("weight"), *entries]
    positions, c = shapes.flattened

    def to_ours(w):
        out = w.shape[0]
        return w.reshape(out, c, positions).transpose(2, 1, 0).reshape(-1, out)

    def to_torch(w):
        out = w.shape[-1]
        return (w.reshape(positions, c, out).transpose(2, 1, 0).reshape(out, -1),)

    return [Entry(("weight",), "params", ("weight",), to_ours, to_torch), *entries]


def _conv(perm_to_ours: tuple[int, ...]) -> Callable[..., list[Entry]]:
    """A convolution whose kernel is PyTorch's permuted by ``perm_to_ours``."""
    inverse = tuple(int(i) for i in np.argsort(perm_to_ours))

    def convert(params, state, shapes):
        w = Entry(
            ("weight",),
            "params",
            ("weight",),
            lambda a: a.transpose(perm_to_ours),
            lambda a: (a.transpose(inverse),),
        )
        return [w, *_optional(params, state, ("bias",))]

    return convert


def _affine(params, state, shapes) -> list[Entry]:
    """Same names and layout (LayerNorm, RMSNorm, GroupNorm, Embedding, PReLU)."""
    return _optional(params, state, ("weight", "bias"))


def _batch_norm(params, state, shapes) -> list[Entry]:
    running = _optional(params, state, ("running_mean", "running_var"), where="state")
    return [*_affine(params, state, shapes), *running]


def _mha_torch(params, state, shapes) -> list[Entry]:
    """``torch.nn.MultiheadAttention`` (self-attention): ``in_proj_*`` and ``out_proj.*``."""
    out = [
        Entry(("in_proj_weight",), "params", ("qkv", "weight"), lambda a: a.T, lambda a: (a.T,)),
        _transposed("out_proj.weight", "out", "weight"),
    ]
    if "bias" in params["qkv"]:
        out.append(_same("in_proj_bias", "qkv", "bias"))
    if "bias" in params["out"]:
        out.append(_same("out_proj.bias", "out", "bias"))
    return out


def _recurrent(params, state, shapes) -> list[Entry]:
    """RNN/LSTM/GRU: PyTorch's names (``weight_ih_l0``, ``bias_hh_l1_reverse``) and gate
    order; weights ``[G H, in]`` transposed to ``[in, G H]``. ``h_n``/``c_n`` (state, not
    in a state dict) start from the layer's init."""
    return [_transposed(n) if n.startswith("weight") else _same(n) for n in params]


def _several(entry: Entry) -> bool:
    return bool(entry.path) and isinstance(entry.path[0], tuple)


def paths_of(entry: Entry) -> list[tuple[str, ...]]:
    """The leaf paths an entry fills (one, or several for a split PyTorch tensor)."""
    return list(entry.path) if _several(entry) else [entry.path]


def with_prefix(entry: Entry, name: str, path: tuple[str, ...]) -> Entry:
    """``entry`` inside a parent: torch names under ``name.``, our paths under ``path``."""
    paths = [path + p for p in paths_of(entry)]
    return entry._replace(
        torch_names=tuple(f"{name}.{t}" for t in entry.torch_names),
        path=tuple(paths) if _several(entry) else paths[0],
    )


def _prefixed(entries: list[Entry], name: str, path: tuple[str, ...]) -> list[Entry]:
    return [with_prefix(e, name, path) for e in entries]


def _cross_torch(params, state, shapes) -> list[Entry]:
    """``torch.nn.MultiheadAttention`` as cross-attention (``kdim = vdim = d``): its fused
    ``in_proj_weight [3d, d]`` <-> our separate ``q``/``k``/``v``; ``out_proj.*``."""
    out = [_transposed("out_proj.weight", "out", "weight")]
    if "bias" in params["out"]:
        out.append(_same("out_proj.bias", "out", "bias"))
    for leaf, torch_name in (("weight", "in_proj_weight"), ("bias", "in_proj_bias")):
        if leaf not in params["q"]:
            continue
        flip = (lambda a: a.T) if leaf == "weight" else (lambda a: a)
        out.append(
            Entry(
                (torch_name,),
                "params",
                tuple((n, leaf) for n in "qkv"),
                lambda a, flip=flip: tuple(flip(p) for p in np.split(a, 3, axis=0)),
                lambda *parts, flip=flip: (np.concatenate([flip(p) for p in parts], axis=0),),
            )
        )
    return out


def _decoder_layer(params, state, shapes) -> list[Entry]:
    """``torch.nn.TransformerDecoderLayer``: ``self_attn.*``, ``multihead_attn.*``,
    ``linear1/2``, ``norm1/2/3``."""
    entries = _encoder_layer(params, state, shapes)
    entries += _prefixed(
        _cross_torch(params["cross_attn"], {}, shapes), "multihead_attn", ("cross_attn",)
    )
    return entries + _prefixed(_affine(params["norm3"], {}, shapes), "norm3", ("norm3",))


def _encoder_layer(params, state, shapes) -> list[Entry]:
    """``torch.nn.TransformerEncoderLayer``: ``self_attn.*``, ``linear1/2``, ``norm1/2``."""
    entries = _prefixed(_mha_torch(params["self_attn"], {}, shapes), "self_attn", ("self_attn",))
    for name in ("linear1", "linear2"):
        entries += _prefixed(_linear(params["ffn"][name], {}, shapes), name, ("ffn", name))
    for name in ("norm1", "norm2"):
        entries += _prefixed(_affine(params[name], {}, shapes), name, (name,))
    return entries


def _lm(params, state, shapes) -> list[Entry]:
    """:func:`~functional_dl.nn.TransformerLM` in nanoGPT (gelu) or LLaMA (swiglu) names."""
    gpt = "linear1" in params["layer_0"]["ffn"]
    entries = []

    def add(torch_name, path, kind):
        tree = params
        for key in path[:-1]:
            tree = tree.get(key, {})
        if path[-1] not in tree:  # an absent bias
            return
        if kind == "T":
            entries.append(_transposed(torch_name, *path))
        else:
            entries.append(_same(torch_name, *path))

    def norm(torch_name, ours):
        add(f"{torch_name}.weight", (*ours, "weight"), "=")
        add(f"{torch_name}.bias", (*ours, "bias"), "=")

    def dense(torch_name, ours):
        add(f"{torch_name}.weight", (*ours, "weight"), "T")
        add(f"{torch_name}.bias", (*ours, "bias"), "=")

    i = 0
    if gpt:
        add("transformer.wte.weight", ("embed", "weight"), "=")
        add("transformer.wpe.weight", ("pos", "table"), "=")
        while f"layer_{i}" in params:
            t, o = f"transformer.h.{i}", f"layer_{i}"
            norm(f"{t}.ln_1", (o, "norm1"))
            dense(f"{t}.attn.c_attn", (o, "self_attn", "qkv"))
            dense(f"{t}.attn.c_proj", (o, "self_attn", "out"))
            norm(f"{t}.ln_2", (o, "norm2"))
            dense(f"{t}.mlp.c_fc", (o, "ffn", "linear1"))
            dense(f"{t}.mlp.c_proj", (o, "ffn", "linear2"))
            i += 1
        norm("transformer.ln_f", ("norm",))
    else:
        add("model.embed_tokens.weight", ("embed", "weight"), "=")
        add("model.embed_positions.weight", ("pos", "table"), "=")
        while f"layer_{i}" in params:
            t, o = f"model.layers.{i}", f"layer_{i}"
            norm(f"{t}.input_layernorm", (o, "norm1"))
            entries.extend(_split_qkv(params[o]["self_attn"], f"{t}.self_attn", o))
            dense(f"{t}.self_attn.o_proj", (o, "self_attn", "out"))
            norm(f"{t}.post_attention_layernorm", (o, "norm2"))
            for name in ("gate", "up", "down"):
                dense(f"{t}.mlp.{name}_proj", (o, "ffn", name))
            i += 1
        norm("model.norm", ("norm",))
    add("lm_head.weight", ("lm_head", "weight"), "T")
    return entries


def _split_qkv(attn, torch_prefix, layer) -> list[Entry]:
    """Separate ``q_proj``/``k_proj``/``v_proj`` <-> our fused ``qkv`` (``[d, (H + 2 Hkv) hd]``,
    ``H hd`` = the output projection's input width)."""
    q_width = attn["out"]["weight"].shape[0]
    kv_width = (attn["qkv"]["weight"].shape[-1] - q_width) // 2
    cuts = [q_width, q_width + kv_width]
    out = []
    for leaf, transpose in (("weight", True), ("bias", False)):
        if leaf not in attn["qkv"]:
            continue
        names = tuple(f"{torch_prefix}.{p}_proj.{leaf}" for p in "qkv")

        def to_ours(q, k, v, transpose=transpose):
            parts = (q.T, k.T, v.T) if transpose else (q, k, v)
            return np.concatenate(parts, axis=-1)

        def to_torch(a, transpose=transpose):
            parts = np.split(a, cuts, axis=-1)
            return tuple(p.T for p in parts) if transpose else tuple(parts)

        out.append(Entry(names, "params", (layer, "self_attn", "qkv", leaf), to_ours, to_torch))
    return out


CONVERTERS: dict[str, Callable[[Any, Any, Shapes], list[Entry]]] = {
    "linear": _linear,
    "conv2d": _conv((2, 3, 1, 0)),  # OIHW -> HWIO
    "conv1d": _conv((2, 1, 0)),  # [out, C/g, k] -> [k, C/g, out]
    "conv_transpose2d": _conv((2, 3, 0, 1)),  # [in, out/g, kh, kw] -> [kh, kw, in, out/g]
    "batch_norm": _batch_norm,
    "layer_norm": _affine,
    "rms_norm": _affine,
    "group_norm": _affine,
    "instance_norm": _batch_norm,
    "embedding": _affine,
    "prelu": _affine,
    "rnn": _recurrent,
    "lstm": _recurrent,
    "gru": _recurrent,
    "self_attention": _mha_torch,
    "TransformerEncoderLayer": _encoder_layer,
    "TransformerDecoderLayer": _decoder_layer,
    "transformer_lm": _lm,
}
"""``Layer.name`` -> ``(params, state, shapes) -> [Entry, ...]``: the per-layer-type table."""
