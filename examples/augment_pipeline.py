"""torchvision v2's "Getting started with transforms" and "How to use CutMix and MixUp".

A transform pipeline (random resized crop, horizontal flip, colour jitter, random
erasing) is composed once and applied to a whole batch under ``jit``, each image drawing
its own parameters; then every batch gets CutMix or MixUp (chosen at random, as
``v2.RandomChoice([CutMix(), MixUp()])``) and a small CNN is trained on the soft labels.
The images are scikit-learn's digits recoloured to ``[N, 32, 32, 3]``.

    python examples/augment_pipeline.py            # full run
    python examples/augment_pipeline.py --small    # what the tests run
"""

from __future__ import annotations

import argparse
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

import functional_dl as fdl
from functional_dl import augment, nn

NUM_CLASSES = 10


def recoloured_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The digits as ``[N, 32, 32, 3]`` float32 images with random colours, and labels."""
    x, y = fdl.data.load_digits()
    x = np.kron(x, np.ones((1, 4, 4, 1), np.float32))
    rng = np.random.default_rng(seed)
    bg = rng.uniform(size=(len(x), 1, 1, 3))
    fg = (bg + rng.uniform(0.3, 0.7, size=bg.shape)) % 1.0  # each channel contrasts
    return (x * fg + (1.0 - x) * bg).astype(np.float32), y


# v2.Compose([RandomResizedCrop(32, scale=(0.6, 1)), RandomHorizontalFlip(),
#             ColorJitter(brightness=0.3, hue=0.1), RandomErasing(p=0.25)])
transforms = augment.compose(
    partial(augment.random_resized_crop, size=32, scale=(0.6, 1.0)),
    augment.random_horizontal_flip,
    partial(augment.color_jitter, brightness=0.3, hue=0.1),
    partial(augment.random_erasing, p=0.25),
)


@jax.jit
def augment_batch(key, images, labels):
    """The transforms, then CutMix or MixUp with probability 1/2 each: soft labels."""
    k_t, k_choice, k_mix = jax.random.split(key, 3)
    images = transforms(k_t, images)
    cut = augment.cutmix(k_mix, images, labels, num_classes=NUM_CLASSES)
    mix = augment.mixup(k_mix, images, labels, num_classes=NUM_CLASSES)
    use_cut = jax.random.bernoulli(k_choice)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(use_cut, a, b), cut, mix)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny run (tests)")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.small else 10)

    x, y = recoloured_digits()
    if args.small:
        x, y = x[:256], y[:256]
    train, test = fdl.data.random_split(jax.random.key(0), (x, y), [0.75, 0.25])

    images, soft = augment_batch(jax.random.key(1), train[0][:8], train[1][:8])
    print(
        f"one augmented batch: images {images.shape} in [{float(images.min()):.2f}, "
        f"{float(images.max()):.2f}], soft labels {soft.shape} summing to "
        f"{float(soft.sum(-1).mean()):.3f}"
    )

    model = nn.Sequential(
        nn.Conv2d(16, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(NUM_CLASSES),
    )  # fmt: skip
    optimizer = fdl.optim.adam(3e-3)
    state = fdl.train.create_train_state(jax.random.key(2), model, optimizer, (1, 32, 32, 3))

    def sampler(epoch):  # the user's own pipeline: shuffle, augment, mix
        key = jax.random.fold_in(jax.random.key(3), epoch)
        for i, (xb, yb) in enumerate(fdl.data.batches(key, *train, batch_size=32)):
            yield augment_batch(jax.random.fold_in(key, i), xb, yb)

    soft_xent = optax.softmax_cross_entropy  # (logits, probabilities), mean taken below
    result = fdl.train.fit(
        state, model, lambda logits, p: soft_xent(logits, p).mean(), optimizer, sampler,
        epochs=epochs, progress=not args.small,
    )  # fmt: skip
    scores = fdl.train.evaluate(
        result.state, model, fdl.losses.cross_entropy, test,
        metrics={"accuracy": fdl.metrics.accuracy},
    )  # fmt: skip
    print(
        f"after {epochs} epochs of CutMix/MixUp training: test accuracy "
        f"{scores['accuracy']:.1%} on {len(test[1])} images (loss {scores['loss']:.3f})"
    )
    return scores


if __name__ == "__main__":
    main()
