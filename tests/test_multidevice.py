"""Data-parallel fit on 8 simulated CPU devices equals the single-device run.

The devices are simulated with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` in
a subprocess, so the rest of the suite keeps its single device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_close

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(r"""
    import json, sys
    from pathlib import Path

    import jax

    import numpy as np

    import functional_dl as fdl
    from functional_dl import nn

    out = Path(sys.argv[1])
    assert len(jax.devices()) == 8, jax.devices()

    def model(axis_name):
        return nn.Sequential(nn.Flatten(), nn.Linear(32, bias=False),
                             nn.BatchNorm(axis_name=axis_name), nn.ReLU(), nn.Linear(10))

    x, y = fdl.data.load_digits()
    train, val = (x[:512], y[:512]), (x[512:700], y[512:700])
    xent, opt = fdl.losses.cross_entropy, fdl.optim.adam(1e-2)

    def run(net, devices):
        mesh = fdl.train.data_parallel_mesh(devices)
        state = fdl.train.create_train_state(jax.random.key(0), net, opt, (1, 8, 8, 1))
        return fdl.train.fit(state, net, xent, opt, train, epochs=2, batch_size=64,
                             val_data=val, metrics={"accuracy": fdl.train.accuracy},
                             mesh=mesh, progress=False)

    synced = model(fdl.train.DATA_AXIS)
    for name, net, devices in [("eight", synced, jax.devices()), ("one", synced, jax.devices()[:1]),
                               ("unsynced", model(None), jax.devices())]:
        result = run(net, devices)
        trained = {"params": result.state.params, "model_state": result.state.model_state}
        leaves = jax.tree_util.tree_flatten_with_path(trained)[0]
        np.savez(out / f"{name}.npz", **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})
        used = len(result.state.params["1_linear"]["weight"].devices())
        (out / f"{name}.json").write_text(json.dumps({"history": result.history, "devices": used}))
    try:
        fdl.train.fit(fdl.train.create_train_state(jax.random.key(0), synced, opt, (1, 8, 8, 1)),
                      synced, xent, opt, train, epochs=1, batch_size=12, progress=False)
    except ValueError as exc:
        (out / "error.txt").write_text(str(exc))
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("multidevice")
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    def load(name):
        arrays = dict(np.load(out / f"{name}.npz"))
        return arrays, json.loads((out / f"{name}.json").read_text())

    return {name: load(name) for name in ("eight", "one", "unsynced")}, out


def test_eight_devices_equal_one_device(runs):
    (eight, meta8), (one, meta1) = runs[0]["eight"], runs[0]["one"]
    assert meta8["devices"] == 8 and meta1["devices"] == 1
    assert sorted(eight) == sorted(one)
    assert any("batch_norm" in k and "var" in k for k in eight)  # the running statistics
    for name in eight:
        assert_close(eight[name], one[name], rtol=1e-4, atol=1e-5, err_msg=name)
    for metric, values in meta1["history"].items():
        if metric != "time":
            assert_close(meta8["history"][metric], values, rtol=1e-4, atol=1e-5, err_msg=metric)
    assert meta8["history"]["val_accuracy"][-1] > 0.6  # it learns (10 classes)


def test_batch_norm_needs_the_cross_device_reduction(runs):
    """Without axis_name each device normalises with its own 8 examples: results differ."""
    (eight, _), (unsynced, _) = runs[0]["eight"], runs[0]["unsynced"]
    var = next(k for k in eight if "batch_norm" in k and "var" in k)
    assert not np.allclose(eight[var], unsynced[var], rtol=1e-2)


def test_batch_size_must_divide_over_devices(runs):
    message = (runs[1] / "error.txt").read_text()
    assert "batch_size must be divisible by the number of devices (8), got batch_size=12" in message
