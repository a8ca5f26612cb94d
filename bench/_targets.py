"""The performance targets, checked against the rows of a run: the "Targets" section of
``RESULTS.md`` (``python -m functional_dl bench`` renders it when this file is beside the
scripts). Each target picks rows by script, name and reference; its bound is on the row's
ratio (ours / reference for times: at most; a share of a ceiling: at least). ``why``:
what the profile showed where the target was missed the last time it was looked at."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    label: str
    script: str
    name: str  # a regular expression the row's name must match in full
    reference: str  # ... and its reference's name must start with
    bound: float
    at_least: bool = False  # True: ratio >= bound (a share of a ceiling); else ratio <= bound
    why: str = ""

    def matches(self, row: dict) -> bool:
        return (
            row.get("script") == self.script
            and not row.get("control")
            and re.fullmatch(self.name, row["name"]) is not None
            and str(row["reference"]).startswith(self.reference)
        )


_OPT = r"(sgd\(momentum=0\.9\)|adam|adamw)"
_KERNELS = (
    "XLA's CPU backend compiles each leaf's Adam step into 3 loop fusions (the HLO has "
    "`multiply_add_fusion` x3: m, v, then p reading m and v back), no multi-output fusion: "
    "10 arrays of traffic per parameter (XLA's cost analysis: 10 x 4 bytes) where torch's "
    "fused kernel moves 7 in one pass; on the many-leaf trees the per-buffer cost of the "
    "jitted call adds (the `floor (no-op step)` rows of `bench_optimizers`)."
)
_MANY_LEAVES = (
    "The many-leaf steps pay a per-array cost of the jitted call (the `floor (no-op step)` "
    "rows: passing thousands of donated buffers in and out costs most of optax's step), "
    "which no arithmetic removes; `flatten` (one buffer per dtype) is the way below it."
)

_SAME_KERNELS = (
    "On 16x1M our default step and optax's compile to the same loops (the `bytes "
    "accessed` rows: ratio 1.0) and the interquartile ranges overlap; the table's A/A "
    "control shows how far noise alone moves the ratio in the run. " + _MANY_LEAVES
)
_NOISE = (
    "Both sides compile to about the same work (the same matmuls; for layer_norm the same "
    "four [8192, 512] arrays written and the same bytes accessed in XLA's cost analysis); "
    "standalone repeats of layer_norm gave 1.07x to 1.25x, and the A/A control rows of "
    "the same table show the noise of the run. Not profiled further."
)
_ATTENTION = (
    "Ours (the blockwise path) runs XLA while loops over query and key blocks: 2 matmuls "
    "per visible block forward and 5 backward, on (8 heads x block x 64) operands, with "
    "the softmax in between. The `XLA dot floor` rows of `bench_torch` time those matmuls "
    "alone, in the same loops and blocks: at every length they alone take longer than "
    "torch's whole step (its hand-written CPU flash kernel, with its own GEMM "
    "micro-kernels, threaded over heads and query blocks); the softmax, masking and "
    "copies add about 40% on top. Tried and measured, not adopted: 512-row blocks "
    "(faster dots, but the 8 MB score tiles spill the 2 MB L2: no faster overall) and "
    "heads in groups of 2 with 512-row blocks (about 1.2x faster at L=2048 and 4096, "
    "still about 2x torch)."
)
_TORCH_TRAIN = (
    "The steps are matmul-bound: the `achieved GFLOP/s` rows put both sides against the "
    "same measured matmul peak, so a gap is torch's GEMM kernels against XLA's CPU dots "
    "on the same shapes. The TransformerLM also runs causal attention at L=256 in each "
    "layer (see the attention target: XLA's dots alone are slower than torch's kernel), "
    "about a quarter of its step."
)
_AUGMENT = (
    "Our policy maps the batch one image at a time (`lax.map`), so each image runs only "
    "the ops it drew, as torchvision does per image; ours work in float32 (4x the bytes "
    "of torchvision's uint8 kernels). The `our fixed pipeline` row (crop, flip, normalize "
    "without RandAugment) is about 5x faster than the policy: the two drawn ops per image "
    "take most of the time."
)

TARGETS = [
    Target("default optimizer step <= 1.0x optax (every tree)", "bench_optimizers",
           rf"{_OPT} \S+ step", "optax", 1.0, why=_SAME_KERNELS),
    Target("default optimizer step <= 0.6x optax on 2000x256 leaves", "bench_optimizers",
           rf"{_OPT} 2000x256 step", "optax", 0.6, why=_MANY_LEAVES),
    Target(">= 80% of measured bandwidth on 16x1M leaves (default step)", "bench_optimizers",
           rf"{_OPT} 16x1M effective GB/s .*", "measured bandwidth", 0.8, at_least=True,
           why=_KERNELS + " The `kernel GB/s` rows count the bytes those loops do move."),
    Target("AdamW step <= 1.0x torch.optim.AdamW(fused=True)", "bench_torch",
           r"adamw \S+ step", "torch.optim.AdamW(fused=True)", 1.0, why=_KERNELS),
    Target("train step <= 1.0x PyTorch eager", "bench_torch",
           r"(MLP|CNN|TransformerLM) train step .*", "torch eager", 1.0, why=_TORCH_TRAIN),
    Target("train step <= 1.05x flax", "bench_layers", r"(MLP|CNN) train step .*",
           "flax.linen", 1.05, why=_NOISE),
    Target("train step <= 1.05x flax", "bench_attention", r"TransformerLM train step .*",
           "flax.linen", 1.05, why=_NOISE),
    Target("causal attention fwd+bwd <= 1.0x torch SDPA (CPU)", "bench_torch",
           r"causal attention fwd\+bwd L=\d+", "torch F.scaled_dot_product_attention", 1.0,
           why=_ATTENTION),
    Target("augmentation pipeline >= 3x torchvision v2 per image (time ratio <= 0.333)",
           "bench_augment", r"rand_augment pipeline .*", "torchvision v2 per image", 1 / 3,
           why=_AUGMENT),
    Target("layer_norm <= 1.05x flax", "bench_layers", r"layer_norm", "flax.linen", 1.05,
           why=_NOISE),
]  # fmt: skip


NOTES = [
    "The roofline is measured in the same process (`bench_optimizers` / `bench_torch`): "
    "a STREAM-like in-place triad `a += s * c` on 128 MiB arrays in XLA and in NumPy on all "
    "cores (the best of both, the best of 10 rounds), and the matmul peak of a 2048x2048 "
    "float32 `jnp.dot`. This VM reports a 480 MiB L3 shared with other tenants: the 16x1M "
    "optimizer state (256 MB) and the triad's arrays can partly live in it, so a share of "
    "the measured bandwidth above 100% is possible and the ceiling moves with the load.",
    "The load average is in the header; each table's A/A control rows (the reference "
    "timed against a second copy of itself in the same rounds; in `bench_optimizers` its "
    "compiled step run on its own copy of the arrays) show how far noise alone moves a "
    "ratio in this run.",
    "Torch rows: each timed call follows an untimed call of the same side (`SETTLE` in "
    "`bench_torch.py`; the torchvision row of `bench_augment` too). torch's OpenMP "
    "threads spin on after each op and slow down whatever runs next, and a machine "
    "loaded by other jobs slows torch's threads far more than XLA's: the torch ratios "
    "are only meaningful from a quiet machine.",
    "Train-step FLOPs are analytic counts of the matmul/convolution work (forward, and twice "
    "that backward, less the unneeded input gradient of the first layer; causal attention "
    "counts the visible half), written in each row's name; elementwise work is not counted.",
    "`bench_attention` also times causal attention against a chunked reference of the same "
    "algorithm written in plain JAX in the script (blockwise online softmax, blocks above "
    "the diagonal skipped, our block size): a fairness reference for the `jax.nn` rows "
    "(which compare two algorithms), not a target.",
]


def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else "-" if value is None else str(value)


def section(rows: list[dict], fmt: Callable[[object], str] = _fmt) -> list[str]:
    """Markdown lines: one line per target and matching row, met or missed, with the
    ratio, its direction, the spread of ours and of the reference and the samples."""
    lines = [
        "## Targets",
        "",
        "Each target against the rows of this run that it concerns (ratio = ours / "
        "reference unless it is a share of a ceiling; the A/A control rows of the same "
        "tables show how far from 1.0 noise alone goes).",
        "",
        "| target | row | ratio | bound | met | IQR (ours; ref) | n |",
        "|---|---|---:|---|---|---|---:|",
    ]
    missed: dict[str, str] = {}
    for target in TARGETS:
        found = [r for r in rows if "error" not in r and target.matches(r)]
        if not found:
            lines.append(f"| {target.label} | (no row in this run) | - | - | - | - | - |")
        for r in found:
            ratio = r.get("ratio")
            if ratio is None:
                met = "not measured"
            else:
                ok = ratio >= target.bound if target.at_least else ratio <= target.bound
                met = "yes" if ok else "**no**"
                if not ok and target.why:
                    missed[target.label] = target.why
            bound = f"{'>=' if target.at_least else '<='} {target.bound:.3g}"
            spread = "; ".join(str(r[k]) for k in ("spread", "ref_spread") if r.get(k))
            lines.append(
                f"| {target.label} | {r['script']}: {r['name']} vs {r['reference']} | "
                f"{fmt(ratio)} | {bound} | {met} | {spread or '-'} | {fmt(r.get('samples'))} |"
            )
    if missed:
        lines += ["", "Where a target is missed, what the profile shows:", ""]
        lines += [f"- *{label}*: {why}" for label, why in missed.items()]
    lines += ["", "Notes:", "", *(f"- {note}" for note in NOTES)]
    return lines + [""]
