"""``fit``: epochs or steps of mini-batches (arrays or any iterable of batches) with a
progress bar, validation, plateau scheduling, early stopping, callbacks, checkpoints and
resumption."""

from __future__ import annotations

import functools
import json
import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
from jax.sharding import Mesh

from .. import optim
from .._checks import check_choice, check_int, check_nonnegative
from ..data import num_examples
from ..nn import Layer
from ..schedules import plateau_states, step_plateau
from ._averaging import with_averaged_params
from ._callbacks import Callback, run_callbacks
from ._checkpoint import (
    CheckpointError,
    checkpoint_metadata,
    checkpoint_path,
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from ._fingerprint import differences, fingerprint
from ._parallel import DATA_AXIS, data_parallel_mesh, replicate, shard_batch
from ._sharding import is_sharding_mesh
from ._sources import batch_source, is_array_data
from ._state import TrainState
from ._step import Metrics, evaluate, make_train_step

__all__ = ["FitResult", "fit"]


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Fields::

        state         # TrainState after the last step
        history       # dict metric -> list of values, one per record (epoch, or
                      # `eval_every` steps): "loss", "val_loss", ..., "step"
        stopped_early # bool: early stopping or a callback ended training
    """

    state: TrainState
    history: dict[str, list[float]]
    stopped_early: bool


@functools.cache
def _bar_class() -> Any:
    """tqdm's notebook widget when Jupyter can show it, else the text bar (terminals)."""
    try:
        import ipywidgets  # noqa: F401  # pyright: ignore[reportMissingImports]  (the widget bar needs it)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm


def _progress_bar(**kwargs: Any) -> Any:
    return _bar_class()(**kwargs)


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _check_fit_args(
    state: Any,
    model: Any,
    epochs: Any,
    max_steps: Any,
    eval_every: Any,
    callbacks: Any,
    val_data: Any,
    plateau: Any,
    patience: Any,
    min_delta: Any,
    mode: Any,
    checkpoint_dir: Any,
    resume: Any,
    keep_checkpoints: Any,
) -> None:
    fn = "fit"
    if not isinstance(state, TrainState):
        raise TypeError(f"fit: state must be a TrainState, got state={type(state).__name__}")
    if not isinstance(model, Layer):
        raise TypeError(f"fit: model must be a Layer, got model={model!r}")
    if epochs is None and max_steps is None:
        raise ValueError("fit: give epochs or max_steps (or both), got neither")
    if epochs is not None:
        check_int("epochs", epochs, minimum=1, fn=fn)
    if max_steps is not None:
        check_int("max_steps", max_steps, minimum=1, fn=fn)
    if eval_every is not None:
        check_int("eval_every", eval_every, minimum=1, fn=fn)
    if not all(callable(c) for c in callbacks):
        raise TypeError(
            "fit: callbacks must be callables callback(step, metrics, state), "
            f"got callbacks={callbacks!r}"
        )
    check_int("keep_checkpoints", keep_checkpoints, minimum=1, fn=fn)
    check_choice("mode", mode, ("min", "max"), fn=fn)
    check_nonnegative("min_delta", min_delta, fn=fn)
    if patience is not None:
        check_int("patience", patience, minimum=1, fn=fn)
    if not isinstance(plateau, bool):
        raise TypeError(
            "fit: plateau must be True or False (the plateau rule is an optimizer "
            "transform: optax.chain(optimizer, fdl.schedules.scale_by_plateau(...))), "
            f"got plateau={plateau!r}"
        )
    has_plateau = bool(plateau_states(state.opt_state))
    if plateau and not has_plateau:
        raise ValueError(
            "fit: plateau=True needs a fdl.schedules.scale_by_plateau transform in the "
            "optimizer's chain, e.g. optax.chain(fdl.optim.adam(1e-3), "
            "fdl.schedules.scale_by_plateau(patience=2)); state.opt_state has none"
        )
    if has_plateau and not plateau:
        raise ValueError(
            "fit: the optimizer has a scale_by_plateau transform, which fit feeds with "
            "the monitored metric only with plateau=True; got plateau=False"
        )
    if val_data is not None:
        num_examples(val_data, fn="fit: val_data")
    if (
        checkpoint_dir is not None
        and Path(checkpoint_dir).exists()
        and not Path(checkpoint_dir).is_dir()
    ):
        raise ValueError(
            f"fit: checkpoint_dir must be a directory, got a file: "
            f"checkpoint_dir={str(checkpoint_dir)!r}"
        )
    if resume and checkpoint_dir is None and not isinstance(resume, (str, Path)):
        raise ValueError("fit: resume=True needs checkpoint_dir (or a checkpoint path)")
    if checkpoint_dir is not None and not resume and latest_checkpoint(checkpoint_dir):
        raise ValueError(
            f"fit: checkpoint_dir={str(checkpoint_dir)!r} already holds the "
            f"checkpoints of a run; pass resume=True to continue it or use an "
            f"empty directory"
        )


def fit(
    state: TrainState,
    model: Layer,
    loss_fn: Callable,
    optimizer: Any,
    train_data: Any,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    val_data: Any = None,
    metrics: Metrics | None = None,
    drop_last: bool = True,
    eval_batch_size: int = 512,
    plateau: bool = False,
    monitor: str | None = None,
    mode: str = "min",
    patience: int | None = None,
    min_delta: float = 0.0,
    checkpoint_dir: str | Path | None = None,
    resume: bool | str | Path = False,
    keep_checkpoints: int = 2,
    mesh: Mesh | None = None,
    progress: bool = True,
    max_steps: int | None = None,
    eval_every: int | None = None,
    callbacks: Sequence[Callback] = (),
    accumulate: int = 1,
    eval_averaged: bool = False,
    allow_config_change: bool = False,
    on_nonfinite: str = "raise",
) -> FitResult:
    """Train ``model`` for ``epochs`` epochs and/or ``max_steps`` steps.

    Each epoch takes its batches from ``train_data`` (arrays are shuffled with
    ``fold_in(state.key, epoch)``), runs the jitted data-parallel step of
    :func:`make_train_step` on every batch (a tqdm bar shows the running averages of
    the loss and metrics since the last record, in terminals and notebooks) and makes a
    *record*: it evaluates ``val_data``, then optionally updates a plateau scheduler,
    checks early stopping, calls the ``callbacks`` and writes a checkpoint. With
    ``eval_every`` the record is made every ``eval_every`` steps instead of per epoch.

    Args:
        state: a :class:`TrainState` (donated: use the returned one).
        model, loss_fn, optimizer, metrics, mesh: as in :func:`make_train_step`.
        train_data: ``(inputs, targets)``, arrays with ``N`` examples on the leading axis
            (``inputs`` may be a tuple of arrays), shuffled into batches of
            ``batch_size``; or any iterable of batches (a list, a data-loader object,
            a generator: read once, as one epoch), or a function ``epoch -> iterable
            of batches`` (the user's own sampler; seed it with the epoch so a resumed
            run sees the same batches). A batch is whatever the step takes,
            ``(inputs, targets)``.
        epochs: number of epochs (a resumed run continues up to this number);
            ``None``: until ``max_steps`` or the data ends.
        batch_size: examples per step for array data (over all devices; divisible by
            their number); ``None`` for an iterable of batches.
        val_data: optional ``(inputs, targets)`` evaluated at every record
            (``val_loss``, ``val_<metric>`` in the history).
        drop_last: drop the last incomplete batch of an epoch (one compiled shape).
        eval_batch_size: batch size of the validation forward passes.
        plateau: feed ``monitor`` at every record to the
            ``fdl.schedules.scale_by_plateau`` transform of the optimizer
            (``optax.chain(fdl.optim.adam(1e-3), fdl.schedules.scale_by_plateau(...))``)
            with :func:`fdl.schedules.step_plateau`; its state is in
            ``state.opt_state`` and the history records the scale each record ran with
            (``lr_scale``).
        monitor: the history entry watched by plateau and early stopping (default
            ``"val_loss"`` with ``val_data``, else ``"loss"``).
        mode: ``"min"`` or ``"max"``: whether a smaller or larger ``monitor`` is better.
        patience: stop once this many consecutive records bring no improvement of
            ``monitor`` (``None``: never stop early; the callback form is
            :class:`EarlyStopping`).
        min_delta: the smallest change that counts as an improvement.
        checkpoint_dir: write ``step_<step>.safetensors`` there at every record: the
            :class:`TrainState` (restorable with ``restore_checkpoint(path, state)``; the
            plateau state is part of its ``opt_state``), with the history, the position
            in the data and the early-stopping and callback states in its metadata; the
            last ``keep_checkpoints`` files are kept.
        resume: ``True`` continues from the latest checkpoint of ``checkpoint_dir`` that
            verifies (a corrupted newest file is skipped with a warning naming it), a
            path from that file; the result equals the uninterrupted run bit for bit,
            also from a checkpoint written mid-epoch (``eval_every``). Every checkpoint
            records the run's configuration (parameter shapes, loss, optimizer and its
            hyperparameters and schedule, data size and batch size); resuming with a
            different one raises a ``ValueError`` naming what changed.
        progress: show the progress bar.
        max_steps: stop after this many steps in total (``state.step``), mid-epoch if
            need be; the steps since the last record make a final record.
        eval_every: make a record every this many steps (the history then holds one
            entry per record, with its ``step``) instead of one per epoch.
        callbacks: functions ``callback(step, metrics, state)`` called at every record
            with the record (built in: :class:`MetricsLogger`, :class:`EarlyStopping`);
            one returning ``True`` stops training.
        accumulate: apply the optimizer once every ``accumulate`` batches, to their mean
            gradient (``fdl.optim.accumulate``): ``batch_size`` is the micro-batch,
            ``state.step`` counts micro-batches, the optimizer's schedule counts updates.
            A state created with the plain optimizer is converted.
        eval_averaged: evaluate ``val_data`` with the averaged weights of the
            ``fdl.optim.ema``/``swa`` transform in the optimizer (``with_averaged_params``;
            call :func:`update_bn` yourself for BatchNorm models); training goes on with
            the raw weights, and the average is checkpointed with the optimizer state.
        allow_config_change: resume even though the configuration differs from the
            checkpoint's (a warning lists the differences).

        on_nonfinite: what a step whose loss or gradient norm is NaN/inf does:
            ``"raise"`` stops training with a ``FloatingPointError`` naming the step,
            epoch and batch; ``"skip"`` leaves the state unchanged for that step (only
            ``step`` advances, like ``optax.apply_if_finite``), warns, and goes on.

    Returns:
        :class:`FitResult` ``(state, history, stopped_early)``.

    Raises:
        FloatingPointError: the loss or the gradient norm became NaN/inf (with
            ``on_nonfinite="raise"``); the message names the step, and the checkpoints
            written before it are kept.

    Keras equivalent: ``model.fit(x, y, batch_size, epochs, validation_data, callbacks=
    [ReduceLROnPlateau, EarlyStopping, ModelCheckpoint(save_freq="epoch")])``.

    Example:
        >>> import optax
        >>> x, y = fdl.data.make_moons(jax.random.key(0), 64, noise=0.1)
        >>> model = fdl.nn.Sequential(fdl.nn.Linear(16), fdl.nn.ReLU(), fdl.nn.Linear(2))
        >>> optimizer = optax.chain(fdl.optim.adam(1e-2), fdl.schedules.scale_by_plateau())
        >>> state = fdl.train.create_train_state(jax.random.key(1), model, optimizer, (1, 2))
        >>> result = fit(state, model, fdl.losses.cross_entropy, optimizer, (x, y),
        ...              epochs=2, batch_size=16, val_data=(x, y), plateau=True,
        ...              metrics={"accuracy": fdl.metrics.accuracy}, progress=False)
        >>> sorted(result.history)
        ['accuracy', 'loss', 'lr_scale', 'time', 'val_accuracy', 'val_loss']
        >>> int(result.state.step)
        8

        Steps instead of epochs, from one's own batches, with a callback:

        >>> state = fdl.train.create_train_state(jax.random.key(1), model, fdl.optim.adam(1e-2),
        ...                                      (1, 2))
        >>> data = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
        >>> seen = []
        >>> result = fit(state, model, fdl.losses.cross_entropy, fdl.optim.adam(1e-2), data,
        ...              max_steps=10, eval_every=5, progress=False,
        ...              callbacks=[lambda step, metrics, state: seen.append(step)])
        >>> seen, result.history["step"]
        ([5, 10], [5, 10])
    """
    callbacks = tuple(callbacks)
    _check_fit_args(
        state,
        model,
        epochs,
        max_steps,
        eval_every,
        callbacks,
        val_data,
        plateau,
        patience,
        min_delta,
        mode,
        checkpoint_dir,
        resume,
        keep_checkpoints,
    )
    mesh = mesh or data_parallel_mesh()
    local_devices = mesh.shape[DATA_AXIS] // jax.process_count()
    if batch_size is not None and batch_size % local_devices:
        raise ValueError(
            f"fit: batch_size must be divisible by the number of devices "
            f"({local_devices}), got batch_size={batch_size}"
        )
    if batch_size is not None and not drop_last and is_array_data(train_data):
        last = num_examples(train_data, fn="fit: train_data") % batch_size
        if last % local_devices:  # refused now, not after an epoch of compute
            raise ValueError(
                f"fit: with drop_last=False the last batch of each epoch holds {last} "
                f"examples, which do not divide over the {local_devices} devices; use "
                f"drop_last=True, or a batch_size that leaves a multiple of "
                f"{local_devices} (or no remainder)"
            )
    source = batch_source(train_data, batch_size, drop_last)
    steps_per_epoch = source.steps_per_epoch
    if steps_per_epoch == 0:
        raise ValueError(
            f"fit: batch_size={batch_size} is larger than the "
            f"{num_examples(train_data)} training examples and drop_last=True leaves "
            f"no batch"
            if batch_size is not None
            else "fit: train_data holds no batch"
        )
    monitor = monitor or ("val_loss" if val_data is not None else "loss")
    names = ["loss", *(metrics or {})]
    names += [f"val_{k}" for k in names] if val_data is not None else []
    if monitor not in names:
        raise ValueError(f"fit: monitor must be one of {names}, got monitor={monitor!r}")
    check_int("accumulate", accumulate, minimum=1, fn="fit")
    check_choice("on_nonfinite", on_nonfinite, ("raise", "skip"), fn="fit")
    if accumulate > 1:
        optimizer = optim.accumulate(optimizer, accumulate)
        if not isinstance(state.opt_state, optim.AccumulateState):
            fresh = optimizer.init(state.params)
            state = state.replace(opt_state=fresh._replace(inner_state=state.opt_state))
    if eval_averaged:
        try:
            optim.averaged_params(state.opt_state)
        except ValueError as exc:
            raise ValueError(
                "fit: eval_averaged=True needs an fdl.optim.ema or swa transform (or asgd) "
                f"in the optimizer: {exc}"
            ) from exc
    examples = num_examples(train_data) if is_array_data(train_data) else None
    facts = {
        "examples": examples,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "accumulate": accumulate,
    }
    config = fingerprint(state, loss_fn, optimizer, facts)
    train_step = make_train_step(
        model,
        loss_fn,
        optimizer,
        metrics=metrics,
        mesh=mesh,
        grad_norm=True,
        skip_nonfinite=on_nonfinite == "skip",
    )

    state = state if is_sharding_mesh(mesh) else replicate(state, mesh)
    book: dict[str, Any] = {
        "history": {},
        "best": None,
        "bad_epochs": 0,
        "steps_per_epoch": steps_per_epoch,
    }
    if resume:
        state, book = _resume(
            resume, checkpoint_dir, state, steps_per_epoch, config, allow_config_change
        )
        for callback, saved in zip(callbacks, book.get("callbacks") or (), strict=False):
            if saved is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(saved)
    book["config"] = config
    history = book["history"]
    step = int(state.step)
    if "epoch" in book:
        epoch, skip = int(book["epoch"]), int(book["batch"])
    elif steps_per_epoch:
        epoch, skip = divmod(step, steps_per_epoch)
    else:
        epoch, skip = 0, 0
    last_ckpt = latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    window = _Window(time.perf_counter())

    def record(epoch: int, batch: int) -> bool:
        """Close the window: evaluate, schedule, log, call back, checkpoint; stop?"""
        nonlocal state, last_ckpt
        row = window.means()
        if val_data is not None:
            scores = evaluate(
                with_averaged_params(state) if eval_averaged else state,
                model,
                loss_fn,
                val_data,
                metrics=metrics,
                batch_size=eval_batch_size,
                mesh=mesh,
            )
            row.update({f"val_{k}": v for k, v in scores.items()})
        if plateau:
            row["lr_scale"] = float(plateau_states(state.opt_state)[0].plateau.lr)
            opt_state = step_plateau(state.opt_state, row[monitor])
            state = state.replace(
                opt_state=opt_state if is_sharding_mesh(mesh) else replicate(opt_state, mesh)
            )
        row["time"] = time.perf_counter() - window.start
        if eval_every is not None:
            row["step"] = step
        for k, v in row.items():
            history.setdefault(k, []).append(v)
        if _improved(row[monitor], book["best"], mode, min_delta):
            book["best"], book["bad_epochs"] = row[monitor], 0
        else:
            book["bad_epochs"] += 1
        stop = patience is not None and book["bad_epochs"] >= patience
        stop = run_callbacks(callbacks, step, row, state) or stop
        book["epoch"], book["batch"] = epoch, batch
        book["callbacks"] = [
            c.state_dict() if hasattr(c, "state_dict") else None for c in callbacks
        ]
        if checkpoint_dir is not None and jax.process_index() == 0:
            last_ckpt = save_checkpoint(checkpoint_path(checkpoint_dir, step), state, metadata=book)
            _prune(checkpoint_dir, keep_checkpoints)
        window.reset(time.perf_counter())
        return stop

    stopped_early = False
    while not stopped_early and (epochs is None or epoch < epochs):
        if max_steps is not None and step >= max_steps:
            break
        bar = _progress_bar(
            total=steps_per_epoch,
            initial=skip,
            unit="step",
            desc=f"epoch {epoch + 1}" + (f"/{epochs}" if epochs else ""),
            disable=not progress,
            dynamic_ncols=True,
        )
        b, done = skip, True
        for batch in source.epoch(epoch, skip, state.key):
            if jax.process_count() > 1:  # one process: the step's jit places the batch
                batch = shard_batch(batch, mesh)
            state, step_metrics = train_step(state, batch)
            values = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
            norm = values.pop("grad_norm")
            problem = (
                f"the loss became {values['loss']}"
                if not math.isfinite(values["loss"])
                else f"the gradient norm became {norm}"
                if not math.isfinite(norm)
                else None
            )
            where = f"at step {step + 1} (epoch {epoch + 1}, batch {b + 1})"
            if problem and on_nonfinite == "raise":
                bar.close()
                kept = (
                    f"the last good checkpoint is {str(last_ckpt)!r}"
                    if last_ckpt
                    else "no checkpoint was written"
                )
                raise FloatingPointError(
                    f"fit: {problem} {where}; training stopped, {kept} "
                    f"(on_nonfinite='skip' skips such steps instead)"
                )
            if problem:  # on_nonfinite="skip": the step kept the previous state
                warnings.warn(
                    f"fit: {problem} {where}; that update was skipped", RuntimeWarning, stacklevel=2
                )
            else:
                window.add(values)
            step, b = step + 1, b + 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in window.means().items()}, refresh=False)
            at_end = max_steps is not None and step >= max_steps
            if eval_every is not None and step % eval_every == 0:
                stopped_early = record(*_position(epoch, b, steps_per_epoch))
            if stopped_early or at_end:
                done = b == steps_per_epoch
                break
        bar.close()
        if done and b == 0:  # the data ended (a generator): nothing left to train on
            break
        if done and eval_every is None and window.count:
            stopped_early = record(epoch + 1, 0)
        epoch, skip = (epoch + 1, 0) if done else (epoch, b)
    if window.count and not stopped_early:  # the steps since the last record
        stopped_early = record(epoch, skip)
    return FitResult(state, history, stopped_early)


