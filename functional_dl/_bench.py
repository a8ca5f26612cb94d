"""Run every ``bench/bench_*.py`` and write ``bench/RESULTS.md`` plus a ratio plot.

Each bench script exposes ``run(quick: bool = False) -> list[dict]`` whose rows carry
``name, value, unit, reference, ref_value, ratio`` (``ratio = ours / reference``) and
may carry ``better``: ``"lower"`` or ``"higher"``, the direction that is better (when
absent: higher for throughput units ``.../s``, lower for the rest). The scripts (built on
``bench/_harness.py``) run one after the other in this process; a script that raises is
reported as an error row and the others still run.
"""

from __future__ import annotations

import datetime
import importlib.util
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["default_bench_dir", "collect", "write_results", "run_all", "better"]

COLUMNS = ("name", "value", "unit", "reference", "ref_value", "ratio")


def default_bench_dir() -> Path:
    """``bench/`` of the source checkout holding this package, else ``./bench``."""
    beside = Path(__file__).resolve().parent.parent / "bench"
    return beside if beside.is_dir() else Path.cwd() / "bench"


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_fdl_bench_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the bench script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (flax modules) look their module up there
    sys.path.insert(0, str(path.parent))  # scripts may import their neighbours
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def collect(
    bench_dir: Path, *, quick: bool, pattern: str | None = None, log: Any = print
) -> list[dict]:
    """Run every ``bench_*.py`` of ``bench_dir``; rows tagged with ``script`` (and ``error``)."""
    rows = []
    for path in sorted(Path(bench_dir).glob("bench_*.py")):
        if pattern and pattern not in path.stem:
            continue
        log(f"running {path.name} ({'quick' if quick else 'full'}) ...")
        t0 = time.perf_counter()
        try:
            results = list(_load(path).run(quick=quick))
            missing = [c for r in results for c in COLUMNS if c not in r]
            if missing:
                raise KeyError(f"rows lack the keys {sorted(set(missing))}")
        except Exception as exc:  # one failing script must not hide the others
            log(traceback.format_exc(limit=3))
            rows.append({"script": path.stem, "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows += [{"script": path.stem, **r} for r in results]
        log(f"  {len(results)} rows in {time.perf_counter() - t0:.1f} s")
    return rows


def _machine() -> str:
    import jax

    device = jax.devices()[0]
    return (
        f"{platform.node() or 'host'}: {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPU cores; jax {jax.__version__}, backend "
        f"`{jax.default_backend()}`, {len(jax.devices())} x {device.device_kind}"
    )


def better(row: dict) -> str:
    """The direction in which ``row``'s ratio is better: its ``better`` key, else
    ``"higher"`` for a throughput unit (``.../s``) and ``"lower"`` for the rest.

    >>> better({"unit": "ms"}), better({"unit": "GB/s"}), better({"unit": "s", "better": "higher"})
    ('lower', 'higher', 'higher')
    """
    return row.get("better") or ("higher" if row["unit"].endswith("/s") else "lower")


def _load_avg() -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"load average at the end of the run (1, 5, 15 min): {load}"


def _note(row: dict) -> str:
    """What a row means beyond its ratio: the share of a ceiling or a floor it is (rows
    marked ``bound``), then its own ``note``."""
    parts = []
    if row.get("bound") and row.get("ratio"):
        if better(row) == "higher":
            parts.append(f"{100 * row['ratio']:.1f}% of {row['reference']}")
        else:
            parts.append(f"{row['ratio']:.3g}x {row['reference']}: a bound, not a comparison")
    if row.get("ref_compile_s"):
        parts.append(f"reference compile {row['ref_compile_s']:.3g} s")
    if row.get("note"):
        parts.append(str(row["note"]))
    return "; ".join(parts).replace("|", "/") or "-"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return "-" if value is None else str(value)


def write_results(
    rows: list[dict], output: Path, *, quick: bool, sections: list[str] | None = None
) -> Path | None:
    """Write the Markdown table to ``output`` and the ratio plot next to it (``.png``);
    ``sections``: Markdown lines put before the table (the targets)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    plot = _plot(rows, output.with_suffix(".png"))
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m functional_dl bench{' --quick' if quick else ''}` on {stamp}.",
        "",
        f"Machine: {_machine()}; {_load_avg()}.",
        "",
        "`ratio` = ours / reference, measured in the same run; `better` says which way "
        "is better (times and memory: lower, 1.0 = as fast as the reference; throughput: "
        "higher). An *A/A control* row times the reference against a second copy of "
        "itself in the same rounds: its distance from 1.0 is the noise of these timings. "
        "Rows that are no comparison (a share of a measured ceiling, a floor) say `fact` "
        "in the ratio column and what they mean in `note`. `IQR`: first to third "
        "quartile of the timed calls (ours; reference); `n`: timed calls; `compile s`: "
        "compile time, kept out of the step time.",
        "",
    ]
    if plot is not None:
        lines += [f"![ratios]({plot.name})", ""]
    lines += list(sections or [])
    lines += [
        "## All rows",
        "",
        "| script | figure | value | unit | reference | reference value | ratio | better "
        "| IQR (ours; ref) | n | compile s | note |",
        "|---|---|---:|---|---|---:|---:|---|---|---:|---:|---|",
    ]
    errors = []
    for r in rows:
        if "error" in r:
            errors.append(f"- `{r['script']}`: {r['error']}")
            continue
        spread = "; ".join(_fmt(r.get(k)) for k in ("spread", "ref_spread") if r.get(k))
        lines.append(
            f"| {r['script']} | {r['name']} | {_fmt(r['value'])} | {r['unit']} | "
            f"{_fmt(r['reference'])} | {_fmt(r['ref_value'])} | "
            f"{'fact' if r.get('bound') else _fmt(r['ratio'])} | {better(r)} | "
            f"{spread or '-'} | {_fmt(r.get('samples'))} | {_fmt(r.get('compile_s'))} | "
            f"{_note(r)} |"
        )
    if errors:
        lines += ["", "Scripts that failed:", "", *errors]
    output.write_text("\n".join(lines) + "\n")
    return plot


def _plot(rows: list[dict], path: Path) -> Path | None:
    """Horizontal bars of the ratios (log scale, 1.0 marked; green: as good as the reference
    or better, in the row's direction; gray: A/A controls and bounds); ``None`` without
    matplotlib."""
    good = [
        r
        for r in rows
        if "error" not in r
        and not r.get("bound")  # a fact (share of a ceiling, a floor), not a comparison
        and isinstance(r.get("ratio"), (int, float))
        and r["ratio"] > 0
        and math.isfinite(r["ratio"])
    ]
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - optional dependency
        return None
    if not good:
        return None
    fig = Figure(figsize=(11, 0.25 * len(good) + 1.5), layout="constrained")
    ax = fig.subplots()
    labels = [
        f"{r['script'].removeprefix('bench_')}: {r['name']} vs {r['reference']}"[:110]
        + (" (1/ratio)" if better(r) == "higher" else "")
        for r in good
    ]
    # every bar reads the same way: below 1.0 = ours better (higher-is-better rows inverted)
    ratios = [1 / r["ratio"] if better(r) == "higher" else r["ratio"] for r in good]
    colors = [
        "tab:gray"  # an A/A control: the noise, neither good nor bad
        if r.get("control")
        else "tab:green"
        if v <= 1.05
        else "tab:orange"
        for r, v in zip(good, ratios, strict=True)
    ]
    ax.barh(range(len(good)), ratios, color=colors)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(good)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(
        "ours / reference, < 1 = ours better (throughput rows inverted; gray: A/A controls)"
    )
    fig.savefig(path, dpi=110)
    return path


def run_all(
    bench_dir: Path,
    *,
    quick: bool = False,
    output: str | Path | None = None,
    pattern: str | None = None,
) -> int:
    """Run the scripts, write the results; exit code 1 if a script failed or none ran."""
    import jax

    print(
        f"backend: {jax.default_backend()}  device: {jax.devices()[0].device_kind} "
        f"(x{len(jax.devices())})"
    )
    rows = collect(bench_dir, quick=quick, pattern=pattern)
    output = Path(output) if output else Path(bench_dir) / "RESULTS.md"
    if not rows:
        print(
            f"no bench_*.py scripts{f' matching {pattern!r}' if pattern else ''} in {bench_dir}",
            file=sys.stderr,
        )
        return 1
    targets = Path(bench_dir) / "_targets.py"  # the targets, checked against the rows
    sections = _load(targets).section(rows) if targets.is_file() else None
    write_results(rows, output, quick=quick, sections=sections)
    print(f"wrote {output}")
    return 1 if any("error" in r for r in rows) else 0
