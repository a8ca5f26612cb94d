"""Checkpoints: safetensors round trip, atomic writes, corruption and mismatch errors."""

from __future__ import annotations

import json
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import safetensors.numpy

import functional_dl as fdl
from functional_dl.train import CheckpointError, restore_checkpoint, save_checkpoint


def _tree():
    params = {"w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3), "b": jnp.ones(3)}
    opt_state = optax.adam(1e-3).init(params)
    return {
        "state": fdl.train.TrainState(
            params=params,
            model_state={"mean": jnp.zeros(3)},
            opt_state=opt_state,
            step=jnp.int32(7),
            key=jax.random.key(3),
        ),
        "raw_key": jax.random.PRNGKey(5),
        "bf16": jnp.linspace(-2, 2, 5, dtype=jnp.bfloat16),
        "f16": np.array([1.5, -0.25], np.float16),
        "f64": np.array([np.pi]),
        "ints": [jnp.arange(4, dtype=jnp.int8), np.array([True, False])],
        "scalars": (3, 2.5, True),
        "empty": jnp.zeros((0, 4)),
    }


def _assert_identical(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        assert np.shape(x) == np.shape(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_every_kind_of_leaf(tmp_path):
    tree = _tree()
    path = save_checkpoint(tmp_path / "sub" / "ck.safetensors", tree, metadata={"epoch": 2})
    restored = restore_checkpoint(path, tree)
    _assert_identical(restored, tree)
    assert isinstance(restored["state"], fdl.train.TrainState)
    assert fdl.train.checkpoint_metadata(path) == {"epoch": 2}
    # the restored key draws the same numbers
    np.testing.assert_array_equal(
        jax.random.normal(restored["state"].key, (3,)), jax.random.normal(tree["state"].key, (3,))
    )
    # an abstract template (no arrays materialised) works too
    abstract = jax.eval_shape(lambda: {"w": tree["state"].params["w"], "k": tree["raw_key"]})
    saved = save_checkpoint(
        tmp_path / "small.safetensors", {"w": tree["state"].params["w"], "k": tree["raw_key"]}
    )
    small = restore_checkpoint(saved, abstract)
    np.testing.assert_array_equal(small["w"], tree["state"].params["w"])


def test_file_is_plain_safetensors_with_recorded_structure(tmp_path):
    tree = _tree()
    path = save_checkpoint(tmp_path / "ck.safetensors", tree)
    tensors = safetensors.numpy.load(path.read_bytes())  # readable by any safetensors tool
    np.testing.assert_array_equal(tensors["['state'].params['w']"], np.arange(6).reshape(2, 3))
    (size,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8 : 8 + size])
    info = json.loads(header["__metadata__"]["functional_dl.checkpoint"])
    names = [rec[0] for rec in info["leaves"]]
    assert names == [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]
    dtypes = dict((rec[0], rec[1]) for rec in info["leaves"])
    assert dtypes["['bf16']"] == "bfloat16"
    assert dtypes["['state'].key"] == "key<threefry2x32>"
    assert "TrainState" in info["treedef"]
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"a": jnp.zeros(3)})
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"a": jnp.ones(3)})
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "new.safetensors", {"a": jnp.ones(3)})
    assert not (tmp_path / "new.safetensors").exists()


@pytest.mark.parametrize(
    "damage", ["truncate_data", "truncate_header", "flip_byte", "garbage", "empty"]
)
def test_corrupted_file_gives_clear_error(tmp_path, damage):
    tree = {"w": jnp.arange(64, dtype=jnp.float32), "b": jnp.ones(8)}
    path = save_checkpoint(tmp_path / "ck.safetensors", tree)
    data = bytearray(path.read_bytes())
    if damage == "truncate_data":
        data = data[:-10]
    elif damage == "truncate_header":
        data = data[:40]
    elif damage == "flip_byte":
        data[-5] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"not a checkpoint at all" * 4)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    match = "checksum" if damage == "flip_byte" else "corrupted|truncated|not a functional_dl"
    with pytest.raises(CheckpointError, match=match):
        restore_checkpoint(path, tree)


def test_foreign_safetensors_file_is_rejected(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(safetensors.numpy.save({"w": np.zeros(3, np.float32)}))
    with pytest.raises(CheckpointError, match="not a functional_dl checkpoint"):
        restore_checkpoint(path, {"w": jnp.zeros(3)})


def test_structure_mismatch_lists_the_differences(tmp_path):
    tree = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3), "n": jnp.int32(0)}
    path = save_checkpoint(tmp_path / "ck.safetensors", tree)
    cases = {
        "missing in the file: \\['extra'\\]": {**tree, "extra": jnp.zeros(1)},
        "not in the template: \\['b'\\]": {"w": tree["w"], "n": tree["n"]},
        r"\['w'\]: file has float32\[2, 3\], template has float32\[3, 2\]": {
            **tree,
            "w": jnp.zeros((3, 2)),
        },
        r"\['n'\]: file has int32\[\], template has float32\[\]": {**tree, "n": jnp.float32(0)},
    }
    for message, template in cases.items():
        with pytest.raises(CheckpointError, match=message):
            restore_checkpoint(path, template)
    with pytest.raises(CheckpointError, match="does not match the template"):
        restore_checkpoint(path, [tree["b"], tree["n"], tree["w"]])


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        restore_checkpoint(tmp_path / "missing.safetensors", {})
    with pytest.raises(CheckpointError, match="directory"):
        save_checkpoint(tmp_path, {"a": jnp.zeros(1)})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot create the directory"):
        save_checkpoint(blocker / "ck.safetensors", {"a": jnp.zeros(1)})
    with pytest.raises(TypeError, match="not an array"):
        save_checkpoint(tmp_path / "x.safetensors", {"a": object()})


