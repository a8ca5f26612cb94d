"""Sharded training on 8 simulated CPU devices and a real 2-process run.

FSDP (data=8), tensor parallel (model=8) and mixed (data=4, model=2) follow the
single-device loss trajectory; per-device bytes of parameters and optimizer state shrink
to about 1/8; a checkpoint restores onto another mesh; two processes joined by
``jax.distributed`` train like one. The simulated devices and the processes run in
subprocesses, so the rest of the suite keeps its single device.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import functional_dl as fdl

ROOT = Path(__file__).resolve().parents[1]

EIGHT = textwrap.dedent(r"""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    import functional_dl as fdl
    assert len(jax.devices()) == 8
    out = {}

    def lm():
        return fdl.nn.TransformerLM(64, d_model=32, num_heads=8, num_layers=2)

    tokens = jax.random.randint(jax.random.key(1), (16, 17), 0, 64)
    lm_batch = (tokens[:, :-1], tokens[:, 1:])
    x, y = fdl.data.load_digits()
    cnn_batch = (jnp.asarray(x[:64]), jnp.asarray(y[:64]))
    opt = fdl.optim.adamw(1e-2)

    def own_bytes(state):
        tree = (state.params, state.opt_state)
        return sum(s.data.nbytes for a in jax.tree_util.tree_leaves(tree)
                   for s in a.addressable_shards if s.device == jax.devices()[0])

    def run(make, shape, batch, mesh, fsdp, steps=20, state=None):
        m = make()
        if state is None:
            state = fdl.train.create_train_state(jax.random.key(0), m, opt, shape,
                                                 mesh=mesh, fsdp=fsdp)
        step = fdl.train.make_train_step(m, fdl.losses.cross_entropy, opt, mesh=mesh)
        losses = []
        for _ in range(steps):
            state, metrics = step(state, batch)
            losses.append(float(metrics["loss"]))
        return state, losses

    meshes = {
        "one": (lambda: fdl.train.make_mesh(devices=jax.devices()[:1]), False),
        "replicated": (lambda: fdl.train.make_mesh(data=8), False),
        "fsdp": (lambda: fdl.train.make_mesh(data=8), True),
        "tp": (lambda: fdl.train.make_mesh(data=1, model=8), False),
        "mixed": (lambda: fdl.train.make_mesh(data=4, model=2), True),
    }
    for name, (mesh, fsdp) in meshes.items():
        state, losses = run(lm, (1, 16), lm_batch, mesh(), fsdp)
        out[f"lm/{name}"] = {"losses": losses, "bytes": own_bytes(state)}
    for name in ("one", "fsdp"):
        mesh, fsdp = meshes[name]
        state, losses = run(lambda: fdl.models.cnn(), (1, 8, 8, 1), cnn_batch, mesh(), fsdp)
        out[f"cnn/{name}"] = {"losses": losses, "bytes": own_bytes(state)}

    # a checkpoint written from the FSDP mesh restores onto the tensor-parallel mesh
    mesh = fdl.train.make_mesh(data=8)
    state, first = run(lm, (1, 16), lm_batch, mesh, True, steps=10)
    path = fdl.train.save_checkpoint(sys.argv[1] + "/ckpt.safetensors", state)
    restored = fdl.train.restore_checkpoint(path, state)
    pairs = zip(jax.tree_util.tree_leaves(restored.params), jax.tree_util.tree_leaves(state.params))
    same = all(bool(np.array_equal(np.asarray(a), np.asarray(b))) for a, b in pairs)
    tp = fdl.train.make_mesh(data=1, model=8)
    placed = fdl.train.restore_checkpoint(path, state, mesh=tp)
    assert "model" in tuple(placed.params["layer_0"]["self_attn"]["qkv"]["weight"].sharding.spec)
    _, second = run(lm, (1, 16), lm_batch, tp, False, steps=10, state=placed)
    out["resume"] = {"equal": same, "losses": first + second}

    # evaluate on the sharded mesh
    m = lm()
    st = fdl.train.create_train_state(jax.random.key(0), m, opt, (1, 16), mesh=tp)
    scores = fdl.train.evaluate(st, m, fdl.losses.cross_entropy, lm_batch, batch_size=8, mesh=tp)
    out["evaluate"] = scores
    print("RESULT" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharding")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run(
        [sys.executable, "-c", EIGHT, str(tmp)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


@pytest.mark.parametrize("mode", ["replicated", "fsdp", "tp", "mixed"])
def test_sharded_modes_follow_the_single_device_trajectory(eight, mode):
    np.testing.assert_allclose(
        eight[f"lm/{mode}"]["losses"], eight["lm/one"]["losses"], rtol=2e-5, atol=2e-5
    )


def test_fsdp_cnn_follows_the_single_device_trajectory(eight):
    np.testing.assert_allclose(
        eight["cnn/fsdp"]["losses"], eight["cnn/one"]["losses"], rtol=2e-5, atol=2e-5
    )


def test_per_device_bytes_shrink(eight):
    full = eight["lm/one"]["bytes"]
    assert eight["lm/replicated"]["bytes"] == full
    # every leaf of >= 1024 elements is split 8 ways; the small leaves (norm weights)
    # stay replicated: within 10% of 1/8 plus those
    assert eight["lm/fsdp"]["bytes"] < full / 8 * 1.1 + 4096
    assert eight["lm/tp"]["bytes"] < full / 2  # attention and MLP split, embeddings not
    assert eight["cnn/fsdp"]["bytes"] < eight["cnn/one"]["bytes"] / 8 * 1.1 + 8192


def test_checkpoint_restores_onto_another_mesh(eight):
    assert eight["resume"]["equal"]
    np.testing.assert_allclose(
        eight["resume"]["losses"], eight["lm/one"]["losses"], rtol=2e-5, atol=2e-5
    )


def test_evaluate_on_a_sharded_mesh(eight):
    assert np.isfinite(eight["evaluate"]["loss"])


def test_bad_meshes_raise_naming_the_argument():
    with pytest.raises(ValueError, match="mesh of data=2 x model=2"):
        fdl.train.make_mesh(data=2, model=2)
    with pytest.raises(ValueError, match="model"):
        fdl.train.make_mesh(model=0)
    mesh = fdl.train.make_mesh(devices=jax.devices()[:1])
    with pytest.raises(ValueError, match="fsdp"):
        fdl.train.create_train_state(
            jax.random.key(0),
            fdl.nn.Linear(2),
            fdl.optim.sgd(0.1),
            (1, 3),
            mesh=fdl.train.data_parallel_mesh(),
            fsdp=True,
        )
    assert mesh.shape["model"] == 1


def test_a_head_count_not_divisible_by_model_raises_before_compiling():
    from functional_dl.train._sharding import param_spec

    fake = type("Mesh", (), {"shape": {"data": 1, "model": 3}})()
    with pytest.raises(ValueError, match="model=3"):
        param_spec("layer_0/self_attn/qkv/weight", (32, 96 + 4), fake, fsdp=False)


WORKER = textwrap.dedent(r"""
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=pid)
    import numpy as np
    import functional_dl as fdl
    assert jax.process_count() == 2 and jax.device_count() == 2
    x, y = fdl.data.load_digits()
    x, y = np.asarray(x[:64]), np.asarray(y[:64])
    mesh = fdl.train.make_mesh()
    model = fdl.models.mlp()
    opt = fdl.optim.adam(1e-2)
    state = fdl.train.create_train_state(jax.random.key(0), model, opt, (1, 8, 8, 1), mesh=mesh,
                                         fsdp=True)
    step = fdl.train.make_train_step(model, fdl.losses.cross_entropy, opt, mesh=mesh)
    losses = []
    for _ in range(5):
        half = slice(32 * pid, 32 * (pid + 1))  # each process feeds its own half
        batch = fdl.train.shard_batch((x[half], y[half]), mesh)
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    scores = fdl.train.evaluate(state, model, fdl.losses.cross_entropy, (x, y), mesh=mesh)
    from jax.experimental import multihost_utils
    # every process calls save: the shards are gathered and process 0 writes the file once
    path = fdl.train.save_checkpoint(out + "/mp.safetensors", state, mesh=mesh)
    back = fdl.train.restore_checkpoint(path, state, mesh=mesh, fsdp=True)  # read by all
    mine = multihost_utils.process_allgather(state.params, tiled=True)
    again = multihost_utils.process_allgather(back.params, tiled=True)
    same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
               zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(mine)))
    with open(f"{out}/p{pid}.json", "w") as f:
        json.dump({"losses": losses, "eval": scores["loss"], "same": same}, f)
    jax.distributed.shutdown()
""")


def test_two_processes_train_like_one(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(i), port, str(tmp_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-4000:]
    results = [json.loads((tmp_path / f"p{i}.json").read_text()) for i in range(2)]
    # the same 5 steps in this process, on one device and the whole batch
    x, y = fdl.data.load_digits()
    x, y = np.asarray(x[:64]), np.asarray(y[:64])
    mesh = fdl.train.make_mesh(devices=jax.devices()[:1])
    model, opt = fdl.models.mlp(), fdl.optim.adam(1e-2)
    state = fdl.train.create_train_state(jax.random.key(0), model, opt, (1, 8, 8, 1), mesh=mesh)
    step = fdl.train.make_train_step(model, fdl.losses.cross_entropy, opt, mesh=mesh)
    losses = []
    for _ in range(5):
        state, metrics = step(state, (x, y))
        losses.append(float(metrics["loss"]))
    for r in results:
        np.testing.assert_allclose(r["losses"], losses, rtol=1e-5, atol=1e-6)
        assert r["same"]
    assert results[0]["eval"] == pytest.approx(results[1]["eval"])


def test_cli_trains_on_a_mesh(capsys):
    from functional_dl.cli import main

    argv = ["train", "--model", "mlp", "--epochs", "1", "--no-progress"]
    assert main([*argv, "--mesh", "data=1,model=1", "--fsdp"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main([*argv, "--mesh", "rows=2"]) == 1
    assert "--mesh" in capsys.readouterr().err
