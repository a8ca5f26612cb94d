"""PyTorch on the same CPU as the anchor, and the roofline of this machine.

Rows (float32 everywhere; torch on as many threads as JAX uses, ``torch.set_num_threads``
= the cores; the same batch and sizes on both sides; ``--quick``: tiny sizes):

* **Roofline** (facts, no comparison): memory bandwidth of a STREAM-like triad in XLA and
  in NumPy on all cores, and the matmul peak of a large ``jnp.dot`` (``_harness.roofline``).
* **AdamW step** on the optimizer bench's trees (16 leaves of 1M floats, 1000 of 64x64,
  2000 of 256): ``fdl.optim.adamw`` (its default: one jitted, donated step) against
  ``torch.optim.AdamW(fused=True)`` (the reference, with an A/A control: a second fused
  optimizer on its own copy of the arrays) and ``foreach=True``; each with the share of
  the measured bandwidth it reaches (7 arrays of the parameters' size move per step: read
  p, g, m, v; write p, m, v).
* **cross_entropy** [8192, 32000] forward + backward against ``F.cross_entropy`` +
  ``backward()``.
* **causal attention** forward + backward, batch 1, 8 heads, head dim 64, L = 512 ... 4096:
  ``scaled_dot_product_attention(is_causal=True)`` against torch's
  ``F.scaled_dot_product_attention(is_causal=True)`` (its CPU flash kernel); and, timed in
  the same rounds, a floor: the 7 block matmuls of our blockwise algorithm alone, in the
  same XLA loops and blocks (no softmax), to show how much of the step XLA's dots take.
* **train steps** (loss, gradients, Adam update): the MLP (784-512-512-10, batch 256), the
  CNN (conv-bn-relu-pool x2 on 28x28, batch 64) and the TransformerLM (d=256, 8 heads, 4
  layers, SwiGLU, RoPE, RMSNorm; 8x256 tokens) of ``bench_layers`` / ``bench_attention``,
  each in its library's native layout (NHWC here, NCHW in torch), against torch eager
  with ``torch.optim.Adam`` (its default implementation) and ``torch.compile`` of the
  model where it works here (its compile time apart). Each step also as achieved GFLOP/s
  (an analytic count of the matmul and convolution FLOPs, in the row's name) and its share
  of the measured matmul peak.

Every comparison is timed in interleaved rounds whose order rotates (each timed call right
after an untimed call of the same side: ``SETTLE``), with an A/A control
(the torch side run a second time on its own copy); rows give medians with the
interquartile range, compile time apart. Without torch every torch row says "not
installed".

    python bench/bench_torch.py [--quick] [--only adamw|cross_entropy|attention|train]
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from typing import Any

import _harness as H
import jax
import jax.numpy as jnp
import numpy as np
from _flops import cnn_flops as _cnn_flops
from _flops import lm_flops as _lm_flops
from _flops import lm_hidden
from _flops import mlp_flops as _mlp_flops

import functional_dl as fdl

F = fdl.nn.functional
KEY = jax.random.key(0)
TORCH_ADAMW = "torch.optim.AdamW(fused=True)"
TORCH_EAGER = "torch eager"
# Each timed call follows an untimed call of the same candidate: torch's OpenMP threads
# spin on after an op and slow down whatever runs next (a JAX step timed right after a
# torch step measured 7.1 ms against 4.7 ms after another JAX step); with the settling
# call every side is timed in its own steady state, as in a training loop.
SETTLE = 1


# ------------------------------------------------------------------------------ helpers
def _donated(step: Callable, *args: Any) -> tuple[Callable[[], Any], float]:
    """A zero-argument call that runs ``step`` (jitted, its first arguments but the last
    donated) on the values it returned last time, and the compile seconds."""
    n = len(args) - 1
    compiled, compile_s = H.compile_ahead(jax.jit(step, donate_argnums=tuple(range(n))), *args)
    live = list(args[:-1])
    last = args[-1]

    def call() -> Any:
        out = compiled(*live, last)
        live[:] = out[:n]
        return out

    jax.block_until_ready(call())
    return call, compile_s


def _none(fn: Callable[[], Any]) -> Callable[[], None]:
    """Torch calls return nothing to wait for (eager CPU work is synchronous)."""

    def call() -> None:
        fn()

    return call


def _bandwidth_facts(label: str, arrays_bytes: float, timings: H.Timings, roof: H.Roofline):
    rows = []
    for key, who in (("ours", "ours"), (H.REF, "torch fused")):
        rows.append(
            H.fact(
                f"{label} GB/s ({who}: 7 arrays moved per step)",
                arrays_bytes / timings.median(key) / 1e9,
                "GB/s",
                "measured bandwidth (best triad)",
                roof.bandwidth_gbs,
            )
        )
    return rows


# ------------------------------------------------------------------------------- AdamW
def _adamw_rows(torch: Any, quick: bool, roof: H.Roofline) -> list[dict]:
    trees = {"8x1k": (8, (1024,))} if quick else {
        "16x1M": (16, (1_000_000,)), "1000x64x64": (1000, (64, 64)), "2000x256": (2000, (256,))
    }  # fmt: skip
    rows = []
    for tree, (n, shape) in trees.items():
        label = f"adamw {tree} step"
        if torch is None:
            rows.append(H.not_installed(label, "ms", TORCH_ADAMW))
            continue
        rng = np.random.default_rng(0)
        p0 = [rng.standard_normal(shape, np.float32) for _ in range(n)]
        g0 = [rng.standard_normal(shape, np.float32) for _ in range(n)]
        params = {f"p{i:04d}": jnp.asarray(x) for i, x in enumerate(p0)}
        grads = {f"p{i:04d}": jnp.asarray(x) for i, x in enumerate(g0)}
        opt = fdl.optim.adamw(1e-3, weight_decay=1e-2)

        def step(params, state, grads, opt=opt):
            updates, state = opt.update(grads, state, params)
            return fdl.optim.apply_updates(params, updates), state

        ours, compile_s = _donated(step, params, opt.init(params), grads)

        def torch_step(p0=p0, g0=g0, **kind: bool) -> Callable[[], None]:
            ps = [torch.tensor(x, requires_grad=True) for x in p0]
            for p, g in zip(ps, g0, strict=True):
                p.grad = torch.tensor(g)
            topt = torch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2, **kind)
            topt.step()  # state allocated, as ours after its warm-up step
            return _none(topt.step)

        calls = {
            "ours": ours,
            H.REF: torch_step(fused=True),
            H.CONTROL: torch_step(fused=True),
            "foreach": torch_step(foreach=True),
        }
        timings = H.interleave(calls, rounds=3 if quick else 12, warmup=1, settle=SETTLE)
        rows += H.time_rows(label, timings, TORCH_ADAMW, compile_s=compile_s)
        rows += H.time_rows(
            label, timings, "torch.optim.AdamW(foreach=True)", ref="foreach", control=False
        )
        rows += _bandwidth_facts(label, 7 * 4 * n * int(np.prod(shape)), timings, roof)
    return rows


# ------------------------------------------------------------------------ cross-entropy
def _cross_entropy_rows(torch: Any, quick: bool) -> list[dict]:
    n, c = (64, 1000) if quick else (8192, 32000)
    label = f"cross_entropy [{n}, {c}] fwd+bwd"
    ref_name = "torch F.cross_entropy + backward"
    if torch is None:
        return [H.not_installed(label, "ms", ref_name)]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c), np.float32)
    y = rng.integers(0, c, n)
    grad = jax.jit(jax.value_and_grad(fdl.losses.cross_entropy))
    compiled, compile_s = H.compile_ahead(grad, jnp.asarray(x), jnp.asarray(y))
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y)

    def torch_call() -> None:
        tx.grad = None
        torch.nn.functional.cross_entropy(tx, ty).backward()

    calls = {"ours": lambda: compiled(xj, yj), H.REF: torch_call, H.CONTROL: torch_call}
    timings = H.interleave(calls, rounds=3 if quick else 10, warmup=1, settle=SETTLE)
    return H.time_rows(label, timings, ref_name, compile_s=compile_s)


# ---------------------------------------------------------------------------- attention
def _block_size(length: int) -> int:
    """The blockwise path's default block length (``max(Lq, Lk) / 8`` as a power of two
    in [64, 256]: the docstring of ``scaled_dot_product_attention``)."""
    return min(256, max(64, 2 ** int(np.log2(max(length, 8) // 8))))


def _dot_floor(length: int) -> Callable:
    """Only the matmuls of causal blockwise attention fwd+bwd, in the same XLA loops and
    blocks as ours (no softmax, masking or scaling): 2 per visible block forward
    (``q k^T``, ``p v``), 5 backward (``q k^T``, ``g v^T``, ``p^T g``, ``ds^T q``,
    ``ds k``). Its time is a floor for any blockwise algorithm built from XLA's dots."""
    b = _block_size(length)
    n = length // b
    mm = jnp.einsum

    def forward(q, k, v):
        def q_block(i):
            qi = jax.lax.dynamic_slice_in_dim(q, i * b, b, 2)

            def body(j, acc):
                kj = jax.lax.dynamic_slice_in_dim(k, j * b, b, 2)
                vj = jax.lax.dynamic_slice_in_dim(v, j * b, b, 2)
                return acc + mm("...qk,...kd->...qd", mm("...qd,...kd->...qk", qi, kj), vj)

            return jax.lax.fori_loop(0, i + 1, body, jnp.zeros_like(qi))

        return jax.lax.map(q_block, jnp.arange(n))

    def backward(q, k, v, g):
        def k_block(dq, j):
            kj = jax.lax.dynamic_slice_in_dim(k, j * b, b, 2)
            vj = jax.lax.dynamic_slice_in_dim(v, j * b, b, 2)

            def body(i, carry):
                dq, dk, dv = carry
                qi = jax.lax.dynamic_slice_in_dim(q, i * b, b, 2)
                gi = jax.lax.dynamic_slice_in_dim(g, i * b, b, 2)
                s = mm("...qd,...kd->...qk", qi, kj)
                dp = mm("...qd,...kd->...qk", gi, vj)
                dv = dv + mm("...kq,...qd->...kd", jnp.swapaxes(s, -1, -2), gi)
                dk = dk + mm("...kq,...qd->...kd", jnp.swapaxes(dp, -1, -2), qi)
                dqi = jax.lax.dynamic_slice_in_dim(dq, i * b, b, 2)
                dqi = dqi + mm("...qk,...kd->...qd", dp, kj)
                return jax.lax.dynamic_update_slice_in_dim(dq, dqi, i * b, 2), dk, dv

            zeros = jnp.zeros_like(kj)
            dq, dk, dv = jax.lax.fori_loop(j, n, body, (dq, zeros, zeros))
            return dq, (dk, dv)

        return jax.lax.scan(k_block, jnp.zeros_like(q), jnp.arange(n))

    return jax.jit(lambda q, k, v, g: (forward(q, k, v), backward(q, k, v, g)))


