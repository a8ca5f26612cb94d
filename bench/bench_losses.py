"""Forward + backward time and memory of the fused losses, against optax + autodiff.

Cases (float32 logits ``[8192, 32000]``, 1 GiB; ``--quick``: ``[64, 1000]``):

- ``cross_entropy`` with integer targets (fused ``softmax − onehot`` backward) against
  ``optax.losses.softmax_cross_entropy_with_integer_labels`` differentiated by JAX;
- ``binary_cross_entropy_with_logits`` with float targets (fused ``sigmoid − y``)
  against ``optax.losses.sigmoid_binary_cross_entropy``.

Each side is ``jit(value_and_grad(mean loss))`` with respect to the logits. Time: median
of interleaved runs after a warm-up (the order alternates from round to round), wall-clock
and CPU time of the process (the latter is steadier on a loaded machine). Memory: XLA's
compiled memory analysis of the same executable, ``arguments + outputs + temporaries −
aliased`` (the buffers live at its peak), and the temporaries alone. Traffic: the bytes
XLA's cost analysis counts for the compiled program (deterministic; equal bytes and equal
kernels mean equal time up to noise). ``ratio = ours / reference``, lower is better.

For ``cross_entropy`` both sides compile to the same kernels, and on a CPU most of the
time is the kernel zero-filling the fresh 1 GiB gradient on first touch, so the time
ratio is 1 up to noise. To show how large that noise is, the reference is compiled a
second time and timed in the same rounds: its ratio to the first copy (``A/A control``)
is what two identical programs measure here.

    python bench/bench_losses.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

import functional_dl as fdl

L = fdl.losses
MIB = 2.0**20


def _cases(n: int, c: int) -> list[tuple[str, Callable, str, Callable, tuple, bool]]:
    """(name, ours, reference name, reference, arguments, time an A/A control)."""
    key_x, key_y = jax.random.split(jax.random.key(0))
    logits = jax.random.normal(key_x, (n, c), jnp.float32) * 3
    labels = jax.random.randint(key_y, (n,), 0, c)
    probs = jax.random.uniform(key_y, (n, c), jnp.float32)
    shape = f"[{n}, {c}]"
    return [
        (
            f"cross_entropy {shape}",
            L.cross_entropy,
            "optax softmax_cross_entropy_with_integer_labels",
            lambda x, y: jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(x, y)),
            (logits, labels),
            True,
        ),
        (
            f"bce_with_logits {shape}",
            L.binary_cross_entropy_with_logits,
            "optax sigmoid_binary_cross_entropy",
            lambda x, y: jnp.mean(optax.losses.sigmoid_binary_cross_entropy(x, y)),
            (logits, probs),
            False,
        ),
    ]


def _time(fn: Callable, *args) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - wall, time.process_time() - cpu


def _memory(compiled) -> tuple[float, float]:
    """(peak, temporaries) in MiB from the compiled executable's memory analysis."""
    m = compiled.memory_analysis()
    peak = (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )
    return peak / MIB, m.temp_size_in_bytes / MIB


def _traffic(compiled) -> float:
    """MiB read and written by the compiled program, by XLA's cost analysis."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["bytes accessed"] / MIB


def _row(name, value, unit, reference, ref_value):
    ratio = value / ref_value if ref_value else (1.0 if value == ref_value else None)
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "reference": reference,
        "ref_value": ref_value,
        "ratio": ratio,
    }


def run(
    quick: bool = False, *, repeats: int | None = None, size: tuple[int, int] | None = None
) -> list[dict]:
    """Time and measure every case; return rows ``name, value, unit, reference,
    ref_value, ratio`` (per case: wall and CPU time, peak memory, temporaries, bytes
    accessed, and for ``cross_entropy`` the A/A control of the reference against itself).

    ``size = (rows, classes)`` and ``repeats`` override the defaults
    (``(8192, 32000)``, and 15 rounds for a case with a control, 5 for the others;
    quick: ``(64, 1000)`` and 3).
    """
    n, c = size or ((64, 1000) if quick else (8192, 32000))
    rows = []
    for name, ours, ref_name, ref, args, control in _cases(n, c):
        rounds = repeats or (3 if quick else 15 if control else 5)
        fns = {"ours": ours, "ref": ref} | ({"ref copy": ref} if control else {})
        # each key is its own jit, so the control is a second compile of the same program
        compiled = {
            k: jax.jit(jax.value_and_grad(f)).lower(*args).compile() for k, f in fns.items()
        }
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
        for fn in compiled.values():  # warm up
            _time(fn, *args)
        keys = list(compiled)
        for i in range(rounds):  # interleaved, so all see the same machine load
            for k in keys[i % len(keys) :] + keys[: i % len(keys)]:
                times[k].append(_time(compiled[k], *args))
        ms = {
            k: [1e3 * statistics.median(t[i] for t in v) for i in (0, 1)] for k, v in times.items()
        }
        mem = {k: _memory(fn) for k, fn in compiled.items()}
        rows.append(_row(f"{name} fwd+bwd time", ms["ours"][0], "ms", ref_name, ms["ref"][0]))
        if control:
            rows.append(
                _row(
                    f"{name} fwd+bwd time, A/A control (reference vs itself)",
                    ms["ref copy"][0],
                    "ms",
                    ref_name,
                    ms["ref"][0],
                )
            )
        rows.append(_row(f"{name} fwd+bwd CPU time", ms["ours"][1], "ms", ref_name, ms["ref"][1]))
        rows.append(_row(f"{name} peak memory", mem["ours"][0], "MiB", ref_name, mem["ref"][0]))
        rows.append(_row(f"{name} temporaries", mem["ours"][1], "MiB", ref_name, mem["ref"][1]))
        rows.append(
            _row(
                f"{name} bytes accessed (XLA cost analysis)",
                _traffic(compiled["ours"]),
                "MiB",
                ref_name,
                _traffic(compiled["ref"]),
            )
        )
    return rows


def _print(rows: list[dict]) -> None:
    dev = jax.devices()[0]
    print(f"backend: {jax.default_backend()}  device: {dev.device_kind}")
    width = max(len(r["name"]) for r in rows)
    print(f"{'case':<{width}} {'ours':>10} {'reference':>10} {'unit':>4}  {'ratio':>6}  reference")
    for r in rows:
        ratio = f"{r['ratio']:6.3f}" if r["ratio"] is not None else f"{'-':>6}"
        print(
            f"{r['name']:<{width}} {r['value']:10.2f} {r['ref_value']:10.2f} {r['unit']:>4}"
            f"  {ratio}  {r['reference']}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    _print(run(quick=parser.parse_args().quick))
