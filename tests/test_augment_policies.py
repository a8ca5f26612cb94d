"""Augmentation policies: torchvision's op tables, each op against the deterministic ops,
per-sample draws with the right frequencies, and random_apply / random_choice."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import augment as A
from functional_dl.augment import _policies as P

RNG = np.random.default_rng(0)
INV255 = np.float32(1 / 255)
# values on the 1/255 grid, below 1 (solarize at threshold 1 would touch exact ones)
IMG = (RNG.integers(0, 255, size=(16, 16, 3)) * INV255).astype(np.float32)


def _torch_space(policy, n, H, W):
    """torchvision's _AUGMENTATION_SPACE, written from its source."""
    lin = lambda a, b: np.linspace(a, b, n, dtype=np.float32)  # noqa: E731
    post = lambda top, span: np.round(top - np.arange(n) / ((n - 1) / span))  # noqa: E731
    if policy == "rand_augment":
        return {
            "Identity": None, "ShearX": lin(0, 0.3), "ShearY": lin(0, 0.3),
            "TranslateX": lin(0, 150 / 331 * W), "TranslateY": lin(0, 150 / 331 * H),
            "Rotate": lin(0, 30), "Brightness": lin(0, 0.9), "Color": lin(0, 0.9),
            "Contrast": lin(0, 0.9), "Sharpness": lin(0, 0.9), "Posterize": post(8, 4),
            "Solarize": lin(1, 0), "AutoContrast": None, "Equalize": None,
        }  # fmt: skip
    if policy == "trivial_augment_wide":
        return {
            "Identity": None, "ShearX": lin(0, 0.99), "ShearY": lin(0, 0.99),
            "TranslateX": lin(0, 32), "TranslateY": lin(0, 32), "Rotate": lin(0, 135),
            "Brightness": lin(0, 0.99), "Color": lin(0, 0.99), "Contrast": lin(0, 0.99),
            "Sharpness": lin(0, 0.99), "Posterize": post(8, 6), "Solarize": lin(1, 0),
            "AutoContrast": None, "Equalize": None,
        }  # fmt: skip
    return {
        "ShearX": lin(0, 0.3), "ShearY": lin(0, 0.3), "TranslateX": lin(0, W / 3),
        "TranslateY": lin(0, H / 3), "Rotate": lin(0, 30), "Posterize": post(4, 4),
        "Solarize": lin(1, 0), "AutoContrast": None, "Equalize": None,
        "Brightness": lin(0, 0.9), "Color": lin(0, 0.9), "Contrast": lin(0, 0.9),
        "Sharpness": lin(0, 0.9),
    }  # fmt: skip


@pytest.mark.parametrize(
    "policy,n", [("rand_augment", 31), ("trivial_augment_wide", 31), ("augmix", 10)]
)
def test_op_tables_are_torchvisions(policy, n):
    ours = P.augmentation_space(policy, n, 24, 40)
    ref = _torch_space(policy, n, 24, 40)
    assert list(ours) == list(ref)  # the order the uniform draw indexes
    signed = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"} | set(P._BLENDS)
    for name, (values, sign) in ours.items():
        assert sign == (name in signed), name
        if ref[name] is None:
            assert values is None
        else:
            np.testing.assert_allclose(values, ref[name], rtol=1e-6, err_msg=name)
    auto = P.augmentation_space("auto_augment", 10, 24, 40)
    assert "Invert" in auto and "Identity" not in auto


def _np_inverse_affine(center, angle, translate, scale, shear):
    """torchvision's _get_inverse_affine_matrix."""
    rot, sx, sy = (math.radians(v) for v in (angle, *shear))
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return m


def _np_affine_nearest(img, m):
    H, W, _ = img.shape
    out = np.zeros_like(img)
    for i in range(H):
        for j in range(W):
            x, y = j - (W - 1) / 2, i - (H - 1) / 2
            sx = m[0] * x + m[1] * y + m[2] + (W - 1) / 2
            sy = m[3] * x + m[4] * y + m[5] + (H - 1) / 2
            xi, yi = int(np.round(sx)), int(np.round(sy))
            if 0 <= xi < W and 0 <= yi < H:
                out[i, j] = img[yi, xi]
    return out


