"""Resuming: the run's configuration is recorded and checked; a corrupted newest
checkpoint falls back to the newest one that verifies."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

import functional_dl as fdl

MODEL = fdl.nn.Sequential(fdl.nn.Linear(8), fdl.nn.ReLU(), fdl.nn.Linear(3))
RNG = np.random.default_rng(0)
DATA = (RNG.standard_normal((48, 5)).astype(np.float32), RNG.integers(0, 3, 48))


def _fit(tmp_path, optimizer, *, epochs, resume=False, model=MODEL, data=DATA, **kw):
    state = fdl.train.create_train_state(jax.random.key(0), model, optimizer, (1, 5))
    return fdl.train.fit(
        state,
        model,
        fdl.losses.cross_entropy,
        optimizer,
        data,
        epochs=epochs,
        batch_size=16,
        checkpoint_dir=tmp_path,
        resume=resume,
        progress=False,
        **kw,
    )


def _same(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_configuration_is_recorded_in_every_checkpoint(tmp_path):
    _fit(tmp_path, fdl.optim.adamw(1e-3, weight_decay=0.05), epochs=1)
    config = fdl.train.checkpoint_metadata(fdl.train.latest_checkpoint(tmp_path))["config"]
    assert config["optimizer"]["hyperparameters"]["fn"] == "adamw"
    assert config["optimizer"]["hyperparameters"]["weight_decay"] == 0.05
    assert config["model"]["params"]["elements"] == 5 * 8 + 8 + 8 * 3 + 3
    assert config["data"] == {
        "examples": 48,
        "steps_per_epoch": 3,
        "batch_size": 16,
        "accumulate": 1,
    }
    assert config["loss"]["fn"] == "cross_entropy"


@pytest.mark.parametrize(
    "change, named",
    [
        ({"optimizer": fdl.optim.adamw(1e-2)}, "optimizer.hyperparameters.lr: 0.001 -> 0.01"),
        ({"optimizer": fdl.optim.sgd(1e-3)}, "optimizer.hyperparameters.fn: 'adamw' -> 'sgd'"),
        (
            {"optimizer": optax.adam(optax.cosine_decay_schedule(1e-3, 200))},
            "decay_steps: 100 -> 200",
        ),
        (
            {"model": fdl.nn.Sequential(fdl.nn.Linear(9), fdl.nn.ReLU(), fdl.nn.Linear(3))},
            "model.params.elements: 75 -> 84",
        ),
        ({"data": (DATA[0][:32], DATA[1][:32])}, "steps per epoch"),
    ],
)
def test_resume_refuses_another_configuration_naming_what_changed(tmp_path, change, named):
    first = fdl.optim.adamw(1e-3)
    if "decay_steps" in named:
        first = optax.adam(optax.cosine_decay_schedule(1e-3, 100))
    _fit(tmp_path, first, epochs=1)
    kw = {k: v for k, v in change.items() if k != "optimizer"}
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        _fit(tmp_path, change.get("optimizer", first), epochs=2, resume=True, **kw)


def test_allow_config_change_resumes_with_a_warning(tmp_path):
    _fit(tmp_path, fdl.optim.adamw(1e-3), epochs=1)
    with pytest.warns(RuntimeWarning, match=r"lr: 0.001 -> 0.0005"):
        out = _fit(tmp_path, fdl.optim.adamw(5e-4), epochs=2, resume=True, allow_config_change=True)
    assert int(out.state.step) == 6
    # the new configuration is the one recorded from then on
    config = fdl.train.checkpoint_metadata(fdl.train.latest_checkpoint(tmp_path))["config"]
    assert config["optimizer"]["hyperparameters"]["lr"] == 5e-4


def test_the_same_configuration_resumes_bit_for_bit(tmp_path):
    opt = fdl.optim.adamw(1e-3)
    full = _fit(tmp_path / "full", opt, epochs=3)
    _fit(tmp_path / "part", opt, epochs=1)
    rest = _fit(tmp_path / "part", fdl.optim.adamw(1e-3), epochs=3, resume=True)
    _same(full.state, rest.state)


def test_a_corrupted_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    opt = fdl.optim.adamw(1e-3)
    full = _fit(tmp_path / "full", opt, epochs=3)
    _fit(tmp_path / "part", opt, epochs=2)  # keeps steps 3 and 6
    newest = fdl.train.latest_checkpoint(tmp_path / "part")
    assert newest.name == "step_00000006.safetensors"
    raw = bytearray(newest.read_bytes())
    raw[-3] ^= 0xFF  # a flipped bit in the data
    newest.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match=r"step_00000006.*checksum"):
        rest = _fit(tmp_path / "part", opt, epochs=3, resume=True)
    _same(full.state, rest.state)  # resumed from step 3: the same run


def test_no_checkpoint_that_verifies_is_an_error(tmp_path):
    _fit(tmp_path, fdl.optim.adamw(1e-3), epochs=2)
    for path in tmp_path.glob("step_*.safetensors"):
        path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(fdl.train.CheckpointError, match="no checkpoint .* verifies"):
        _fit(tmp_path, fdl.optim.adamw(1e-3), epochs=3, resume=True)


def test_an_explicit_checkpoint_path_does_not_fall_back(tmp_path):
    _fit(tmp_path, fdl.optim.adamw(1e-3), epochs=2)
    newest = fdl.train.latest_checkpoint(tmp_path)
    newest.write_bytes(newest.read_bytes()[:-4])
    with pytest.raises(fdl.train.CheckpointError):
        _fit(tmp_path, fdl.optim.adamw(1e-3), epochs=3, resume=newest)
