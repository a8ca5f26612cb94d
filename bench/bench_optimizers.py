"""Benchmark: one jitted, donated optimizer step (update + apply_updates) against optax.

For ``sgd(momentum=0.9)``, ``adam`` and ``adamw`` on three pytrees (16 leaves of 1M
floats, 1000 leaves of 64x64, 2000 leaves of 256) it reports the median step time and
the compile time of ``fdl.optim``, of ``fdl.optim.flatten(...)`` and of the same optax
optimizer measured in the same run, and two bandwidths against the memory-bandwidth
roofline of this machine, measured here as a large NumPy copy: the effective one (the
bytes an ideal step must move: read p, g and each moment, write p and each moment; best
of ours and flatten) and the one of the kernels XLA runs (the bytes they do move).
An A/A control times a second compile of the optax step in the same trials: its ratio to
the first is the spread that two identical programs show here. XLA's cost analysis gives
the bytes each compiled step reads and writes (deterministic). Two floors are timed with
them: a donated step that does nothing but take and return the same arrays as optax's
step (``floor``) and as the flattened one (``flatten floor``). On the many-leaf trees the
floor is most of optax's step: passing thousands of arrays in and out of a jitted call
costs microseconds each, and no arithmetic with the same arrays can run below it.

    python bench/bench_optimizers.py [--quick] [--trees 2000x256] [--opts adam]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import functional_dl as fdl

# name -> (number of leaves, leaf shape)
PYTREES = {"16x1M": (16, (1_000_000,)), "1000x64x64": (1000, (64, 64)), "2000x256": (2000, (256,))}
QUICK_PYTREES = {"8x1k": (8, (1024,))}  # smoke test: every code path, a few seconds

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


class Roofline:
    """Memory bandwidth of a large NumPy copy (bytes read + written per second), timed
    between the optimizer steps so that both see the same load on the machine."""

    def __init__(self, quick: bool):
        self.src = np.ones((2 << 20) if quick else (64 << 20), np.float32)
        self.dst = np.empty_like(self.src)
        self.times: list[float] = []

    def measure(self) -> None:
        t0 = time.perf_counter()
        np.copyto(self.dst, self.src)
        self.times.append(time.perf_counter() - t0)

    def gbs(self) -> float:
        return 2 * self.src.nbytes / float(np.median(self.times)) / 1e9


def _tree(n: int, shape: tuple, seed: int) -> dict:
    keys = jax.random.split(jax.random.key(seed), n)
    return {f"p{i:04d}": jax.random.normal(k, shape, jnp.float32) for i, k in enumerate(keys)}


def _traffic(compiled) -> float:
    """MB read and written by a compiled step, by XLA's cost analysis (deterministic)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["bytes accessed"] / 1e6


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

    state = opt.init(params)
    t0 = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    return compiled, time.perf_counter() - t0, state


