"""Batch mixing: MixUp and CutMix with the batch rolled by one as partner."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_int, check_ndim, check_positive, is_concrete
from . import _image, _sampling


def _check(images: Any, labels: Any, alpha: Any, num_classes: Any, fn: str) -> jnp.ndarray:
    """Validate the arguments and return float labels ``[N, num_classes]``."""
    alpha = check_positive("alpha", alpha, fn=fn)
    _image.check(images, fn=fn, ranks=(4,))
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if num_classes is None:
            raise ValueError(
                f"{fn}: integer labels need num_classes (or pass one-hot labels), "
                f"got labels.dtype={labels.dtype}"
            )
        check_int("num_classes", num_classes, minimum=1, fn=fn)
        check_ndim("labels", labels, 1, fn=fn)
        if (
            is_concrete(labels)
            and labels.size
            and not (0 <= int(labels.min()) and int(labels.max()) < num_classes)
        ):
            raise ValueError(
                f"{fn}: integer labels must lie in [0, num_classes={num_classes}), got labels "
                f"from {int(labels.min())} to {int(labels.max())}"
            )
        labels = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    check_ndim("labels", labels, 2, fn=fn)
    if labels.shape[0] != np.shape(images)[0]:
        raise ValueError(
            f"{fn}: labels must have one row per image ({np.shape(images)[0]}), "
            f"got labels.shape={tuple(labels.shape)}"
        )
    return labels


def _mix_labels(labels: jnp.ndarray, lam: jnp.ndarray) -> jnp.ndarray:
    """``lam_i * y_i + (1 - lam_i) * y_{i-1}`` (partner = labels rolled by one)."""
    lam = lam.astype(labels.dtype)[:, None]
    return lam * labels + (1.0 - lam) * jnp.roll(labels, 1, axis=0)


@functools.partial(jax.jit, static_argnums=1)
def _draw(key: Any, n: int, alpha: Any, per_sample: Any) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``lam ~ Beta(alpha, alpha)`` ``[n]`` and two uniforms per sample ``[n, 2]``.

    ``lam = Ga / (Ga + Gb) = sigmoid(log Ga - log Gb)`` with ``Ga, Gb ~ Gamma(alpha)``.
    Without ``per_sample`` the first sample's draws are used for the whole batch. MixUp
    and CutMix share this compiled sampler (the gamma sampler is slow to compile).
    """
    k_lam, k_box = jax.random.split(key)
    log_gamma = _sampling.flat_draw(jax.random.loggamma, k_lam, (n, 2), alpha)
    lam = jax.nn.sigmoid(log_gamma[:, 0] - log_gamma[:, 1])
    u = _sampling.flat_draw(jax.random.uniform, k_box, (n, 2))
    return jnp.where(per_sample, lam, lam[:1]), jnp.where(per_sample, u, u[:1])


