"""The fingerprint of a run's configuration, stored in every checkpoint ``fit`` writes.

A resumed run must be the same run: the same model (parameter shapes and dtypes), the
same loss, the same optimizer with the same hyperparameters (the learning-rate schedule
and its horizon included) and the same data. :func:`fingerprint` describes these as a
small JSON tree; :func:`differences` names what changed between two of them, so
``fit(resume=True)`` can refuse a changed run with a message that says what changed.

The optimizer is described by the constructor call of ``fdl.optim`` optimizers
(``.arguments``), or, for any other ``GradientTransformation`` (optax's), by the
constants its functions close over (``learning_rate``, ``b1``, a schedule's
``decay_steps``, ...), a few levels deep.
"""

from __future__ import annotations

import functools
import hashlib
import numbers
from typing import Any

import jax
import numpy as np
from jax.core import Tracer

_DEPTH = 12  # how deep into nested closures and chains an optimizer is described


def _describe(value: Any, depth: int = 0) -> Any:
    """A JSON description of a hyperparameter: scalars as themselves, functions by name
    and the constants they close over, optimizers by their constructor call."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        if isinstance(value, Tracer) or np.size(value) > 16:
            return f"array{list(np.shape(value))}"
        return np.asarray(value).tolist()
    if depth >= _DEPTH:
        return type(value).__name__
    arguments = getattr(value, "arguments", None)
    constructor = getattr(value, "constructor", None)
    if isinstance(arguments, dict) and callable(constructor):  # an fdl.optim optimizer
        described = {k: _describe(v, depth + 1) for k, v in arguments.items()}
        return {"fn": getattr(constructor, "__qualname__", "?"), **described}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [_describe(v, depth + 1) for v in value]
    if isinstance(value, functools.partial):
        return {
            "fn": _describe(value.func, depth + 1),
            "args": _describe(value.args, depth + 1),
            "keywords": {k: _describe(v, depth + 1) for k, v in value.keywords.items()},
        }
    update = getattr(value, "update", None)
    if callable(update) and hasattr(value, "init"):  # a GradientTransformation
        return _describe(update, depth + 1)
    if callable(value):
        out: dict[str, Any] = {"fn": getattr(value, "__qualname__", type(value).__name__)}
        code, cells = getattr(value, "__code__", None), getattr(value, "__closure__", None)
        if code is not None and cells:
            for name, cell in zip(code.co_freevars, cells, strict=True):
                try:
                    out[name] = _describe(cell.cell_contents, depth + 1)
                except ValueError:  # an empty cell
                    continue
        return out
    return type(value).__name__


def _tree_digest(tree: Any) -> dict[str, Any]:
    """Leaf count, element count and a hash of every leaf's path, shape and dtype."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    lines = [f"{jax.tree_util.keystr(p)}:{np.shape(x)}:{getattr(x, 'dtype', '?')}" for p, x in flat]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    size = sum(int(np.prod(np.shape(x))) for _, x in flat)
    return {"leaves": len(flat), "elements": size, "shapes": digest}


def fingerprint(state: Any, loss_fn: Any, optimizer: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The run's configuration as a JSON tree (see the module docstring).

    Args:
        state: the ``TrainState`` (its parameters, model state and optimizer state
            structure are described by shapes and dtypes, not values).
        loss_fn: the loss function (described by name and closed-over constants).
        optimizer: the ``GradientTransformation`` (hyperparameters and schedule).
        data: facts about the data (number of examples, steps per epoch, batch size).

    Returns:
        ``{"model": ..., "optimizer": ..., "loss": ..., "data": ...}``.
    """
    return {
        "model": {
            "params": _tree_digest(state.params),
            "model_state": _tree_digest(state.model_state),
        },
        "optimizer": {
            "hyperparameters": _describe(optimizer),
            "state": _tree_digest(state.opt_state),
        },
        "loss": _describe(loss_fn),
        "data": {k: _describe(v) for k, v in data.items()},
    }


def differences(saved: Any, current: Any, path: str = "") -> list[str]:
    """``"optimizer.hyperparameters.lr: 0.001 -> 0.01"`` for every leaf that differs."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in list(saved) + [k for k in current if k not in saved]:
            where = f"{path}.{key}" if path else str(key)
            if key not in saved:
                out.append(f"{where}: (absent) -> {current[key]!r}")
            elif key not in current:
                out.append(f"{where}: {saved[key]!r} -> (absent)")
            else:
                out += differences(saved[key], current[key], where)
        return out
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        return [
            d
            for i, (a, b) in enumerate(zip(saved, current, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if saved == current else [f"{path}: {saved!r} -> {current!r}"]