def bench_tree(
    tree_name: str,
    n: int,
    shape: tuple,
    opt_names: list[str],
    reps: int,
    roofline: Roofline,
    trials: bool = True,
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
            "optax": optax_fn(),
            "optax copy": optax_fn(),  # A/A control: what identical programs measure
            "floor": ("noop", optax_fn()),
            "flatten floor": ("noop", fdl.optim.flatten(ours_fn())),
        }
        runs = {}
        for key, opt in impls.items():
            noop = type(opt) is tuple  # ("noop", optimizer whose arrays it passes)
            opt = opt[1] if noop else opt
            compiled, compile_s, _ = _compiled_step(opt, params0, grads, noop=noop)
            runs[key] = [compiled, compile_s, opt, []]
        # The implementation whose arrays are set up first runs measurably faster (up to
        # 1.5x on the many-leaf trees for identical programs: where its buffers land in
        # memory). So the timing runs in as many trials as there are implementations,
        # each with fresh arrays set up in a rotated order, and pools the trials.
        names = list(runs)
        for trial in range(len(names) if trials else 1):
            live = {}
            for key in names[trial:] + names[:trial]:
                compiled, _, opt, _ = runs[key]
                params = jax.tree.map(jnp.copy, params0)
                params, state = compiled(params, opt.init(params), grads)  # warm-up
                jax.block_until_ready(params)
                live[key] = [params, state]
            gc.disable()  # as timeit does: no collection pauses inside the timed calls
            # interleaved, so load changes hit every implementation alike; the order
            # rotates so that none always runs right after the large copy (which flushes
            # the caches)
            order = [None, *names]
            for rep in range(reps):
                for key in order[rep % len(order) :] + order[: rep % len(order)]:
                    if key is None:
                        roofline.measure()
                        continue
                    compiled, times = runs[key][0], runs[key][3]
                    params, state = live[key]
                    t0 = time.perf_counter()
                    params, state = compiled(params, state, grads)
                    jax.block_until_ready(params)
                    times.append(time.perf_counter() - t0)
                    live[key] = [params, state]
            gc.enable()
            del live
        step = {k: float(np.median(r[3])) for k, r in runs.items()}
        compile_s = {k: r[1] for k, r in runs.items()}
        label = f"{opt_name} {tree_name}"
        for key, suffix in (("ours", ""), ("flatten", " flatten")):
            rows.append(
                dict(
                    name=f"{label} step{suffix}",
                    value=step[key] * 1e3,
                    unit="ms",
                    reference="optax",
                    ref_value=step["optax"] * 1e3,
                    ratio=step[key] / step["optax"],
                )
            )
            rows.append(
                dict(
                    name=f"{label} compile{suffix}",
                    value=compile_s[key],
                    unit="s",
                    reference="optax",
                    ref_value=compile_s["optax"],
                    ratio=compile_s[key] / compile_s["optax"],
                )
            )
        rows.append(
            dict(
                name=f"{label} step, A/A control (optax vs itself)",
                value=step["optax copy"] * 1e3,
                unit="ms",
                reference="optax",
                ref_value=step["optax"] * 1e3,
                ratio=step["optax copy"] / step["optax"],
            )
        )
        traffic = {k: _traffic(runs[k][0]) for k in ("ours", "optax")}
        rows.append(
            dict(
                name=f"{label} bytes accessed (XLA cost analysis)",
                value=traffic["ours"],
                unit="MB",
                reference="optax",
                ref_value=traffic["optax"],
                ratio=traffic["ours"] / traffic["optax"],
            )
        )
        for key in ("floor", "flatten floor"):
            rows.append(
                dict(
                    name=f"{label} {key} (no-op step)",
                    value=step[key] * 1e3,
                    unit="ms",
                    reference="optax",
                    ref_value=step["optax"] * 1e3,
                    ratio=step[key] / step["optax"],
                )
            )
        copy_gbs = roofline.gbs()
        best = min(step["ours"], step["flatten"])
        gbs = arrays * numel * 4 / best / 1e9
        rows.append(
            dict(
                name=f"{label} effective GB/s",
                value=gbs,
                unit="GB/s",
                reference="numpy copy roofline",
                ref_value=copy_gbs,
                ratio=gbs / copy_gbs,
            )
        )
        gbs = kernel_arrays * numel * 4 / step["ours"] / 1e9
        rows.append(
            dict(
                name=f"{label} kernel GB/s",
                value=gbs,
                unit="GB/s",
                reference="numpy copy roofline",
                ref_value=copy_gbs,
                ratio=gbs / copy_gbs,
            )
        )
        del runs
    return rows


def run(
    quick: bool = False, trees: list[str] | None = None, opts: list[str] | None = None
) -> list[dict]:
    """Rows ``name, value, unit, reference, ref_value, ratio`` (time ratios: lower is better;
    bandwidth ratio: fraction of the roofline, higher is better)."""
    table = QUICK_PYTREES if quick else PYTREES
    trees = trees or list(table)
    opts = opts or list(OPTIMIZERS)
    roofline = Roofline(quick)
    rows = []
    for name in trees:
        n, shape = table[name]
        rows += bench_tree(
            name, n, shape, opts, reps=3 if quick else 12, roofline=roofline, trials=not quick
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--trees", nargs="*", help="subset of the pytrees")
    parser.add_argument("--opts", nargs="*", help=f"subset of {list(OPTIMIZERS)}")
    args = parser.parse_args()
    print(f"backend: {jax.default_backend()}, device: {jax.devices()[0].device_kind}")
    rows = run(args.quick, args.trees, args.opts)
    print(f"{'name':<48} {'value':>10} {'unit':<5} {'reference':<20} {'ref':>10} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['name']:<48} {r['value']:>10.3f} {r['unit']:<5} {r['reference']:<20} "
            f"{r['ref_value']:>10.3f} {r['ratio']:>7.2f}"
        )


if __name__ == "__main__":
    main()