def test_latest_checkpoint_orders_by_step(tmp_path):
    assert fdl.train.latest_checkpoint(tmp_path) is None
    assert fdl.train.latest_checkpoint(tmp_path / "nope") is None
    for step in (9, 10, 2):
        save_checkpoint(fdl.train.checkpoint_path(tmp_path, step), {"s": jnp.int32(step)})
    (tmp_path / "notes.txt").write_text("ignored")
    latest = fdl.train.latest_checkpoint(tmp_path)
    assert latest.name == "step_00000010.safetensors"
    assert int(restore_checkpoint(latest, {"s": jnp.int32(0)})["s"]) == 10


def test_the_documented_eval_shape_template_restores_a_train_state(tmp_path):
    import functional_dl as fdl

    model = fdl.nn.Sequential(fdl.nn.Linear(3))
    state = fdl.train.create_train_state(jax.random.key(0), model, fdl.optim.adam(1e-3), (1, 2))
    path = fdl.train.save_checkpoint(tmp_path / "s.safetensors", state)
    back = fdl.train.restore_checkpoint(path, jax.eval_shape(lambda: state))
    assert jax.random.key_impl(back.key) == jax.random.key_impl(state.key)
    assert bool(jnp.all(jax.random.key_data(back.key) == jax.random.key_data(state.key)))


def test_pruning_orders_by_step_number_and_removes_stale_temporaries(tmp_path):
    from functional_dl.train._loop import _prune

    for step in (99_999_998, 99_999_999, 100_000_000):
        (tmp_path / f"step_{step:08d}.safetensors").write_bytes(b"x")
    (tmp_path / ".step_00000007.safetensors.tmp1234").write_bytes(b"partial")
    _prune(tmp_path, keep=2)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["step_100000000.safetensors", "step_99999999.safetensors"]


def test_edited_tensor_shape_in_header_is_refused(tmp_path):
    # same element count, so only a shape check against the declared shape catches it
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": jnp.arange(6.0).reshape(2, 3)})
    raw = bytearray(path.read_bytes())
    (size,) = struct.unpack("<Q", raw[:8])
    header = raw[8 : 8 + size].decode()
    assert header.count('"shape":[2,3]') == 1
    raw[8 : 8 + size] = header.replace('"shape":[2,3]', '"shape":[3,2]').encode()
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"shape \[3, 2\].*declares \[2, 3\]"):
        restore_checkpoint(path, {"w": jnp.zeros((2, 3))})


def test_header_is_checked_against_the_file_size_before_any_data_is_read(tmp_path):
    # a small checkpoint at the start of a large sparse file: refused without reading it
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": jnp.ones((8, 8))})
    with open(path, "r+b") as f:
        f.truncate(3 * 2**30)  # sparse: no disk blocks, no memory unless read
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="tile the"):
            restore_checkpoint(path, {"w": jnp.zeros((8, 8))})
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()


def test_header_declaring_more_than_the_file_holds_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": jnp.ones(4)})
    raw = bytearray(path.read_bytes())
    raw[:8] = struct.pack("<Q", 2**40)  # a header "larger" than the file
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="header declares"):
        restore_checkpoint(path, {"w": jnp.zeros(4)})


def test_overlapping_tensors_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", {"a": jnp.ones(2), "b": jnp.ones(2)})
    raw = bytearray(path.read_bytes())
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    first, second = sorted(header[n]["data_offsets"] for n in ("['a']", "['b']"))
    text = raw[8 : 8 + size].decode()
    edited = text.replace(f'"data_offsets":[{second[0]},{second[1]}]', f'"data_offsets":{first}')
    edited = edited.replace(" ", "") + " " * (size - len(edited.replace(" ", "")))
    raw[8 : 8 + size] = edited.encode()
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="tile the"):
        restore_checkpoint(path, {"a": jnp.zeros(2), "b": jnp.zeros(2)})


def test_save_and_restore_hold_at_most_one_leaf_extra(tmp_path):
    # 40 MB of NumPy leaves (NumPy's buffers are traced by tracemalloc): the peak of
    # Python/NumPy allocations stays within 1.3x the checkpoint's size for both ways
    import tracemalloc

    rng = np.random.default_rng(0)
    tree = {f"w{i}": rng.standard_normal((1000, 1250)).astype(np.float32) for i in range(8)}
    size = sum(a.nbytes for a in tree.values())
    path = tmp_path / "big.safetensors"
    tracemalloc.start()
    try:
        save_checkpoint(path, tree)
        save_peak = tracemalloc.get_traced_memory()[1]
        template = jax.tree_util.tree_map(np.zeros_like, tree)  # NumPy leaves: NumPy result
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        restored = restore_checkpoint(path, template)
        restore_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert save_peak < 0.3 * size, (save_peak, size)  # streamed: nothing copied
    assert restore_peak < 1.3 * size, (restore_peak, size)  # the result plus one leaf
    for k in tree:
        np.testing.assert_array_equal(restored[k], tree[k])
