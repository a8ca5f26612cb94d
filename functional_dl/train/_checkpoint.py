"""Checkpoints: any pytree of arrays to one ``safetensors`` file, no pickle.

File layout: one safetensors tensor per leaf, named by its tree path
(``.params['0_linear']['weight']``), plus a JSON header entry recording, per leaf in
flattening order, the path, dtype, shape and a CRC-32 of the bytes, and the user's
metadata. Writing goes to a temporary file in the same directory that is renamed over
the target (``os.replace``), so a crash never leaves a half-written checkpoint.
Restoring validates everything (file integrity, tree paths, shapes, dtypes, checksums)
before building the result, so it either returns the complete tree or raises.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from jax.experimental import multihost_utils

from ._sharding import is_sharding_mesh, place_state, replicate_tree

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "restore_checkpoint",
    "checkpoint_metadata",
    "latest_checkpoint",
    "checkpoint_path",
]

_FORMAT = "functional_dl.checkpoint"
_VERSION = 1
# dtypes safetensors.numpy stores natively; others (bfloat16, ...) are stored as raw bits.
_NATIVE = {
    np.dtype(t)
    for t in (
        np.float64,
        np.float32,
        np.float16,
        np.int64,
        np.int32,
        np.int16,
        np.int8,
        np.uint64,
        np.uint32,
        np.uint16,
        np.uint8,
        np.bool_,
        np.complex64,
    )
}


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupted, or does not match the expected tree."""


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _key_impl_name(leaf: Any) -> str:
    """The PRNG implementation of a typed key array, or of a key ``ShapeDtypeStruct``
    (the template ``jax.eval_shape(lambda: state)`` holds one)."""
    if isinstance(leaf, jax.Array):
        return str(jax.random.key_impl(leaf))
    return str(leaf.dtype._impl.name)  # the key dtype's implementation


def _describe(path: tuple, leaf: Any) -> tuple[str, str, list[int]]:
    """``(name, dtype, shape)`` of a leaf (arrays, typed keys, scalars, ShapeDtypeStruct)."""
    name = jax.tree_util.keystr(path) or "<root>"
    if _is_key(leaf):
        return name, f"key<{_key_impl_name(leaf)}>", list(leaf.shape)
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return name, str(np.dtype(leaf.dtype)), list(leaf.shape)
    return name, str(np.asarray(leaf).dtype), list(np.shape(leaf))


def _to_numpy(leaf: Any) -> np.ndarray:
    if _is_key(leaf):
        leaf = jax.random.key_data(leaf)
    arr = np.asarray(leaf).copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if arr.dtype not in _NATIVE:  # e.g. bfloat16: store the bits, the dtype is in the header
        arr = arr.view(np.dtype(f"uint{arr.dtype.itemsize * 8}"))
    return arr


def _local_whole(leaf: Any) -> Any:
    """A leaf this process can read whole: a sharded array spread over several processes
    is gathered (``process_allgather``), a replicated one read from a local copy."""
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
        return leaf
    if leaf.sharding.is_fully_replicated:
        return leaf.addressable_data(0)
    return multihost_utils.process_allgather(leaf, tiled=True)


