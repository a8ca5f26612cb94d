"""Causal attention and a TransformerLM train step, against jax.nn and flax.

Cases (float32, ``jit``; ``--quick``: tiny sizes):
  * causal self-attention forward + backward (vjp w.r.t. q, k, v), batch 1, 8 heads,
    head dim 64, at sequence lengths 512 ... 8192: ``scaled_dot_product_attention``
    (its automatic path: blockwise for these lengths, skipping the masked blocks, O(L)
    memory) against ``jax.nn.dot_product_attention(is_causal=True)`` (XLA: the full
    L x L score matrix), plus the peak temporary memory of each compiled step (XLA's
    buffer assignment, ``memory_analysis()``). The two are different algorithms: this is
    what a user would otherwise pick, not a like-for-like kernel comparison (that one is
    ``bench_torch``: torch's CPU flash kernel);
  * the same lengths, fwd+bwd and forward only, against a chunked reference of the same
    algorithm written here in plain JAX (:func:`chunked_causal_attention`: blockwise
    online softmax over key blocks with a running max and sum, key blocks above the
    diagonal skipped, the same block size as ours, O(L) memory; its backward is
    ``jax.grad`` through a ``jax.checkpoint`` per query block). It is checked once per
    length (outside the timing) to agree with ours to 1e-4. A fairness reference, not a
    target: it shows what the same algorithm costs when written the textbook way, timed
    in rounds of its own (ours again) with an A/A control (the reference compiled a
    second time). At the ``--quick`` length (below 256) ours takes its plain path;
  * sequence length 32768, ours only (timed once; the reference would need a 32 GiB
    score matrix), with its peak memory against a 16 GiB budget;
  * a TransformerLM train step (loss, gradients, Adam) against the same architecture
    written with ``flax.linen`` (``optax.adam`` for both, so only the model differs),
    with the achieved GFLOP/s of both sides (an analytic count, ``bench/_flops.py``)
    as a share of the measured matmul peak (facts, not comparisons).
The sides are timed in interleaved rounds whose order rotates, so that all see the same
machine load; the train step also times an A/A control (the flax step built and compiled
a second time), the chunked-reference rows one of that reference. Reported: median
milliseconds / MiB and ``ratio = ours / reference`` (lower is better).

    python bench/bench_attention.py [--quick]
"""

from __future__ import annotations

import argparse
import math
from functools import partial

import _harness as H
import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _flops import lm_flops, lm_hidden
from jax import lax

import functional_dl as fdl

F = fdl.nn.functional
KEY = jax.random.key(0)
HEADS, HEAD_DIM = 8, 64


# ------------------------------------------------------------------------ attention
def _fwd_bwd(f):
    """jit of ``(q, k, v, g) -> (out, (dq, dk, dv))``."""

    def step(q, k, v, g):
        out, vjp = jax.vjp(f, q, k, v)
        return out, vjp(g)

    return jax.jit(step)


def _ours(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _attention_steps():
    """jit of ``(q, k, v, g) -> (out, dq, dk, dv)``, ours ``[B, H, L, D]`` and jax.nn's
    ``[B, L, H, D]``."""
    ref = _fwd_bwd(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True))
    return _fwd_bwd(_ours), ref


def _chunked_steps(length: int):
    """jit of the chunked reference at ``length`` (its block size): fwd+bwd and forward
    only (``(q, k, v, g) -> out``); each call builds new ones (a separate compile)."""
    block = block_size_for(length)

    def f(q, k, v):
        return chunked_causal_attention(q, k, v, block)

    return _fwd_bwd(f), jax.jit(lambda q, k, v, g: f(q, k, v))


def _peak_mib(fn, args) -> float:
    """Temporary + output bytes of the compiled ``fn(*args)`` (its working memory)."""
    compiled = H.compile_ahead(fn, *args)[0] if hasattr(fn, "lower") else fn
    return H.memory(compiled).working / H.MIB


def _qkvg(length: int, layout: str):
    shape = (1, HEADS, length, HEAD_DIM) if layout == "bhld" else (1, length, HEADS, HEAD_DIM)
    r = np.random.default_rng(length)
    return tuple(jnp.asarray(r.standard_normal(shape), jnp.float32) for _ in range(4))


