"""``python -m functional_dl``: help, option errors, train/resume, demo and the bench runner."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from functional_dl import _bench, models
from functional_dl.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["demo", "train", "gradcheck", "bench"]
KEY = jax.random.key(0)


def _exit_code(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr()


@pytest.mark.parametrize("argv", [["--help"], *[[c, "--help"] for c in COMMANDS]])
def test_help_everywhere(argv, capsys):
    code, out = _exit_code(argv, capsys)
    assert code == 0 and "usage: python -m functional_dl" in out.out
    if argv == ["--help"]:
        assert all(c in out.out for c in COMMANDS)
    if argv[0] == "train":
        for option in (
            "--model",
            "--optimizer",
            "--schedule",
            "--epochs",
            "--seed",
            "--checkpoint-dir",
            "--resume",
            "--allow-config-change",
        ):
            assert option in out.out


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "functional_dl", "train", "--epochs", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "invalid _positive_int value" in proc.stderr


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "required: command"),
        (["fly"], "invalid choice: 'fly'"),
        (["train", "--model", "vgg"], "invalid choice: 'vgg'"),
        (["train", "--epochs", "0"], "must be a positive integer"),
        (["train", "--lr", "-1"], "must be > 0"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--resume"], "--resume needs --checkpoint-dir"),
        (["demo", "--seed", "-3"], "must be >= 0"),
    ],
)
def test_invalid_options_one_line_exit_2(argv, message, capsys):
    code, out = _exit_code(argv, capsys)
    assert code == 2
    assert message in out.err and out.err.strip().count("\n") == 0, out.err


def test_bad_checkpoint_dirs_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out = _exit_code(["train", "--checkpoint-dir", str(blocker)], capsys)
    assert code == 2 and "must be a directory" in out.err
    code, out = _exit_code(
        ["train", "--checkpoint-dir", str(tmp_path / "none"), "--resume"], capsys
    )
    assert code == 2 and "no checkpoint to resume from" in out.err
    used = tmp_path / "used"
    used.mkdir()
    (used / "step_00000005.safetensors").write_bytes(b"")
    code, out = _exit_code(["train", "--checkpoint-dir", str(used)], capsys)
    assert code == 2 and "already holds checkpoints: add --resume" in out.err


def test_train_one_epoch_then_resume(tmp_path, capsys):
    ckpt, plot = tmp_path / "ckpt", tmp_path / "curves.png"
    argv = [
        "train",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--no-progress",
        "--checkpoint-dir",
        str(ckpt),
        "--schedule",
        "plateau",
    ]
    assert main([*argv, "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "held-out test: loss" in out and "accuracy" in out
    assert [p.name for p in ckpt.iterdir()] == ["step_00000019.safetensors"]
    assert plot.stat().st_size > 1000 and str(plot) in out
    argv[argv.index("--epochs") + 1] = "2"
    assert main([*argv, "--resume"]) == 0
    assert "step_00000038.safetensors" in capsys.readouterr().out


def test_resume_with_another_schedule_horizon_is_refused_unless_allowed(tmp_path, capsys):
    argv = ["train", "--model", "mlp", "--epochs", "1", "--batch-size", "128"]
    argv += ["--no-progress", "--checkpoint-dir", str(tmp_path), "--schedule", "cosine"]
    assert main(argv) == 0
    capsys.readouterr()
    argv[argv.index("--epochs") + 1] = "2"  # the cosine horizon doubles
    assert main([*argv, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "another configuration" in err and "T_max: 9 -> 18" in err
    assert "--allow-config-change" in err
    assert main([*argv, "--resume", "--allow-config-change"]) == 0


def test_demo_reaches_the_accuracy_target(tmp_path, capsys):
    plot = tmp_path / "demo.png"
    assert main(["demo", "--epochs", "4", "--no-progress", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "meets the 97% target" in out and plot.exists()


def _abstract_logits(task, inputs):
    """Output shape of the task's model on ``inputs``, traced without any computation."""
    params, state = jax.eval_shape(lambda k: task.model.init(k, task.input_shape), KEY)
    return jax.eval_shape(task.model.apply, params, state, inputs)[0]


def test_reference_models_and_reversal_data():
    (src, tgt_in), tgt_out = models.reversal_data(jax.random.key(0), 64, length=6)
    np.testing.assert_array_equal(tgt_out, src[:, ::-1])
    np.testing.assert_array_equal(tgt_in[:, 0], models.BOS)
    np.testing.assert_array_equal(tgt_in[:, 1:], tgt_out[:, :-1])
    assert src.min() >= 2 and src.max() <= 11 and src.dtype == np.int32
    task = models.task("transformer-reversal")
    assert [len(part[1]) for part in (task.train, task.val, task.test)] == [8192, 512, 512]
    logits = _abstract_logits(task, task.train[0])
    assert logits.shape == (8192, 8, 12)
    task = models.task("cnn")  # (trained by the demo test)
    assert [len(part[1]) for part in (task.train, task.val, task.test)] == [1258, 270, 269]
    logits = np.zeros((2, 3, 4))
    logits[0, :, 1] = logits[1, :2, 1] = 1.0  # sequence 0 all right, sequence 1 one miss
    assert float(models.sequence_accuracy(logits, np.ones((2, 3), int))) == 0.5


FAKE_BENCH = textwrap.dedent("""
    def run(quick: bool = False) -> list[dict]:
        n = 10 if quick else 1000
        return [{"name": f"sum of {n}", "value": 2.0, "unit": "ms", "reference": "numpy",
                 "ref_value": 4.0, "ratio": 0.5}]
""")


