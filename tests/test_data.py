"""fdl.data: bundled data sets, splits, normalisation and the key-driven batch iterator."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from sklearn import datasets

import functional_dl as fdl
from tests.helpers import assert_close

KEY = jax.random.key(0)


def test_load_digits_matches_sklearn():
    x, y = fdl.data.load_digits()
    raw = datasets.load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    np.testing.assert_array_equal(x[..., 0] * 16.0, raw.images)
    np.testing.assert_array_equal(y, raw.target)
    assert x.min() == 0.0 and x.max() == 1.0


def test_load_sample_images_matches_sklearn():
    images = fdl.data.load_sample_images()
    raw = datasets.load_sample_images().images
    assert images.shape == (2, 427, 640, 3) and images.dtype == np.float32
    np.testing.assert_allclose(images * 255.0, np.stack(raw), atol=1e-4)
    assert 0.0 <= images.min() and images.max() <= 1.0


def _sorted_rows(points, labels):
    rows = np.column_stack([labels, np.round(np.asarray(points, np.float64), 5)])
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("n", [7, 4000])
def test_make_moons_same_points_as_sklearn(n):
    x, y = fdl.data.make_moons(KEY, n)
    ref_x, ref_y = datasets.make_moons(n, shuffle=False)
    assert x.shape == (n, 2) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(_sorted_rows(x, y), _sorted_rows(ref_x, ref_y), atol=1e-5)


def test_make_moons_noise_and_determinism():
    clean, y0 = fdl.data.make_moons(KEY, 4000)
    noisy, y1 = fdl.data.make_moons(KEY, 4000, noise=0.1)
    np.testing.assert_array_equal(y0, y1)  # same key: same shuffle
    residual = np.asarray(noisy - clean)
    assert abs(residual.std() - 0.1) < 0.005 and abs(residual.mean()) < 0.005
    again, _ = fdl.data.make_moons(KEY, 4000, noise=0.1)
    np.testing.assert_array_equal(noisy, again)
    other, _ = fdl.data.make_moons(jax.random.key(1), 4000, noise=0.1)
    assert not np.allclose(other, noisy)
    with pytest.raises(ValueError, match="noise"):
        fdl.data.make_moons(KEY, 10, noise=-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        fdl.data.make_moons(KEY, 0)


def test_random_split_pytorch_lengths_and_partition():
    x = np.arange(10) * 10
    y = np.arange(10)
    parts = fdl.data.random_split(KEY, (x, y), [0.33, 0.33, 0.34])
    # PyTorch: floor(10 * f) = [3, 3, 3], the remainder 1 goes to the first part.
    assert [len(p[0]) for p in parts] == [4, 3, 3]
    for px, py in parts:
        np.testing.assert_array_equal(px, py * 10)  # pairs stay together
    np.testing.assert_array_equal(np.sort(np.concatenate([p[1] for p in parts])), y)
    counts = fdl.data.random_split(KEY, (x, y), [5, 5])
    assert [len(p[0]) for p in counts] == [5, 5]
    again = fdl.data.random_split(KEY, (x, y), [0.33, 0.33, 0.34])
    for a, b in zip(parts, again, strict=True):
        np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="lengths"):
        fdl.data.random_split(KEY, (x, y), [3, 3])
    with pytest.raises(ValueError, match="same number of examples"):
        fdl.data.random_split(KEY, (x, y[:5]), [0.5, 0.5])


def test_mean_std_and_normalize():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(50, 4, 4, 3)).astype(np.float32)
    x[..., 2] = 7.0  # a constant channel
    mean, std = fdl.data.mean_std(x)
    assert mean.shape == (1, 1, 1, 3)
    ref_mean = x.astype(np.float64).reshape(-1, 3).mean(0)
    ref_std = np.sqrt(((x.astype(np.float64).reshape(-1, 3) - ref_mean) ** 2).mean(0))
    assert_close(mean.ravel(), ref_mean)
    assert_close(std.ravel(), ref_std)
    z = fdl.data.normalize(x, mean, std)
    assert z.dtype == np.float32 and np.all(np.isfinite(z))
    assert_close(z[..., :2].reshape(-1, 2).mean(0), np.zeros(2), atol=1e-5)
    assert_close(z[..., :2].reshape(-1, 2).std(0), np.ones(2), atol=1e-5)
    np.testing.assert_array_equal(z[..., 2], 0.0)
    zj = fdl.data.normalize(jax.numpy.asarray(x), mean, std)
    assert isinstance(zj, jax.Array)
    assert_close(zj, z)


def _indices(key, n, batch_size, **kw):
    return [
        b[0]
        for b in fdl.data.batches(key, np.arange(n), np.arange(n) * 2, batch_size=batch_size, **kw)
    ]


def test_batches_cover_every_example_once_per_epoch():
    n, bs = 103, 10
    out = _indices(KEY, n, bs)
    assert [len(b) for b in out] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(out)), np.arange(n))
    assert not np.array_equal(np.concatenate(out), np.arange(n))  # really shuffled
    pairs = fdl.data.batches(KEY, np.arange(n), np.arange(n) * 2, batch_size=bs)
    for xb, yb in pairs:
        np.testing.assert_array_equal(yb, xb * 2)
    dropped = _indices(KEY, n, bs, drop_last=True)
    assert len(dropped) == 10 == fdl.data.num_batches(n, bs, drop_last=True)
    assert len(out) == fdl.data.num_batches(n, bs)
    np.testing.assert_array_equal(np.concatenate(dropped), np.concatenate(out)[:100])
    in_order = _indices(None, n, bs, shuffle=False)
    np.testing.assert_array_equal(np.concatenate(in_order), np.arange(n))
    resumed = _indices(KEY, n, bs, skip=4)
    np.testing.assert_array_equal(np.concatenate(resumed), np.concatenate(out[4:]))


def test_batches_are_deterministic_in_the_key():
    a = np.concatenate(_indices(KEY, 64, 8))
    b = np.concatenate(_indices(KEY, 64, 8))
    c = np.concatenate(_indices(jax.random.fold_in(KEY, 1), 64, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # raw uint32 keys work too, and each key gives its own order
    orders = {tuple(np.concatenate(_indices(jax.random.PRNGKey(s), 64, 8))) for s in range(5)}
    assert len(orders) == 5


def test_batches_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match=r"same number of examples.*\[10, 9\]"):
        fdl.data.batches(KEY, x, np.zeros(9), batch_size=2)
    with pytest.raises(ValueError, match="empty"):
        fdl.data.batches(KEY, np.zeros((0, 3)), np.zeros(0), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        fdl.data.batches(KEY, x, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        fdl.data.batches(KEY, x, batch_size=2.5)
    with pytest.raises(ValueError, match="key"):
        fdl.data.batches(None, x, batch_size=2)
    with pytest.raises(ValueError, match="at least one array"):
        fdl.data.batches(KEY, batch_size=2)