def _attention_rows(torch: Any, quick: bool) -> list[dict]:
    ref_name = "torch F.scaled_dot_product_attention(is_causal=True)"
    heads, dim = 8, 64

    def fwd_bwd(q, k, v, g):
        out, vjp = jax.vjp(
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v
        )
        return out, vjp(g)

    ours = jax.jit(fwd_bwd)
    rows = []
    for length in (64, 128) if quick else (512, 1024, 2048, 4096):
        label = f"causal attention fwd+bwd L={length}"
        if torch is None:
            rows.append(H.not_installed(label, "ms", ref_name))
            continue
        rng = np.random.default_rng(length)
        arrays = [rng.standard_normal((1, heads, length, dim), np.float32) for _ in range(4)]
        compiled, compile_s = H.compile_ahead(ours, *map(jnp.asarray, arrays))
        jargs = [jnp.asarray(a) for a in arrays]

        def torch_call(arrays=arrays) -> Callable[[], None]:
            q, k, v = (torch.tensor(a, requires_grad=True) for a in arrays[:3])
            g = torch.tensor(arrays[3])

            def call() -> None:
                for t in (q, k, v):
                    t.grad = None
                torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).backward(
                    g
                )

            return call

        dots, _ = H.compile_ahead(_dot_floor(length), *jargs)
        calls = {
            "ours": lambda c=compiled, a=jargs: c(*a),
            H.REF: torch_call(),
            H.CONTROL: torch_call(),
            "dots": lambda c=dots, a=jargs: c(*a),
        }
        rounds = 3 if quick else (10 if length <= 1024 else 6)
        timings = H.interleave(calls, rounds=rounds, warmup=1, settle=SETTLE)
        rows += H.time_rows(label, timings, ref_name, compile_s=compile_s)
        rows += H.time_rows(
            f"{label} XLA dot floor (the blockwise path's matmuls alone, block "
            f"{_block_size(length)})",
            timings,
            ref_name,
            ours="dots",
            control=False,
            bound=True,  # a floor, not a comparison: left out of the summary
        )
    return rows


