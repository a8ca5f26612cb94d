"""Training-loop overhead: ``fdl.train.fit`` against a hand-written jitted optax loop.

Both train the same model (the reference CNN, or an MLP with ``--quick``) with the same
optimizer on the same batches of the digits; the reference loop is the minimal
``jit(value_and_grad + optax update)`` with a synchronous loss read per step, the
cost floor of any loop that reports its loss. ``fit`` adds the data-parallel
``shard_map``, donation, shuffling and its bookkeeping (loss only, no validation, no
progress bar). The reference epochs are timed before and after ``fit`` (the two halves
against each other are the A/A control). Reported: median seconds per epoch after
compilation, ratio = fit / reference (lower is better), and the checkpoint round trip of
the trained state against ``.npz`` (interleaved rounds, with an A/A control).

**Sharded memory** (8 simulated CPU devices, in a subprocess): for a TransformerLM, the
compiled per-device bytes of the step's arguments (parameters, optimizer state, batch)
and temporaries for the replicated, FSDP (data=8), tensor-parallel (model=8) and mixed
(data=4, model=2) modes, as ratios to the replicated mode, and the collectives per step
read from the compiled HLO. Times on simulated devices mean nothing and are not reported.

    python bench/bench_train.py [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from functools import partial

import _harness as H
import jax
import numpy as np
import optax

import functional_dl as fdl
from functional_dl import models


def _reference_epoch_fn(model, loss_fn, opt):
    @jax.jit
    def step(params, model_state, opt_state, key, x, y):
        def objective(p):
            out, ms = model.apply(p, model_state, x, key=key, train=True)
            return loss_fn(out, y), ms

        (loss, model_state), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), model_state, opt_state, loss

    def epoch(state, batches):
        params, model_state, opt_state = state
        for i, (x, y) in enumerate(batches):
            key = jax.random.fold_in(jax.random.key(0), i)
            params, model_state, opt_state, loss = step(params, model_state, opt_state, key, x, y)
            float(loss)
        return params, model_state, opt_state

    return epoch


def run(quick: bool = False) -> list[dict]:
    """Seconds per epoch of ``fit`` and of the reference loop, and checkpoint timings."""
    name = "mlp" if quick else "cnn"
    task = models.task(name, axis_name=fdl.train.DATA_AXIS)  # fit's synchronised batch norm
    if quick:  # a one-hidden-layer MLP on 128 digits: compiles in a moment
        task = task._replace(
            model=models.mlp(hidden=(32,)), train=(task.train[0][:128], task.train[1][:128])
        )
    train = task.train
    batch_size, epochs = 32, (2 if quick else 5)
    opt = fdl.optim.adam(1e-3)
    batches = list(
        fdl.data.batches(jax.random.key(0), *train, batch_size=batch_size, drop_last=True)
    )

    # the same network outside a data-parallel step (no device axis to reduce over)
    plain = models.cnn(axis_name=None) if name == "cnn" else task.model
    ref_epoch = _reference_epoch_fn(plain, task.loss_fn, opt)
    params, model_state = task.model.init(jax.random.key(1), task.input_shape)
    ref_state = [(params, model_state, opt.init(params))]

    def reference():
        ref_state[0] = ref_epoch(ref_state[0], batches)
        return ref_state[0]

    # reference epochs before and after fit, to share the machine's load; the two halves
    # against each other are the A/A control
    timings = H.interleave({H.REF: reference}, rounds=epochs // 2 + 1)  # warm-up compiles
    state = fdl.train.create_train_state(jax.random.key(1), task.model, opt, task.input_shape)
    # the same work as the reference: loss only (no extra metrics), no validation
    result = fdl.train.fit(
        state,
        task.model,
        task.loss_fn,
        opt,
        train,
        epochs=epochs + 1,
        batch_size=batch_size,
        progress=False,
    )
    H.interleave({H.CONTROL: reference}, rounds=epochs // 2 + 1, warmup=0, into=timings)
    ours = statistics.median(result.history["time"][1:])  # fit times its epochs itself
    ref = statistics.median(timings.wall[H.REF] + timings.wall[H.CONTROL])
    rows = [
        H.row(
            f"fit epoch ({name}, {len(batches)} steps of {batch_size})",
            ours,
            "s",
            "jitted optax loop",
            ref,
        ),
        H.row(
            "reference loop epoch after fit, A/A control (against the epochs before fit)",
            timings.median(H.CONTROL),
            "s",
            "jitted optax loop",
            timings.median(H.REF),
            control=True,
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        rows += H.time_rows(
            "checkpoint save + restore of the TrainState",
            H.interleave(
                {
                    "ours": partial(_checkpoint_round_trip, f"{tmp}/state", result.state),
                    H.REF: partial(_npz_round_trip, f"{tmp}/ref.npz", result.state),
                    H.CONTROL: partial(_npz_round_trip, f"{tmp}/copy.npz", result.state),
                },
                rounds=2 if quick else 5,
            ),
            "np.savez + np.load of the leaves",
            unit="s",
        )
    return rows + sharding_rows(quick)


_SHARDING = textwrap.dedent(r"""
    import json, re, sys
    import jax
    import functional_dl as fdl
    quick = sys.argv[1] == "1"
    d, layers = (32, 1) if quick else (256, 4)
    model = fdl.nn.TransformerLM(512, d_model=d, num_heads=8, num_layers=layers)
    opt = fdl.optim.adamw(1e-3)
    tokens = jax.random.randint(jax.random.key(1), (16, 65), 0, 512)
    batch = (tokens[:, :-1], tokens[:, 1:])
    out = {}
    for name, data, mp, fsdp in [("replicated", 8, 1, False), ("fsdp", 8, 1, True),
                                 ("tensor parallel", 1, 8, False), ("mixed", 4, 2, True)]:
        mesh = fdl.train.make_mesh(data=data, model=mp)
        state = fdl.train.create_train_state(jax.random.key(0), model, opt, (1, 64),
                                             mesh=mesh, fsdp=fsdp)
        step = fdl.train.make_train_step(model, fdl.losses.cross_entropy, opt, mesh=mesh)
        compiled = step.lower(state, fdl.train.shard_batch(batch, mesh)).compile()
        mem = compiled.memory_analysis()
        hlo = compiled.as_text()
        ops = {op: len(re.findall(rf"\b{op}(-start)?\(", hlo))
               for op in ("all-gather", "reduce-scatter", "all-reduce", "all-to-all",
                          "collective-permute")}
        out[name] = {"arguments": mem.argument_size_in_bytes,
                     "temporaries": mem.temp_size_in_bytes, "collectives": ops}
    print("RESULT" + json.dumps(out))
