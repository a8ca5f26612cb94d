"""The one timing and reporting harness of the ``bench_*.py`` scripts.

Methodology, shared by every script:

- **Warm up first.** Every candidate runs ``warmup`` times (compiling it) before any
  call is timed; every timed call waits for its result (``jax.block_until_ready``).
- **Alternate.** The candidates are timed in interleaved rounds, and the order rotates
  from round to round (for two candidates: alternates), so that a changing machine load
  and cache state hit them all alike. The garbage collector is paused inside the rounds
  (as :mod:`timeit` does). Reported figures are medians.
- **Fresh arrays, rotated.** Where the order in which arrays are set up matters (donated
  optimizer steps), :func:`rotated_trials` repeats the rounds with fresh arrays set up
  in a rotated order, and pools the trials.
- **A/A control.** A second, separately compiled copy of the reference is timed in the
  same rounds under the name :data:`CONTROL`; its ratio to the reference is what two
  identical programs measure on this machine, the noise floor of every other ratio.
- **Ratios against a reference measured in the same run**, each row with the direction
  that is better (``"lower"`` for times and memory, ``"higher"`` for throughput).

What each script sets (full run; ``--quick`` keeps the structure with fewer rounds):

- activations: 3 warm-up calls, 15 rounds, an A/A control for every case;
- losses: 15 rounds for ``cross_entropy`` (with its control), 5 for the others; wall
  and CPU time; memory and bytes accessed of the compiled programs;
- layers: 2 warm-up calls, 20 rounds, a control for every case;
- attention: 10 rounds (5 from L=4096), a single one where a warm-up call took over
  20 s (``slow_s``); a control of the chunked reference and of the train step;
- augment: at least 5 rounds, stretched to a 5 s budget per comparison (at most 1000);
  controls on the pipelines;
- optimizers: one trial per implementation (7) with fresh arrays set up in rotated
  order, 4 rounds each (28 samples per row; warm-up in the set-up), a control of the
  optax step (its compiled program run on its own arrays);
- train: reference epochs before and after ``fit`` (the two halves are the A/A
  control), checkpoint round trips in 5 interleaved rounds with a control.

Rows are the dicts that ``python -m functional_dl bench`` collects: ``name, value, unit,
reference, ref_value, ratio`` and ``better`` (plus any extra columns a script adds).
The scripts import this module as ``_harness`` (their folder is on ``sys.path`` both
when run as ``python bench/bench_x.py`` and when the bench runner loads them).
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax

CONTROL = "reference copy"  # the name of the A/A control among the candidates
REF = "ref"  # the default name of the reference among the candidates
MIB = 2.0**20
UNIT_SCALE = {"s": 1.0, "ms": 1e3, "ms/batch": 1e3}  # seconds -> the unit of a time row
MIN_SAMPLES = 5  # fewer timed calls in a row: it says so in a note


# ------------------------------------------------------------------------------ timing
@dataclass
class Timings:
    """Seconds of every timed call, per candidate: wall clock and CPU time of the process
    (the latter is steadier on a loaded machine)."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)  # first warm-up call (compiles)

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall.setdefault(name, []).append(wall)
        self.cpu.setdefault(name, []).append(cpu)

    def median(self, name: str, *, cpu: bool = False) -> float:
        """Median seconds of ``name``'s timed calls."""
        return statistics.median((self.cpu if cpu else self.wall)[name])

    def spread(self, name: str, *, cpu: bool = False) -> tuple[float, float, int]:
        """(first quartile, third quartile, number of samples) of ``name``'s calls."""
        values = sorted((self.cpu if cpu else self.wall)[name])
        if len(values) < 2:
            return values[0], values[0], len(values)
        q = statistics.quantiles(values, n=4, method="inclusive")
        return q[0], q[2], len(values)

    def __contains__(self, name: object) -> bool:
        return name in self.wall


