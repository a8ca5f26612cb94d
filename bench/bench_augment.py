"""Augmentation throughput: fdl.augment vs dm-pix vs a per-image NumPy/SciPy loop.

The pipeline is a typical training one: random resized crop (to the input size),
horizontal flip, colour jitter (brightness, contrast, saturation 0.4, hue 0.1) and
random erasing. It is measured on 256 x 32x32x3 and 64 x 224x224x3 float images:

- ``fdl``: ``fdl.augment.compose(...)`` under ``jax.jit``;
- ``dm-pix``: the same steps from dm-pix ops, vmapped over per-sample keys
  (``affine_transform`` for the resized crop, ``random_flip_left_right``,
  ``random_brightness/contrast/saturation/hue`` in a fixed order; dm-pix has no
  erasing, so that step is a masked ``jnp.where``);
- ``numpy``: a Python loop over images with NumPy / ``scipy.ndimage.map_coordinates``.

**Policies.** ``rand_augment`` + ``random_resized_crop`` + flip + ``normalize`` on
256 x 224x224x3 float images (each sample its own ops) against torchvision v2 applied per
image on the same CPU (``pip install -e ".[bench-torch]"``; the row says "torchvision
not installed" without it), and against our fixed pipeline (crop + flip + normalize):
that ratio is what the per-sample policy costs.

Single ops that dm-pix also has are compared one by one. The Gaussian blur twice: against
dm-pix on reflect-padded images (``padding='VALID'``: our edges, checked once to agree
with ours to 1e-5) and against dm-pix as is, which zero-pads (different edges).
Rows carry the median time per batch (``value``, ``ref_value`` in ms, with
``ratio = ours / reference``: below 1 we are faster) and the throughput (``images_per_s``,
``ref_images_per_s``), which the script prints. Ours and the reference are timed
alternately; the pipelines also time an A/A control (the reference run, for dm-pix
compiled, a second time).

    python bench/bench_augment.py [--quick]
"""

from __future__ import annotations

import math
import os
from functools import partial

import _harness as H
import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

import functional_dl.augment as A

JITTER = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
# seconds of timed rounds per comparison (at least 5 rounds, at most 1000): sub-millisecond
# ops get hundreds of samples, the slow references their 5
BUDGET_S = 5.0


def _pix():
    """dm-pix, imported for the full run only (the quick smoke run needs NumPy alone)."""
    import dm_pix

    return dm_pix


def _timed(
    name: str,
    n: int,
    reference: str,
    calls: dict,
    min_rounds: int,
    budget_s: float,
    others: tuple[str, ...] = (),
    settle: int = 0,
) -> list[dict]:
    """Rows of ``calls`` (``ours``, the reference, maybe its A/A control, maybe more
    references named in ``others``: zero-argument calls) timed in rotated rounds after
    one warm-up (compiling) call each; ``ours`` against each reference.

    The rounds run for about ``budget_s`` seconds, at least ``min_rounds`` and at most
    1000 of them, so that sub-millisecond ops get enough rounds for a stable median.
    """
    timings = H.interleave(calls, rounds=min_rounds, budget_s=budget_s, settle=settle)
    rows = H.time_rows(name, timings, reference, unit="ms/batch")
    for other in others:
        rows += H.time_rows(name, timings, other, ref=other, unit="ms/batch", control=False)
    for r in rows:  # throughput, printed by the script
        r["images_per_s"] = 1e3 * n / r["value"]
        r["ref_images_per_s"] = 1e3 * n / r["ref_value"]
    return rows


# --- the three pipelines -------------------------------------------------------------------


def fdl_pipeline(size: int):
    return jax.jit(
        A.compose(
            partial(A.random_resized_crop, size=size),
            A.random_horizontal_flip,
            partial(A.color_jitter, **JITTER),
            A.random_erasing,
        )
    )