""")


def sharding_rows(quick: bool) -> list[dict]:
    """Per-device compiled memory of the sharded modes (see the module docstring)."""
    # simulated CPU devices whatever the accelerator of this machine
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDING, "1" if quick else "0"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT") :])
    base = out["replicated"]
    rows = []
    for name, m in out.items():
        if name == "replicated":
            continue
        collectives = ", ".join(f"{k} {v}" for k, v in m["collectives"].items() if v)
        for what in ("arguments", "temporaries"):
            rows.append(
                H.row(
                    f"TransformerLM per-device {what}, {name} (8 simulated devices)",
                    m[what] / H.MIB,
                    "MiB",
                    "replicated",
                    base[what] / H.MIB,
                    collectives=collectives,
                )
            )
    return rows


def _checkpoint_round_trip(path: str, state: fdl.train.TrainState):
    path = fdl.train.save_checkpoint(f"{path}.safetensors", state)
    return fdl.train.restore_checkpoint(path, state)


def _npz_round_trip(path: str, state: fdl.train.TrainState) -> list:
    """The reference: every leaf to ``.npz`` and back (pickle-free)."""
    leaves = [
        np.asarray(jax.random.key_data(a) if a is state.key else a)
        for a in jax.tree_util.tree_leaves(state)
    ]
    np.savez(path, *leaves)
    with np.load(path) as f:
        return [jax.device_put(f[k]) for k in f.files]


if __name__ == "__main__":
    H.main(run, __doc__)
