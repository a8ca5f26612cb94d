"""Command line: ``python -m functional_dl <command>``.

Commands:
  demo        train the CNN on the digits, print held-out accuracy and time, plot curves
  train       train a reference model (mlp, cnn, resnet, lstm, transformer-reversal, gpt)
  gradcheck   check every hand-derived gradient against jax.grad and finite differences
  bench       run every bench/bench_*.py and write RESULTS.md/.png into --output
              (default ./bench_results; `make bench` passes bench/)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_DOC: str = __doc__ or ""
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam", "radam", "adamax", "lion")
SCHEDULES = ("constant", "cosine", "step", "onecycle", "warmup-cosine", "plateau")
DEFAULT_LR = {"sgd": 0.05, "adagrad": 0.05, "lion": 3e-4}  # others: 3e-3
DEMO_EPOCHS = 10
BENCH_OUTPUT = "bench_results"  # under the current directory, never the package checkout


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    from . import grads

    names = list(grads.registry())
    if args.filter:
        names = [n for n in names if args.filter in n]
    if not names:
        print("no registered gradients match", file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    header = f"{'name':<{width}}  {'vs autodiff':>12}  {'vs fin.diff':>12}  result"
    print(header)
    print("-" * len(header))
    failed = 0
    for name in names:
        r = grads.check(name, seed=args.seed)
        status = "pass" if r.passed else "FAIL"
        failed += not r.passed
        print(f"{name:<{width}}  {r.max_rel_autodiff:12.2e}  {r.max_rel_fd:12.2e}  {status}")
    print("-" * len(header))
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _learning_rate(schedule: str, lr: float, total_steps: int, steps_per_epoch: int) -> Any:
    """A float or a ``fdl.schedules`` schedule over ``total_steps`` updates."""
    from . import schedules

    if schedule in ("constant", "plateau"):
        return lr
    if schedule == "cosine":
        return schedules.cosine_annealing_lr(lr, T_max=total_steps)
    if schedule == "step":
        return schedules.step_lr(lr, step_size=max(total_steps // 3, 1), gamma=0.1)
    if schedule == "onecycle":
        return schedules.one_cycle_lr(lr, total_steps=total_steps)
    warmup = min(steps_per_epoch, total_steps // 2)
    return schedules.warmup_cosine(lr, 0.0, warmup_steps=warmup, cosine_steps=total_steps - warmup)


def _parse_mesh(spec: str):
    """``"data=4,model=2"`` -> ``fdl.train.make_mesh(data=4, model=2)``."""
    from . import train

    sizes = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in ("data", "model") or not value.strip().lstrip("-").isdigit():
            raise ValueError(f"--mesh must look like data=4,model=2, got --mesh {spec!r}")
        sizes[name.strip()] = int(value)
    return train.make_mesh(**sizes)


def _train(
    model: str,
    *,
    optimizer: str,
    lr: float | None,
    schedule: str,
    epochs: int,
    batch_size: int,
    seed: int,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    plot: str | None = None,
    mesh: str | None = None,
    fsdp: bool = False,
) -> dict:
    """Train a task end to end; returns the test scores and timings."""
    import jax
    import optax

    from . import data, models, optim, schedules, train

    start = time.perf_counter()
    device_mesh = _parse_mesh(mesh) if mesh else None
    # a data-parallel mesh syncs BatchNorm through shard_map's axis; on a 2-D mesh the
    # step is one GSPMD program whose BatchNorm already sees the whole batch
    task = models.task(model, seed=seed, axis_name=None if mesh else train.DATA_AXIS)
    lr = lr if lr is not None else DEFAULT_LR.get(optimizer, 3e-3)
    steps_per_epoch = data.num_batches(len(task.train[1]), batch_size, drop_last=True)
    if steps_per_epoch == 0:
        raise ValueError(
            f"--batch-size {batch_size} is larger than the {len(task.train[1])} training "
            f"examples of the {model} task; use at most {len(task.train[1])}"
        )
    rate = _learning_rate(schedule, lr, steps_per_epoch * epochs, steps_per_epoch)
    extra = {"momentum": 0.9} if optimizer in ("sgd", "rmsprop") else {}
    opt = getattr(optim, optimizer)(rate, **extra)
    plateau = schedule == "plateau"
    if plateau:  # the plateau factor is a transform in the chain; fit feeds it val_loss
        opt = optax.chain(opt, schedules.scale_by_plateau(factor=0.5, patience=2))
    state = train.create_train_state(
        jax.random.key(seed), task.model, opt, task.input_shape, mesh=device_mesh, fsdp=fsdp
    )
    result = train.fit(
        state,
        task.model,
        task.loss_fn,
        opt,
        task.train,
        epochs=epochs,
        batch_size=batch_size,
        val_data=task.val,
        metrics=task.metrics,
        plateau=plateau,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
        mesh=device_mesh,
    )
    scores = train.evaluate(
        result.state, task.model, task.loss_fn, task.test, metrics=task.metrics, mesh=device_mesh
    )
    if plot:
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        train.plot_history(result.history, path=plot)
    sample = None
    if task.vocab is not None:  # a character-level LM: continue a prompt
        prompt = task.vocab.decode(task.test[0][0][:16])
        key = jax.random.key(seed + 1)
        sample = models.sample_text(
            task.model,
            result.state.params,
            task.vocab,
            prompt,
            200,
            key=key,
            top_k=10,
            context=task.input_shape[-1],
        )
    return {
        "sample": sample,
        "scores": scores,
        "seconds": time.perf_counter() - start,
        "test_size": len(task.test[1]),
        "history": result.history,
    }


def _report(out: dict, plot: str | None, checkpoint_dir: str | None) -> None:
    scores = out["scores"]
    extra = "".join(f"  {k} {v:.4f}" for k, v in scores.items() if k != "loss")
    print(
        f"held-out test: loss {scores['loss']:.4f}{extra}  ({out['seconds']:.1f} s "
        f"including compilation)"
    )
    if out.get("sample") is not None:
        print(f"sample (temperature 1, top-k 10):\n{out['sample']}")
    if checkpoint_dir:
        from .train import latest_checkpoint

        print(f"checkpoint: {latest_checkpoint(checkpoint_dir)}")
    if plot:
        print(f"training curves: {Path(plot).resolve()}")


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import latest_checkpoint

    ckpt = args.checkpoint_dir
    if ckpt is not None and Path(ckpt).exists() and not Path(ckpt).is_dir():
        args.parser.error(f"--checkpoint-dir must be a directory, got the file {ckpt}")
    if args.resume and ckpt is None:
        args.parser.error("--resume needs --checkpoint-dir")
    if args.resume and ckpt is not None and latest_checkpoint(ckpt) is None:
        args.parser.error(f"--resume: no checkpoint to resume from in {ckpt}")
    if not args.resume and ckpt is not None and latest_checkpoint(ckpt) is not None:
        args.parser.error(
            f"--checkpoint-dir {ckpt} already holds checkpoints: add --resume "
            f"to continue that run, or choose an empty directory"
        )
    try:
        out = _train(
            args.model,
            optimizer=args.optimizer,
            lr=args.lr,
            schedule=args.schedule,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            checkpoint_dir=ckpt,
            resume=args.resume,
            progress=not args.no_progress,
            plot=args.plot,
            mesh=args.mesh,
            fsdp=args.fsdp,
        )
    except (FloatingPointError, ValueError) as exc:
        print(f"{args.parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    _report(out, args.plot, ckpt)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    print("Training the CNN (conv-batchnorm-relu-pool x2, linear) on scikit-learn's 8x8 digits")
    out = _train(
        "cnn",
        optimizer="adam",
        lr=3e-3,
        schedule="cosine",
        epochs=args.epochs,
        batch_size=32,
        seed=args.seed,
        progress=not args.no_progress,
        plot=args.plot,
    )
    _report(out, args.plot, None)
    accuracy = out["scores"]["accuracy"]
    default = args.epochs == DEMO_EPOCHS and args.seed == 0
    print(
        f"held-out accuracy {accuracy:.2%} on {out['test_size']} unseen digits "
        f"({'meets' if accuracy >= 0.97 else 'misses'} the 97% target"
        + ("" if default else f" set for the default {DEMO_EPOCHS} epochs and seed 0")
        + ")"
    )
    # the target is a promise of the default run only; other settings just report
    return 1 if default and accuracy < 0.97 else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from ._bench import default_bench_dir, run_all

    bench_dir = Path(args.bench_dir) if args.bench_dir else default_bench_dir()
    if not bench_dir.is_dir():
        args.parser.error(f"--bench-dir: no directory {bench_dir}")
    output = Path(args.output) / "RESULTS.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    return run_all(bench_dir, quick=args.quick, output=output, pattern=args.filter)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m functional_dl`` argument parser."""
    parser = _Parser(
        prog="python -m functional_dl",
        description=_DOC.split("\n")[0],
        epilog=_DOC.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "demo",
        help="train the CNN on the digits and plot its curves",
        description="Train the CNN on scikit-learn's digits; print the "
        "held-out accuracy and the time; plot the curves.",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEMO_EPOCHS,
        help=f"epochs (default {DEMO_EPOCHS})",
    )
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--plot",
        default="runs/demo/curves.png",
        help="where to write the training curves (default runs/demo/curves.png)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_demo, parser=p)

    p = sub.add_parser(
        "train",
        help="train a reference model",
        description="Train a reference model with checkpoints and resumption.",
    )
    p.add_argument(
        "--model",
        choices=("mlp", "cnn", "transformer-reversal", "resnet", "lstm", "gpt"),
        default="cnn",
        help="the model and its task (default cnn; gpt: a character-level GPT on "
        "Python's help topics, printing a sample)",
    )
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adam",
        help="fdl.optim optimizer (default adam; sgd and rmsprop use momentum 0.9)",
    )
    p.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help="(peak) learning rate (default 3e-3; 0.05 for sgd/adagrad)",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="cosine",
        help="learning-rate schedule over the whole run (default cosine)",
    )
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default 10)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--checkpoint-dir", default=None, help="write a checkpoint there after every epoch"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint in --checkpoint-dir",
    )
    p.add_argument("--plot", default=None, help="write the training curves to this file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--mesh",
        default=None,
        help="a 2-D device mesh, e.g. data=4,model=2 (tensor parallel over model)",
    )
    p.add_argument(
        "--fsdp", action="store_true", help="shard parameters and optimizer state over data"
    )
    p.set_defaults(func=_cmd_train, parser=p)

    p = sub.add_parser(
        "gradcheck",
        help="check every hand-derived gradient",
        description="Compare every registered hand-derived gradient with "
        "jax.grad and finite differences.",
    )
    p.add_argument("--filter", default=None, help="only entries whose name contains this")
    p.add_argument("--seed", type=int, default=0, help="seed of the random cotangents")
    p.set_defaults(func=_cmd_gradcheck, parser=p)

    p = sub.add_parser(
        "bench",
        help="run the benchmarks and write RESULTS.md and RESULTS.png to --output",
        description="Run run(quick=...) of every bench/bench_*.py; write a "
        "table of figures, references and ratios (RESULTS.md) and a plot (RESULTS.png) "
        "into the --output folder.",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    p.add_argument("--bench-dir", default=None, help="folder of bench_*.py (default bench/)")
    p.add_argument(
        "--output",
        default=BENCH_OUTPUT,
        help=f"the folder to write RESULTS.md and RESULTS.png into (default ./{BENCH_OUTPUT}; "
        "`make bench` passes bench/)",
    )
    p.add_argument("--filter", default=None, help="only scripts whose name contains this")
    p.set_defaults(func=_cmd_bench, parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
