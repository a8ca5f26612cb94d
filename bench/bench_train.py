"""Training-loop overhead: ``fdl.train.fit`` against a hand-written jitted optax loop.

Both train the same model (the reference CNN, or an MLP with ``--quick``) with the same
optimizer on the same batches of the digits; the reference loop is the minimal
``jit(value_and_grad + optax update)`` with a synchronous loss read per step, the
cost floor of any loop that reports its loss. ``fit`` adds the data-parallel
``shard_map``, donation, shuffling and its bookkeeping (loss only, no validation, no
progress bar). The reference epochs are timed before and after ``fit``. Reported:
median seconds per epoch after compilation, ratio = fit / reference (lower is better),
and the checkpoint round trip of the trained state.

    python bench/bench_train.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

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
    task = models.task(name)
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
    ref_state = (params, model_state, opt.init(params))
    ref_times = []

    def time_reference(n):
        nonlocal ref_state
        for _ in range(n):
            t0 = time.perf_counter()
            ref_state = ref_epoch(ref_state, batches)
            jax.block_until_ready(ref_state)
            ref_times.append(time.perf_counter() - t0)

    time_reference(1)  # compiles
    ref_times.clear()
    time_reference(epochs // 2 + 1)
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
    time_reference(epochs // 2 + 1)  # before and after, to share the machine's load
    ours = statistics.median(result.history["time"][1:])
    ref = statistics.median(ref_times)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = fdl.train.save_checkpoint(f"{tmp}/state.safetensors", result.state)
        t_save = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(fdl.train.restore_checkpoint(path, result.state))
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()  # reference: every leaf to .npz and back (pickle-free)
        state = result.state
        leaves = [
            np.asarray(jax.random.key_data(a) if a is state.key else a)
            for a in jax.tree_util.tree_leaves(state)
        ]
        np.savez(f"{tmp}/ref.npz", *leaves)
        with np.load(f"{tmp}/ref.npz") as f:
            jax.block_until_ready([jax.device_put(f[k]) for k in f.files])
        t_npz = time.perf_counter() - t0
    return [
        {
            "name": f"fit epoch ({name}, {len(batches)} steps of {batch_size})",
            "value": ours,
            "unit": "s",
            "reference": "jitted optax loop",
            "ref_value": ref,
            "ratio": ours / ref,
        },
        {
            "name": "checkpoint save + restore of the TrainState",
            "value": t_save + t_load,
            "unit": "s",
            "reference": "np.savez + np.load of the leaves",
            "ref_value": t_npz,
            "ratio": (t_save + t_load) / t_npz,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    args = parser.parse_args()
    rows = run(quick=args.quick)
    print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind})")
    print(f"{'figure':<50} {'ours':>10} {'reference':>10} {'ratio':>7}")
    for r in rows:
        print(f"{r['name']:<50} {r['value']:>10.4f} {r['ref_value']:>10.4f} {r['ratio']:>7.2f}")


if __name__ == "__main__":
    main()