def save_checkpoint(
    path: str | os.PathLike,
    tree: Any,
    *,
    metadata: dict[str, Any] | None = None,
    mesh: Any = None,
) -> Path:
    """Write ``tree`` (any pytree of arrays) to ``path`` atomically, in safetensors format.

    A state sharded over a mesh (``fdl.train.make_mesh``) is written whole. With several
    processes every process calls this function: the shards are gathered, process 0
    writes the one file, and all return once it is written.

    Args:
        path: the file to write (``.safetensors``); parent directories are created.
        tree: a pytree of arrays / scalars (``TrainState``, dicts, optax states,
            typed PRNG keys, bfloat16 arrays, ...).
        metadata: JSON-serialisable extra information, read back with
            :func:`checkpoint_metadata`.
        mesh: the mesh the state lives on (accepted for symmetry with
            :func:`restore_checkpoint`; the arrays carry their own shardings).

    Returns:
        The path written.

    Equivalent: ``orbax.checkpoint`` (directory of files) or ``torch.save(state_dict)``
    (pickle); here one safetensors file, no code is executed on load.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "step_100.safetensors")
        >>> tree = {"w": jnp.ones((2, 3)), "step": jnp.int32(100)}
        >>> save_checkpoint(path, tree, metadata={"epoch": 3}).name
        'step_100.safetensors'
        >>> checkpoint_metadata(path)
        {'epoch': 3}
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"save_checkpoint: path is a directory, got path={str(path)!r}")
    if jax.process_count() > 1:
        tree = jax.tree_util.tree_map(_local_whole, tree)
        if jax.process_index() != 0:
            multihost_utils.sync_global_devices(f"save_checkpoint {path}")
            return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise CheckpointError(
            f"save_checkpoint: cannot create the directory of path={str(path)!r}: {exc}"
        ) from exc
    tensors, leaves = {}, []
    for kp, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name, dtype, shape = _describe(kp, leaf)
        try:
            arr = _to_numpy(leaf)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"save_checkpoint: leaf {name} is not an array: {leaf!r}") from exc
        tensors[name] = arr
        leaves.append([name, dtype, shape, zlib.crc32(arr.tobytes())])
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "treedef": str(jax.tree_util.tree_structure(tree)),
        "leaves": leaves,
    }
    data = safetensors.numpy.save(
        tensors, metadata={_FORMAT: json.dumps(header), "user": json.dumps(metadata or {})}
    )
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if jax.process_count() > 1:  # the other processes wait for the file
        multihost_utils.sync_global_devices(f"save_checkpoint {path}")
    return path


def _read(path: str | os.PathLike, fn: str) -> tuple[bytes, dict[str, str]]:
    """The file's bytes and its safetensors metadata, with integrity errors made clear."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{fn}: no checkpoint file at {str(path)!r}")
    data = path.read_bytes()
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        meta = header.get("__metadata__") or {}
        info = json.loads(meta[_FORMAT])
    except Exception as exc:
        raise CheckpointError(
            f"{fn}: {str(path)!r} is not a functional_dl checkpoint or its "
            f"header is corrupted ({type(exc).__name__}: {exc})"
        ) from exc
    if info.get("format") != _FORMAT or info.get("version") != _VERSION:
        raise CheckpointError(
            f"{fn}: {str(path)!r} has an unsupported format/version "
            f"{info.get('format')!r}/{info.get('version')!r}"
        )
    return data, meta


def checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata`` dict passed to :func:`save_checkpoint` for the file at ``path``."""
    _, meta = _read(path, "checkpoint_metadata")
    return json.loads(meta.get("user", "{}"))


def _from_numpy(arr: np.ndarray, dtype: str, like: Any, *, keep_sharding: bool = True) -> Any:
    """Rebuild a leaf of the template's kind (jax array on its sharding, NumPy, scalar)."""
    addressable = isinstance(like, jax.Array) and like.is_fully_addressable
    sharding = like.sharding if keep_sharding and addressable else None
    if dtype.startswith("key<"):
        key = jax.random.wrap_key_data(jax.device_put(arr), impl=dtype[4:-1])
        return jax.device_put(key, sharding) if sharding is not None else key
    arr = arr.view(np.dtype(dtype)) if arr.dtype != np.dtype(dtype) else arr
    if isinstance(like, np.ndarray):
        return arr.copy()
    if isinstance(like, np.generic):
        return arr[()]
    if isinstance(like, (bool, int, float, complex)):
        return arr.item()
    return jax.device_put(arr, sharding)  # a transfer, no compilation per shape