def mixup(
    key: Any,
    images: Any,
    labels: Any,
    *,
    alpha: Any = 1.0,
    per_sample: bool = True,
    num_classes: int | None = None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Blend each image and label with its partner, the batch rolled by one.

    ``x_i' = lam_i x_i + (1 - lam_i) x_{i-1}``, ``y_i' = lam_i y_i + (1 - lam_i) y_{i-1}``,
    ``lam ~ Beta(alpha, alpha)`` (index ``i - 1`` wraps around).

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]``.
      labels: one-hot (or soft) ``[N, num_classes]``; integer ``[N]`` with ``num_classes``.
      alpha: positive Beta parameter.
      per_sample: one ``lam`` per sample (default, like every op here) or, with
        ``False``, one for the whole batch as torchvision.
      num_classes: needed only for integer labels.

    Returns:
      ``(images, labels)``: images in the input dtype, float labels ``[N, num_classes]``
      whose rows are convex combinations (sum 1 for one-hot input).

    PyTorch: ``torchvision.transforms.v2.MixUp(alpha=alpha, num_classes=...)``, which
    uses one ``lam`` per batch (``per_sample=False``). Zhang et al., 2018,
    "mixup: Beyond Empirical Risk Minimization".

    Example:
      >>> key, images, y = jax.random.key(0), jnp.ones((4, 8, 8, 3)), jnp.array([0, 1, 2, 3])
      >>> images, labels = mixup(key, images, jax.nn.one_hot(y, 10), alpha=0.2)
      >>> images.shape, labels.shape, bool(jnp.allclose(labels.sum(-1), 1.0))
      ((4, 8, 8, 3), (4, 10), True)
    """
    images, labels = as_arrays(images, labels)
    labels = _check(images, labels, alpha, num_classes, "mixup")
    lam, _ = _draw(key, labels.shape[0], alpha, per_sample)
    return _mixup(images, labels, lam)


@jax.jit
def _mixup(images: Any, labels: jnp.ndarray, lam: jnp.ndarray) -> tuple:
    x, restore = _image.to_compute(images)
    w = lam.astype(x.dtype)[:, None, None, None]
    mixed = w * x + (1.0 - w) * jnp.roll(x, 1, axis=0)
    return restore(mixed), _mix_labels(labels, lam)


def cutmix(
    key: Any,
    images: Any,
    labels: Any,
    *,
    alpha: Any = 1.0,
    per_sample: bool = True,
    num_classes: int | None = None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Paste a box of the partner image (the batch rolled by one) into each image.

    torchvision's box: ``lam ~ Beta(alpha, alpha)``, centre ``(r_y, r_x)`` uniform over
    the pixels, half sizes ``int(0.5 sqrt(1 - lam) H)`` and ``int(0.5 sqrt(1 - lam) W)``,
    clipped to the image. Labels mix with the pasted area:
    ``lam' = 1 - box_area / (H W)``, ``y_i' = lam' y_i + (1 - lam') y_{i-1}``.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]``.
      labels: one-hot (or soft) ``[N, num_classes]``; integer ``[N]`` with ``num_classes``.
      alpha: positive Beta parameter.
      per_sample: one box per sample (default) or one for the whole batch (torchvision).
      num_classes: needed only for integer labels.

    Returns:
      ``(images, labels)`` as in :func:`mixup`.

    PyTorch: ``torchvision.transforms.v2.CutMix(alpha=alpha, num_classes=...)`` (one box
    per batch, ``per_sample=False``). Yun et al., 2019, "CutMix".

    Example:
      >>> key, images, y = jax.random.key(0), jnp.ones((4, 8, 8, 3)), jnp.array([0, 1, 2, 3])
      >>> images, labels = cutmix(key, images, jax.nn.one_hot(y, 10))
      >>> images.shape, labels.shape, bool(jnp.allclose(labels.sum(-1), 1.0))
      ((4, 8, 8, 3), (4, 10), True)
    """
    images, labels = as_arrays(images, labels)
    labels = _check(images, labels, alpha, num_classes, "cutmix")
    lam, u = _draw(key, labels.shape[0], alpha, per_sample)
    return _cutmix(images, labels, lam, u)


@jax.jit
def _cutmix(images: Any, labels: jnp.ndarray, lam: jnp.ndarray, u: jnp.ndarray) -> tuple:
    x = jnp.asarray(images)  # pure selection: no dtype conversion needed
    H, W = x.shape[1:3]

    def box(u: jnp.ndarray, lam: jnp.ndarray) -> tuple:
        r_y, r_x = _sampling.randint(u[0], H - 1), _sampling.randint(u[1], W - 1)
        r = 0.5 * jnp.sqrt(1.0 - lam)
        half_h, half_w = (r * H).astype(jnp.int32), (r * W).astype(jnp.int32)
        y1, y2 = jnp.maximum(r_y - half_h, 0), jnp.minimum(r_y + half_h, H)
        x1, x2 = jnp.maximum(r_x - half_w, 0), jnp.minimum(r_x + half_w, W)
        mask = _image.box_mask((H, W), y1, x1, y2 - y1, x2 - x1)
        return mask, 1.0 - (y2 - y1) * (x2 - x1) / (H * W)

    mask, lam = jax.vmap(box)(u, lam)
    mixed = jnp.where(mask, jnp.roll(x, 1, axis=0), x)
    return mixed, _mix_labels(labels, lam)
