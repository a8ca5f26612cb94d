"""PyTorch weights in and out: state dicts (name -> NumPy array) to ``(params, state)``.

No torch import is needed: pass ``{k: v.numpy() for k, v in module.state_dict().items()}``
and get back arrays for a model built from the same ``fdl.nn`` layers in the same order.

Naming. A :func:`~functional_dl.nn.Sequential` uses PyTorch's ``nn.Sequential`` names
(``'0.weight'``, ``'3.running_mean'``; a nested Sequential ``'2.1.weight'``; layers
without parameters keep their index). A :func:`~functional_dl.nn.TransformerLM` uses

- with ``mlp='gelu'``, nanoGPT / GPT-2 names (``nn.Linear`` layout, as nanoGPT's
  ``GPT``): ``transformer.wte.weight``, ``transformer.wpe.weight``,
  ``transformer.h.{i}.ln_1.*``, ``.attn.c_attn.*``, ``.attn.c_proj.*``, ``.ln_2.*``,
  ``.mlp.c_fc.*``, ``.mlp.c_proj.*``, ``transformer.ln_f.*``, ``lm_head.weight``
  (nanoGPT's causal-mask buffers ``.attn.bias`` are accepted and ignored). Hugging
  Face's ``GPT2LMHeadModel`` stores ``Conv1D`` weights already transposed
  (``[in, out]``): transpose its ``c_attn``/``c_proj``/``c_fc`` weights first;
- with ``mlp='swiglu'``, Hugging Face LLaMA names (``rope_layout='half'``):
  ``model.embed_tokens.weight``, ``model.layers.{i}.input_layernorm.weight``,
  ``.self_attn.{q,k,v,o}_proj.weight``, ``.post_attention_layernorm.weight``,
  ``.mlp.{gate,up,down}_proj.weight``, ``model.norm.weight``, ``lm_head.weight``
  (``rotary_emb.inv_freq`` buffers are ignored; learned positions would be
  ``model.embed_positions.weight``).

With ``tie_embeddings=True`` a ``lm_head.weight`` in the state dict must equal the
embedding table (it is not a separate parameter) and is written back as a copy.

Layouts. Linear weights are transposed (``[out, in]`` -> ``[in, out]``), convolution
kernels go OIHW -> HWIO, and the first ``Linear`` after a ``Flatten`` of a channels-last
``[N, H, W, C]`` activation gets its input rows permuted from PyTorch's NCHW flatten
order ``(c, h, w)`` to ours ``(h, w, c)``. BatchNorm's ``num_batches_tracked`` is
accepted and ignored (and written as 0).

Extending: :data:`CONVERTERS` maps a layer's ``Layer.name`` to a function
``(params, state, shape) -> [Entry, ...]`` over the layer's abstract params/state and
the :class:`Shapes` of its input; add an entry there for a new layer type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import nn

__all__ = [
    "from_torch_state_dict",
    "to_torch_state_dict",
    "CONVERTERS",
    "Entry",
    "Shapes",
]


def __dir__() -> list[str]:
    return list(__all__)


class Entry(NamedTuple):
    """PyTorch tensors ``torch_names`` <-> one leaf of ours at ``path``.

    ``where`` is ``'params'`` or ``'state'``; ``path`` the keys into it (relative to the
    layer); ``to_ours(*torch_arrays) -> array`` and ``to_torch(array) -> tuple`` convert
    the layouts (identity for same-layout tensors)."""

    torch_names: tuple[str, ...]
    where: str
    path: tuple[str, ...]
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


def _prefixed(entries: list[Entry], name: str, path: tuple[str, ...]) -> list[Entry]:
    return [
        e._replace(torch_names=tuple(f"{name}.{t}" for t in e.torch_names), path=path + e.path)
        for e in entries
    ]


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
    "transformer_lm": _lm,
}
"""``Layer.name`` -> ``(params, state, shapes) -> [Entry, ...]``: the per-layer-type table."""

# PyTorch buffers that carry no information for us (exact names' last components)
_IGNORED = ("num_batches_tracked", "attn.bias", "attn.masked_bias", "rotary_emb.inv_freq")


def _spec(model: nn.Layer, input_shape: Any) -> jax.ShapeDtypeStruct:
    if isinstance(input_shape, jax.ShapeDtypeStruct):
        return input_shape
    shape = tuple(int(s) for s in input_shape)
    first = model
    while first.layers and first.name == "sequential":
        first = next(iter(first.layers.values()))
    ids = first.name in ("embedding", "transformer_lm")
    return jax.ShapeDtypeStruct(shape, jnp.int32 if ids else jnp.float32)


def _channels(layer: nn.Layer, params: Any, state: Any) -> int | None:
    """The output channels a layer fixes (None: it keeps its input's)."""
    if layer.name.startswith("conv"):
        return int(params["weight"].shape[-1])
    leaves = jax.tree_util.tree_leaves((params, state))
    if layer.name.endswith("norm") and leaves:
        return int(leaves[0].shape[-1])
    return None


_UNKNOWN = -1


def _entries(model: nn.Layer, params: Any, state: Any, x: Any) -> list[Entry]:
    """Every entry of ``model`` with full names and paths (Sequential children by index).

    ``x`` is the input's ``ShapeDtypeStruct``, or None: then the channels of a flattened
    activation are read from the parameters of the layers before it."""
    if model.name != "sequential" or not model.layers:
        return _leaf_entries(model, params, state, Shapes())
    out, flattened = [], None
    channels = None if x is None else int(x.shape[-1])
    for index, (key, child) in enumerate(model.layers.items()):
        p, s = params[key], state.get(key, {})
        if child.name == "sequential" and child.layers:
            inner = _entries(child, p, s, x)
        else:
            if child.name == "linear" and flattened is not None:
                if flattened == (_UNKNOWN, _UNKNOWN):
                    raise ValueError(
                        "interop: cannot tell the channels flattened before "
                        f"layer {index} ({key}); pass input_shape="
                    )
                if flattened[0] == _UNKNOWN:  # positions from the weight's rows
                    flattened = (int(p["weight"].shape[0]) // flattened[1], flattened[1])
            shapes = Shapes(flattened if child.name == "linear" else None)
            inner = _leaf_entries(child, p, s, shapes)
        out += [
            e._replace(
                torch_names=tuple(f"{index}.{t}" for t in e.torch_names), path=(key, *e.path)
            )
            for e in inner
        ]
        if child.name == "flatten":
            if x is not None:
                shape = tuple(x.shape[1:])
                flattened = (int(np.prod(shape[:-1])), int(shape[-1])) if len(shape) > 1 else None
            else:
                flattened = (_UNKNOWN, _UNKNOWN if channels is None else channels)
        elif child.name == "linear":
            flattened = None
        if x is not None:
            x = jax.eval_shape(lambda p, s, x, c=child: c.apply(p, s, x)[0], p, s, x)
        else:
            channels = _channels(child, p, s) or channels
    return out


def _leaf_entries(layer: nn.Layer, params: Any, state: Any, shapes: Shapes) -> list[Entry]:
    if not jax.tree_util.tree_leaves((params, state)):
        return []
    if layer.name not in CONVERTERS:
        raise ValueError(
            f"interop: no PyTorch converter for layer {layer.name!r}; add one to "
            f"functional_dl.interop.CONVERTERS"
        )
    return CONVERTERS[layer.name](params, state, shapes)


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _structure(model: nn.Layer, input_shape: Any) -> tuple[Any, Any, list[Entry]]:
    spec = _spec(model, input_shape)
    init_arg = spec if model.name == "sequential" else tuple(spec.shape)
    params, state = jax.eval_shape(lambda k: model.init(k, init_arg), jax.random.key(0))
    return params, state, _entries(model, params, state, spec)


def _tied(model: nn.Layer, params: Any) -> tuple[str, str] | None:
    """``(head name, embedding name)`` of a TransformerLM with tied embeddings."""
    if model.name != "transformer_lm" or "lm_head" in params:
        return None
    gpt = "linear1" in params["layer_0"]["ffn"]
    return "lm_head.weight", "transformer.wte.weight" if gpt else "model.embed_tokens.weight"


def from_torch_state_dict(
    model: nn.Layer, state_dict: Mapping[str, Any], input_shape: Any
) -> tuple[Any, Any]:
    """``(params, state)`` of ``model`` from a PyTorch ``state_dict`` of NumPy arrays.

    Args:
      model: a :func:`~functional_dl.nn.Sequential` of ``fdl.nn`` layers (the same layers
        in the same order as the PyTorch ``nn.Sequential``), a single layer, or a
        :func:`~functional_dl.nn.TransformerLM` (naming in the module docstring).
      state_dict: PyTorch name -> array (``tensor.numpy()`` or any array-like).
      input_shape: our channels-last input shape (``[N, H, W, C]`` where PyTorch has
        ``[N, C, H, W]``), or a ``jax.ShapeDtypeStruct`` (token ids).

    Returns:
      ``(params, state)`` with the structure and dtypes of ``model.init``.

    Raises:
      ValueError: naming missing or unexpected keys and shape mismatches.

    Example:
      >>> model = fdl.nn.Sequential(fdl.nn.Linear(3), fdl.nn.ReLU(), fdl.nn.Linear(2))
      >>> sd = {"0.weight": np.ones((3, 4)), "0.bias": np.zeros(3),
      ...       "2.weight": np.ones((2, 3)), "2.bias": np.zeros(2)}
      >>> params, state = from_torch_state_dict(model, sd, (1, 4))
      >>> params["0_linear"]["weight"].shape  # [in, out]
      (4, 3)
    """
    abstract_params, abstract_state, entries = _structure(model, input_shape)
    sd = {k: np.asarray(v) for k, v in state_dict.items()}
    expected = {n for e in entries for n in e.torch_names}
    tied = _tied(model, abstract_params)
    if tied and tied[0] in sd:
        if tied[1] not in sd or not np.array_equal(sd[tied[0]], sd[tied[1]]):
            raise ValueError(
                f"interop: {tied[0]} differs from {tied[1]} but the model ties its "
                f"embeddings; build it with tie_embeddings=False"
            )
        expected.add(tied[0])
    missing = sorted(expected - set(sd))
    unexpected = sorted(k for k in set(sd) - expected if not any(k.endswith(s) for s in _IGNORED))
    if missing or unexpected:
        raise ValueError(
            f"interop: state_dict does not match the model: missing {missing}, "
            f"unexpected {unexpected}"
        )
    params = _as_dicts(jax.tree_util.tree_map(lambda a: None, abstract_params))
    # state without a PyTorch counterpart (a recurrent layer's h_n) keeps its init value
    state = _as_dicts(
        _init_state(model, input_shape)
        if jax.tree_util.tree_leaves(abstract_state)
        else abstract_state
    )
    for e in entries:
        target = _get(abstract_params if e.where == "params" else abstract_state, e.path)
        try:
            value = np.asarray(e.to_ours(*(sd[n] for n in e.torch_names)))
        except ValueError:  # a reshape that does not fit
            value = np.empty((0,))
        if value.shape != tuple(target.shape):
            names = ", ".join(f"{n} {sd[n].shape}" for n in e.torch_names)
            raise ValueError(
                f"interop: {names} gives shape {value.shape} for {'/'.join(e.path)}, "
                f"the model expects {tuple(target.shape)}"
            )
        _set(params if e.where == "params" else state, e.path, jnp.asarray(value, target.dtype))
    filled = jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda a: a is None)[0]
    for path, leaf in filled:
        if leaf is None:
            raise ValueError(f"interop: no PyTorch entry fills params{jax.tree_util.keystr(path)}")
    return params, state


def _init_state(model: nn.Layer, input_shape: Any) -> Any:
    """``model.init``'s state alone (the parameters are not materialised)."""
    spec = _spec(model, input_shape)
    init_arg = spec if model.name == "sequential" else tuple(spec.shape)
    return jax.jit(lambda k: model.init(k, init_arg)[1])(jax.random.key(0))


def _as_dicts(tree: Any) -> Any:
    """A mutable copy (nested dicts) of a dict pytree."""
    if isinstance(tree, Mapping):
        return {k: _as_dicts(v) for k, v in tree.items()}
    return tree


def to_torch_state_dict(
    model: nn.Layer, params: Any, state: Any, *, input_shape: Any = None
) -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` (name -> NumPy array) of ``model``'s ``params``/``state``.

    The inverse of :func:`from_torch_state_dict` (exact round trip); load it with
    ``module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    ``input_shape`` is only needed when a ``Flatten`` followed by a ``Linear`` sees
    channels no earlier layer fixes (a ``Flatten`` first, on an image); otherwise they
    are read from the convolution/normalisation parameters before it.

    Example:
      >>> model = fdl.nn.Sequential(fdl.nn.Linear(3), fdl.nn.ReLU(), fdl.nn.Linear(2))
      >>> params, state = model.init(jax.random.key(0), (1, 4))
      >>> sd = to_torch_state_dict(model, params, state)
      >>> sorted(sd), sd["0.weight"].shape  # [out, in]
      (['0.bias', '0.weight', '2.bias', '2.weight'], (3, 4))
      >>> p2, _ = from_torch_state_dict(model, sd, (1, 4))
      >>> bool((p2["0_linear"]["weight"] == params["0_linear"]["weight"]).all())
      True
    """
    if input_shape is None:
        entries = _entries(model, params, state, None)
    else:
        entries = _structure(model, input_shape)[2]
    out: dict[str, np.ndarray] = {}
    for e in entries:
        leaf = np.asarray(_get(params if e.where == "params" else state, e.path))
        for name, value in zip(e.torch_names, e.to_torch(leaf), strict=True):
            out[name] = np.ascontiguousarray(value)
            if name.endswith("running_var"):  # PyTorch's BatchNorm buffer (unused here)
                out[name[: -len("running_var")] + "num_batches_tracked"] = np.asarray(0, np.int64)
    tied = _tied(model, params)
    if tied:
        out[tied[0]] = out[tied[1]].copy()
    return out
