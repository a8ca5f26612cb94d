"""Blur, erasing, MixUp / CutMix and compose: SciPy / NumPy references and invariants."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage, stats

import functional_dl.augment as A
from tests.helpers import FLOAT_DTYPES, assert_close, fast_key

RNG = np.random.default_rng(2)
IMAGES = RNG.random((2, 11, 9, 3)).astype(np.float32)
KEY = fast_key(7)


# --- Gaussian blur ---------------------------------------------------------------------


def np_kernel(k, sigma):
    t = np.linspace(-(k - 1) / 2, (k - 1) / 2, k)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def scipy_blur(img, kx, ky, sx, sy):
    """2-D correlation with outer(g_y, g_x); torch's 'reflect' padding is SciPy's 'mirror'."""
    kernel = np.outer(np_kernel(ky, sy), np_kernel(kx, sx))[..., None]
    return ndimage.correlate(img.astype(np.float64), kernel, mode="mirror")


@pytest.mark.parametrize(
    "kernel_size,sigma", [(3, 0.8), (5, 2.0), ((7, 3), (1.5, 0.6)), ((1, 5), (0.3, 1.2))]
)
def test_gaussian_blur_fixed_matches_scipy(kernel_size, sigma):
    kx, ky = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sx, sy = (sigma, sigma) if isinstance(sigma, float) else sigma
    out = A.gaussian_blur_fixed(IMAGES, kernel_size, sigma)
    ref = np.stack([scipy_blur(img, kx, ky, sx, sy) for img in IMAGES])
    assert_close(out, ref, dtype=np.float32)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gaussian_blur_keeps_dtype(dtype):
    out = A.gaussian_blur_fixed(jnp.asarray(IMAGES[0], dtype), 3, 1.0)
    assert out.dtype == dtype
    assert_close(
        out,
        scipy_blur(np.asarray(jnp.asarray(IMAGES[0], dtype), np.float64), 3, 3, 1.0, 1.0),
        dtype=dtype,
    )


def test_gaussian_blur_sigma_per_sample():
    batch = np.repeat(IMAGES[:1], 5, axis=0)
    out = np.asarray(A.gaussian_blur(KEY, batch, 5, sigma=(0.5, 2.0)))
    assert all(not np.allclose(out[0], o) for o in out[1:])
    np.testing.assert_array_equal(A.gaussian_blur(KEY, batch, 5, sigma=(0.5, 2.0)), out)
    # each sample is the fixed blur for some sigma in the range: recover it by bisection
    # on the blurred value of one pixel (monotone in sigma near a local maximum).
    sigmas = np.linspace(0.5, 2.0, 301)
    refs = np.stack([scipy_blur(batch[0], 5, 5, s, s) for s in sigmas])
    for o in out:
        err = np.abs(refs - o[None]).max(axis=(1, 2, 3))
        assert err.min() < 2e-3
    fixed = A.gaussian_blur(KEY, batch[:2], 5, sigma=1.3)
    assert_close(fixed, A.gaussian_blur_fixed(batch[:2], 5, 1.3))


# --- erasing ----------------------------------------------------------------------------


def test_erase_matches_slicing():
    out = A.erase(IMAGES, 2, 3, 4, 5, 0.25)
    ref = IMAGES.copy()
    ref[:, 2:6, 3:8] = 0.25
    np.testing.assert_array_equal(out, ref)
    per_channel = A.erase(IMAGES[0], 9, 7, 5, 5, (0.1, 0.2, 0.3))  # clipped at the border
    ref = IMAGES[0].copy()
    ref[9:, 7:] = np.float32([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(per_channel, ref)


BATCH64 = np.repeat(IMAGES[:1], 64, axis=0)


def erase_marked(p, scale, ratio):
    """Erase ``BATCH64`` with the marker value -1 (the images are in [0, 1])."""
    return np.asarray(A.random_erasing(KEY, BATCH64, p=p, scale=scale, ratio=ratio, value=-1.0))


def test_random_erasing_box_area_and_ratio_within_ranges():
    x = BATCH64
    scale, ratio = (0.1, 0.4), (0.5, 2.0)
    out = erase_marked(1.0, scale, ratio)
    erased = np.all(out == -1.0, axis=-1)  # [N, H, W]
    untouched = np.all(out == x, axis=-1)
    assert np.all(erased ^ untouched)
    H, W = x.shape[1:3]
    heights, widths = [], []
    for mask in erased:
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        h, w = len(rows), len(cols)
        assert mask.sum() == h * w and mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()
        heights.append(h)
        widths.append(w)
    h, w = np.array(heights), np.array(widths)
    area = h * w / (H * W)
    # whole-pixel rounding of each side moves the area by at most one row and column
    assert np.all(area >= scale[0] * (1 - 2 / np.sqrt(scale[0] * H * W)) - 1e-6)
    assert np.all(area <= scale[1] * (1 + 2 / np.sqrt(scale[1] * H * W)) + 1e-6)
    assert np.all((h / w >= ratio[0] * 0.6) & (h / w <= ratio[1] / 0.6))
    assert np.all((h < H) & (w < W))
    assert len(set(zip(heights, widths, strict=True))) > 10


def test_random_erasing_probability_and_fallback():
    np.testing.assert_array_equal(erase_marked(0.0, (0.1, 0.4), (0.5, 2.0)), BATCH64)
    erased = np.any(erase_marked(0.5, (0.1, 0.4), (0.5, 2.0)) == -1, axis=(1, 2, 3))
    assert 16 <= erased.sum() <= 48
    # a box as large as the image never fits (h < H and w < W): unchanged after 10 tries
    np.testing.assert_array_equal(erase_marked(1.0, (1.0, 1.0), (1.0, 1.0)), BATCH64)


def test_random_erasing_noise():
    x = np.zeros((4, 10, 10, 3), np.float32)
    out = np.asarray(A.random_erasing(KEY, x, p=1.0, scale=(0.3, 0.3), value="random"))
    noise = out[out != 0]
    assert noise.size > 4 * 0.2 * 100 * 3
    assert abs(noise.mean()) < 0.2 and abs(noise.std() - 1.0) < 0.2
    assert np.abs(out).max() > 1.0  # not clipped for float images


# --- MixUp / CutMix ---------------------------------------------------------------------

LABELS = np.eye(6, dtype=np.float32)[[0, 1, 2, 3, 4, 5, 0, 1]]
MIX_IMAGES = np.random.default_rng(3).random((2000, 2, 2, 3)).astype(np.float32)
MIX_LABELS = np.tile(np.eye(2, dtype=np.float32), (1000, 1))  # partners differ in class


@pytest.mark.parametrize("alpha", [0.3, 2.0])
def test_mixup_formula_and_beta_distribution(alpha):
    out, labels = A.mixup(KEY, MIX_IMAGES, MIX_LABELS, alpha=alpha)
    labels = np.asarray(labels)
    np.testing.assert_allclose(labels.sum(-1), 1.0, rtol=1e-6)
    assert np.all(labels >= 0)
    lam = (labels * MIX_LABELS).sum(-1)  # weight of the sample's own class
    w = lam[:, None, None, None]
    assert_close(out, w * MIX_IMAGES + (1 - w) * np.roll(MIX_IMAGES, 1, axis=0))
    np.testing.assert_allclose(
        labels,
        lam[:, None] * MIX_LABELS + (1 - lam[:, None]) * np.roll(MIX_LABELS, 1, 0),
        atol=1e-6,
    )
    # one lambda per sample, distributed as Beta(alpha, alpha)
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    _, shared = A.mixup(KEY, MIX_IMAGES, MIX_LABELS, alpha=alpha, per_sample=False)
    assert len(np.unique((np.asarray(shared) * MIX_LABELS).sum(-1))) == 1


@pytest.mark.parametrize("per_sample", [True, False])
def test_cutmix_lambda_is_the_unpasted_area(per_sample):
    n = len(MIX_IMAGES)  # the batch size of the mixup test: the sampler compiles once
    x = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 6, 5, 3))
    y = jnp.arange(n) % 6  # integer labels are one-hot encoded with num_classes
    out, labels = A.cutmix(KEY, x, y, alpha=1.0, num_classes=6, per_sample=per_sample)
    out, labels = np.asarray(out), np.asarray(labels)
    own = np.eye(6, dtype=np.float32)[np.arange(n) % 6]
    kept = np.mean(out[..., 0] == np.arange(n)[:, None, None], axis=(1, 2))
    pasted = np.mean(out[..., 0] == np.roll(np.arange(n), 1)[:, None, None], axis=(1, 2))
    np.testing.assert_allclose(kept + pasted, 1.0)
    # the label weight of the own class is the fraction of the image left unpasted
    np.testing.assert_allclose(
        labels, kept[:, None] * own + pasted[:, None] * np.roll(own, 1, 0), atol=1e-6
    )
    np.testing.assert_allclose(labels.sum(-1), 1.0, rtol=1e-6)
    # one box per sample, or one box for the whole batch (torchvision)
    assert (len(np.unique(kept)) > 1) == per_sample


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.gaussian_blur_fixed(IMAGES, 4, 1.0), "kernel_size"),
        (lambda: A.gaussian_blur_fixed(IMAGES, -3, 1.0), "kernel_size"),
        (lambda: A.gaussian_blur_fixed(IMAGES, 3, 0.0), "sigma"),
        (lambda: A.gaussian_blur_fixed(IMAGES, 23, 1.0), "kernel_size"),
        (lambda: A.gaussian_blur(KEY, IMAGES, 3, sigma=(2.0, 1.0)), "sigma"),
        (lambda: A.gaussian_blur(KEY, IMAGES, 3, sigma=(-1.0, 1.0)), "sigma"),
        (lambda: A.gaussian_blur(KEY, IMAGES[0, 0], 3), "images"),
        (lambda: A.erase(IMAGES, -1, 0, 2, 2, 0.0), "top"),
        (lambda: A.erase(IMAGES, 0, 0, 2, 2, (0.0, 1.0)), "value"),
        (lambda: A.random_erasing(KEY, IMAGES, p=2.0), "p"),
        (lambda: A.random_erasing(KEY, IMAGES, scale=(0.5, 1.5)), "scale"),
        (lambda: A.random_erasing(KEY, IMAGES, ratio=(3.0, 0.3)), "ratio"),
        (lambda: A.random_erasing(KEY, IMAGES, value="noise"), "value"),
        (lambda: A.mixup(KEY, IMAGES, LABELS[:2], alpha=0.0), "alpha"),
        (lambda: A.mixup(KEY, IMAGES[0], LABELS[:2]), "images"),
        (lambda: A.mixup(KEY, IMAGES, LABELS), "labels"),
        (lambda: A.cutmix(KEY, IMAGES, jnp.arange(2)), "num_classes"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- compose and dtypes -----------------------------------------------------------------


def test_compose_applies_in_order_with_split_keys():
    augs = (
        partial(A.random_erasing, p=1.0, scale=(0.1, 0.4), ratio=(0.5, 2.0), value=-1.0),
        A.random_horizontal_flip,
        partial(A.random_grayscale, p=0.5),
    )
    out = A.compose(*augs)(KEY, BATCH64)
    k1, k2, k3 = jax.random.split(KEY, 3)
    ref = augs[2](k3, augs[1](k2, augs[0](k1, BATCH64)))
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(A.compose()(KEY, BATCH64), BATCH64)
    with pytest.raises(TypeError, match="augmentations"):
        A.compose(A.hflip, 3)


def _op_by_op(augs, key, images):
    for k, aug in zip(jax.random.split(key, len(augs)), augs, strict=True):
        images = aug(k, images)
    return images


CHUNKED_PIPELINE = (
    partial(A.random_resized_crop, size=(10, 12)),
    A.random_horizontal_flip,
    partial(A.color_jitter, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
    partial(A.random_erasing, p=0.7, value=0.25),
    A.random_grayscale,
)


def test_compose_in_chunks_equals_the_whole_batch(monkeypatch):
    # chunks of 2 images (a shape no other test uses, so no kernel is reused from a
    # trace under another chunk size); each op still draws the rows of the whole batch
    from functional_dl.augment import _compose, _sampling

    images = RNG.random((6, 13, 15, 3)).astype(np.float32)
    monkeypatch.setattr(_sampling, "CHUNK_ELEMENTS", 2 * 13 * 15 * 3)
    pipeline = A.compose(*CHUNKED_PIPELINE)
    keys = jax.random.split(KEY, len(CHUNKED_PIPELINE))
    assert (
        _compose._compose_chunk(lambda ks, x: _op_by_op(CHUNKED_PIPELINE, KEY, x), keys, images)
        == 2
    )
    ref = _op_by_op(CHUNKED_PIPELINE, KEY, images)
    for out in (pipeline(KEY, images), jax.jit(pipeline)(KEY, images)):
        assert out.shape == (6, 10, 12, 3)
        assert_close(out, ref, rtol=1e-6, atol=1e-6)
    # every image got its own draws: no two chunks repeat each other
    assert not np.allclose(np.asarray(ref[:2]), np.asarray(ref[2:4]))


def test_compose_chunks_only_chains_that_gain():
    from functional_dl.augment import _compose

    jitter2 = partial(A.color_jitter, brightness=0.4, hue=0.1)
    assert _compose._chunk_gain(jitter2) == 2
    assert _compose._chunk_gain(partial(A.color_jitter, hue=0.1)) == 1
    assert _compose._chunk_gain(A.random_horizontal_flip) == 1
    assert _compose._chunk_gain(partial(A.random_erasing, value="random")) == 0
    assert _compose._chunk_gain(partial(A.random_rotation, degrees=10.0)) == 0
    assert _compose._chunk_gain(partial(A.random_resized_crop, 24)) == 0  # positional
    assert _compose._chunk_gain(lambda key, x: x) == 0


def test_per_sample_in_chunks_equals_vmap():
    from functional_dl.augment import _sampling

    images = jnp.asarray(RNG.random((12, 5, 4, 3)), jnp.float32)

    def fn(u, img):
        return img * u[0] + u[1]

    whole = _sampling.per_sample(fn, KEY, images, 2)
    chunked = _sampling.per_sample(fn, KEY, images, 2, chunk_elements=3 * 5 * 4 * 3)
    assert_close(chunked, whole, rtol=1e-6, atol=1e-7)  # ulps: fused multiply-adds
    assert [_sampling.chunk_size(12, 60, c) for c in (None, 60, 150, 240, 10**6, 1)] == [
        12,
        1,
        2,
        4,
        12,
        1,
    ]


def test_color_jitter_in_chunks_equals_vmap(monkeypatch):
    from functional_dl.augment import _sampling

    images = RNG.random((4, 7, 9, 3)).astype(np.float32)
    jitter = partial(A.color_jitter, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2)
    whole = jitter(KEY, images)
    jax.clear_caches()  # the kernel reads the chunk size when traced
    monkeypatch.setattr(_sampling, "CHUNK_ELEMENTS", 7 * 9 * 3)
    chunked = jitter(KEY, images)
    jax.clear_caches()
    assert_close(chunked, whole, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + (jnp.uint8,))
def test_random_ops_keep_dtype(dtype):
    scale = 255 if dtype == jnp.uint8 else 1
    x = jnp.asarray(IMAGES * scale, dtype)
    out = A.random_grayscale(KEY, x, p=1.0)
    assert out.dtype == dtype and out.shape == x.shape
    x64 = np.asarray(x, np.float64) / scale
    gray = 0.2989 * x64[..., :1] + 0.587 * x64[..., 1:2] + 0.114 * x64[..., 2:]
    if dtype == jnp.uint8:
        np.testing.assert_array_equal(out, np.round(np.repeat(gray, 3, -1) * 255))
    else:
        assert_close(out, np.repeat(gray, 3, -1), dtype=dtype)


def test_single_channel_images_match_the_first_channel():
    one = IMAGES[..., :1]
    for op in (
        lambda x: A.gaussian_blur_fixed(x, 3, 0.7),
        lambda x: A.erase(x, 1, 2, 3, 4, 0.5),
        lambda x: A.rotate(x, 25.0, interpolation="bilinear"),
        lambda x: A.resized_crop(x, 1, 1, 7, 6, (5, 8)),
    ):
        assert_close(op(one), np.asarray(op(IMAGES))[..., :1])
