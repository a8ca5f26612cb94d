"""Callbacks of :func:`fit`: ``callback(step, metrics, state)``, called at every record.

A record is made at the end of every epoch, or every ``eval_every`` steps when that is
set (and once more for the steps left at the end). ``metrics`` is the record: the train
metrics averaged since the previous record, the validation metrics, ``time`` (and
``lr_scale``, ``step``). A callback returning ``True`` stops training after that record
(Keras' ``model.stop_training = True``). A callback with ``state_dict()`` /
``load_state_dict(d)`` (JSON-able values) has its state saved in fit's checkpoints and
restored on resume, so a resumed run decides exactly like the uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._checks import check_choice, check_int, check_nonnegative

__all__ = ["Callback", "EarlyStopping", "MetricsLogger", "run_callbacks"]

Callback = Callable[[int, dict[str, float], Any], Any]


class EarlyStopping:
    """Stop once ``monitor`` has not improved for ``patience`` consecutive records.

    An improvement is ``value < best - min_delta`` (``mode='min'``) or
    ``value > best + min_delta`` (``'max'``). Its state (best value, records without
    improvement) is saved in fit's checkpoints. Keras: ``callbacks.EarlyStopping``.

    Example:
        >>> stop = EarlyStopping("loss", patience=2)
        >>> [stop(step, {"loss": v}, None) for step, v in enumerate([3.0, 2.0, 2.5, 2.1])]
        [False, False, False, True]
        >>> stop.state_dict()
        {'best': 2.0, 'bad': 2}
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        check_choice("mode", mode, ("min", "max"), fn="EarlyStopping")
        check_int("patience", patience, minimum=1, fn="EarlyStopping")
        check_nonnegative("min_delta", min_delta, fn="EarlyStopping")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best: float | None = None
        self.bad = 0

    def __call__(self, step: int, metrics: dict[str, float], state: Any) -> bool:
        if self.monitor not in metrics:
            raise ValueError(
                f"EarlyStopping: monitor={self.monitor!r} is not among the recorded "
                f"metrics {sorted(metrics)}"
            )
        value = float(metrics[self.monitor])
        if self.best is None or (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        ):
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        return self.bad >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """The state to checkpoint: ``{"best": float | None, "bad": int}``."""
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.best, self.bad = d["best"], int(d["bad"])


class MetricsLogger:
    """Append every record as one row ``{"step": step, **metrics}`` to a file.

    ``format`` is ``'jsonl'`` (one JSON object a line) or ``'csv'`` (columns from the
    first row; a header is written into an empty file); ``None`` picks it from the
    suffix (``.csv`` is CSV, anything else JSON lines). Appending lets a resumed run
    continue the same file. Keras: ``callbacks.CSVLogger``.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> log = MetricsLogger(path)
        >>> log(10, {"loss": 0.5}, None); log(20, {"loss": 0.25}, None)
        >>> print(path.read_text().strip())
        {"step": 10, "loss": 0.5}
        {"step": 20, "loss": 0.25}
    """

    def __init__(self, path: str | Path, *, format: str | None = None) -> None:
        self.path = Path(path)
        fmt = format or ("csv" if self.path.suffix.lower() == ".csv" else "jsonl")
        check_choice("format", fmt, ("jsonl", "csv"), fn="MetricsLogger")
        self.format = fmt

    def __call__(self, step: int, metrics: dict[str, float], state: Any) -> None:
        row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items() if k != "step"}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as f:
            if self.format == "jsonl":
                f.write(json.dumps(row) + "\n")
                return
            fresh = f.tell() == 0
            columns = list(row) if fresh else _csv_header(self.path)
            writer = csv.DictWriter(f, columns, extrasaction="ignore", restval="")
            if fresh:
                writer.writeheader()
            writer.writerow(row)


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return next(csv.reader(f))


def _plain(value: Any) -> Any:
    value = float(value)
    return value if math.isfinite(value) else str(value)


def run_callbacks(
    callbacks: Iterable[Callback], step: int, metrics: dict[str, float], state: Any
) -> bool:
    """Call every callback (all of them, in order); ``True`` if one asked to stop.

    Example:
        >>> run_callbacks([lambda s, m, st: None, lambda s, m, st: m["loss"] < 1], 5,
        ...               {"loss": 0.5}, None)
        True
    """
    stop = False
    for callback in callbacks:
        stop = bool(callback(step, dict(metrics), state)) or stop
    return stop
