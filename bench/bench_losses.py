"""Forward + backward time and memory of the fused losses, against optax + autodiff.

Cases (float32 logits ``[8192, 32000]``, 1 GiB; ``--quick``: ``[64, 1000]``):

- ``cross_entropy`` with integer targets (fused ``softmax − onehot`` backward) against
  ``optax.losses.softmax_cross_entropy_with_integer_labels`` differentiated by JAX;
- ``binary_cross_entropy_with_logits`` with float targets (fused ``sigmoid − y``)
  against ``optax.losses.sigmoid_binary_cross_entropy``.

Each side is ``jit(value_and_grad(mean loss))`` with respect to the logits. Time: median
of interleaved runs after a warm-up (the order rotates from round to round), wall-clock
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

``ctc_loss`` (``--only ctc`` runs these rows alone): ``jit(value_and_grad)`` with respect
to the logits of ``mean(ctc_loss(log_softmax(logits), ..., reduction='none'))`` against
``mean(optax.ctc_loss(logits, ...))`` at ``N=32, T=200, C=64, S=50`` and at ``T=1000``
(``--quick``: ``N=4, T=50``), random input and target lengths. Both sides give the same
gradient with respect to the logits; time, peak memory and temporaries as above.

    python bench/bench_losses.py [--quick] [--only ce|ctc]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import _harness as H
import jax
import jax.numpy as jnp
import optax

import functional_dl as fdl

L = fdl.losses
MIB = H.MIB


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


def _ctc_case(n: int, t: int, c: int, s: int):
    """Our ``ctc_loss`` after ``log_softmax`` and ``optax.ctc_loss`` on the same logits."""
    kx, ky, ki, kt = jax.random.split(jax.random.key(1), 4)
    logits = jax.random.normal(kx, (n, t, c), jnp.float32)
    labels = jax.random.randint(ky, (n, s), 1, c)
    input_lengths = jax.random.randint(ki, (n,), t // 2, t + 1)
    target_lengths = jax.random.randint(kt, (n,), s // 2, s + 1)
    logit_pad = (jnp.arange(t)[None, :] >= input_lengths[:, None]).astype(jnp.float32)
    label_pad = (jnp.arange(s)[None, :] >= target_lengths[:, None]).astype(jnp.float32)

    def ours(x):
        lp = fdl.activations.log_softmax(x)
        return jnp.mean(L.ctc_loss(lp, labels, input_lengths, target_lengths, reduction="none"))

    def ref(x):
        return jnp.mean(optax.ctc_loss(x, logit_pad, labels, label_pad))

    return ours, ref, (logits,)


def _ctc_rows(quick: bool, repeats: int | None) -> list[dict]:
    rows = []
    sizes = [(4, 50, 16, 12)] if quick else [(32, 200, 64, 50), (32, 1000, 64, 50)]
    for n, t, c, s in sizes:
        ours, ref, args = _ctc_case(n, t, c, s)
        name = f"ctc_loss N={n} T={t} C={c} S={s}"
        ref_name = "optax ctc_loss"
        compiled = {
            k: H.compile_ahead(jax.jit(jax.value_and_grad(f)), *args)[0]
            for k, f in {"ours": ours, H.REF: ref}.items()
        }
        timings = H.interleave(
            {k: partial(fn, *args) for k, fn in compiled.items()},
            rounds=repeats or (3 if quick else 7),
        )
        mem = {k: H.memory(compiled[k]) for k in ("ours", H.REF)}
        rows += H.time_rows(f"{name} fwd+bwd time", timings, ref_name, control=False)
        rows += H.time_rows(f"{name} fwd+bwd CPU time", timings, ref_name, cpu=True, control=False)
        for label, value in (
            ("peak memory", {k: m.peak / MIB for k, m in mem.items()}),
            ("temporaries", {k: m.temporaries / MIB for k, m in mem.items()}),
        ):
            rows.append(H.row(f"{name} {label}", value["ours"], "MiB", ref_name, value[H.REF]))
    return rows


def run(
    quick: bool = False,
    *,
    repeats: int | None = None,
    size: tuple[int, int] | None = None,
    only: str | None = None,
) -> list[dict]:
    """Time and measure every case; return rows ``name, value, unit, reference,
    ref_value, ratio`` (per case: wall and CPU time, peak memory, temporaries, bytes
    accessed, and for ``cross_entropy`` the A/A control of the reference against itself).

    ``size = (rows, classes)`` and ``repeats`` override the defaults
    (``(8192, 32000)``, and 15 interleaved rounds for a case with a control, 5 for the
    others, after one warm-up call each; quick: ``(64, 1000)`` and 3).
    """
    n, c = size or ((64, 1000) if quick else (8192, 32000))
    rows = []
    if only == "ctc":
        return _ctc_rows(quick, repeats)
    for name, ours, ref_name, ref, args, control in _cases(n, c):
        fns = {"ours": ours, H.REF: ref} | ({H.CONTROL: ref} if control else {})
        # each key is its own jit, so the control is a second compile of the same program
        compiled = {
            k: H.compile_ahead(jax.jit(jax.value_and_grad(f)), *args)[0] for k, f in fns.items()
        }
        timings = H.interleave(
            {k: partial(fn, *args) for k, fn in compiled.items()},
            rounds=repeats or (3 if quick else 15 if control else 5),
        )
        mem = {k: H.memory(compiled[k]) for k in ("ours", H.REF)}
        traffic = {k: H.bytes_accessed(compiled[k]) / MIB for k in ("ours", H.REF)}
        rows += H.time_rows(f"{name} fwd+bwd time", timings, ref_name)
        rows += H.time_rows(f"{name} fwd+bwd CPU time", timings, ref_name, cpu=True, control=False)
        for label, value in (
            ("peak memory", {k: m.peak / MIB for k, m in mem.items()}),
            ("temporaries", {k: m.temporaries / MIB for k, m in mem.items()}),
            ("bytes accessed (XLA cost analysis)", traffic),
        ):
            rows.append(H.row(f"{name} {label}", value["ours"], "MiB", ref_name, value[H.REF]))
    if only is None:
        rows += _ctc_rows(quick, repeats)
    return rows


if __name__ == "__main__":
    H.main(
        run,
        __doc__,
        options=lambda p: p.add_argument("--only", choices=("ce", "ctc"), default=None),
        kwargs=lambda a: {"only": a.only},
    )