# -------------------------------------------------------------------------- train steps
def _our_train_step(model: fdl.nn.Layer, x: jax.Array, y: jax.Array, loss: Callable):
    opt = fdl.optim.adam(1e-3)
    params, state = model.init(KEY, x.shape if x.dtype != jnp.int32 else None)

    def step(params, state, opt_state, batch):
        def objective(p):
            out, new_state = model.apply(p, state, batch[0], train=True)
            return loss(out, batch[1]), new_state

        (value, state), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return fdl.optim.apply_updates(params, updates), state, opt_state, value

    return _donated(step, params, state, opt.init(params), (x, y))


def _torch_models(torch: Any, quick: bool) -> dict[str, tuple]:
    nn = torch.nn
    tF = torch.nn.functional

    class Block(nn.Module):
        def __init__(self, d: int, heads: int, hidden: int):
            super().__init__()
            self.heads = heads
            self.norm1, self.norm2 = nn.RMSNorm(d, eps=1e-6), nn.RMSNorm(d, eps=1e-6)
            self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
            self.gate = nn.Linear(d, hidden, bias=False)
            self.up = nn.Linear(d, hidden, bias=False)
            self.down = nn.Linear(hidden, d, bias=False)

        def forward(self, x, cos, sin):
            b, length, d = x.shape
            qkv = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, d // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, L, hd]

            def rope(t):
                a, c = t.chunk(2, dim=-1)
                return torch.cat([a * cos - c * sin, a * sin + c * cos], dim=-1)

            o = tF.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True)
            x = x + self.out(o.transpose(1, 2).reshape(b, length, d))
            h = self.norm2(x)
            return x + self.down(tF.silu(self.gate(h)) * self.up(h))

    class LM(nn.Module):
        def __init__(self, vocab: int, d: int, heads: int, layers: int, hidden: int):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            self.blocks = nn.ModuleList(Block(d, heads, hidden) for _ in range(layers))
            self.norm = nn.RMSNorm(d, eps=1e-6)
            self.head = nn.Linear(d, vocab, bias=False)
            hd = d // heads
            inv = 10000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
            self.register_buffer("inv", inv)

        def forward(self, tokens):
            ang = torch.arange(tokens.shape[1], dtype=torch.float32)[:, None] * self.inv
            cos, sin = ang.cos(), ang.sin()
            x = self.embed(tokens)
            for block in self.blocks:
                x = block(x, cos, sin)
            return self.head(self.norm(x))

    mlp_n, hidden = (8, 16) if quick else (256, 512)
    cnn_n, hw, width = (4, 8, 4) if quick else (64, 28, 16)
    lm = dict(vocab=64, d=32, heads=4, layers=2, batch=2, length=32) if quick else dict(
        vocab=1024, d=256, heads=8, layers=4, batch=8, length=256
    )  # fmt: skip
    hidden_lm = lm_hidden(lm["d"])
    cnn_layers: list[Any] = []
    for cin, cout in ((1, width), (width, 2 * width)):
        cnn_layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                       nn.MaxPool2d(2)]  # fmt: skip
    return {
        f"MLP train step (784-{hidden}-{hidden}-10, batch {mlp_n})": (
            lambda: nn.Sequential(
                nn.Linear(784, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 10),
            ),  # fmt: skip
            (mlp_n, 784),
            None,
            _mlp_flops(mlp_n, [784, hidden, hidden, 10]),
        ),
        f"CNN train step (conv-bn-relu-pool x2, {hw}x{hw}, batch {cnn_n})": (
            lambda: nn.Sequential(
                *copy.deepcopy(cnn_layers), nn.Flatten(), nn.Linear(2 * width * (hw // 4) ** 2, 10)
            ),  # fmt: skip
            (cnn_n, hw, hw, 1),
            None,
            _cnn_flops(cnn_n, hw, width),
        ),
        f"TransformerLM train step (d={lm['d']}, {lm['layers']} layers, "
        f"{lm['batch']}x{lm['length']} tokens)": (
            lambda: LM(lm["vocab"], lm["d"], lm["heads"], lm["layers"], hidden_lm),
            (lm["batch"], lm["length"]),
            lm,
            _lm_flops(lm["batch"], lm["length"], lm["vocab"], lm["d"], lm["layers"], hidden_lm),
        ),
    }


def _our_model(name: str, quick: bool, lm: dict | None) -> fdl.nn.Layer:
    nn = fdl.nn
    if lm is not None:
        return nn.TransformerLM(lm["vocab"], lm["d"], lm["heads"], lm["layers"])
    if name.startswith("MLP"):
        hidden = 16 if quick else 512
        return nn.Sequential(nn.Linear(hidden), nn.ReLU(), nn.Linear(hidden), nn.ReLU(),
                             nn.Linear(10))  # fmt: skip
    width, layers = (4 if quick else 16), []
    for ch in (width, 2 * width):
        layers += [nn.Conv2d(ch, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(10))


def _train_rows(torch: Any, quick: bool, roof: H.Roofline, compile_torch: bool) -> list[dict]:
    rows: list[dict] = []
    if torch is None:
        for name in ("MLP train step", "CNN train step", "TransformerLM train step"):
            rows.append(H.not_installed(name, "ms", TORCH_EAGER))
        return rows
    tF = torch.nn.functional
    for name, (build, shape, lm, flops) in _torch_models(torch, quick).items():
        rng = np.random.default_rng(0)
        if lm is not None:
            tokens = rng.integers(0, lm["vocab"], (shape[0], shape[1] + 1)).astype(np.int32)
            x, y = tokens[:, :-1], tokens[:, 1:]
            tx, ty = torch.tensor(x, dtype=torch.long), torch.tensor(y, dtype=torch.long)

            def t_loss(out, ty):
                return tF.cross_entropy(out.reshape(-1, out.shape[-1]), ty.reshape(-1))

        else:
            x = rng.standard_normal(shape, np.float32)
            y = (np.arange(shape[0]) % 10).astype(np.int32)
            tx = torch.tensor(np.moveaxis(x, -1, 1).copy() if x.ndim == 4 else x)
            ty = torch.tensor(y, dtype=torch.long)
            t_loss = tF.cross_entropy
        model = _our_model(name, quick, lm)
        ours, compile_s = _our_train_step(
            model, jnp.asarray(x), jnp.asarray(y), fdl.losses.cross_entropy
        )

        def torch_step(module: Any, tx=tx, ty=ty, t_loss=t_loss) -> Callable[[], None]:
            opt = torch.optim.Adam(module.parameters(), lr=1e-3)

            def call() -> None:
                opt.zero_grad(set_to_none=True)
                t_loss(module(tx), ty).backward()
                opt.step()

            return call

        torch.manual_seed(0)
        base = build()
        calls = {"ours": ours, H.REF: torch_step(base), H.CONTROL: torch_step(copy.deepcopy(base))}
        compiled_note = None
        if compile_torch:
            try:
                compiled_step = torch_step(torch.compile(copy.deepcopy(base)))
                torch_compile_s = H.time_call(compiled_step)[0]  # compiles
                calls["torch.compile"] = compiled_step
            except Exception as exc:  # no compiler toolchain, unsupported op ...
                compiled_note = f"torch.compile failed here: {type(exc).__name__}: {exc}"[:200]
        timings = H.interleave(calls, rounds=3 if quick else 10, warmup=2, settle=SETTLE)
        rows += H.time_rows(name, timings, f"{TORCH_EAGER} (torch.optim.Adam)", compile_s=compile_s)
        if "torch.compile" in calls:
            rows += H.time_rows(name, timings, "torch.compile (model) + torch.optim.Adam",
                                ref="torch.compile", control=False, compile_s=compile_s,
                                ref_compile_s=torch_compile_s)  # fmt: skip
        elif compile_torch:
            rows.append(H.row(name, timings.median("ours") * 1e3, "ms", "torch.compile", None,
                              note=compiled_note))  # fmt: skip
        who = (("ours", "ours"), (H.REF, "torch eager"))
        rows += H.gflops_facts(name, flops, timings, roof, who)
    return rows


# ---------------------------------------------------------------------------------- run
def run(quick: bool = False, *, only: str | None = None, compile_torch: bool = True) -> list[dict]:
    """The roofline rows, then every torch comparison (``only``: the group of that name:
    ``adamw``, ``cross_entropy``, ``attention`` or ``train``)."""
    torch = H.torch_or_none()
    roof = H.roofline(quick)
    rows = roof.rows()
    groups = {
        "adamw": lambda: _adamw_rows(torch, quick, roof),
        "cross_entropy": lambda: _cross_entropy_rows(torch, quick),
        "attention": lambda: _attention_rows(torch, quick),
        "train": lambda: _train_rows(torch, quick, roof, compile_torch and not quick),
    }
    for name, group in groups.items():
        if only is None or only == name:
            rows += group()
    return rows


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", choices=["adamw", "cross_entropy", "attention", "train"])
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")


if __name__ == "__main__":
    H.main(
        run,
        __doc__,
        options=_options,
        kwargs=lambda a: dict(only=a.only, compile_torch=not a.no_compile),
    )