def time_call(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call of ``fn``, its result waited for."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    return time.perf_counter() - wall, time.process_time() - cpu


def _rotated(names: Sequence[str], i: int) -> list[str]:
    i %= len(names)
    return [*names[i:], *names[:i]]


def interleave(
    candidates: Mapping[str, Callable[[], Any]],
    *,
    rounds: int,
    warmup: int = 1,
    budget_s: float | None = None,
    max_rounds: int = 1000,
    slow_s: float | None = None,
    into: Timings | None = None,
    settle: int = 0,
) -> Timings:
    """Time zero-argument calls in interleaved rounds whose order rotates.

    Args:
      candidates: name -> call (its result is waited for); the A/A control is one of
        them, named :data:`CONTROL`.
      rounds: timed rounds (with ``budget_s``: the least number of them).
      warmup: untimed calls of each candidate first (compilation, caches).
      budget_s: stretch the rounds to take about this many seconds in all (at most
        ``max_rounds``), judged by the first timed round: sub-millisecond calls get
        enough rounds for a stable median.
      slow_s: time a single round when the slowest warm-up call took longer.
      into: add the times to these (pooling trials); default a new :class:`Timings`.
      settle: untimed calls of a candidate right before each of its timed calls, so
        that the timed call runs in its library's steady state. Needed where the
        candidates come from libraries with their own thread pools (PyTorch's OpenMP
        threads keep spinning for a while after each op and take the cores from the
        next candidate; a pool that went to sleep has to wake up): without it each
        side's timing depends on which library ran just before.
    """
    timings = Timings() if into is None else into
    names = list(candidates)
    slowest = 0.0
    for _ in range(warmup):
        for name in names:
            wall = time_call(candidates[name])[0]
            timings.first.setdefault(name, wall)
            slowest = max(slowest, wall)
    if slow_s is not None and warmup and slowest > slow_s:
        rounds = 1
    gc.disable()  # no collection pauses inside the timed calls
    try:
        i = 0
        while i < rounds:
            spent = 0.0
            for name in _rotated(names, i):
                for _ in range(settle):
                    time_call(candidates[name])
                wall, cpu = time_call(candidates[name])
                timings.add(name, wall, cpu)
                spent += wall
            if i == 0 and budget_s is not None and spent > 0:
                rounds = max(rounds, min(max_rounds, int(budget_s / spent)))
            i += 1
    finally:
        gc.enable()
    return timings


def rotated_trials(
    setup: Callable[[list[str]], Mapping[str, Callable[[], Any]]],
    names: Sequence[str],
    *,
    trials: int | None = None,
    **kwargs: Any,
) -> Timings:
    """:func:`interleave` in ``trials`` trials (default: one per name), pooled.

    Trial ``t`` calls ``setup`` with ``names`` rotated by ``t``: it sets up fresh arrays
    in that order and returns the candidates, so that none always gets the memory set up
    first. ``kwargs`` go to :func:`interleave`.
    """
    timings = Timings()
    for trial in range(len(names) if trials is None else trials):
        interleave(setup(_rotated(names, trial)), into=timings, **kwargs)
    return timings


# ------------------------------------------------------------------- compiled programs
def compile_ahead(fn: Any, *args: Any) -> tuple[Any, float]:
    """``fn`` (a ``jax.jit`` function) lowered and compiled for ``args``; the seconds it took."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def bytes_accessed(compiled: Any) -> float:
    """Bytes read and written by a compiled program, by XLA's cost analysis
    (deterministic: equal bytes and equal kernels mean equal time up to noise)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["bytes accessed"])


@dataclass(frozen=True)
class Memory:
    """Bytes of a compiled program by XLA's buffer assignment (``memory_analysis()``)."""

    peak: float  # arguments + outputs + temporaries - aliased: the buffers live at its peak
    temporaries: float
    working: float  # temporaries + outputs: what it allocates beyond its arguments


def memory(compiled: Any) -> Memory:
    """:class:`Memory` of a compiled program."""
    m = compiled.memory_analysis()
    peak = (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )
    return Memory(
        float(peak),
        float(m.temp_size_in_bytes),
        float(m.temp_size_in_bytes + m.output_size_in_bytes),
    )


