"""bench/_harness.py and the torch bench: spread, facts, roofline arithmetic, FLOP counts,
"not installed" rows, the RESULTS.md columns. Nothing here is timed for its value."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from functional_dl import _bench

ROOT = Path(__file__).resolve().parent.parent
H = _bench._load(ROOT / "bench" / "_harness.py")


def _timings(values: dict[str, list[float]], first: dict[str, float] | None = None):
    t = H.Timings()
    for name, seconds in values.items():
        for s in seconds:
            t.add(name, s, s)
    t.first.update(first or {})
    return t


def test_time_rows_carry_quartiles_samples_and_compile_time():
    t = _timings(
        {"ours": [1.0, 2.0, 3.0, 4.0, 5.0], H.REF: [2.0, 4.0, 6.0, 8.0, 10.0], H.CONTROL: [6.0]},
        first={"ours": 10.0},
    )
    ours, control = H.time_rows("case", t, "ref", unit="s")
    assert ours["value"] == 3.0 and ours["ref_value"] == 6.0 and ours["ratio"] == 0.5
    q1, q3 = np.percentile([1, 2, 3, 4, 5], [25, 75])  # inclusive quartiles
    assert ours["spread"] == f"{q1:.4g}-{q3:.4g}" and ours["ref_spread"] == "4-8"
    assert ours["samples"] == 5 and "note" not in ours
    assert ours["compile_s"] == 10.0 - 3.0  # first call less one median step
    assert control["control"] and control["samples"] == 1 and "1 timed call" in control["note"]
    # an explicit compile time (compiled ahead) wins over the first-call estimate
    assert H.time_rows("c", t, "r", compile_s=0.25, control=False)[0]["compile_s"] == 0.25


def test_interleave_records_the_first_warm_up_call():
    t = H.interleave({"a": int, "b": int}, rounds=2, warmup=2)
    assert set(t.first) == {"a", "b"} and len(t.wall["a"]) == 2


def test_interleave_settles_each_timed_call_with_an_untimed_call_of_the_same_candidate():
    log: list[str] = []
    calls = {name: (lambda name=name: log.append(name)) for name in ("a", "b")}
    timings = H.interleave(calls, rounds=3, warmup=1, settle=1)
    assert len(timings.wall["a"]) == len(timings.wall["b"]) == 3
    timed = log[2:]  # after one warm-up call each: pairs of the same candidate
    assert len(timed) == 3 * 2 * 2
    assert all(x == y for x, y in zip(timed[0::2], timed[1::2], strict=True)), timed
    assert timed[0::2] == ["a", "b", "b", "a", "a", "b"]  # the order still rotates


def test_facts_are_no_comparison_and_read_as_shares():
    bandwidth = H.fact("adam GB/s", 5.0, "GB/s", "measured bandwidth", 20.0)
    assert bandwidth["bound"] and bandwidth["better"] == "higher" and bandwidth["ratio"] == 0.25
    assert H.fact_text(bandwidth) == "25.0% of measured bandwidth"
    floor = H.row("floor", 1.0, "ms", "optax", 4.0, bound=True)
    assert "0.25x optax" in H.fact_text(floor) and "not a comparison" in H.fact_text(floor)
    assert H.fact_text(H.row("x", 1.0, "ms", "optax", 2.0)) is None
    missing = H.not_installed("adamw step", "ms", "torch.optim.AdamW")
    assert missing["value"] is None and missing["ratio"] is None
    assert "not installed" in missing["reference"] and missing["note"] == "not installed"


def test_print_table_shows_load_spread_facts_and_leaves_facts_out_of_the_summary(capsys):
    t = _timings({"ours": [1e-3] * 5, H.REF: [2e-3] * 5, H.CONTROL: [2e-3] * 5})
    rows = [
        *H.time_rows("case", t, "ref"),
        H.fact("bw", 1.0, "GB/s", "measured bandwidth", 4.0),
        H.not_installed("torch case", "ms", "torch"),
    ]
    H.print_table(rows)
    out = capsys.readouterr().out
    assert out.startswith("backend: ") and "load average" in out
    assert "25.0% of measured bandwidth" in out and "not installed" in out
    assert "ms: geometric-mean ratio 0.500" in out and "GB/s: geometric" not in out


def test_numpy_triad_adds_s_times_c_in_place_on_threads():
    rng = np.random.default_rng(0)
    b, c = rng.standard_normal(200_003, np.float32), rng.standard_normal(200_003, np.float32)
    for threads in (1, 3):
        a = b.copy()
        H._numpy_triad(a, c, 3.0, threads)
        np.testing.assert_allclose(a, b + np.float32(3.0) * c, rtol=1e-6)


def test_roofline_rows_are_facts_and_bandwidth_is_the_best_of_both():
    roof = H.Roofline(10.0, 12.0, 200.0, 2048, 1 << 25)
    assert roof.bandwidth_gbs == 12.0
    rows = roof.rows()
    assert [r["unit"] for r in rows] == ["GB/s", "GB/s", "GFLOP/s"]
    assert all(r["bound"] and r["better"] == "higher" for r in rows)


@pytest.fixture
def torch_bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    module = _bench._load(ROOT / "bench" / "bench_torch.py")
    yield module
    sys.modules.pop("_harness", None)


def test_flop_counts_match_a_hand_count(torch_bench):
    # MLP 4-3-2, batch 5: forward 2*5*(12+6) = 180; backward twice that less the first
    # layer's input gradient (2*5*12 = 120): 180 + 360 - 120
    assert torch_bench._mlp_flops(5, [4, 3, 2]) == 180 + 360 - 120
    # CNN on 4x4, width 1, batch 1: MACs 4*4*9*1*1 = 144, 2*2*9*1*2 = 72, 1*1*2*10 = 20
    fwd = 2 * (144 + 72 + 20)
    assert torch_bench._cnn_flops(1, 4, 1) == 3 * fwd - 2 * 144
    # LM, 1 layer, d=2, hidden=3, vocab=5, L=3, batch 1: per token 4*4 + 3*2*3 + 2*4 + 2*5
    per_token = 16 + 18 + 8 + 10
    assert torch_bench._lm_flops(1, 3, 5, 2, 1, 3) == 3 * 2 * 3 * per_token


def test_torch_rows_say_not_installed_without_torch(torch_bench, monkeypatch):
    harness = sys.modules[torch_bench.H.__name__]
    monkeypatch.setattr(harness, "torch_or_none", lambda: None)
    monkeypatch.setattr(harness, "roofline", lambda quick=False: H.Roofline(1, 2, 3, 4, 5))
    rows = torch_bench.run(quick=True)
    torch_rows = [r for r in rows if not r.get("bound")]
    names = " ".join(r["name"] for r in torch_rows)
    for case in ("adamw", "cross_entropy", "attention", "MLP", "CNN", "TransformerLM"):
        assert case in names
    assert all(r["note"] == "not installed" for r in torch_rows)


def test_results_md_has_direction_spread_and_facts(tmp_path):
    t = _timings({"ours": [1e-3] * 5, H.REF: [2e-3] * 5, H.CONTROL: [2e-3] * 5})
    rows = [
        {"script": "bench_x", **r}
        for r in [*H.time_rows("case", t, "ref"), H.fact("bw", 1.0, "GB/s", "ceiling", 4.0)]
    ]
    _bench.write_results(rows, tmp_path / "RESULTS.md", quick=True)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| bench_x | case | 1 | ms | ref | 2 | 0.5 | lower | 1-1; 2-2 | 5 |" in text
    assert "| bench_x | bw | 1 | GB/s | ceiling | 4 | fact | higher | - | - | - | 25.0% of" in text
    assert "load average" in text


def test_targets_section_marks_met_and_missed_with_the_explanation():
    T = _bench._load(ROOT / "bench" / "_targets.py")
    rows = [
        {"script": "bench_layers", **H.row("layer_norm", 1.0, "ms", "flax.linen", 1.0)},
        {"script": "bench_optimizers", **H.row("adam 2000x256 step", 0.9, "ms", "optax", 1.0)},
        {
            "script": "bench_optimizers",
            **H.fact(
                "adam 16x1M effective GB/s (7 arrays per step)",
                9.0,
                "GB/s",
                "measured bandwidth (best triad)",
                10.0,
            ),
        },  # fmt: skip
    ]
    text = "\n".join(T.section(rows))
    assert "| layer_norm <= 1.05x flax | bench_layers: layer_norm vs flax.linen | 1 |" in text
    assert "| 0.9 | <= 1 | yes |" in text and "| 0.9 | <= 0.6 | **no** |" in text
    assert "| 0.9 | >= 0.8 | yes |" in text  # a share of the bandwidth: at least
    assert "(no row in this run)" in text and "per-array cost" in text


def test_flops_module_is_the_one_definition_and_gflops_facts_share_the_peak(torch_bench):
    F = sys.modules["_flops"]
    assert torch_bench._mlp_flops is F.mlp_flops and torch_bench._lm_flops is F.lm_flops
    # SwiGLU width: 8 d / 3 rounded up to a multiple of 8 (d=256: 682.7 -> 688)
    assert F.lm_hidden(256) == 688 and F.lm_hidden(24) == 64
    t = _timings({"ours": [0.5] * 5, H.REF: [1.0] * 5})
    roof = H.Roofline(1.0, 1.0, 8.0, 4, 5)
    ours, ref = H.gflops_facts("step", 2e9, t, roof, (("ours", "ours"), (H.REF, "flax")))
    assert ours["value"] == 4.0 and ours["ratio"] == 0.5 and ours["bound"]
    assert ref["value"] == 2.0 and "(flax; 2 GFLOP/step analytic)" in ref["name"]


@pytest.fixture(scope="module")
def attention_bench():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        yield _bench._load(ROOT / "bench" / "bench_attention.py")
    finally:
        sys.path.remove(str(ROOT / "bench"))


def _np_causal_attention(q, k, v):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def test_chunked_reference_is_causal_softmax_attention_with_its_gradients(attention_bench):
    import jax
    import jax.numpy as jnp

    chunked = attention_bench.chunked_causal_attention
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((2, 3, 12, 4)).astype(np.float32) for _ in range(4))
    expected = _np_causal_attention(*(x.astype(np.float64) for x in (q, k, v)))
    for block in (4, 12):  # 3 blocks (the ones above the diagonal skipped); a single one
        np.testing.assert_allclose(chunked(q, k, v, block), expected, atol=1e-5)

    def plain(q, k, v):
        s = jnp.einsum("...qd,...kd->...qk", q, k) / 2.0
        s = jnp.where(jnp.tril(jnp.ones((12, 12), bool)), s, -jnp.inf)
        return jnp.einsum("...qk,...kd->...qd", jax.nn.softmax(s, axis=-1), v)

    def grads(f):
        return jax.grad(lambda *a: jnp.sum(f(*a) * g), argnums=(0, 1, 2))(q, k, v)

    for got, want in zip(grads(lambda *a: chunked(*a, 4)), grads(plain), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # the default block rule of scaled_dot_product_attention: L/8 as a power of 2, [64, 256]
    blocks = [attention_bench.block_size_for(n) for n in (64, 512, 1024, 2048, 8192)]
    assert blocks == [64, 64, 128, 256, 256]
    with pytest.raises(ValueError, match="multiple"):
        chunked(q, k, v, 5)


def test_blur_reference_pads_by_reflection_as_ours(monkeypatch):
    import jax
    import jax.numpy as jnp

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    augment = _bench._load(ROOT / "bench" / "bench_augment.py")
    assert augment.check_reflect_blur() <= 1e-5
    x = jax.random.uniform(jax.random.key(0), (9, 7, 2))
    ref = augment.reflect_blur(x, 1.0, 5)
    # by hand: reflect-pad (edge not repeated) then the normalised 5-tap Gaussian per axis
    t = np.exp(-0.5 * np.arange(-2.0, 3.0) ** 2)
    t /= t.sum()
    padded = np.pad(np.asarray(x, np.float64), ((2, 2), (2, 2), (0, 0)), mode="reflect")
    rows = sum(t[i] * padded[i : i + 9] for i in range(5))
    want = sum(t[j] * rows[:, j : j + 7] for j in range(5))
    np.testing.assert_allclose(ref, want, atol=1e-6)
    zero_pad = augment._pix().gaussian_blur(x, 1.0, 5)
    assert float(jnp.max(jnp.abs(zero_pad[0] - ref[0]))) > 1e-2  # the edges differ