def _position(epoch: int, batch: int, steps_per_epoch: int | None) -> tuple[int, int]:
    """``(epoch, batch)`` to resume from after ``batch`` batches of ``epoch``."""
    return (epoch + 1, 0) if batch == steps_per_epoch else (epoch, batch)


class _Window:
    """The running sums of the train metrics since the last record."""

    def __init__(self, start: float) -> None:
        self.reset(start)

    def reset(self, start: float) -> None:
        self.start, self.count, self.sums = start, 0, {}

    def add(self, values: dict[str, float]) -> None:
        self.count += 1
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


def _resume(
    resume: bool | str | Path,
    checkpoint_dir: Any,
    state: TrainState,
    steps_per_epoch: int | None,
    config: dict[str, Any],
    allow_config_change: bool,
) -> tuple[TrainState, dict]:
    """The state (plateau state included) and bookkeeping saved by an earlier :func:`fit`:
    from the newest checkpoint that verifies, of a run with the same configuration."""
    if isinstance(resume, (str, Path)):
        candidates = [Path(resume)]
    else:
        candidates = _checkpoints(checkpoint_dir)[::-1]
    if not candidates or not candidates[0].is_file():
        where = f"at {candidates[0]}" if candidates else f"in {checkpoint_dir}"
        raise FileNotFoundError(f"fit: resume={resume!r} but there is no checkpoint {where}")
    skipped: list[str] = []
    for path in candidates:
        try:
            book = checkpoint_metadata(path)
            _check_config(path, book, steps_per_epoch, config, allow_config_change)
            restored = restore_checkpoint(path, state)
        except CheckpointError as exc:
            if len(candidates) == 1:
                raise
            skipped.append(f"{path.name} ({exc})")
            continue
        if skipped:
            warnings.warn(
                f"fit: resuming from {str(path)!r}: the newer checkpoints do not verify "
                f"and were skipped: {'; '.join(skipped)}",
                RuntimeWarning,
                stacklevel=3,
            )
        book.pop("plateau", None)  # written by versions that kept it outside opt_state
        return restored, book
    raise CheckpointError(
        f"fit: no checkpoint in {str(checkpoint_dir)!r} verifies: {'; '.join(skipped)}"
    )


