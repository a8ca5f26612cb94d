"""Data sets that ship with installed packages, splits, normalisation and batch iterators.

Data lives on the host as NumPy arrays; the training loop moves one batch at a time to
the device(s). Everything random takes an explicit ``key``: the same key gives the same
split, the same shuffling and the same batches.

    x, y = fdl.data.load_digits()
    train, val, test = fdl.data.random_split(key, (x, y), [0.7, 0.15, 0.15])
    for xb, yb in fdl.data.batches(key, *train, batch_size=64):
        ...
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_int, check_nonnegative

__all__ = [
    "load_digits",
    "load_sample_images",
    "make_moons",
    "random_split",
    "mean_std",
    "normalize",
    "num_examples",
    "num_batches",
    "batches",
    "host_rng",
]


def _sklearn_datasets(fn: str) -> Any:
    try:
        from sklearn import datasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{fn} needs scikit-learn (pip install 'functional_dl[notebooks]')"
        ) from exc
    return datasets


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes).

    Pixel values (integers 0..16) are scaled to ``[0, 1]``.

    Returns:
        ``(images, labels)``: ``images`` float32 ``[1797, 8, 8, 1]`` (NHWC) in ``[0, 1]``,
        ``labels`` int32 ``[1797]`` in ``0..9``.

    Equivalent: ``sklearn.datasets.load_digits()`` (``images / 16``, a channel axis added).

    Example:
        >>> x, y = load_digits()
        >>> x.shape, y.shape
        ((1797, 8, 8, 1), (1797,))
    """
    digits = _sklearn_datasets("load_digits").load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    return images, digits.target.astype(np.int32)


def load_sample_images() -> np.ndarray:
    """The two colour photographs bundled with scikit-learn (a temple and a flower).

    Returns:
        float32 ``[2, 427, 640, 3]`` (NHWC, RGB) in ``[0, 1]``.

    Equivalent: ``sklearn.datasets.load_sample_images().images`` divided by 255.

    Example:
        >>> load_sample_images().shape
        (2, 427, 640, 3)
    """
    images = _sklearn_datasets("load_sample_images").load_sample_images().images
    return np.stack(images).astype(np.float32) / 255.0


def make_moons(
    key: Any, n_samples: int = 100, *, noise: float | None = None
) -> tuple[jax.Array, jax.Array]:
    """Two interleaving half circles, a toy binary classification problem.

    The outer moon is ``(cos t, sin t)`` and the inner one ``(1 - cos t, 0.5 - sin t)``
    for ``t = linspace(0, pi, n)``; the samples are shuffled with ``key`` and, when
    ``noise`` is given, Gaussian noise of standard deviation ``noise`` is added.

    Args:
        key: a ``jax.random`` key.
        n_samples: total number of points; the outer moon gets ``n_samples // 2``.
        noise: standard deviation of the added Gaussian noise (``None``: none).

    Returns:
        ``(points, labels)``: float32 ``[n_samples, 2]`` and int32 ``[n_samples]``
        (0 for the outer moon, 1 for the inner one).

    Equivalent: ``sklearn.datasets.make_moons`` (same points; the shuffle and the noise
    come from ``key`` instead of a NumPy ``random_state``).

    Example:
        >>> x, y = make_moons(jax.random.key(0), 200, noise=0.1)
        >>> x.shape
        (200, 2)
    """
    check_int("n_samples", n_samples, minimum=1, fn="make_moons")
    if noise is not None:
        check_nonnegative("noise", noise, fn="make_moons")
    return _moons(key, n_samples, 0.0 if noise is None else noise)


@functools.partial(jax.jit, static_argnums=1)
def _moons(key: Any, n_samples: int, noise: Any) -> tuple[jax.Array, jax.Array]:
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = jnp.linspace(0.0, jnp.pi, n_out)
    t_in = jnp.linspace(0.0, jnp.pi, n_in)
    outer = jnp.stack([jnp.cos(t_out), jnp.sin(t_out)], axis=1)
    inner = jnp.stack([1.0 - jnp.cos(t_in), 0.5 - jnp.sin(t_in)], axis=1)
    points = jnp.concatenate([outer, inner]).astype(jnp.float32)
    labels = jnp.concatenate([jnp.zeros(n_out, jnp.int32), jnp.ones(n_in, jnp.int32)])
    perm_key, noise_key = jax.random.split(key)
    perm = jax.random.permutation(perm_key, n_samples)
    noise = noise * jax.random.normal(noise_key, points.shape, points.dtype)
    return points[perm] + noise, labels[perm]


