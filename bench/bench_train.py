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

    python bench/bench_train.py [--quick]
"""

from __future__ import annotations

import statistics
import tempfile
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
