"""``fit``: epochs of shuffled mini-batches with progress bar, validation, plateau
scheduling, early stopping, checkpoints and resumption."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh

from .._checks import check_choice, check_int, check_nonnegative
from ..data import batches, num_batches, num_examples
from ..nn import Layer
from ..schedules import plateau_states, step_plateau
from ._checkpoint import (
    checkpoint_metadata,
    checkpoint_path,
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from ._parallel import DATA_AXIS, data_parallel_mesh, replicate, shard_batch
from ._sharding import is_sharding_mesh
from ._state import TrainState
from ._step import Metrics, evaluate, make_train_step

__all__ = ["FitResult", "fit"]


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Fields::

        state         # TrainState after the last epoch
        history       # dict metric -> list of per-epoch values ("loss", "val_loss", ...)
        stopped_early # bool: early stopping ended training before `epochs`
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
    train_data: Any,
    epochs: Any,
    batch_size: Any,
    val_data: Any,
    plateau: Any,
    patience: Any,
    min_delta: Any,
    mode: Any,
    checkpoint_dir: Any,
    resume: Any,
    keep_checkpoints: Any,
) -> int:
    fn = "fit"
    if not isinstance(state, TrainState):
        raise TypeError(f"fit: state must be a TrainState, got state={type(state).__name__}")
    if not isinstance(model, Layer):
        raise TypeError(f"fit: model must be a Layer, got model={model!r}")
    check_int("epochs", epochs, minimum=1, fn=fn)
    check_int("batch_size", batch_size, minimum=1, fn=fn)
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
    n = num_examples(train_data, fn="fit: train_data")
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
    return n


def fit(
    state: TrainState,
    model: Layer,
    loss_fn: Callable,
    optimizer: Any,
    train_data: Any,
    *,
    epochs: int,
    batch_size: int,
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
) -> FitResult:
    """Train ``model`` for ``epochs`` epochs of shuffled mini-batches.

    Each epoch shuffles ``train_data`` with ``fold_in(state.key, epoch)``, runs the jitted
    data-parallel step of :func:`make_train_step` on every batch (a tqdm bar shows the
    running loss and metrics, in terminals and notebooks), evaluates ``val_data``, then
    optionally updates a plateau scheduler, checks early stopping and writes a checkpoint.

    Args:
        state: a :class:`TrainState` (donated: use the returned one).
        model, loss_fn, optimizer, metrics, mesh: as in :func:`make_train_step`.
        train_data: ``(inputs, targets)``, arrays with ``N`` examples on the leading axis
            (``inputs`` may be a tuple of arrays).
        epochs: total number of epochs (a resumed run continues up to this number).
        batch_size: examples per step (over all devices; divisible by their number).
        val_data: optional ``(inputs, targets)`` evaluated after every epoch
            (``val_loss``, ``val_<metric>`` in the history).
        drop_last: drop the last incomplete batch of an epoch (one compiled shape).
        eval_batch_size: batch size of the validation forward passes.
        plateau: feed ``monitor`` after each epoch to the
            ``fdl.schedules.scale_by_plateau`` transform of the optimizer
            (``optax.chain(fdl.optim.adam(1e-3), fdl.schedules.scale_by_plateau(...))``)
            with :func:`fdl.schedules.step_plateau`; its state is in
            ``state.opt_state`` and the history records the scale each epoch ran with
            (``lr_scale``).
        monitor: the history entry watched by plateau and early stopping (default
            ``"val_loss"`` with ``val_data``, else ``"loss"``).
        mode: ``"min"`` or ``"max"``: whether a smaller or larger ``monitor`` is better.
        patience: stop once this many consecutive epochs bring no improvement of
            ``monitor`` (``None``: never stop early).
        min_delta: the smallest change that counts as an improvement.
        checkpoint_dir: write ``step_<step>.safetensors`` there after every epoch: the
            :class:`TrainState` (restorable with ``restore_checkpoint(path, state)``; the
            plateau state is part of its ``opt_state``), with the history and the
            early-stopping state in its metadata; the last ``keep_checkpoints`` files
            are kept.
        resume: ``True`` continues from the latest checkpoint of ``checkpoint_dir``, a
            path from that file; the result equals the uninterrupted run bit for bit.
        progress: show the progress bar.

    Returns:
        :class:`FitResult` ``(state, history, stopped_early)``.

    Raises:
        FloatingPointError: the loss became NaN/inf; the message names the step, and
            the checkpoints written before it are kept.

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
    """
    n = _check_fit_args(
        state,
        model,
        train_data,
        epochs,
        batch_size,
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
    if batch_size % local_devices:
        raise ValueError(
            f"fit: batch_size must be divisible by the number of devices "
            f"({local_devices}), got batch_size={batch_size}"
        )
    steps_per_epoch = num_batches(n, batch_size, drop_last=drop_last)
    if steps_per_epoch == 0:
        raise ValueError(
            f"fit: batch_size={batch_size} is larger than the {n} training "
            f"examples and drop_last=True leaves no batch"
        )
    monitor = monitor or ("val_loss" if val_data is not None else "loss")
    names = ["loss", *(metrics or {})]
    names += [f"val_{k}" for k in names] if val_data is not None else []
    if monitor not in names:
        raise ValueError(f"fit: monitor must be one of {names}, got monitor={monitor!r}")
    train_step = make_train_step(model, loss_fn, optimizer, metrics=metrics, mesh=mesh)
    leaves, treedef = jax.tree_util.tree_flatten(train_data)
    leaves = [np.asarray(a) for a in leaves]

    state = state if is_sharding_mesh(mesh) else replicate(state, mesh)
    book: dict[str, Any] = {
        "history": {},
        "best": None,
        "bad_epochs": 0,
        "steps_per_epoch": steps_per_epoch,
    }
    if resume:
        state, book = _resume(resume, checkpoint_dir, state, steps_per_epoch)
    history = book["history"]
    step = int(state.step)
    start_epoch, skip = divmod(step, steps_per_epoch)
    last_ckpt = latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    stopped_early = False
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        key = jax.random.fold_in(state.key, epoch)
        bar = _progress_bar(
            total=steps_per_epoch,
            initial=skip,
            unit="step",
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            dynamic_ncols=True,
        )
        for b, chunk in enumerate(
            batches(key, *leaves, batch_size=batch_size, drop_last=drop_last, skip=skip), start=skip
        ):
            batch = jax.tree_util.tree_unflatten(treedef, chunk)
            if jax.process_count() > 1:  # one process: the step's jit places the batch
                batch = shard_batch(batch, mesh)
            state, step_metrics = train_step(state, batch)
            values = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
            if not math.isfinite(values["loss"]):
                bar.close()
                kept = (
                    f"the last good checkpoint is {str(last_ckpt)!r}"
                    if last_ckpt
                    else "no checkpoint was written"
                )
                raise FloatingPointError(
                    f"fit: the loss became {values['loss']} at step {step + 1} (epoch "
                    f"{epoch + 1}, batch {b + 1}); training stopped, {kept}"
                )
            step += 1
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1)
            bar.set_postfix(
                {k: f"{v / (b + 1 - skip):.4f}" for k, v in sums.items()}, refresh=False
            )
        record = {k: v / max(steps_per_epoch - skip, 1) for k, v in sums.items()}
        skip = 0
        if val_data is not None:
            scores = evaluate(
                state,
                model,
                loss_fn,
                val_data,
                metrics=metrics,
                batch_size=eval_batch_size,
                mesh=mesh,
            )
            record.update({f"val_{k}": v for k, v in scores.items()})
        if plateau:
            record["lr_scale"] = float(plateau_states(state.opt_state)[0].plateau.lr)
            opt_state = step_plateau(state.opt_state, record[monitor])
            state = state.replace(
                opt_state=opt_state if is_sharding_mesh(mesh) else replicate(opt_state, mesh)
            )
        record["time"] = time.perf_counter() - t0
        for k, v in record.items():
            history.setdefault(k, []).append(v)
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "time"}, refresh=False)
        bar.close()
        if _improved(record[monitor], book["best"], mode, min_delta):
            book["best"], book["bad_epochs"] = record[monitor], 0
        else:
            book["bad_epochs"] += 1
        stopped_early = patience is not None and book["bad_epochs"] >= patience
        if checkpoint_dir is not None and jax.process_index() == 0:
            last_ckpt = save_checkpoint(checkpoint_path(checkpoint_dir, step), state, metadata=book)
            _prune(checkpoint_dir, keep_checkpoints)
        if stopped_early:
            break
    return FitResult(state, history, stopped_early)


def _resume(
    resume: bool | str | Path,
    checkpoint_dir: Any,
    state: TrainState,
    steps_per_epoch: int,
) -> tuple[TrainState, dict]:
    """The state (plateau state included) and bookkeeping saved by an earlier :func:`fit`."""
    path = Path(resume) if isinstance(resume, (str, Path)) else latest_checkpoint(checkpoint_dir)
    if path is None or not path.is_file():
        where = f"at {path}" if path else f"in {checkpoint_dir}"
        raise FileNotFoundError(f"fit: resume={resume!r} but there is no checkpoint {where}")
    book = checkpoint_metadata(path)
    if book.get("steps_per_epoch") != steps_per_epoch:
        raise ValueError(
            f"fit: the checkpoint {str(path)!r} was written with "
            f"{book.get('steps_per_epoch')} steps per epoch, this run has "
            f"{steps_per_epoch} (same data, batch_size and drop_last needed)"
        )
    book.pop("plateau", None)  # written by versions that kept it outside opt_state
    return restore_checkpoint(path, state), book


def _prune(directory: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` most recent ``step_*.safetensors`` files."""
    files = sorted(Path(directory).glob("step_*.safetensors"))
    for old in files[:-keep]:
        old.unlink(missing_ok=True)
