"""Benchmark: one jitted, donated optimizer step (update + apply_updates) against optax.

For ``sgd(momentum=0.9)``, ``adam`` and ``adamw`` on three pytrees (16 leaves of 1M
floats, 1000 leaves of 64x64, 2000 leaves of 256) it reports the median step time and
the compile time of ``fdl.optim``, of ``fdl.optim.flatten(...)`` and of the same optax
optimizer measured in the same run (``flatten`` also against ``optax.flatten``, for adam;
``--optax-flatten-all``: for each), and as facts the share of this machine's measured
memory bandwidth (``_harness.roofline``: the best of a multi-threaded STREAM-like triad
in XLA and in NumPy) that each step reaches:
the effective bandwidth (the bytes an ideal step must move: read p, g and each moment,
write p and each moment), of ours and of flatten apart, and the one of the kernels XLA
runs (the bytes they do move).
An A/A control times the optax step a second time, on its own arrays, in the same trials
(its compiled program reused: a second compile gives the same program): its ratio to the
first is the spread that two identical programs show here. XLA's cost analysis gives
the bytes each compiled step reads and writes (deterministic). Two floors are timed with
them: a donated step that does nothing but take and return the same arrays as optax's
step (``floor``) and as the flattened one (``flatten floor``). On the many-leaf trees the
floor is most of optax's step: passing thousands of arrays in and out of a jitted call
costs microseconds each, and no arithmetic with the same arrays can run below it.

Wave-2 rows (``--wave2`` runs only them): ``adafactor`` against ``optax.adafactor`` and
``muon`` against ``optax.contrib.muon`` on a stack of 16 matrices of 512x512 (and muon's
extra cost over ``adamw``), ``param_groups`` with three groups against the single-group
``adamw``, and the temporary memory of ``accumulate(adam, k)`` for k = 1..16 (XLA's
memory analysis of the compiled step).

    python bench/bench_optimizers.py [--quick] [--trees 2000x256] [--opts adam] [--wave2]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import _harness as H
import jax
import jax.numpy as jnp
import numpy as np
import optax

import functional_dl as fdl

# name -> (number of leaves, leaf shape)
PYTREES = {"16x1M": (16, (1_000_000,)), "1000x64x64": (1000, (64, 64)), "2000x256": (2000, (256,))}
QUICK_PYTREES = {"8x1k": (8, (1024,))}  # smoke test: every code path, a few seconds
# timed rounds per trial; one trial per implementation (6 or 7): >= 24 samples per row
ROUNDS = 4
# the optimizers whose flatten is also timed against optax.flatten (``--optax-flatten-all``:
# every one). Compiling optax.flatten's step takes 20-40 s on the many-leaf trees, about a
# third of this script's time; the comparison is the same for every optimizer.
OPTAX_FLATTEN = ("adam",)

# name -> (ours, optax, arrays an ideal step reads + writes per parameter, arrays the XLA
# CPU kernels read + write: one kernel per output array (no multi-output fusion), so each
# moment is written by its own kernel and read again by the parameter's)
OPTIMIZERS: dict[str, tuple[Callable, Callable, int, int]] = {
    "sgd(momentum=0.9)": (
        lambda: fdl.optim.sgd(1e-3, momentum=0.9),
        lambda: optax.sgd(1e-3, momentum=0.9),
        5,
        6,
    ),
    "adam": (lambda: fdl.optim.adam(1e-3), lambda: optax.adam(1e-3), 7, 10),
    "adamw": (
        lambda: fdl.optim.adamw(1e-3, weight_decay=1e-2),
        lambda: optax.adamw(1e-3, weight_decay=1e-2),
        7,
        10,
    ),
}


def _tree(n: int, shape: tuple, seed: int) -> dict:
    keys = jax.random.split(jax.random.key(seed), n)
    return {f"p{i:04d}": jax.random.normal(k, shape, jnp.float32) for i, k in enumerate(keys)}


def _compiled_step(
    opt: optax.GradientTransformation, params: dict, grads: dict, noop: bool = False
):
    """The donated step compiled ahead of time, its compile time, a fresh state.

    ``noop``: a step that returns the params and state it is given, with the same
    arguments and results as ``opt``'s step: the floor set by passing the arrays in and
    out of a jitted call, whatever the arithmetic.
    """

    def step(params, state, grads):
        if noop:
            return params, state
        updates, state = opt.update(grads, state, params)
        return fdl.optim.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    compiled, compile_s = H.compile_ahead(step, params, opt.init(params), grads)
    return compiled, compile_s


def _stepper(compiled, live: list, grads: dict) -> Callable[[], dict]:
    """One donated step per call, on the params and state it holds (``live``)."""

    def call() -> dict:
        live[:] = compiled(*live, grads)
        return live[0]

    return call


def _timed_steps(
    impls: dict, params0: dict, grads: dict, reps: int, trials: bool
) -> tuple[H.Timings, dict]:
    """Every implementation's donated step compiled and timed in rotated rounds; returns
    the timings and ``name -> (compiled step, compile seconds)``.

    The A/A control (:data:`H.CONTROL`) runs the reference's compiled step on its own
    arrays: compiling the same program again gives the same program, and costs up to
    15 s per step on the many-leaf trees (most of this script's time). What two
    identical programs measure here is set by where their arrays land (below)."""
    runs = {}
    for key, opt in impls.items():
        noop = type(opt) is tuple  # ("noop", optimizer whose arrays it passes)
        opt = opt[1] if noop else opt
        if key == H.CONTROL and H.REF in runs:
            runs[key] = (*runs[H.REF][:2], opt)
            continue
        runs[key] = (*_compiled_step(opt, params0, grads, noop=noop), opt)
    # each implementation's initial state, built once (eagerly, leaf by leaf: slow on
    # the many-leaf trees) and copied into fresh arrays for each trial
    states0 = {key: jax.block_until_ready(opt.init(params0)) for key, (_, _, opt) in runs.items()}

    def setup(order: list[str]) -> dict:
        """Fresh arrays set up (and one warm-up step) in ``order``."""
        live = {}
        for key in order:
            compiled = runs[key][0]
            params, state = jax.tree.map(jnp.copy, (params0, states0[key]))
            state = list(compiled(params, state, grads))
            live[key] = _stepper(compiled, jax.block_until_ready(state), grads)
        return {k: live[k] for k in runs}

    # The implementation whose arrays are set up first runs measurably faster (up to
    # 1.5x on the many-leaf trees for identical programs: where its buffers land in
    # memory). So the timing runs in as many trials as there are implementations, each
    # with fresh arrays set up in a rotated order, and pools the trials.
    timings = H.rotated_trials(
        setup, list(runs), trials=None if trials else 1, rounds=reps, warmup=0
    )
    return timings, {k: r[:2] for k, r in runs.items()}


def bench_tree(
    tree_name: str,
    n: int,
    shape: tuple,
    opt_names: list[str],
    reps: int,
    roofline: H.Roofline,
    trials: bool = True,
    optax_flatten: tuple[str, ...] = OPTAX_FLATTEN,
) -> list[dict]:
    grads = _tree(n, shape, seed=1)
    params0 = _tree(n, shape, seed=0)
    numel = n * int(np.prod(shape))
    rows = []
    for opt_name in opt_names:
        ours_fn, optax_fn, arrays, kernel_arrays = OPTIMIZERS[opt_name]
        impls = {
            "ours": ours_fn(),
            "flatten": fdl.optim.flatten(ours_fn()),
            H.REF: optax_fn(),
            H.CONTROL: optax_fn(),  # A/A control: what identical programs measure
            "floor": ("noop", optax_fn()),
            "flatten floor": ("noop", fdl.optim.flatten(ours_fn())),
        }
        if opt_name in optax_flatten:
            impls["optax flatten"] = optax.flatten(optax_fn())
        timings, runs = _timed_steps(impls, params0, grads, reps, trials)
        label = f"{opt_name} {tree_name}"
        for key, suffix in (("ours", ""), ("flatten", " flatten")):
            rows += H.time_rows(
                f"{label} step{suffix}", timings, "optax", ours=key, control=key == "ours"
            )
            if key == "flatten" and "optax flatten" in impls:  # flatten's fair reference
                rows += H.time_rows(
                    f"{label} step flatten vs optax.flatten",
                    timings,
                    "optax.flatten",
                    ours=key,
                    ref="optax flatten",
                    control=False,
                )
            rows.append(
                H.row(f"{label} compile{suffix}", runs[key][1], "s", "optax", runs[H.REF][1])
            )
        traffic = {k: H.bytes_accessed(runs[k][0]) / 1e6 for k in ("ours", H.REF)}
        rows.append(
            H.row(
                f"{label} bytes accessed (XLA cost analysis)",
                traffic["ours"],
                "MB",
                "optax",
                traffic[H.REF],
            )
        )
        for key in ("floor", "flatten floor"):
            rows += H.time_rows(
                f"{label} {key} (no-op step)",
                timings,
                "optax",
                ours=key,
                control=False,
                bound=True,  # a floor, not a comparison: left out of the summary
            )
        for key, suffix in (("ours", ""), ("flatten", " flatten")):
            for kind, arrays_moved in (("effective", arrays), ("kernel", kernel_arrays)):
                if kind == "kernel" and key == "flatten":
                    continue
                rows.append(
                    H.fact(
                        f"{label}{suffix} {kind} GB/s ({arrays_moved} arrays per step)",
                        arrays_moved * numel * 4 / timings.median(key) / 1e9,
                        "GB/s",
                        "measured bandwidth (best triad)",
                        roofline.bandwidth_gbs,
                    )
                )
    return rows


def _matrices(n: int, size: int, seed: int) -> dict:
    keys = jax.random.split(jax.random.key(seed), n)
    return {
        f"w{i:02d}": jax.random.normal(k, (size, size), jnp.float32) for i, k in enumerate(keys)
    }


def _step_rows(
    label: str, impls: dict, params: dict, grads: dict, reps: int, trials: bool = True
) -> tuple:
    """Median step times of ``impls`` (with an A/A control of the reference), pooled over
    one trial per implementation with the arrays set up in rotated orders."""
    timings, runs = _timed_steps(impls, params, grads, reps, trials=trials)
    return timings, runs


def bench_wave2(quick: bool = False) -> list[dict]:
    """Rows of the wave-2 optimizers (see the module docstring)."""
    n, size = (2, 64) if quick else (16, 512)
    reps = 3 if quick else 10
    params, grads = _matrices(n, size, 0), _matrices(n, size, 1)
    label = f"{n}x{size}x{size}"
    rows = []

    impls = {"ours": fdl.optim.adafactor(1e-2), H.REF: optax.adafactor(1e-2),
             H.CONTROL: optax.adafactor(1e-2)}  # fmt: skip
    timings, _ = _step_rows(label, impls, params, grads, reps)
    rows += H.time_rows(f"adafactor {label} step", timings, "optax.adafactor")

    muon_ref = lambda: optax.contrib.muon(1e-3, weight_decay=0.1)  # noqa: E731
    impls = {
        "ours": fdl.optim.muon(1e-3),
        H.REF: muon_ref(),
        H.CONTROL: muon_ref(),
        "adamw": fdl.optim.adamw(1e-3),
    }
    timings, _ = _step_rows(label, impls, params, grads, 3 if quick else 5, trials=False)
    rows += H.time_rows(f"muon {label} step", timings, "optax.contrib.muon")
    rows += H.time_rows(
        f"muon {label} step vs adamw (extra cost of Newton-Schulz)",
        timings,
        "fdl.optim.adamw",
        ref="adamw",
        control=False,
        bound=True,
    )

    # param_groups: 3 groups (decay, no decay on biases/norms, a lower-lr head)
    m, width = (8, 64) if quick else (64, 256)
    tree = {
        f"block{i:02d}": {
            "linear": {"weight": jnp.ones((width, width)), "bias": jnp.ones(width)},
            "norm": {"weight": jnp.ones(width)},
        }
        for i in range(m)
    }
    g = jax.tree.map(lambda x: 0.01 * x, tree)
    groups = {r".*/bias|.*norm/.*": {"weight_decay": 0.0}, r"block00/linear/weight": {"lr": 1e-4}}
    impls = {
        "ours": fdl.optim.param_groups(groups, fdl.optim.adamw(1e-3)),
        H.REF: fdl.optim.adamw(1e-3),
        H.CONTROL: fdl.optim.adamw(1e-3),
    }
    timings, _ = _step_rows(label, impls, tree, g, reps)
    rows += H.time_rows(
        f"param_groups 3 groups ({3 * m} leaves) step", timings, "single-group adamw"
    )

    # accumulate: temporary memory of the compiled step for k = 1..16
    base = None
    for k in (1, 2, 4, 8, 16):
        compiled, _ = _compiled_step(fdl.optim.accumulate(fdl.optim.adam(1e-3), k), params, grads)
        temp = H.memory(compiled).temporaries / 1e6
        base = temp if base is None else base
        rows.append(H.row(f"accumulate(adam, k={k}) {label} temporaries", temp, "MB", "k=1", base))
    return rows


def run(
    quick: bool = False,
    trees: list[str] | None = None,
    opts: list[str] | None = None,
    wave2: bool = False,
    optax_flatten_all: bool = False,
) -> list[dict]:
    """Rows ``name, value, unit, reference, ref_value, ratio`` (time ratios: lower is better;
    bandwidth ratio: fraction of the roofline, higher is better). ``optax_flatten_all``:
    ``flatten`` against ``optax.flatten`` for every optimizer (default: adam's only)."""
    if wave2:
        return bench_wave2(quick)
    table = QUICK_PYTREES if quick else PYTREES
    trees = trees or list(table)
    opts = opts or list(OPTIMIZERS)
    roofline = H.roofline(quick)
    rows = roofline.rows()
    for name in trees:
        n, shape = table[name]
        rows += bench_tree(
            name,
            n,
            shape,
            opts,
            reps=3 if quick else ROUNDS,
            roofline=roofline,
            trials=not quick,
            optax_flatten=tuple(OPTIMIZERS) if optax_flatten_all else OPTAX_FLATTEN,
        )
    return rows


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trees", nargs="*", help="subset of the pytrees")
    parser.add_argument("--opts", nargs="*", help=f"subset of {list(OPTIMIZERS)}")
    parser.add_argument("--wave2", action="store_true", help="only the wave-2 optimizer rows")
    parser.add_argument(
        "--optax-flatten-all",
        action="store_true",
        help="flatten against optax.flatten for every optimizer (default: adam only)",
    )


if __name__ == "__main__":
    H.main(
        run,
        __doc__,
        options=_options,
        kwargs=lambda a: dict(
            trees=a.trees, opts=a.opts, wave2=a.wave2, optax_flatten_all=a.optax_flatten_all
        ),
    )
