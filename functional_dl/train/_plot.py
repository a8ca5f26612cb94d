"""Plot the per-epoch history returned by ``fit`` (matplotlib is an optional dependency)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["plot_history"]


def plot_history(history: dict[str, list[float]], *, path: str | os.PathLike | None = None) -> Any:
    """Plot training curves: one panel per metric, the training and validation values.

    ``history["x"]`` and ``history["val_x"]`` share a panel; ``lr`` and ``lr_scale`` get
    a log-scale panel; ``time`` is left out.

    Args:
        history: the ``history`` of :func:`fit` (metric name -> per-epoch values).
        path: if given, the figure is saved there (PNG, SVG, PDF by extension).

    Returns:
        A ``matplotlib.figure.Figure`` (shown by notebooks when it is the cell result).

    Example:
        >>> history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "time": [3.0, 2.0]}
        >>> [ax.get_title() for ax in plot_history(history).axes]
        ['loss']
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot_history needs matplotlib (pip install matplotlib)") from exc
    names = [k for k in history if not k.startswith("val_") and k != "time"]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in names]
    if not names:
        raise ValueError(f"plot_history: nothing to plot in history with keys {list(history)}")
    fig = Figure(figsize=(4.0 * len(names), 3.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                values = history[key]
                ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=label)
        if name in ("lr", "lr_scale"):
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(ax.get_lines()) > 1:
            ax.legend()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