# ---------------------------------------------------------------------------- roofline
@dataclass(frozen=True)
class Roofline:
    """Ceilings of this machine, measured: memory bandwidth (GB/s, a STREAM-like triad
    ``a += s * c`` counting 3 arrays moved, the best of XLA and of NumPy on all cores)
    and the matmul peak (GFLOP/s of a large float32 ``jnp.dot``). A peak, so the best
    round counts (not the median); measured under whatever load the machine has."""

    triad_xla_gbs: float
    triad_numpy_gbs: float
    matmul_gflops: float
    matmul_n: int
    triad_n: int
    backend: str = "cpu"

    @property
    def bandwidth_gbs(self) -> float:
        """The best triad on a CPU backend; on an accelerator XLA's (its memory; NumPy's
        triad runs on the host)."""
        if self.backend != "cpu":
            return self.triad_xla_gbs
        return max(self.triad_xla_gbs, self.triad_numpy_gbs)

    def rows(self) -> list[dict]:
        """The ceilings as fact rows (no reference)."""
        mib = 4 * self.triad_n / MIB
        return [
            row(f"memory bandwidth: triad a+=s*c, XLA ({mib:.0f} MiB arrays)",
                self.triad_xla_gbs, "GB/s", "none (a measured ceiling)", None,
                better="higher", bound=True),
            row(f"memory bandwidth: triad a+=s*c, NumPy on {_threads()} threads "
                f"({mib:.0f} MiB arrays)",
                self.triad_numpy_gbs, "GB/s", "none (a measured ceiling)", None,
                better="higher", bound=True),
            row(f"matmul peak: jnp.dot {self.matmul_n}x{self.matmul_n} float32",
                self.matmul_gflops, "GFLOP/s", "none (a measured ceiling)", None,
                better="higher", bound=True),
        ]  # fmt: skip


def _threads() -> int:
    return os.cpu_count() or 1


def _numpy_triad(a: Any, c: Any, s: float, threads: int) -> None:
    """``a += s * c`` on ``threads`` threads, in cache-sized blocks (NumPy's ufuncs
    release the GIL; ``s * c`` goes to a block-sized scratch array), so that each element
    of ``a`` and ``c`` crosses the memory bus once per direction."""
    import numpy as np

    block = 1 << 16
    n = a.shape[0]
    bounds = [n * i // threads for i in range(threads + 1)]

    def part(lo: int, hi: int) -> None:
        scratch = np.empty(block, a.dtype)
        for i in range(lo, hi, block):
            j = min(i + block, hi)
            t = scratch[: j - i]
            np.multiply(c[i:j], s, out=t)
            np.add(a[i:j], t, out=a[i:j])

    if threads == 1:
        part(0, n)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(part, bounds[:-1], bounds[1:]))


@functools.lru_cache(maxsize=2)
def roofline(quick: bool = False) -> Roofline:
    """The :class:`Roofline` of this machine (measured once per process and size).

    The triad updates in place, ``a += s * c`` (``a`` donated in XLA): 3 arrays move (read
    a and c, write a) as in an optimizer's in-place update, with no write-allocate
    traffic for a fresh output that a plain ``a = b + s * c`` adds on a CPU."""
    import jax.numpy as jnp
    import numpy as np

    n = (1 << 20) if quick else (1 << 25)  # 128 MiB per array
    rounds = 3 if quick else 10
    a = np.ones(n, np.float32)
    c = np.full(n, 1e-6, np.float32)
    numpy_s = min(time_call(lambda: _numpy_triad(a, c, 3.0, _threads()))[0] for _ in range(rounds))
    triad = jax.jit(lambda a, c: a + 3.0 * c, donate_argnums=0)
    xc = jnp.asarray(c)
    live = [jnp.asarray(a)]

    def xla_call() -> Any:
        live[0] = triad(live[0], xc)
        return live[0]

    jax.block_until_ready(xla_call())
    xla_s = min(time_call(xla_call)[0] for _ in range(rounds))
    m = 256 if quick else 2048
    x = jnp.asarray(np.random.default_rng(0).standard_normal((m, m)), jnp.float32)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(x, x))
    dot_s = min(time_call(lambda: dot(x, x))[0] for _ in range(rounds))
    moved = 3 * 4 * n
    return Roofline(
        moved / xla_s / 1e9,
        moved / numpy_s / 1e9,
        2 * m**3 / dot_s / 1e9,
        m,
        n,
        jax.default_backend(),
    )


# ------------------------------------------------------------------------------- torch
def torch_or_none() -> Any:
    """``torch`` set to as many threads as this machine has cores (JAX's CPU backend uses
    them all), or ``None`` where the ``bench-torch`` extra is not installed or JAX runs on
    an accelerator (the torch rows compare CPU with CPU)."""
    if jax.default_backend() != "cpu":
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(_threads())
    return torch