def _is_typed_key(key: Any) -> bool:
    dtype = getattr(key, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def host_rng(key: Any) -> np.random.Generator:
    """A NumPy generator seeded with the bits of ``key``, for randomness drawn on the host.

    The draws stay a pure function of ``key`` (same key, same numbers) and need no device
    work or compilation per shape: used for shuffling and for generating data sets.

    Args:
        key: a ``jax.random`` key (typed ``jax.random.key`` or raw ``PRNGKey``).

    Returns:
        ``numpy.random.Generator`` (PCG64) seeded with the key's uint32 words.

    Equivalent: ``np.random.default_rng(seed)`` with the seed taken from a JAX key.

    Example:
        >>> host_rng(jax.random.key(0)).integers(0, 10, 3).shape
        (3,)
        >>> a, b = host_rng(jax.random.key(1)).random(4), host_rng(jax.random.key(1)).random(4)
        >>> bool((a == b).all())
        True
    """
    if _is_typed_key(key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, np.uint32).ravel())


def _permutation(key: Any, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` decided by ``key``, drawn on the host."""
    return host_rng(key).permutation(n)


def num_examples(data: Any, *, fn: str = "num_examples") -> int:
    """The number of examples of a data set: the common leading size of its arrays.

    Args:
        data: a pytree of arrays ``[N, ...]`` (``(inputs, targets)``, a tuple of arrays,
            a dict, ...).
        fn: the name used in error messages (the caller's).

    Returns:
        ``N``.

    Raises:
        ValueError: no array, an array without a leading axis, arrays of different
            lengths, or ``N == 0``.

    Example:
        >>> num_examples((np.zeros((5, 2)), np.zeros(5)))
        5
    """
    arrays = jax.tree_util.tree_leaves(data)
    if not arrays:
        raise ValueError(f"{fn}: expected at least one array, got none")
    if any(np.ndim(a) == 0 for a in arrays):
        raise ValueError(
            f"{fn}: every array needs a leading example axis, got shapes "
            f"{[tuple(np.shape(a)) for a in arrays]}"
        )
    sizes = [int(np.shape(a)[0]) for a in arrays]
    if len(set(sizes)) != 1:
        raise ValueError(
            f"{fn}: arrays must have the same number of examples (leading axis), got sizes {sizes}"
        )
    if sizes[0] == 0:
        raise ValueError(
            f"{fn}: the data set is empty (0 examples), shapes "
            f"{[tuple(np.shape(a)) for a in arrays]}"
        )
    return sizes[0]


def random_split(
    key: Any, data: Sequence[Any], lengths: Sequence[float]
) -> list[tuple[np.ndarray, ...]]:
    """Randomly split a data set (a tuple of arrays of equal length) into parts.

    ``lengths`` are either example counts summing to ``N`` or fractions summing to 1;
    fractions become ``floor(N * f)`` examples and the remainder is handed out one by
    one to the parts in order (PyTorch's rule).

    Args:
        key: a ``jax.random`` key that decides the permutation.
        data: a tuple of arrays ``[N, ...]`` (e.g. ``(images, labels)``).
        lengths: sizes or fractions of the parts.

    Returns:
        A list with one tuple of arrays per part, in the order of ``lengths``.

    PyTorch: ``torch.utils.data.random_split(dataset, lengths, generator)``.

    Example:
        >>> x, y = np.arange(10.0), np.arange(10) % 2
        >>> train, val, test = random_split(jax.random.key(0), (x, y), [0.6, 0.2, 0.2])
        >>> [len(part[0]) for part in (train, val, test)]
        [6, 2, 2]
    """
    arrays = [np.asarray(a) for a in data]
    n = num_examples(arrays, fn="random_split")
    lengths = list(lengths)
    if not lengths or any(not (v >= 0) for v in lengths):
        raise ValueError(f"random_split: lengths must be non-negative, got lengths={lengths}")
    if math.isclose(sum(lengths), 1.0) and sum(lengths) != n:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(v) for v in lengths]
        if counts != lengths or sum(counts) != n:
            raise ValueError(
                f"random_split: lengths must be counts summing to {n} or "
                f"fractions summing to 1, got lengths={lengths}"
            )
    perm = _permutation(key, n)
    bounds = np.cumsum([0] + counts)
    return [
        tuple(a[perm[lo:hi]] for a in arrays)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def mean_std(x: Any, *, axis: int | Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation for :func:`normalize`, computed on the training data.

    Args:
        x: ``[N, ...]`` training inputs.
        axis: axes to reduce; default every axis but the last (per-channel statistics).

    Returns:
        ``(mean, std)`` float32 arrays, broadcastable against ``x``.

    Example:
        >>> x_train = np.array([[1.0, 10.0], [3.0, 30.0]])
        >>> mean, std = mean_std(x_train)
        >>> mean.tolist(), std.tolist()
        ([[2.0, 20.0]], [[1.0, 10.0]])
        >>> normalize(x_train, mean, std).tolist()
        [[-1.0, -1.0], [1.0, 1.0]]
    """
    x = np.asarray(x, np.float64)
    if axis is None:
        axis = tuple(range(max(x.ndim - 1, 1)))
    mean = x.mean(axis=axis, keepdims=True)
    std = x.std(axis=axis, keepdims=True)
    return mean.astype(np.float32), std.astype(np.float32)


def normalize(x: Any, mean: Any, std: Any, *, eps: float = 1e-8) -> Any:
    """Standardise inputs: ``(x - mean) / max(std, eps)``.

    Args:
        x: inputs ``[N, ...]`` (NumPy or JAX).
        mean, std: statistics broadcastable against ``x`` (see :func:`mean_std`).
        eps: floor of ``std`` so constant features do not divide by zero.

    Returns:
        An array of the shape and floating dtype of ``x``.

    torchvision: ``transforms.Normalize(mean, std)`` (which has no ``eps``).
    """
    check_nonnegative("eps", eps, fn="normalize")
    xp = jnp if isinstance(x, jax.Array) else np
    dtype = x.dtype if xp.issubdtype(x.dtype, xp.floating) else np.float32
    y = (x - mean) / xp.maximum(std, eps)
    return y.astype(dtype)


def num_batches(num_examples: int, batch_size: int, *, drop_last: bool = False) -> int:
    """Number of batches :func:`batches` yields per epoch.

    Example:
        >>> num_batches(70, 32), num_batches(70, 32, drop_last=True)
        (3, 2)
    """
    check_int("batch_size", batch_size, minimum=1, fn="num_batches")
    return num_examples // batch_size if drop_last else -(-num_examples // batch_size)


def batches(
    key: Any,
    *arrays: Any,
    batch_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
    skip: int = 0,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Iterate over one epoch of mini-batches, in an order decided by ``key``.

    Every example appears exactly once per epoch (with ``drop_last`` the last partial
    batch is left out). For several epochs pass a different key per epoch, e.g.
    ``jax.random.fold_in(key, epoch)``.

    Args:
        key: a ``jax.random`` key for the permutation (may be ``None`` if not ``shuffle``).
        *arrays: arrays ``[N, ...]`` with the same number of examples (e.g. images, labels).
        batch_size: examples per batch.
        shuffle: permute the examples (otherwise in order).
        drop_last: leave out the last batch when it is smaller than ``batch_size``.
        skip: number of leading batches to skip (to resume in the middle of an epoch).

    Yields:
        tuples of NumPy arrays ``[batch_size, ...]`` (one per input array).

    PyTorch: ``DataLoader(TensorDataset(*arrays), batch_size, shuffle, drop_last)``.

    Example:
        >>> x, y = np.zeros((70, 3)), np.arange(70)
        >>> [len(yb) for xb, yb in batches(jax.random.key(0), x, y, batch_size=32)]
        [32, 32, 6]
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = num_examples(arrays, fn="batches")
    check_int("batch_size", batch_size, minimum=1, fn="batches")
    check_int("skip", skip, minimum=0, fn="batches")
    if shuffle:
        if key is None:
            raise ValueError("batches: shuffle=True needs a key, got key=None")
        order = _permutation(key, n)
    else:
        order = np.arange(n)
    count = num_batches(n, batch_size, drop_last=drop_last)
    # Validation above runs at call time; the generator only slices.
    return (
        tuple(a[order[b * batch_size : (b + 1) * batch_size]] for a in arrays)
        for b in range(skip, count)
    )