def _check_config(
    path: Path,
    book: dict[str, Any],
    steps_per_epoch: int | None,
    config: dict[str, Any],
    allow_config_change: bool,
) -> None:
    """Refuse a checkpoint written by a run with another configuration."""
    if book.get("steps_per_epoch") != steps_per_epoch:
        raise ValueError(
            f"fit: the checkpoint {str(path)!r} was written with "
            f"{book.get('steps_per_epoch')} steps per epoch, this run has "
            f"{steps_per_epoch} (same data, batch_size and drop_last needed)"
        )
    saved = book.get("config")
    if saved is None:  # written before configurations were recorded
        return
    changed = differences(saved, json.loads(json.dumps(config)))
    if not changed:
        return
    message = (
        f"the checkpoint {str(path)!r} was written by a run with another configuration: "
        + "; ".join(changed[:8])
        + (f"; ... ({len(changed)} in all)" if len(changed) > 8 else "")
    )
    if not allow_config_change:
        raise ValueError(f"fit: {message} (pass allow_config_change=True to resume anyway)")
    warnings.warn(f"fit: resuming anyway: {message}", RuntimeWarning, stacklevel=4)


def _checkpoints(directory: str | Path | None) -> list[Path]:
    """The ``step_*.safetensors`` files of ``directory``, oldest step first."""
    if directory is None or not Path(directory).is_dir():
        return []
    steps = []
    for f in Path(directory).glob("step_*.safetensors"):
        m = re.fullmatch(r"step_(\d+)\.safetensors", f.name)
        if m:
            steps.append((int(m.group(1)), f))
    return [f for _, f in sorted(steps)]


def _prune(directory: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` most recent ``step_*.safetensors`` files (ordered by
    their step number, not their name: step 100000000 comes after 99999999), and the
    temporary files a save killed mid-write left behind."""
    for old in _checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    for stale in Path(directory).glob(".step_*.safetensors.tmp*"):
        stale.unlink(missing_ok=True)