def _pix_resized_crop(key, img, size):
    """Random box (one try of torchvision's rule, clipped) resized with dm-pix's affine warp."""
    H, W = img.shape[:2]
    k_area, k_ratio, k_top, k_left = jax.random.split(key, 4)
    area = H * W * jax.random.uniform(k_area, (), minval=0.08, maxval=1.0)
    ratio = jnp.exp(jax.random.uniform(k_ratio, (), minval=math.log(3 / 4), maxval=math.log(4 / 3)))
    w = jnp.clip(jnp.round(jnp.sqrt(area * ratio)), 1, W)
    h = jnp.clip(jnp.round(jnp.sqrt(area / ratio)), 1, H)
    top = jax.random.uniform(k_top, ()) * (H - h)
    left = jax.random.uniform(k_left, ()) * (W - w)
    sy, sx = h / size, w / size
    matrix = jnp.array(
        [
            [sy, 0.0, 0.0, top + 0.5 * sy - 0.5],
            [0.0, sx, 0.0, left + 0.5 * sx - 0.5],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    return _pix().affine_transform(img, matrix, order=1, mode="nearest")


def _pix_color(keys, img):
    img = _pix().random_brightness(keys[0], img, 0.4)
    img = _pix().random_contrast(keys[1], img, 0.6, 1.4)
    img = _pix().random_saturation(keys[2], img, 0.6, 1.4)
    return jnp.clip(_pix().random_hue(keys[3], img, 0.1), 0.0, 1.0)


def _masked_erase(key, img):
    H, W = img.shape[:2]
    k_apply, k_h, k_w, k_top, k_left = jax.random.split(key, 5)
    h = jax.random.randint(k_h, (), 1, H // 2)
    w = jax.random.randint(k_w, (), 1, W // 2)
    top = jax.random.randint(k_top, (), 0, H - h)
    left = jax.random.randint(k_left, (), 0, W - w)
    rows, cols = jnp.arange(H)[:, None, None], jnp.arange(W)[None, :, None]
    box = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    return jnp.where(box & jax.random.bernoulli(k_apply, 0.5), 0.0, img)


def reflect_blur(img, sigma, kernel_size: int):
    """The blur reference with our edges: reflect-pad by ``kernel_size // 2`` (PyTorch's
    ``'reflect'``, as ours), then dm-pix's ``gaussian_blur`` with ``padding='VALID'``
    (``[H, W, C]`` or ``[N, H, W, C]``)."""
    r = kernel_size // 2
    pad = [(0, 0)] * (img.ndim - 3) + [(r, r), (r, r), (0, 0)]
    return _pix().gaussian_blur(jnp.pad(img, pad, mode="reflect"), sigma, kernel_size,
                                padding="VALID")  # fmt: skip


def check_reflect_blur(kernel_size: int = 5, sigma: float = 1.3) -> float:
    """Max |ours - reflect_blur| on a fixed sigma (raises above 1e-5): the reference
    computes what ours does, so the row times the same result. Run once, untimed."""
    x = jax.random.uniform(jax.random.key(1), (2, 16, 12, 3))
    diff = float(
        jnp.max(jnp.abs(A.gaussian_blur_fixed(x, kernel_size, sigma)
                        - reflect_blur(x, sigma, kernel_size)))
    )  # fmt: skip
    if not diff <= 1e-5:
        raise RuntimeError(f"reflect-padded blur reference differs from ours by {diff:.3g}")
    return diff


def pix_pipeline(size: int):
    def one(key, img):
        keys = jax.random.split(key, 7)
        img = _pix_resized_crop(keys[0], img, size)
        img = _pix().random_flip_left_right(keys[1], img)
        img = _pix_color(keys[2:6], img)
        return _masked_erase(keys[6], img)

    return jax.jit(lambda key, x: jax.vmap(one)(jax.random.split(key, x.shape[0]), x))


def _np_hue(img, shift):
    maxc, minc = img.max(-1), img.min(-1)
    rng = maxc - minc
    safe = np.where(rng > 0, rng, 1.0)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    h = (
        np.where(
            r == maxc,
            (g - b) / safe,
            np.where(g == maxc, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe),
        )
        / 6.0
    )
    h6 = 6.0 * ((h + shift) % 1.0)
    ramps = (np.abs(h6 - 3) - 1, 2 - np.abs(h6 - 2), 2 - np.abs(h6 - 4))
    return np.stack([minc + rng * np.clip(q, 0, 1) for q in ramps], -1)


def numpy_pipeline(rng: np.random.Generator, images: np.ndarray, size: int) -> np.ndarray:
    """torchvision's transforms written per image with NumPy and SciPy."""
    out = np.empty((len(images), size, size, images.shape[-1]), images.dtype)
    H, W = images.shape[1:3]
    weights = np.array([0.2989, 0.587, 0.114], images.dtype)
    for n, img in enumerate(images):
        for _ in range(10):  # random resized crop
            area = H * W * rng.uniform(0.08, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            w, h = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < w <= W and 0 < h <= H:
                top, left = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
                break
        else:
            top, left, h, w = 0, 0, H, W
        ys = top + np.maximum((np.arange(size) + 0.5) * h / size - 0.5, 0)
        xs = left + np.maximum((np.arange(size) + 0.5) * w / size - 0.5, 0)
        grid = np.meshgrid(ys, xs, indexing="ij")
        y = np.stack(
            [
                ndimage.map_coordinates(img[..., c], grid, order=1, mode="nearest")
                for c in range(img.shape[-1])
            ],
            -1,
        )
        if rng.random() < 0.5:
            y = y[:, ::-1]
        for op in rng.permutation(4):  # colour jitter in a random order
            f = rng.uniform(0.6, 1.4)
            if op == 0:
                y = np.clip(y * f, 0, 1)
            elif op == 1:
                y = np.clip(f * y + (1 - f) * (y @ weights).mean(), 0, 1)
            elif op == 2:
                y = np.clip(f * y + (1 - f) * (y @ weights)[..., None], 0, 1)
            else:
                y = _np_hue(y, rng.uniform(-0.1, 0.1))
        if rng.random() < 0.5:  # random erasing
            for _ in range(10):
                area = size * size * rng.uniform(0.02, 0.33)
                ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
                eh, ew = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
                if eh < size and ew < size:
                    i, j = rng.integers(0, size - eh + 1), rng.integers(0, size - ew + 1)
                    y = y.copy()
                    y[i : i + eh, j : j + ew] = 0.0
                    break
        out[n] = y
    return out


# --- policies ---------------------------------------------------------------------------------

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def fdl_policy(size: int, policy: bool = True):
    """RandAugment (per sample) + resized crop + flip + normalize, one compiled call."""

    def run(key, x):
        k1, k2, k3 = jax.random.split(key, 3)
        if policy:
            x = A.rand_augment(k1, x)
        x = A.random_resized_crop(k2, x, size=size)
        x = A.random_horizontal_flip(k3, x)
        return A.normalize(x, MEAN, STD)

    return jax.jit(run)


def torchvision_policy(size: int):
    """torchvision v2's equivalent, applied per image (CHW uint8 tensors), or None."""
    try:
        import torch
        from torchvision.transforms import v2
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)  # the same cores as XLA
    transform = v2.Compose(
        [
            v2.RandAugment(),
            v2.RandomResizedCrop(size, antialias=False),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )

    def loop(images):
        return [transform(img) for img in images]

    def prepare(x):
        u8 = (np.asarray(x) * 255).round().astype(np.uint8)
        return [torch.from_numpy(img).permute(2, 0, 1).contiguous() for img in u8]

    return loop, prepare


def policy_rows(
    n: int, size: int, min_rounds: int, budget_s: float, torch_rounds: int | None = None
) -> list[dict]:
    """The policy rows; ``torch_rounds``: the least rounds against torchvision (about 0.4 s
    a call at 256 x 224x224; default ``min_rounds``)."""
    key = jax.random.key(1)
    x = jax.random.uniform(key, (n, size, size, 3))
    label = f"{n}x{size}x{size}x3"
    timed = partial(_timed, n=n, min_rounds=min_rounds, budget_s=budget_s)
    ours = partial(fdl_policy(size), key, x)
    fixed = partial(fdl_policy(size, policy=False), key, x)
    rows = timed(
        f"rand_augment pipeline {label}",
        reference="our fixed pipeline (crop+flip+normalize)",
        calls={"ours": ours, H.REF: fixed},
    )
    tv = torchvision_policy(size)
    if tv is None:
        rows.append(
            H.row(
                f"rand_augment pipeline {label}",
                rows[0]["value"],
                "ms/batch",
                "torchvision v2 per image: not installed (pip install -e '.[bench-torch]')",
                None,
            )
        )
        return rows
    loop, prepare = tv
    images = prepare(x)
    rows += timed(
        f"rand_augment pipeline {label}",
        reference="torchvision v2 per image",
        calls={"ours": ours, H.REF: partial(loop, images)},
        min_rounds=min_rounds if torch_rounds is None else torch_rounds,
        settle=1,  # torch's spinning OpenMP threads must not land in our timing
    )
    return rows


# --- single ops that dm-pix has -------------------------------------------------------------


def _per_sample(fn):
    return jax.jit(lambda key, x: jax.vmap(fn)(jax.random.split(key, x.shape[0]), x))


BLUR_REF = "dm-pix on reflect-padded images (our edges)"
BLUR_ZERO_PAD = "dm-pix (zero padding: different edges)"


def _blur_sigma(key):
    """Each image's sigma ~ U(0.1, 2.0), as ``A.gaussian_blur``'s default."""
    return jax.random.uniform(key, (), minval=0.1, maxval=2.0)


def single_ops():
    """``(name, ours(key, x), dm-pix(key, x)[, reference name[, {name: other reference}]])``
    for ops both libraries have (the reference is dm-pix unless named; the others are
    timed in the same rounds)."""
    return [
        ("flip", jax.jit(A.random_horizontal_flip), _per_sample(_pix().random_flip_left_right)),
        (
            "hue",
            jax.jit(partial(A.color_jitter, hue=0.1)),
            _per_sample(lambda k, im: _pix().random_hue(k, im, 0.1)),
        ),
        (
            "color b/c/s/h",
            jax.jit(partial(A.color_jitter, **JITTER)),
            _per_sample(lambda k, im: _pix_color(jax.random.split(k, 4), im)),
        ),
        (
            "gaussian blur k=5",
            jax.jit(partial(A.gaussian_blur, kernel_size=5)),
            _per_sample(lambda k, im: reflect_blur(im, _blur_sigma(k), 5)),
            BLUR_REF,
            {BLUR_ZERO_PAD: _per_sample(lambda k, im: _pix().gaussian_blur(im, _blur_sigma(k), 5))},
        ),
        (
            "vertical flip",
            jax.jit(A.random_vertical_flip),
            _per_sample(_pix().random_flip_up_down),
        ),
        (
            "random crop 0.75",
            jax.jit(lambda k, x: A.random_crop(k, x, (3 * x.shape[1] // 4, 3 * x.shape[2] // 4))),
            jax.jit(
                lambda k, x: jax.vmap(
                    lambda kk, im: _pix().random_crop(
                        kk, im, (3 * x.shape[1] // 4, 3 * x.shape[2] // 4, x.shape[3])
                    )
                )(jax.random.split(k, x.shape[0]), x)
            ),
        ),
        (
            "solarize 0.5",
            jax.jit(lambda k, x: A.solarize(x, 0.5)),
            jax.jit(lambda k, x: _pix().solarize(x, 0.5)),
        ),
        (
            "gamma 0.8",
            jax.jit(lambda k, x: A.adjust_gamma(x, 0.8)),
            jax.jit(lambda k, x: _pix().adjust_gamma(x, 0.8)),
        ),
        (
            "rotation bilinear",
            jax.jit(partial(A.random_rotation, degrees=30.0, interpolation="bilinear")),
            _per_sample(
                lambda k, im: _pix().rotate(
                    im,
                    jax.random.uniform(k, (), minval=-0.52, maxval=0.52),
                    order=1,
                    mode="constant",
                )
            ),
        ),
    ]


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows (see the module docstring); ``quick`` uses tiny sizes."""
    configs = [(8, 16)] if quick else [(256, 32), (64, 224)]
    min_rounds, budget_s = (2, 0.0) if quick else (5, BUDGET_S)
    key = jax.random.key(0)
    rows = []
    agree = None if quick else check_reflect_blur()  # once, untimed: the reference is ours
    for n, size in configs:
        x = jax.random.uniform(key, (n, size, size, 3))
        label = f"{n}x{size}x{size}x3"
        timed = partial(_timed, n=n, min_rounds=min_rounds, budget_s=budget_s)

        def loop(x=x, size=size):  # the same draws on every call
            return numpy_pipeline(np.random.default_rng(0), np.asarray(x), size)

        ours = partial(fdl_pipeline(size), key, x)
        calls = {"ours": ours, H.REF: loop, H.CONTROL: loop}
        rows += timed(f"pipeline {label}", reference="numpy/scipy loop", calls=calls)
        if quick:  # the smoke test: one compiled pipeline only
            continue
        calls = {
            "ours": ours,
            H.REF: partial(pix_pipeline(size), key, x),
            H.CONTROL: partial(pix_pipeline(size), key, x),  # a second compile
        }
        rows += timed(f"pipeline {label}", reference="dm-pix", calls=calls)
        for name, ours_fn, pix_fn, *ref in single_ops():
            calls = {"ours": partial(ours_fn, key, x), H.REF: partial(pix_fn, key, x)}
            others = ref[1] if len(ref) > 1 else {}
            calls |= {other: partial(fn, key, x) for other, fn in others.items()}
            op_rows = timed(f"{name} {label}", reference=ref[0] if ref else "dm-pix",
                            calls=calls, others=tuple(others))  # fmt: skip
            if ref and ref[0] == BLUR_REF:
                op_rows[0]["note"] = f"agrees with ours to {agree:.1e} at a fixed sigma"
            rows += op_rows
    if quick:
        rows += policy_rows(8, 32, min_rounds, budget_s)
    else:
        rows += policy_rows(256, 224, 5, budget_s, torch_rounds=3)
    return rows


if __name__ == "__main__":
    H.main(run, __doc__, extra=("images_per_s", "ref_images_per_s"))