_STEP = jax.jit(P._step, static_argnames="interpolation")  # one compile for every op


def _step(name, mag):
    fill = jnp.zeros((1, 1, 1))
    op, m = jnp.int32(P._ID[name]), jnp.float32(mag)
    return np.asarray(_STEP(jnp.asarray(IMG), op, m, interpolation="nearest", fill=fill))


@pytest.mark.parametrize("mag", [0.25, -0.3])
def test_shears_turn_about_the_top_left_corner(mag):
    H, W = IMG.shape[:2]
    deg = math.degrees(math.atan(mag))
    for name, shear in (("ShearX", (deg, 0.0)), ("ShearY", (0.0, deg))):
        m = _np_inverse_affine((-W * 0.5, -H * 0.5), 0.0, (0, 0), 1.0, shear)
        expected = _np_affine_nearest(IMG, m)
        got = _step(name, mag)
        assert np.mean(got != expected) < 0.01, name  # rounding ties aside


def _tv_inverse_affine(center, angle, translate, scale, shear):
    """torchvision's _get_inverse_affine_matrix, in its own order of operations (the
    last bits decide which way a position a rounding away from a half-pixel goes)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return m


def _np_grid_sample_nearest(img, m):
    """torchvision's nearest warp in NumPy float32: ``_affine_grid``'s
    ``[x, y, 1] @ theta^T / (W/2, H/2)``, then grid_sample's ``(g + 1) * size / 2 - 0.5``
    rounded once (a fused multiply-add) and ties to even."""
    H, W, _ = img.shape
    theta = np.asarray(m, np.float64).reshape(2, 3).astype(np.float32).T
    theta = theta / np.array([W / 2, H / 2], np.float32)
    xs = np.arange(W, dtype=np.float32) - np.float32((W - 1) / 2)
    ys = np.arange(H, dtype=np.float32) - np.float32((H - 1) / 2)
    X, Y = np.meshgrid(xs, ys)
    g = [X * theta[0, k] + Y * theta[1, k] + theta[2, k] for k in range(2)]
    src = [
        ((g[k] + np.float32(1)).astype(np.float64) * (n / 2) - 0.5).astype(np.float32)
        for k, n in ((0, W), (1, H))
    ]
    ix, iy = np.rint(src[0]).astype(int), np.rint(src[1]).astype(int)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    return np.where(inside[..., None], img[np.clip(iy, 0, H - 1), np.clip(ix, 0, W - 1)], 0.0)


@pytest.mark.parametrize("policy", ["rand_augment", "auto_augment", "augmix"])
def test_geometric_ops_round_half_pixels_as_torchvision(policy):
    # torchvision builds each op's matrix in float64 from the float32 table magnitude;
    # shears by tan = 0.2 about the corner and quarter turns put source positions on or a
    # rounding away from half-pixels, where a float32 matrix and a division by W/2 done as
    # a multiplication by its reciprocal tipped 2-10% of the nearest reads the other way
    img = IMG[:12, :10]
    H, W = img.shape[:2]
    n = 31 if policy == "rand_augment" else 10
    ids, mags, _ = P._table_np(P.augmentation_space(policy, n, H, W), n)
    mats = np.asarray(P._matrix_table(ids, mags, H, W), np.float64)
    fill = jnp.zeros((1, 1, 1))
    for k, op in enumerate(ids):
        name = P.OPS[op]
        if name not in ("ShearX", "ShearY", "Rotate", "TranslateX", "TranslateY"):
            continue
        for b in (n // 3, 2 * n // 3, n - 1):
            for sign in (0, 1):
                mag = float(mags[k, b]) * (-1.0 if sign else 1.0)
                if name.startswith("Shear"):
                    deg = math.degrees(math.atan(mag))
                    shear = (deg, 0.0) if name == "ShearX" else (0.0, deg)
                    m = _tv_inverse_affine((-W * 0.5, -H * 0.5), 0.0, (0, 0), 1.0, shear)
                elif name.startswith("Translate"):
                    t = float(int(mag))
                    shift = (t, 0.0) if name == "TranslateX" else (0.0, t)
                    m = _tv_inverse_affine((0.0, 0.0), 0.0, shift, 1.0, (0.0, 0.0))
                else:  # torchvision's rotate passes -angle to the same matrix
                    m = _tv_inverse_affine((0.0, 0.0), -mag, (0, 0), 1.0, (0.0, 0.0))
                if jax.config.read("jax_enable_x64"):
                    np.testing.assert_array_equal(mats[k, b, sign], m)
                else:
                    np.testing.assert_array_equal(mats[k, b, sign], np.float32(m))
                got = np.asarray(
                    _STEP(jnp.asarray(img), jnp.int32(op), jnp.float32(mag), "nearest", fill,
                          jnp.asarray(mats[k, b, sign]))
                )  # fmt: skip
                differ = np.mean(got != _np_grid_sample_nearest(img, m))
                # the matrix product may round the sum x a + y b + c in another order than
                # torchvision's: a few positions a rounding away from a tie may still differ
                assert differ <= (0.03 if name == "ShearY" else 0.0), (name, mag, differ)


def test_every_op_equals_the_deterministic_op():
    x = IMG[None]
    cases = {
        "Identity": (0.0, x),
        "TranslateX": (-5.7, A.affine(x, 0.0, (-5, 0), 1.0, (0.0, 0.0))),
        "TranslateY": (3.2, A.affine(x, 0.0, (0, 3), 1.0, (0.0, 0.0))),
        "Rotate": (20.0, A.rotate(x, 20.0)),
        "Brightness": (0.4, A.adjust_brightness(x, 1.4)),
        "Color": (-0.5, A.adjust_saturation(x, 0.5)),
        "Contrast": (0.3, A.adjust_contrast(x, 1.3)),
        "Sharpness": (0.9, A.adjust_sharpness(x, 1.9)),
        "Posterize": (5.0, A.posterize(x, 5)),
        "Solarize": (0.6, A.solarize(x, 0.6)),
        "AutoContrast": (0.0, A.autocontrast(x)),
        "Equalize": (0.0, A.equalize(x)),
        "Invert": (0.0, A.invert(x)),
    }
    for name, (mag, expected) in cases.items():
        np.testing.assert_allclose(
            _step(name, mag), np.asarray(expected)[0], atol=1e-6, err_msg=name
        )


def test_magnitude_zero_leaves_photometric_and_geometric_ops_at_identity():
    for name in ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
                 "Brightness", "Color", "Contrast", "Sharpness"):  # fmt: skip
        np.testing.assert_allclose(_step(name, 0.0), IMG, atol=1e-6, err_msg=name)
    # the table's bin 0: posterize keeps 8 bits, solarize's threshold is 1
    np.testing.assert_array_equal(_step("Posterize", 8.0), IMG)
    np.testing.assert_array_equal(_step("Solarize", 1.0), IMG)


def _classify(outputs, candidates):
    """Index of the candidate op each output equals (-1 if none)."""
    labels = []
    for out in outputs:
        hits = [
            k for k, c in enumerate(candidates) if any(np.allclose(out, ci, atol=1e-6) for ci in c)
        ]
        labels.append(hits[0] if len(hits) == 1 else -1)
    return np.asarray(labels)


def test_rand_augment_draws_each_op_uniformly_and_per_sample():
    n, num_bins, magnitude = 1400, 31, 9
    images = jnp.asarray(np.broadcast_to(IMG, (n, 16, 16, 3)))
    out = np.asarray(A.rand_augment(jax.random.key(0), images, num_ops=1, magnitude=magnitude))
    space = P.augmentation_space("rand_augment", num_bins, 16, 16)
    candidates = []
    for name, (values, signed) in space.items():
        mag = 0.0 if values is None else float(values[magnitude])
        candidates.append([_step(name, m) for m in ((mag, -mag) if signed else (mag,))])
    labels = _classify(out, candidates)
    assert np.all(labels >= 0), "every output is one of torchvision's ops"
    counts = np.bincount(labels, minlength=len(space))
    expected = n / len(space)
    # binomial bounds at about 4.5 standard deviations
    sd = math.sqrt(n * (1 / len(space)) * (1 - 1 / len(space)))
    assert np.all(np.abs(counts - expected) < 4.5 * sd), counts
    same = jax.jit(lambda k, x: A.rand_augment(k, x, num_ops=1, magnitude=magnitude))
    np.testing.assert_allclose(np.asarray(same(jax.random.key(0), images)), out, atol=1e-6)


def test_trivial_augment_and_auto_augment_per_sample():
    images = jnp.asarray(np.broadcast_to(IMG, (64, 16, 16, 3)))
    for op in (
        lambda k: A.trivial_augment_wide(k, images),
        lambda k: A.auto_augment(k, images, policy="svhn", interpolation="bilinear"),
        lambda k: A.augmix(k, images),
        lambda k: A.rand_augment(k, images, num_ops=3, magnitude=20),
    ):
        out = np.asarray(op(jax.random.key(4)))
        assert out.shape == images.shape and out.dtype == np.float32
        distinct = {out[i].tobytes() for i in range(64)}
        assert len(distinct) > 8  # samples draw their own ops
        np.testing.assert_array_equal(out, np.asarray(op(jax.random.key(4))))
        assert np.all(out >= -1e-6) and np.all(out <= 1 + 1e-6)


def test_policies_on_uint8_and_single_images():
    u8 = (IMG * 255).round().astype(np.uint8)
    out = A.rand_augment(jax.random.key(0), u8[None])
    assert out.dtype == jnp.uint8 and out.shape == (1, 16, 16, 3)
    assert A.trivial_augment_wide(jax.random.key(0), IMG).shape == IMG.shape


def test_augmix_is_a_convex_mix_of_chains():
    images = jnp.asarray(np.broadcast_to(IMG, (16, 16, 16, 3)))
    out = np.asarray(
        A.augmix(jax.random.key(1), images, severity=1, mixture_width=2, chain_depth=1)
    )
    # severity 1 uses bin 0 only: a chain is the identity or one of posterize(4 bits),
    # solarize(1), autocontrast, equalize; the mix stays within [min, max] of those
    chains = np.stack(
        [IMG, _step("Posterize", 4.0), _step("AutoContrast", 0), _step("Equalize", 0)]
    )
    assert np.all(out >= chains.min(axis=0) - 1e-5) and np.all(out <= chains.max(axis=0) + 1e-5)


def test_random_apply_and_random_choice():
    images = jnp.zeros((2000, 1, 1, 1))
    out = np.asarray(A.random_apply(jax.random.key(0), images, lambda k, x: x + 1.0, p=0.3))
    assert abs(out.mean() - 0.3) < 0.04
    fns = [lambda k, x: x, lambda k, x: x + 1.0, lambda k, x: x + 2.0]
    out = np.asarray(A.random_choice(jax.random.key(1), images, fns, p=[1, 2, 1]))
    freq = np.bincount(out.ravel().astype(int), minlength=3) / 2000
    np.testing.assert_allclose(freq, [0.25, 0.5, 0.25], atol=0.04)
    with pytest.raises(ValueError, match="shape"):
        A.random_apply(jax.random.key(0), images, lambda k, x: x[:1])
    with pytest.raises(ValueError, match="p"):
        A.random_choice(jax.random.key(0), images, fns, p=[1, 1])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: A.rand_augment(jax.random.key(0), IMG, magnitude=31), "magnitude"),
        (lambda: A.rand_augment(jax.random.key(0), IMG, num_ops=-1), "num_ops"),
        (lambda: A.auto_augment(jax.random.key(0), IMG, policy="coco"), "policy"),
        (lambda: A.augmix(jax.random.key(0), IMG, severity=11), "severity"),
        (lambda: A.augmix(jax.random.key(0), IMG, alpha=0.0), "alpha"),
        (
            lambda: A.trivial_augment_wide(jax.random.key(0), IMG, interpolation="bicubic"),
            "interpolation",
        ),
        (lambda: A.rand_augment(jax.random.key(0), np.zeros((8, 8, 4), np.float32)), "channels"),
    ],
)
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