# ------------------------------------------------------------- chunked reference
CHUNKED = "chunked"  # the chunked reference's name among the timed candidates
CHUNKED_REF = "chunked reference (same algorithm, plain JAX)"
CHUNKED_NOTE = (
    "a fairness reference, not a target: the same blockwise algorithm written the "
    "textbook way in this script, same block size"
)


def block_size_for(length: int) -> int:
    """The block length ``scaled_dot_product_attention`` documents as its default:
    ``L / 8`` rounded down to a power of two, clipped to [64, 256]."""
    return int(min(256, max(64, 2 ** int(math.log2(max(length, 8) // 8)))))


def chunked_causal_attention(q, k, v, block: int):
    """Causal attention ``[..., L, D]`` by the textbook blockwise online softmax.

    For each query block ``i`` (``lax.map``), a scan over the key blocks ``j`` keeps the
    running row maximum ``m``, sum ``l`` and unnormalised output ``acc``::

        s = q_i k_j^T / sqrt(D)  (keys after the query: -inf)
        m' = max(m, rowmax(s)),  p = exp(s - m'),  c = exp(m - m')
        l' = c l + rowsum(p),    acc' = c acc + p v_j,     out_i = acc / l

    and skips (``lax.cond``) the key blocks above the diagonal (``j > i``). The result
    does not depend on ``m`` (it cancels), so ``m`` is a ``stop_gradient`` constant for
    ``jax.grad``; each query block is a ``jax.checkpoint``, so the backward recomputes
    its scan and memory stays O(L * block). ``L`` must be a multiple of ``block``.
    """
    *batch, length, d = q.shape
    block = min(block, length)
    if length % block:
        raise ValueError(f"length {length} is not a multiple of block={block}")
    n, scale = length // block, 1.0 / math.sqrt(d)

    def blocks(x):  # [..., L, E] -> [n, ..., block, E]
        return jnp.moveaxis(x.reshape(*batch, n, block, x.shape[-1]), -3, 0)

    qb, kb, vb = blocks(q), blocks(k), blocks(v)
    on_or_below = jnp.arange(block)[None, :] <= jnp.arange(block)[:, None]  # key <= query

    @jax.checkpoint
    def query_block(i, qi):
        def visit(carry, j):
            m, l, acc = carry
            s = jnp.einsum("...qd,...kd->...qk", qi, kb[j]) * scale
            s = jnp.where((j < i) | on_or_below, s, -jnp.inf)
            m_new = lax.stop_gradient(jnp.maximum(m, jnp.max(s, axis=-1)))
            p = jnp.exp(s - m_new[..., None])
            c = jnp.exp(m - m_new)
            pv = jnp.einsum("...qk,...kd->...qd", p, vb[j])
            return m_new, c * l + jnp.sum(p, axis=-1), c[..., None] * acc + pv

        def step(carry, j):
            return lax.cond(j <= i, visit, lambda c, _: c, carry, j), None

        init = (
            jnp.full((*batch, block), -jnp.inf, q.dtype),
            jnp.zeros((*batch, block), q.dtype),
            jnp.zeros((*batch, block, v.shape[-1]), q.dtype),
        )
        (_, l, acc), _ = lax.scan(step, init, jnp.arange(n))
        return acc / l[..., None]

    out = lax.map(lambda a: query_block(*a), (jnp.arange(n), qb))
    return jnp.moveaxis(out, 0, -3).reshape(*batch, length, v.shape[-1])


def _max_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- models
def _rope_half(x, theta=10000.0):
    """RoPE, 'half' layout, on ``[B, L, H, D]`` (the flax side's own copy)."""
    d = x.shape[-1]
    inv = theta ** (-jnp.arange(0, d, 2, dtype=jnp.float32) / d)
    ang = jnp.arange(x.shape[1], dtype=jnp.float32)[:, None] * inv[None, :]  # (L, D/2)
    cos, sin = jnp.cos(ang)[None, :, None], jnp.sin(ang)[None, :, None]
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return jnp.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


class _FlaxBlock(fnn.Module):
    d: int
    heads: int
    hidden: int

    @fnn.compact
    def __call__(self, x):
        bsz, length, _ = x.shape
        hd = self.d // self.heads
        h = fnn.RMSNorm(epsilon=1e-6)(x)
        qkv = fnn.Dense(3 * self.d, use_bias=False)(h).reshape(bsz, length, 3, self.heads, hd)
        q, k, v = _rope_half(qkv[:, :, 0]), _rope_half(qkv[:, :, 1]), qkv[:, :, 2]
        o = jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(bsz, length, self.d)
        x = x + fnn.Dense(self.d, use_bias=False)(o)
        h = fnn.RMSNorm(epsilon=1e-6)(x)
        gate = fnn.Dense(self.hidden, use_bias=False)(h)
        up = fnn.Dense(self.hidden, use_bias=False)(h)
        return x + fnn.Dense(self.d, use_bias=False)(jax.nn.silu(gate) * up)


class _FlaxLM(fnn.Module):
    vocab: int
    d: int
    heads: int
    layers: int
    hidden: int

    @fnn.compact
    def __call__(self, tokens):
        x = fnn.Embed(self.vocab, self.d)(tokens)
        for _ in range(self.layers):
            x = _FlaxBlock(self.d, self.heads, self.hidden)(x)
        return fnn.Dense(self.vocab, use_bias=False)(fnn.RMSNorm(epsilon=1e-6)(x))


def _lm_steps(vocab, d, heads, layers, batch, length):
    """Train steps ``(params, opt_state, tokens) -> (params, opt_state, loss)``, both sides."""
    opt = optax.adam(1e-3)
    ours = fdl.nn.TransformerLM(vocab, d, heads, layers)
    flax_model = _FlaxLM(vocab, d, heads, layers, lm_hidden(d))

    def make(apply):
        def loss(params, tokens):
            logits = apply(params, tokens[:, :-1])
            return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

        def step(params, opt_state, tokens):
            value, grads = jax.value_and_grad(loss)(params, tokens)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        return jax.jit(step)

    tokens = jax.random.randint(KEY, (batch, length + 1), 0, vocab)
    params, _ = ours.init(KEY, None)
    f_params = flax_model.init(KEY, tokens[:, :-1])["params"]
    ours_step = make(lambda p, t: ours.apply(p, {}, t)[0])
    ref_step = make(lambda p, t: flax_model.apply({"params": p}, t))
    return (
        ours_step,
        (params, opt.init(params), tokens),
        ref_step,
        (f_params, opt.init(f_params), tokens),
    )


def _compare(calls: dict[str, tuple], repeats: int) -> H.Timings:
    """``name -> (fn, args)`` timed in rotated rounds after one warm-up call each
    (a single round for the slowest sizes: a warm-up call over 20 s; the row says so)."""
    return H.interleave(
        {k: partial(fn, *args) for k, (fn, args) in calls.items()},
        rounds=repeats,
        slow_s=20.0,
    )


def _noted(rows: list[dict], note: str) -> list[dict]:
    """``rows`` with ``note`` joined to the note each may already carry."""
    for r in rows:
        r["note"] = "; ".join(filter(None, (r.get("note"), note)))
    return rows


def run(
    quick: bool = False,
    *,
    repeats: int | None = None,
    long: bool | None = None,
    only_long: bool = False,
) -> list[dict]:
    """Time every case; return rows ``name, value, unit, reference, ref_value, ratio``.

    ``repeats``: timed rounds per case (10, 5 from L=4096; quick: 2; a single one where a
    warm-up call took over 20 s, with a note).
    ``long``: include the single 32768-token run (default: not quick); ``only_long``:
    nothing else.
    """
    repeats = repeats or (2 if quick else 10)
    long = (not quick) if long is None else long
    lengths = (128,) if quick else (512, 1024, 2048, 4096, 8192)
    if only_long:
        lengths, long = (), True
    ours, ref = _attention_steps()
    ours_fwd = jax.jit(lambda q, k, v, g: _ours(q, k, v))
    rows = []
    ref_name = "jax.nn.dot_product_attention"
    for length in lengths:
        a, b = _qkvg(length, "bhld"), _qkvg(length, "blhd")
        chunked, chunked_fwd = _chunked_steps(length)
        control, control_fwd = _chunked_steps(length)  # compiled a second time
        name = f"causal attention fwd+bwd L={length}"
        rounds = repeats if length < 4096 else min(repeats, 5)  # >= 5 samples, bounded time
        timings = _compare({"ours": (ours, a), H.REF: (ref, b)}, rounds)
        jax_rows = H.time_rows(name, timings, ref_name)
        compiled = {"compile_s": jax_rows[0]["compile_s"]}  # ours compiled in these rounds
        rows += jax_rows
        # the chunked reference in rounds of its own: jax.nn's slow calls at L=8192 would
        # cut them to a single round
        timings = _compare({"ours": (ours, a), CHUNKED: (chunked, a), H.CONTROL: (control, a)},
                           rounds)  # fmt: skip
        agree = _max_diff(jax.tree.leaves(ours(*a)), jax.tree.leaves(chunked(*a)))
        if not agree <= 1e-4:  # checked once per length, outside the timing
            raise RuntimeError(f"L={length}: chunked reference differs by {agree:.3g}")
        note = f"{CHUNKED_NOTE} ({block_size_for(length)}); max |diff| {agree:.1e}"
        rows += _noted(H.time_rows(name, timings, CHUNKED_REF, ref=CHUNKED, **compiled), note)
        peak = _peak_mib(ours, a)
        rows.append(H.row(f"{name} peak memory", peak, "MiB", ref_name, _peak_mib(ref, b)))
        rows.append(
            H.row(f"{name} peak memory", peak, "MiB", CHUNKED_REF, _peak_mib(chunked, a),
                  note=CHUNKED_NOTE)
        )  # fmt: skip
        calls = {"ours": (ours_fwd, a), CHUNKED: (chunked_fwd, a), H.CONTROL: (control_fwd, a)}
        timings = _compare(calls, rounds)
        fwd_rows = H.time_rows(f"causal attention fwd L={length}", timings, CHUNKED_REF,
                               ref=CHUNKED)  # fmt: skip
        rows += _noted(fwd_rows, note)
    if long:
        a = _qkvg(32768, "bhld")
        compiled = H.compile_ahead(ours, *a)[0]  # one single (timed) run below
        rows.append(
            H.row(
                "causal attention fwd+bwd L=32768 peak memory",
                _peak_mib(compiled, a),
                "MiB",
                "16 GiB budget",
                16384.0,
                bound=True,  # a budget, not a comparison
            )
        )
        rows.append(
            H.row(
                "causal attention fwd+bwd L=32768",
                1e3 * H.time_call(partial(compiled, *a))[0],
                "ms",
                "none (reference needs a 32 GiB score matrix)",
                None,
                samples=1,
                note="a single timed call after compiling (it takes over a minute)",
            )
        )
    if only_long:
        return rows
    cfg = (
        dict(vocab=64, d=32, heads=4, layers=2, batch=2, length=32)
        if quick
        else dict(vocab=1024, d=256, heads=8, layers=4, batch=8, length=256)
    )
    o, oa, r, ra = _lm_steps(**cfg)
    control = _lm_steps(**cfg)[2]  # the flax step built and compiled a second time
    timings = _compare({"ours": (o, oa), H.REF: (r, ra), H.CONTROL: (control, ra)}, repeats)
    name = (
        f"TransformerLM train step (d={cfg['d']}, {cfg['layers']} layers, "
        f"{cfg['batch']}x{cfg['length']} tokens)"
    )
    rows += H.time_rows(name, timings, "flax.linen")
    flops = lm_flops(cfg["batch"], cfg["length"], cfg["vocab"], cfg["d"], cfg["layers"],
                     lm_hidden(cfg["d"]))  # fmt: skip
    rows += H.gflops_facts(
        name, flops, timings, H.roofline(quick), (("ours", "ours"), (H.REF, "flax.linen"))
    )
    return rows


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-long", action="store_true", help="skip the 32768-token run")
    parser.add_argument("--only-long", action="store_true", help="only the 32768-token run")


if __name__ == "__main__":
    H.main(
        run,
        __doc__,
        options=_options,
        kwargs=lambda a: dict(long=False if a.no_long else None, only_long=a.only_long),
    )
