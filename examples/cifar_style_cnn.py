"""PyTorch's "Training a classifier" (the CIFAR-10 CNN tutorial), ported to functional_dl.

CIFAR-10 needs a download, so the images are scikit-learn's 8x8 digits, upsampled to
32x32 and recoloured: every image gets a random foreground and background colour, which
gives CIFAR's shape ``[N, 32, 32, 3]`` and makes colour useless for the label. The model,
loss and optimizer are the tutorial's; the layers take output sizes only
(``nn.Conv2d(3, 6, 5)`` in PyTorch is ``Conv2d(6, 5)`` here), channels last.

    python examples/cifar_style_cnn.py            # full run, about a minute on a CPU
    python examples/cifar_style_cnn.py --small    # a few seconds (what the tests run)
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import functional_dl as fdl
from functional_dl import nn


def recoloured_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The digits as ``[N, 32, 32, 3]`` float32 images with random colours, and labels."""
    x, y = fdl.data.load_digits()  # [N, 8, 8, 1] in [0, 1]
    x = np.kron(x, np.ones((1, 4, 4, 1), np.float32))  # nearest upsampling to 32x32
    rng = np.random.default_rng(seed)
    bg = rng.uniform(size=(len(x), 1, 1, 3))
    fg = (bg + rng.uniform(0.3, 0.7, size=bg.shape)) % 1.0  # each channel contrasts
    return (x * fg + (1.0 - x) * bg).astype(np.float32), y


def model() -> fdl.nn.Layer:
    """The tutorial's ``Net``: conv(6, 5) - pool - conv(16, 5) - pool - 120 - 84 - 10."""
    return nn.Sequential(
        nn.Conv2d(6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(120), nn.ReLU(),
        nn.Linear(84), nn.ReLU(),
        nn.Linear(10),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny run (tests)")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    epochs = args.epochs or (3 if args.small else 8)

    x, y = recoloured_digits()
    x = (x - 0.5) / 0.5  # the tutorial's Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    if args.small:
        x, y = x[:400], y[:400]
    train, test = fdl.data.random_split(jax.random.key(0), (x, y), [0.8, 0.2])

    net = model()
    # the tutorial's SGD with momentum 0.9 (lr 0.001 at batch size 4; batches of 32 here)
    optimizer = fdl.optim.sgd(0.02, momentum=0.9)
    state = fdl.train.create_train_state(jax.random.key(1), net, optimizer, (1, 32, 32, 3))
    result = fdl.train.fit(
        state, net, fdl.losses.cross_entropy, optimizer, train,
        epochs=epochs, batch_size=32, progress=not args.small,
    )  # fmt: skip
    scores = fdl.train.evaluate(
        result.state, net, fdl.losses.cross_entropy, test,
        metrics={"accuracy": fdl.metrics.accuracy},
    )  # fmt: skip

    # accuracy per class, as the tutorial prints it
    logits, _ = net.apply(result.state.params, result.state.model_state, test[0])
    predicted = np.asarray(logits.argmax(-1))
    for digit in range(10):
        mine = test[1] == digit
        if mine.any():
            print(f"accuracy for class {digit}: {np.mean(predicted[mine] == digit):.1%}")
    print(
        f"accuracy of the network on the {len(test[1])} test images: {scores['accuracy']:.1%} "
        f"(loss {scores['loss']:.3f}, {epochs} epochs)"
    )
    return scores


if __name__ == "__main__":
    main()