def test_bench_runner_writes_table_and_plot(tmp_path, capsys):
    (tmp_path / "bench_good.py").write_text(FAKE_BENCH)
    (tmp_path / "bench_broken.py").write_text("def run(quick=False):\n    raise RuntimeError('x')")
    (tmp_path / "helper.py").write_text("raise SystemExit('not a bench script')\n")
    code = main(["bench", "--quick", "--bench-dir", str(tmp_path), "--output", str(tmp_path)])
    assert code == 1  # one script failed
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| bench_good | sum of 10 | 2 | ms | numpy | 4 | 0.5 |" in text
    assert "`bench_broken`: RuntimeError: x" in text
    assert "backend `cpu`" in text and (tmp_path / "RESULTS.png").stat().st_size > 1000
    argv = ["bench", "--bench-dir", str(tmp_path), "--output", str(tmp_path), "--filter", "good"]
    assert main(argv) == 0
    assert "sum of 1000" in (tmp_path / "RESULTS.md").read_text()
    code, out = _exit_code(["bench", "--bench-dir", str(tmp_path / "none")], capsys)
    assert code == 2 and "no directory" in out.err


BENCH_SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))


def test_the_bench_scripts_are_found():
    assert {"bench_activations", "bench_layers", "bench_optimizers"} <= set(BENCH_SCRIPTS)


@pytest.mark.parametrize("script", BENCH_SCRIPTS)  # one per case: spread over the workers
def test_every_bench_script_runs_in_quick_mode(script, tmp_path):
    path = ROOT / "bench" / f"{script}.py"
    params = inspect.signature(_bench._load(path).run).parameters  # the runner's contract
    assert "quick" in params and params["quick"].default is False, path.name
    rows = _bench.collect(ROOT / "bench", quick=True, pattern=script, log=lambda *a: None)
    assert rows and {r["script"] for r in rows} == {script}
    assert not [r for r in rows if "error" in r]
    _bench.write_results(rows, tmp_path / "RESULTS.md", quick=True)
    assert (tmp_path / "RESULTS.md").read_text().count("\n| bench_") == len(rows)


def test_bench_harness_rotates_rounds_controls_and_prints(capsys):
    H = _bench._load(ROOT / "bench" / "_harness.py")
    calls = []
    names = ("ours", H.REF, H.CONTROL)
    timings = H.interleave({k: lambda k=k: calls.append(k) for k in names}, rounds=3)
    assert calls == [*names, *names, *names[1:], names[0], names[2], *names[:2]]  # warm-up first
    assert all(len(timings.wall[k]) == len(timings.cpu[k]) == 3 for k in names)
    rows = H.time_rows("case", timings, "numpy")
    assert [r["name"] for r in rows] == ["case", "case, A/A control (reference vs itself)"]
    assert rows[1]["control"] and rows[0]["better"] == "lower" and rows[0]["unit"] == "ms"
    assert len(H.time_rows("case", timings, "numpy", control=False)) == 1
    # a budget stretches the rounds (up to max_rounds); a slow warm-up leaves one round
    assert len(H.interleave({"a": int}, rounds=2, budget_s=60.0, max_rounds=7).wall["a"]) == 7
    assert len(H.interleave({"a": int}, rounds=5, slow_s=0.0).wall["a"]) == 1
    orders = []

    def setup(order):
        orders.append(order)
        return {k: int for k in order}

    pooled = H.rotated_trials(setup, ["a", "b"], rounds=2)
    assert orders == [["a", "b"], ["b", "a"]] and len(pooled.wall["a"]) == 4
    bandwidth = H.row("copy", 2.0, "GB/s", "numpy", 4.0, better="higher")
    assert bandwidth["ratio"] == 0.5 and _bench.better(bandwidth) == "higher"
    with pytest.raises(ValueError, match="better='up'"):
        H.row("copy", 2.0, "GB/s", "numpy", 4.0, better="up")
    H.print_table([*rows, bandwidth])
    out = capsys.readouterr().out
    assert out.startswith("backend: cpu") and "higher is better" in out and "A/A control" in out


def test_train_lstm_one_epoch(capsys):
    # (the resnet task is built in tests/test_nn_layers_learning.py and trained there)
    argv = ["train", "--model", "lstm", "--epochs", "1", "--batch-size", "128", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "held-out test: loss" in out and "accuracy" in out


def test_bench_writes_into_output_default_a_folder_under_the_current_directory(
    tmp_path, monkeypatch
):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "bench_good.py").write_text(FAKE_BENCH)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick", "--bench-dir", str(scripts)]) == 0
    assert (tmp_path / "bench_results" / "RESULTS.md").is_file()
    assert (tmp_path / "bench_results" / "RESULTS.png").is_file()
    assert not (scripts / "RESULTS.md").exists()
    assert main(["bench", "--quick", "--bench-dir", str(scripts), "--output", "out/x"]) == 0
    assert "sum of 10" in (tmp_path / "out" / "x" / "RESULTS.md").read_text()
    assert "--output bench/" in (ROOT / "Makefile").read_text()


def test_demo_with_other_settings_reports_without_failing(capsys):
    assert main(["demo", "--epochs", "1", "--no-progress", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "default 10 epochs" in out


def test_a_batch_larger_than_the_data_is_named(capsys):
    assert main(["train", "--model", "mlp", "--epochs", "1", "--batch-size", "5000"]) == 1
    err = capsys.readouterr().err
    assert "--batch-size 5000" in err and "T_max" not in err
