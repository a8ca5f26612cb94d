"""Small reference models and the tasks ``python -m functional_dl train`` runs.

Each model is a :class:`functional_dl.nn.Layer` composed from ``fdl.nn`` layers; each
task bundles a model with its data, loss and metrics:

    task = fdl.models.task("cnn")
    state = fdl.train.create_train_state(key, task.model, optimizer, task.input_shape)
    fdl.train.fit(state, task.model, task.loss_fn, optimizer, task.train, ...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from . import data, losses, nn
from ._checks import check_choice, check_int
from .train import DATA_AXIS, accuracy

__all__ = ["mlp", "cnn", "Task", "task", "TASKS"]

TASKS = ("mlp", "cnn", "transformer-reversal")


def mlp(num_classes: int = 10, hidden: tuple[int, ...] = (256, 128), *,
        dropout: float = 0.1) -> nn.Layer:
    """A multi-layer perceptron: ``Flatten, [Linear, ReLU, Dropout] * len(hidden), Linear``.

    Args:
        num_classes: number of output logits.
        hidden: widths of the hidden layers.
        dropout: drop rate after each hidden layer.

    Returns:
        A :class:`~functional_dl.nn.Layer` mapping ``[N, ...]`` to logits ``[N, num_classes]``.

    Example:
        >>> params, state = mlp().init(jax.random.key(0), (1, 8, 8, 1))
    """
    layers = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(width), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(num_classes))


def cnn(num_classes: int = 10, channels: tuple[int, int] = (32, 64), *,
        dropout: float = 0.25) -> nn.Layer:
    """A small convolutional network for 8x8 (or larger) images, NHWC.

    ``[Conv2d 3x3 (no bias), BatchNorm, ReLU, MaxPool2d 2] * 2, Flatten, Dropout,
    Linear(128), ReLU, Linear(num_classes)``. BatchNorm reduces its batch statistics over
    the ``"data"`` device axis, so data-parallel training equals single-device training.

    Args:
        num_classes: number of output logits.
        channels: output channels of the two convolutions.
        dropout: drop rate before the classifier.

    Returns:
        A :class:`~functional_dl.nn.Layer` mapping ``[N, H, W, C]`` to ``[N, num_classes]``.

    Example:
        >>> params, state = cnn().init(jax.random.key(0), (1, 8, 8, 1))
    """
    layers = []
    for width in channels:
        layers += [nn.Conv2d(width, 3, padding=1, bias=False),
                   nn.BatchNorm(axis_name=DATA_AXIS), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(dropout), nn.Linear(128), nn.ReLU(),
                         nn.Linear(num_classes))


class Task(NamedTuple):
    """A model with its data (NumPy, ``(inputs, targets)`` per split), loss and metrics."""

    model: nn.Layer
    loss_fn: Callable[[Any, Any], Any]
    metrics: dict[str, Callable[[Any, Any], Any]]
    train: tuple[Any, Any]
    val: tuple[Any, Any]
    test: tuple[Any, Any]
    input_shape: tuple[int, ...]


def _digits() -> list[tuple[np.ndarray, ...]]:
    """Digits split 70/15/15 with a fixed key, so every run tests on the same images."""
    return data.random_split(jax.random.key(0), data.load_digits(), [0.7, 0.15, 0.15])


def task(name: str, *, seed: int = 0) -> Task:
    """The model, data, loss and metrics of a named task.

    ``"mlp"`` and ``"cnn"``: scikit-learn's 8x8 digits (1797 images, split 70/15/15 with
    a fixed key), cross-entropy, accuracy. ``"transformer-reversal"``: an encoder-decoder
    Transformer that learns to reverse random token sequences (data drawn from ``seed``),
    cross-entropy per token, token accuracy.

    Args:
        name: one of :data:`TASKS`.
        seed: seed of the generated data (the reversal task only).

    Returns:
        :class:`Task`.

    Example:
        >>> task("cnn").train[0].shape
        (1257, 8, 8, 1)
    """
    check_choice("name", name, TASKS, fn="task")
    check_int("seed", seed, minimum=0, fn="task")
    metrics = {"accuracy": accuracy}
    if name in ("mlp", "cnn"):
        train, val, test = _digits()
        model = mlp() if name == "mlp" else cnn()
        return Task(model, losses.cross_entropy, metrics, train, val, test, (1, 8, 8, 1))
    raise NotImplementedError("task: transformer-reversal needs fdl.nn.Transformer")