def restore_checkpoint(
    path: str | os.PathLike, template: Any, *, mesh: Any = None, fsdp: bool = False
) -> Any:
    """Read a checkpoint written by :func:`save_checkpoint` into the structure of ``template``.

    Every check runs before anything is built, so the result is either the complete
    tree or an exception: :class:`CheckpointError` for a truncated or corrupted file
    (bad header, wrong sizes, checksum mismatch) or a tree that does not match
    ``template`` (missing or extra leaves, other shapes or dtypes), listing the
    differences; ``FileNotFoundError`` when there is no file.

    Args:
        path: the checkpoint file.
        template: a pytree with the expected structure: arrays (the restored arrays get
            their sharding), ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``),
            NumPy arrays or Python scalars (restored as the same kind).
        mesh: put the restored tree on this mesh: a :class:`TrainState` on a
            ``fdl.train.make_mesh`` mesh gets :func:`state_shardings` (``fsdp`` as in
            ``create_train_state``), whatever mesh it was saved from; anything else is
            replicated.
        fsdp: shard over ``data`` (with a ``make_mesh`` mesh).

    Returns:
        A new pytree with the structure of ``template`` and the saved values.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "step_100.safetensors")
        >>> _ = save_checkpoint(path, {"w": jnp.full(3, 2.0)})
        >>> restore_checkpoint(path, {"w": jnp.zeros(3)})["w"].tolist()
        [2.0, 2.0, 2.0]
    """
    data, meta = _read(path, "restore_checkpoint")
    info = json.loads(meta[_FORMAT])
    try:
        tensors = safetensors.numpy.load(data)
    except Exception as exc:
        raise CheckpointError(
            f"restore_checkpoint: {str(path)!r} is truncated or corrupted "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    expected = [_describe(kp, leaf) for kp, leaf in flat]
    saved = [tuple(rec[:3]) for rec in info["leaves"]]
    _check_match(path, saved, [(n, d, list(s)) for n, d, s in expected])
    out = []
    for (name, dtype, shape, crc), (_, like) in zip(info["leaves"], flat, strict=True):
        arr = tensors.get(name)
        if arr is None:
            raise CheckpointError(
                f"restore_checkpoint: {str(path)!r} is corrupted: the data of {name} is missing"
            )
        # a key's data has trailing implementation dimensions after the key's shape
        stored = arr.shape[: len(shape)] if dtype.startswith("key<") else arr.shape
        if tuple(stored) != tuple(shape):
            raise CheckpointError(
                f"restore_checkpoint: {str(path)!r} is corrupted: {name} is stored "
                f"with shape {list(arr.shape)}, its header declares {list(shape)}"
            )
        if zlib.crc32(arr.tobytes()) != crc:
            raise CheckpointError(
                f"restore_checkpoint: {str(path)!r} is corrupted: the data "
                f"of {name} does not match its checksum"
            )
        out.append((arr, dtype, like))
    keep = mesh is None  # with a mesh the tree is placed below
    leaves = [_from_numpy(arr, dtype, like, keep_sharding=keep) for arr, dtype, like in out]
    tree = jax.tree_util.tree_unflatten(treedef, leaves)
    if mesh is None:
        return tree
    if is_sharding_mesh(mesh) and hasattr(tree, "params"):
        return place_state(tree, mesh, fsdp=fsdp)
    return replicate_tree(tree, mesh)


def _check_match(path: Any, saved: list[tuple], expected: list[tuple]) -> None:
    saved_t = [(n, d, tuple(s)) for n, d, s in saved]
    expected_t = [(n, d, tuple(s)) for n, d, s in expected]
    if saved_t == expected_t:
        return
    saved_by_name = {n: (d, s) for n, d, s in saved_t}
    expected_by_name = {n: (d, s) for n, d, s in expected_t}
    problems = [f"missing in the file: {n}" for n in expected_by_name if n not in saved_by_name]
    problems += [f"not in the template: {n}" for n in saved_by_name if n not in expected_by_name]
    for n, (d, s) in expected_by_name.items():
        if n in saved_by_name and saved_by_name[n] != (d, s):
            sd, ss = saved_by_name[n]
            problems.append(f"{n}: file has {sd}{list(ss)}, template has {d}{list(s)}")
    if not problems:
        problems = ["the leaves are in a different order"]
    shown = "; ".join(problems[:5]) + (
        f"; ... ({len(problems)} in all)" if len(problems) > 5 else ""
    )
    raise CheckpointError(
        f"restore_checkpoint: {str(path)!r} does not match the template "
        f"tree ({len(saved_t)} leaves saved, {len(expected_t)} expected): "
        f"{shown}"
    )


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    """The file :func:`fit` writes at ``step``: ``<directory>/step_00000100.safetensors``.

    Example:
        >>> checkpoint_path("runs", 100).as_posix()
        'runs/step_00000100.safetensors'
    """
    return Path(directory) / f"step_{int(step):08d}.safetensors"


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest step in ``directory``, or ``None`` if there is none."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in directory.iterdir()
        if (m := re.fullmatch(r"step_(\d+)\.safetensors", p.name))
    ]
    return max(found)[1] if found else None
