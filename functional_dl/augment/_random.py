"""Per-sample randomness: one row of uniforms per image, ranges, box sampling, ``compose``.

Every random op draws all the parameters of a sample from one row of ``U[0, 1)``
numbers: ``jax.random.uniform(key, (N, k))`` for a batch (row ``i`` belongs to image
``i``), ``(k,)`` for a single image. One draw per op keeps the compiled program small;
the parameters are then derived with the helpers below (``uniform``, ``randint``,
``bernoulli``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_pair, check_probability, is_concrete

TRIES = 10  # torchvision's number of attempts for crop / erase boxes


def per_sample(fn: Callable, key: Any, images: jnp.ndarray, num_uniforms: int,
               *batched: Any) -> Any:
    """``fn(u_i, image_i, *row_i)`` for every image with its own uniforms ``u_i``.

    ``u_i`` holds ``num_uniforms`` numbers in ``[0, 1)`` drawn from ``key``. A single
    image ``[H, W, C]`` is passed as it is; a batch ``[N, H, W, C]`` is mapped with
    ``jax.vmap``, together with the leading axis of every array in ``batched``.
    """
    if images.ndim == 3:
        return fn(flat_draw(jax.random.uniform, key, (num_uniforms,)), images, *batched)
    u = flat_draw(jax.random.uniform, key, (images.shape[0], num_uniforms))
    return jax.vmap(fn)(u, images, *batched)


def flat_draw(sampler: Callable, key: Any, shape: tuple[int, ...], *args: Any) -> jnp.ndarray:
    """``sampler(key, *args, (size,))`` reshaped to ``shape``.

    Drawing a flat vector compiles several times faster on CPU than drawing a
    multi-dimensional shape directly (the counter-based generator builds one index
    array per dimension).
    """
    return sampler(key, *args, (int(np.prod(shape)),)).reshape(shape)


def uniform(u: jnp.ndarray, bounds: tuple) -> jnp.ndarray:
    """Map ``u ~ U[0, 1)`` to ``U[lo, hi)``."""
    lo, hi = bounds
    return lo + u * (hi - lo)


def bernoulli(u: jnp.ndarray, p: Any) -> jnp.ndarray:
    """``u < p``: exactly never for ``p = 0``, always for ``p = 1``."""
    return u < p


def randint(u: jnp.ndarray, high: Any) -> jnp.ndarray:
    """An int uniform on ``0..high`` (``high`` may be traced; ``high < 0`` gives 0)."""
    high = jnp.maximum(high, 0)
    return jnp.minimum(jnp.floor(u * (high + 1)).astype(jnp.int32), high)


def is_scalar(value: Any) -> bool:
    """True for a number or 0-d array, False for a pair / sequence of values."""
    return not isinstance(value, (tuple, list)) and np.ndim(value) == 0


def symmetric_range(name: str, value: Any, *, fn: str, center: float = 0.0,
                    minimum: float | None = None) -> tuple[Any, Any]:
    """torchvision's range argument: a number ``v >= 0`` means ``[center - v, center + v]``.

    A pair ``(lo, hi)`` is used as given and must be ordered. With ``minimum`` the
    lower end of a range built from a number is clipped at ``minimum``.
    """
    if is_scalar(value):
        if is_concrete(value) and not float(value) >= 0:
            raise ValueError(f"{fn}: {name} as a single number must be >= 0, got {name}={value!r}")
        lo, hi = center - value, center + value
        if minimum is not None:
            lo = max(lo, minimum) if is_concrete(lo) else jnp.maximum(lo, minimum)
        return lo, hi
    return check_pair(name, value, fn=fn)


def check_range_within(name: str, pair: tuple[Any, Any], lo: float, hi: float, *,
                       fn: str) -> None:
    """Raise ``ValueError`` unless both ends of ``pair`` lie in ``[lo, hi]``."""
    a, b = pair
    if is_concrete(a) and is_concrete(b) and not (lo <= float(a) and float(b) <= hi):
        raise ValueError(f"{fn}: {name} must lie within [{lo}, {hi}], got {name}={pair!r}")


def check_p(p: Any, *, fn: str) -> None:
    """Validate an application probability ``p``."""
    check_probability("p", p, fn=fn)


def box_candidates(u_area: jnp.ndarray, u_ratio: jnp.ndarray, area: float, scale: tuple,
                   ratio: tuple) -> tuple[jnp.ndarray, jnp.ndarray]:
    """torchvision's candidate boxes: sizes ``(round(sqrt(t*r)), round(sqrt(t/r)))``.

    ``t = area * U(scale)`` and ``log r ~ U(log ratio)``, one candidate per entry of
    ``u_area`` / ``u_ratio``. Returns two int arrays; the caller decides which is the
    width and which the height.
    """
    target = area * uniform(u_area, scale)
    aspect = jnp.exp(uniform(u_ratio, (jnp.log(ratio[0]), jnp.log(ratio[1]))))
    along = jnp.round(jnp.sqrt(target * aspect)).astype(jnp.int32)
    across = jnp.round(jnp.sqrt(target / aspect)).astype(jnp.int32)
    return along, across


def first_valid(valid: jnp.ndarray, *candidates: jnp.ndarray) -> tuple:
    """``(found, c[i], ...)`` for the first ``i`` with ``valid[i]`` (``c[0]`` if none)."""
    index = jnp.argmax(valid)
    return (jnp.any(valid), *(c[index] for c in candidates))


def compose(*augmentations: Callable) -> Callable:
    """Chain random augmentations into one ``augment(key, images)``.

    Each augmentation is called as ``aug(key_i, images)`` with its own key, split from
    ``key``: ``keys = jax.random.split(key, len(augmentations))``. Bind hyperparameters
    with ``functools.partial`` (or a lambda); deterministic ops are wrapped as
    ``lambda key, x: center_crop(x, 24)``.

    PyTorch: ``torchvision.transforms.v2.Compose([...])``, which draws from a global
    generator instead of a key.

    Args:
      *augmentations: callables ``(key, images) -> images``.

    Returns:
      ``augment(key, images) -> images``, applying them in order.

    Example:
      >>> from functools import partial
      >>> aug = compose(partial(random_resized_crop, size=24),
      ...               random_horizontal_flip,
      ...               partial(color_jitter, brightness=0.4))
      >>> out = jax.jit(aug)(jax.random.key(0), images)
    """
    for i, aug in enumerate(augmentations):
        if not callable(aug):
            raise TypeError(f"compose: augmentations[{i}] must be callable, got {aug!r}")

    def augment(key: Any, images: Any) -> Any:
        """Apply the composed augmentations in order, each with its own key."""
        if not augmentations:
            return images
        keys = jax.random.split(key, len(augmentations))
        for k, aug in zip(keys, augmentations, strict=True):
            images = aug(k, images)
        return images

    return augment
