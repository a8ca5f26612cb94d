"""Reading and writing PyTorch state dicts through :data:`CONVERTERS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn
from ._converters import CONVERTERS, Entry, Shapes, paths_of, with_prefix

__all__ = ["from_torch_state_dict", "to_torch_state_dict"]

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
        out += [with_prefix(e, str(index), (key,)) for e in inner]
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
        tree, abstract = (
            (params, abstract_params) if e.where == "params" else (state, abstract_state)
        )
        paths = paths_of(e)
        targets = [_get(abstract, p) for p in paths]
        try:
            values = e.to_ours(*(sd[n] for n in e.torch_names))
            values = [np.asarray(v) for v in (values if len(paths) > 1 else (values,))]
        except ValueError:  # a reshape or split that does not fit
            values = [np.empty((0,))] * len(paths)
        for path, value, target in zip(paths, values, targets, strict=True):
            if value.shape != tuple(target.shape):
                names = ", ".join(f"{n} {sd[n].shape}" for n in e.torch_names)
                raise ValueError(
                    f"interop: {names} gives shape {value.shape} for {'/'.join(path)}, "
                    f"the model expects {tuple(target.shape)}"
                )
            # a copy: jnp.asarray may share the caller's (torch's) buffer on CPU
            _set(tree, path, jnp.array(value, target.dtype, copy=True))
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
        tree = params if e.where == "params" else state
        leaves = [np.asarray(_get(tree, p)) for p in paths_of(e)]
        for name, value in zip(e.torch_names, e.to_torch(*leaves), strict=True):
            out[name] = np.array(value, order="C", copy=True)  # writable, not JAX's buffer
            if name.endswith("running_var"):  # PyTorch's BatchNorm buffer (unused here)
                out[name[: -len("running_var")] + "num_batches_tracked"] = np.asarray(0, np.int64)
    tied = _tied(model, params)
    if tied:
        out[tied[0]] = out[tied[1]].copy()
    return out