def not_installed(name: str, unit: str, reference: str) -> dict:
    """The row of a PyTorch comparison where torch is not installed (or JAX runs on an
    accelerator: these rows are CPU against CPU)."""
    if jax.default_backend() != "cpu":
        why = f"skipped: JAX runs on {jax.default_backend()}, the torch rows are CPU only"
        return row(name, None, unit, f"{reference} (skipped)", None, note=why)
    return row(name, None, unit, f"{reference} (not installed)", None, note="not installed")


# ------------------------------------------------------------------------------- rows
def row(
    name: str,
    value: float,
    unit: str,
    reference: str,
    ref_value: float | None,
    *,
    better: str = "lower",
    **extra: Any,
) -> dict:
    """One result row; ``ratio = value / ref_value`` (``None`` without a reference)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got better={better!r}")
    if ref_value is None:
        ratio = None
    else:
        ratio = value / ref_value if ref_value else (1.0 if value == ref_value else None)
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "reference": reference,
        "ref_value": ref_value,
        "ratio": ratio,
        "better": better,
        **extra,
    }


def time_rows(
    name: str,
    timings: Timings,
    reference: str,
    *,
    ours: str = "ours",
    ref: str = REF,
    unit: str = "ms",
    cpu: bool = False,
    control: bool = True,
    **extra: Any,
) -> list[dict]:
    """The median time of ``ours`` against ``ref`` and, where the rounds held one (and
    ``control``), the A/A control (:data:`CONTROL` against ``ref``). ``ref`` not timed: a
    row without reference. ``cpu``: CPU time of the process instead of wall time.

    Each row carries the spread: ``spread`` and ``ref_spread`` (first to third quartile
    of the calls, in ``unit``), ``samples`` (timed calls of ``ours``; below
    :data:`MIN_SAMPLES` with a ``note``) and, where the rounds had warm-up calls,
    ``compile_s``: the first call's seconds less one median step (the compile time, kept
    out of the step time)."""
    scale = UNIT_SCALE[unit]

    def median(key: str) -> float | None:
        return scale * timings.median(key, cpu=cpu) if key in timings else None

    def spread(key: str) -> str | None:
        if key not in timings:
            return None
        q1, q3, _ = timings.spread(key, cpu=cpu)
        return f"{scale * q1:.4g}-{scale * q3:.4g}"

    def facts(key: str) -> dict:
        n = timings.spread(key, cpu=cpu)[2]
        out: dict[str, Any] = {"spread": spread(key), "ref_spread": spread(ref), "samples": n}
        if key in timings.first:
            out["compile_s"] = max(timings.first[key] - timings.median(key), 0.0)
        if n < MIN_SAMPLES:
            out["note"] = f"only {n} timed call(s) (quick mode or a slow size)"
        return out

    value = median(ours)
    assert value is not None, f"{ours!r} was not timed"
    rows = [row(name, value, unit, reference, median(ref), **(facts(ours) | extra))]
    copy = median(CONTROL) if control else None
    if copy is not None:
        rows.append(
            row(
                f"{name}, A/A control (reference vs itself)",
                copy,
                unit,
                reference,
                median(ref),
                control=True,
                **facts(CONTROL),
            )
        )
    return rows


def fact(
    name: str, value: float, unit: str, ceiling_name: str, ceiling: float | None, **extra: Any
) -> dict:
    """A row that is no comparison but a fact: ``value`` as a fraction of a measured
    ceiling (bandwidth, matmul peak: higher is better, ``ratio`` the fraction) or a
    floor; left out of the ratio summaries and the plot."""
    return row(name, value, unit, ceiling_name, ceiling, better="higher", bound=True, **extra)


def gflops_facts(
    name: str,
    flops: float,
    timings: Timings,
    roof: Roofline,
    who: Sequence[tuple[str, str]] = (("ours", "ours"),),
) -> list[dict]:
    """Achieved GFLOP/s of a train step (``flops`` an analytic count per step, over the
    median step time of each ``(candidate, label)`` in ``who``) as facts: shares of the
    measured matmul peak."""
    return [
        fact(
            f"{name} achieved GFLOP/s ({label}; {flops / 1e9:.3g} GFLOP/step analytic)",
            flops / timings.median(key) / 1e9,
            "GFLOP/s",
            "measured matmul peak (jnp.dot)",
            roof.matmul_gflops,
        )
        for key, label in who
    ]


# --------------------------------------------------------------------------- printing
def device_line() -> str:
    return f"backend: {jax.default_backend()}  device: {jax.devices()[0].device_kind}"


def load_line() -> str:
    """The load average of the machine (other jobs share it), against its cores."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"load average (1, 5, 15 min): {load} on {_threads()} cores"


