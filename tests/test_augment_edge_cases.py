"""Augmentations refuse silent nonsense and handle empty batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import augment as A

X = jnp.ones((2, 8, 8, 3))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.random_affine(jax.random.key(0), X, 0.0, translate=(1.5, 0)), "translate"),
        (lambda: A.random_affine(jax.random.key(0), X, 0.0, translate=(0.1, -0.2)), "translate"),
        (lambda: A.cutmix(jax.random.key(0), X, jnp.array([0, 12]), num_classes=10), "labels"),
        (lambda: A.mixup(jax.random.key(0), X, jnp.array([-1, 2]), num_classes=10), "labels"),
        (lambda: A.rotate(X, float("nan")), "angle"),
        (lambda: A.affine(X, 0.0, (float("inf"), 0.0), 1.0, 0.0), "translate"),
    ],
)
def test_silent_nonsense_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "op",
    [
        lambda k, x: A.color_jitter(k, x, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
        lambda k, x: A.random_resized_crop(k, x, size=4),
        lambda k, x: A.rand_augment(k, x),
        lambda k, x: A.random_crop(k, x, 4),
        lambda k, x: A.random_equalize(k, x, p=1.0),
    ],
)
def test_empty_batches_pass_through(op):
    out = op(jax.random.key(0), jnp.ones((0, 8, 8, 3)))
    assert out.shape[0] == 0 and np.asarray(out).size == 0
