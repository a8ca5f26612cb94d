"""Forward + backward time of every activation under ``jit``, against ``jax.nn``.

Each case times ``x -> (f(x), vjp(g))`` on a 4096 x 4096 float32 array (16M elements;
``--quick``: 64 x 64) and the ``jax.nn`` function with the same definition in the same
run, plus an A/A control (the reference compiled a second time), in rounds that alternate
which goes first so that all see the same machine load (``_harness.interleave``).
Reported: median milliseconds and ``ratio = ours / reference`` (lower is better).

    python bench/bench_activations.py [--quick]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import _harness as H
import jax
import jax.numpy as jnp

import functional_dl as fdl

A = fdl.activations
_PRELU_W = 0.25  # the PReLU reference is the inline formula with the same slopes


def _prelu_ref(x):
    w = jnp.broadcast_to(jnp.full(x.shape[-1:], _PRELU_W, x.dtype), x.shape)
    return jnp.where(x > 0, x, w * x)


def _jax_nn(name: str, ref: str | None = None) -> tuple[str, Callable, str, Callable]:
    """The case ``A.<name>`` against ``jax.nn.<ref>`` (default: the same name)."""
    ref = ref or name
    return name, getattr(A, name), f"jax.nn.{ref}", getattr(jax.nn, ref)


# (name, ours, reference name, reference); reference None: no jax.nn equivalent
CASES: list[tuple[str, Callable, str | None, Callable | None]] = [
    _jax_nn("sigmoid"),
    ("tanh", A.tanh, "jnp.tanh", jnp.tanh),
    *map(_jax_nn, ["relu", "relu6", "leaky_relu", "elu", "selu", "celu"]),
    ("gelu", A.gelu, "jax.nn.gelu(approximate=False)", lambda x: jax.nn.gelu(x, approximate=False)),
    (
        "gelu(approximate='tanh')",
        lambda x: A.gelu(x, approximate="tanh"),
        "jax.nn.gelu(approximate=True)",
        lambda x: jax.nn.gelu(x, approximate=True),
    ),
    *map(_jax_nn, ["silu", "mish", "softplus"]),
    _jax_nn("softsign", "soft_sign"),
    _jax_nn("hardtanh", "hard_tanh"),
    _jax_nn("hardsigmoid", "hard_sigmoid"),
    _jax_nn("hardswish", "hard_swish"),
    *map(_jax_nn, ["log_sigmoid", "softmax", "log_softmax", "glu"]),
    (
        "prelu",
        lambda x: A.prelu(x, jnp.full(x.shape[-1:], _PRELU_W, x.dtype)),
        "jnp.where(x > 0, x, w * x)",
        _prelu_ref,
    ),
]


def _fwd_bwd(f: Callable) -> Callable:
    """jit of ``(x, g) -> (f(x), vjp_f(x)(g))``: one forward and one backward pass."""

    def step(x, g):
        y, vjp = jax.vjp(f, x)
        return y, vjp(g)[0]

    return jax.jit(step)


def run(
    quick: bool = False,
    *,
    size: int | None = None,
    repeats: int | None = None,
    only: str | None = None,
) -> list[dict]:
    """Time every case; return rows ``name, value, unit, reference, ref_value, ratio``
    (and the A/A control of each reference against its own second compile).

    ``size`` (side of the square input) and ``repeats`` override the defaults
    (4096 and 15 rounds after 3 warm-up calls; quick: 64 and 3); ``only`` keeps the
    cases whose name contains it.
    """
    n = size or (64 if quick else 4096)
    repeats = repeats or (3 if quick else 15)
    x = jax.random.normal(jax.random.key(0), (n, n), jnp.float32) * 3
    rows = []
    for name, ours, ref_name, ref in CASES:
        if only is not None and only not in name:
            continue
        g = jnp.ones(jax.eval_shape(ours, x).shape, x.dtype)
        fns = {"ours": _fwd_bwd(ours)}
        if ref is not None:  # each _fwd_bwd is its own jit: the copy compiles again
            fns |= {H.REF: _fwd_bwd(ref), H.CONTROL: _fwd_bwd(ref)}
        timings = H.interleave(
            {k: partial(fn, x, g) for k, fn in fns.items()}, rounds=repeats, warmup=3
        )
        rows += H.time_rows(name, timings, ref_name or "none (no jax.nn equivalent)")
    return rows


if __name__ == "__main__":
    H.main(run, __doc__)
