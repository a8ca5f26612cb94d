"""Checkpoints: any pytree of arrays to one ``safetensors`` file, no pickle.

File layout: one safetensors tensor per leaf, named by its tree path
(``.params['0_linear']['weight']``), plus a JSON header entry recording, per leaf in
flattening order, the path, dtype, shape and a CRC-32 of the bytes, and the user's
metadata. Writing goes to a temporary file in the same directory that is renamed over
the target (``os.replace``), so a crash never leaves a half-written checkpoint.
Restoring reads the header first and checks it against the file's size (the tensors
must tile the data section exactly) and against the template (tree paths, shapes,
dtypes) before reading any data; then it reads one tensor at a time into its own buffer
and checks its checksum, so it either returns the complete tree or raises, and holds at
most one tensor beyond the result. Saving streams the leaves to the file one by one.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
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
# safetensors dtype codes; other dtypes (bfloat16, ...) are stored as raw unsigned bits.
_ST_CODE = {
    np.dtype(t): code
    for t, code in (
        (np.float64, "F64"),
        (np.float32, "F32"),
        (np.float16, "F16"),
        (np.int64, "I64"),
        (np.int32, "I32"),
        (np.int16, "I16"),
        (np.int8, "I8"),
        (np.uint64, "U64"),
        (np.uint32, "U32"),
        (np.uint16, "U16"),
        (np.uint8, "U8"),
        (np.bool_, "BOOL"),
        (np.complex64, "C64"),
    )
}
_ST_DTYPE = {code: dtype for dtype, code in _ST_CODE.items()}
_MAX_HEADER = 100 * 2**20  # bytes; safetensors' own limit


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


def _leaf_array(name: str, leaf: Any) -> np.ndarray:
    """The leaf as a C-contiguous NumPy array of a safetensors dtype (no copy when the
    leaf already is one: a CPU jax array, a NumPy array)."""
    if _is_key(leaf):
        leaf = jax.random.key_data(leaf)
    try:
        arr = np.asarray(leaf)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save_checkpoint: leaf {name} is not an array: {leaf!r}") from exc
    if arr.dtype == object:
        raise TypeError(f"save_checkpoint: leaf {name} is not an array: {leaf!r}")
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if arr.dtype not in _ST_CODE:  # e.g. bfloat16: store the bits, the dtype is in the header
        arr = arr.view(np.dtype(f"uint{arr.dtype.itemsize * 8}"))
    return arr


def _bytes_view(arr: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy."""
    return memoryview(arr.reshape(-1).view(np.uint8).data)


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
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    entries: dict[str, Any] = {}
    leaves, offset = [], 0
    for kp, leaf in flat:  # first pass: sizes and checksums, one leaf at a time
        name, dtype, shape = _describe(kp, leaf)
        arr = _leaf_array(name, leaf)
        entries[name] = {
            "dtype": _ST_CODE[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
        leaves.append([name, dtype, shape, zlib.crc32(_bytes_view(arr))])
    info = {
        "format": _FORMAT,
        "version": _VERSION,
        "treedef": str(jax.tree_util.tree_structure(tree)),
        "leaves": leaves,
    }
    entries["__metadata__"] = {_FORMAT: json.dumps(info), "user": json.dumps(metadata or {})}
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # safetensors aligns the data to 8 bytes
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            for kp, leaf in flat:  # second pass: the bytes, streamed leaf by leaf
                f.write(_bytes_view(_leaf_array(jax.tree_util.keystr(kp), leaf)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if jax.process_count() > 1:  # the other processes wait for the file
        multihost_utils.sync_global_devices(f"save_checkpoint {path}")
    return path


class _Header:
    """A checkpoint's header, read and checked against the file's size before any data.

    ``entries`` maps tensor names to ``(dtype, shape, begin, end)`` with absolute file
    offsets; ``info`` is functional_dl's record (leaves, checksums); ``user`` the
    metadata passed to :func:`save_checkpoint`.
    """

    def __init__(self, path: str | os.PathLike, fn: str):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{fn}: no checkpoint file at {str(path)!r}")
        self.path, self.fn = path, fn
        size = path.stat().st_size
        with open(path, "rb") as f:
            try:
                (n,) = struct.unpack("<Q", f.read(8))
                if n > min(size - 8, _MAX_HEADER):
                    raise ValueError(f"the header declares {n} bytes, the file has {size}")
                raw = json.loads(f.read(n))
                meta = raw.pop("__metadata__", None) or {}
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
        self.info, self.user = info, meta.get("user", "{}")
        start, data_size = 8 + n, size - 8 - n
        self.entries: dict[str, tuple[np.dtype, tuple[int, ...], int, int]] = {}
        for name, entry in raw.items():
            try:
                dtype = _ST_DTYPE[entry["dtype"]]
                shape = tuple(int(d) for d in entry["shape"])
                begin, end = (int(o) for o in entry["data_offsets"])
                ok = min(shape, default=0) >= 0 and 0 <= begin <= end <= data_size
                ok = ok and end - begin == dtype.itemsize * math.prod(shape)
            except Exception as exc:
                raise self.corrupted(f"the header entry of {name} is malformed: {exc}") from exc
            if not ok:
                raise self.corrupted(
                    f"{name} declares {entry['dtype']}{list(shape)} at bytes "
                    f"{entry['data_offsets']} of a {data_size}-byte data section"
                )
            self.entries[name] = (dtype, shape, start + begin, start + end)
        spans = sorted((b, e) for _, _, b, e in self.entries.values())
        bounds = [start] + [x for span in spans for x in span] + [size]
        if any(a != b for a, b in zip(bounds[::2], bounds[1::2], strict=True)):
            raise self.corrupted(  # truncated, padded, or overlapping tensors
                f"its tensors do not tile the {data_size}-byte data section exactly"
            )

    def corrupted(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.fn}: {str(self.path)!r} is corrupted: {what}")


def checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata`` dict passed to :func:`save_checkpoint` for the file at ``path``."""
    return json.loads(_Header(path, "checkpoint_metadata").user)


def _from_numpy(arr: np.ndarray, dtype: str, like: Any, *, keep_sharding: bool = True) -> Any:
    """Rebuild a leaf of the template's kind (jax array on its sharding, NumPy, scalar)."""
    addressable = isinstance(like, jax.Array) and like.is_fully_addressable
    sharding = like.sharding if keep_sharding and addressable else None
    if dtype.startswith("key<"):
        key = jax.random.wrap_key_data(jax.device_put(arr), impl=dtype[4:-1])
        return jax.device_put(key, sharding) if sharding is not None else key
    arr = arr.view(np.dtype(dtype)) if arr.dtype != np.dtype(dtype) else arr
    if isinstance(like, np.ndarray):
        return arr
    if isinstance(like, np.generic):
        return arr[()]
    if isinstance(like, (bool, int, float, complex)):
        return arr.item()
    return jax.device_put(arr, sharding)  # a transfer, no compilation per shape


def restore_checkpoint(
    path: str | os.PathLike, template: Any, *, mesh: Any = None, fsdp: bool = False
) -> Any:
    """Read a checkpoint written by :func:`save_checkpoint` into the structure of ``template``.

    The header is checked against the file's size and the template before any data is
    read, and each tensor against its checksum as it is read, so the result is either
    the complete tree or an exception: :class:`CheckpointError` for a truncated or corrupted file
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
    header = _Header(path, "restore_checkpoint")
    info = header.info
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    expected = [_describe(kp, leaf) for kp, leaf in flat]
    saved = [tuple(rec[:3]) for rec in info["leaves"]]
    _check_match(path, saved, [(n, d, list(s)) for n, d, s in expected])
    for name, dtype, shape, _ in info["leaves"]:  # every size is checked before any read
        if name not in header.entries:
            raise header.corrupted(f"the data of {name} is missing")
        stored = header.entries[name][1]
        # a key's data has trailing implementation dimensions after the key's shape
        stored = stored[: len(shape)] if dtype.startswith("key<") else stored
        if tuple(stored) != tuple(shape):
            raise header.corrupted(
                f"{name} is stored with shape {list(header.entries[name][1])}, "
                f"its header declares {list(shape)}"
            )
    keep = mesh is None  # with a mesh the tree is placed below
    leaves = []
    with open(path, "rb") as f:  # one tensor in host memory at a time
        for (name, dtype, _, crc), (_, like) in zip(info["leaves"], flat, strict=True):
            st_dtype, stored, begin, end = header.entries[name]
            arr = np.empty(stored, st_dtype)
            f.seek(begin)
            if f.readinto(_bytes_view(arr)) != end - begin:
                raise header.corrupted(f"the data of {name} is truncated")
            if zlib.crc32(_bytes_view(arr)) != crc:
                raise header.corrupted(f"the data of {name} does not match its checksum")
            leaves.append(_from_numpy(arr, dtype, like, keep_sharding=keep))
            del arr
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