def _fmt(value: Any, width: int) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:{width}.4g}"
    return f"{'-' if value is None else value:>{width}}"


def _geomean(values: Iterable[float]) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fact_text(r: dict) -> str | None:
    """How a row that is no comparison reads (a fraction of a ceiling, a floor)."""
    if not r.get("bound") or not r.get("ratio"):
        return None
    if r.get("better") == "higher":
        return f"{100 * r['ratio']:.1f}% of {r['reference']}"
    return f"{r['ratio']:.3g}x {r['reference']} (a bound, not a comparison)"


def print_table(rows: list[dict], *, extra: Sequence[str] = ()) -> None:
    """Backend, device and load, then one line per row (``ours`` with its interquartile
    range, the reference value, the unit, the ratio, which way is better, ``extra``
    columns, the reference's name; a fact instead of a ratio for rows that are no
    comparison), then per unit the geometric-mean and worst ratios (of the rows that are
    neither A/A controls nor marked ``bound``) and the A/A control ratios."""
    print(device_line())
    print(load_line())
    if not rows:
        print("no rows")
        return
    width = max(len(r["name"]) for r in rows)
    extras = "".join(f" {c:>12}" for c in extra)
    print(
        f"{'case':<{width}} {'ours':>10} {'IQR':>17} {'ref value':>10} {'unit':>8} "
        f"{'ratio':>7} {'better':>6}{extras}  reference"
    )
    for r in rows:
        cells = "".join(f" {_fmt(r.get(c), 12)}" for c in extra)
        text = fact_text(r)
        ratio = "fact" if r.get("bound") else r["ratio"]
        tail = f"  = {text}" if text else ""
        note = f"  [{r['note']}]" if r.get("note") else ""
        print(
            f"{r['name']:<{width}} {_fmt(r['value'], 10)} {_fmt(r.get('spread'), 17)} "
            f"{_fmt(r['ref_value'], 10)} {r['unit']:>8} {_fmt(ratio, 7)} "
            f"{r.get('better', 'lower'):>6}{cells}  {r['reference']}{tail}{note}"
        )
    compared = [r for r in rows if r["ratio"] and not (r.get("control") or r.get("bound"))]
    for unit in dict.fromkeys(r["unit"] for r in compared):
        ratios = [r["ratio"] for r in compared if r["unit"] == unit]
        higher = all(r.get("better") == "higher" for r in compared if r["unit"] == unit)
        worst = min(ratios) if higher else max(ratios)
        print(
            f"{unit}: geometric-mean ratio {_geomean(ratios):.3f}, worst {worst:.3f} "
            f"({'higher' if higher else 'lower'} is better)"
        )
    controls = sorted(r["ratio"] for r in rows if r.get("control") and r["ratio"])
    if controls:
        print(
            f"A/A control (the reference against a second copy of itself, {len(controls)} "
            f"rows): median ratio {controls[len(controls) // 2]:.3f}, range "
            f"{controls[0]:.3f} to {controls[-1]:.3f}: differences this large are noise"
        )


# -------------------------------------------------------------------------------- CLI
def main(
    run: Callable[..., list[dict]],
    doc: str | None,
    *,
    options: Callable[[argparse.ArgumentParser], Any] | None = None,
    kwargs: Callable[[argparse.Namespace], dict] | None = None,
    extra: Sequence[str] = (),
) -> None:
    """The command line of a bench script: ``--quick`` (tiny sizes, a few seconds) plus
    the script's own ``options``; runs ``run(quick=..., **kwargs(args))`` and prints the
    table."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    if options is not None:
        options(parser)
    args = parser.parse_args()
    print_table(run(quick=args.quick, **(kwargs(args) if kwargs else {})), extra=extra)
