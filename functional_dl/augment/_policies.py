"""Augmentation policies with per-sample draws: RandAugment, TrivialAugmentWide, AutoAugment,
AugMix; and ``random_apply`` / ``random_choice``.

torchvision applies a policy to one image at a time (one op drawn per call). Here every
sample of the batch draws its own ops, signs and magnitudes inside one compiled call.

**How a step runs on the batch.** A policy step gives every sample one op out of
torchvision's table. Rather than computing all 14 ops for every image and selecting,
the ops are grouped by the kernel they need:

* the five geometric ops (shear x/y, translate x/y, rotate) are one per-sample affine
  matrix (the identity for the other samples): **one warp** per step;
* brightness, colour (saturation), contrast and sharpness are the same blend
  ``clip(f · x + (1 - f) · ref, 0, 1)`` with a per-sample factor and reference (black,
  the grayscale image, its mean, the 3x3 smoothed image): **one blend** per step;
* posterize, solarize, invert, autocontrast and equalize are per-pixel maps: one fused
  pass, plus the per-channel 256-bin histogram of equalize and the min/max of
  autocontrast.

The batch is mapped one image at a time (``lax.map``) and each step is a ``lax.switch``
over those groups, so an image pays only for the op it drew (one warp, one blend with
its one reference, or one tone map) — not for fourteen ops, and not for the other
groups as a ``vmap``, which evaluates every branch of a switch, would. ``rand_augment``
runs ``num_ops`` steps, ``trivial_augment_wide`` one, ``auto_augment`` two (each applied with its
probability), ``augmix`` ``mixture_width x max depth`` (a shorter chain of a sample
repeats the identity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_choice, check_int, check_positive
from . import _image, _sampling
from ._affine import _inverse_matrix, _inverse_matrix_np, _warp
from ._color import _contrast_ref, _gray
from ._tone import (
    autocontrast_kernel,
    equalize_kernel,
    invert_kernel,
    posterize_kernel,
    sharpness_reference,
    solarize_kernel,
)

OPS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
    "Invert",
)
_ID = {name: i for i, name in enumerate(OPS)}
_GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
_BLENDS = ("Brightness", "Color", "Contrast", "Sharpness")


def _linspace(lo: float, hi: float, n: int) -> np.ndarray:
    return np.linspace(lo, hi, n, dtype=np.float32)


def _posterize_bins(top: int, span: int, n: int) -> np.ndarray:
    """``round(top - arange(n) / ((n - 1) / span))`` (half to even, as ``torch.round``)."""
    return np.round(top - np.arange(n, dtype=np.float32) / np.float32((n - 1) / span))


def augmentation_space(
    policy: str, num_bins: int, height: int, width: int
) -> dict[str, tuple[np.ndarray | None, bool]]:
    """torchvision's op table: ``{op: (magnitudes of the bins or None, signed)}``.

    ``policy`` is ``'rand_augment'``, ``'trivial_augment_wide'``, ``'auto_augment'`` or
    ``'augmix'``; the order of the entries is torchvision's (the uniform op draw indexes it).
    """
    n = num_bins
    if policy == "trivial_augment_wide":
        shear, translate = _linspace(0.0, 0.99, n), _linspace(0.0, 32.0, n)
        translate_x = translate_y = translate
        rotate, color = _linspace(0.0, 135.0, n), _linspace(0.0, 0.99, n)
        posterize = _posterize_bins(8, 6, n)
    elif policy == "augmix":
        shear = _linspace(0.0, 0.3, n)
        translate_x, translate_y = _linspace(0.0, width / 3.0, n), _linspace(0.0, height / 3.0, n)
        rotate, color = _linspace(0.0, 30.0, n), _linspace(0.0, 0.9, n)
        posterize = _posterize_bins(4, 4, n)
    else:
        shear = _linspace(0.0, 0.3, n)
        translate_x = _linspace(0.0, 150.0 / 331.0 * width, n)
        translate_y = _linspace(0.0, 150.0 / 331.0 * height, n)
        rotate, color = _linspace(0.0, 30.0, n), _linspace(0.0, 0.9, n)
        posterize = _posterize_bins(8, 4, n)
    geometric = {
        "ShearX": (shear, True),
        "ShearY": (shear, True),
        "TranslateX": (translate_x, True),
        "TranslateY": (translate_y, True),
        "Rotate": (rotate, True),
    }
    colour = {name: (color, True) for name in _BLENDS}
    tone = {
        "Posterize": (posterize, False),
        "Solarize": (_linspace(1.0, 0.0, n), False),
        "AutoContrast": (None, False),
        "Equalize": (None, False),
    }
    if policy == "augmix":  # the partial space first, then the colour blends
        return {**geometric, **tone, **colour}
    space = {"Identity": (None, False), **geometric, **colour, **tone}
    if policy == "auto_augment":
        space.pop("Identity")
        space["Invert"] = (None, False)
    return space


# ----------------------------------------------------------------- one step on one image


def _affine_matrix(op: jnp.ndarray, mag: jnp.ndarray, H: int, W: int) -> jnp.ndarray:
    """The inverse affine matrix of a geometric op (identity for any other op).

    torchvision's calls: shears ``affine(shear=degrees(atan(mag)), center=[0, 0])``
    (about the top-left corner), translations ``affine(translate=int(mag))``, rotate
    ``rotate(mag)`` (counter-clockwise), all about the centre otherwise.
    """
    shear_deg = jnp.degrees(jnp.arctan(mag))
    shear = (
        jnp.where(op == _ID["ShearX"], shear_deg, 0.0),
        jnp.where(op == _ID["ShearY"], shear_deg, 0.0),
    )
    shift = jnp.trunc(mag)
    translate = (
        jnp.where(op == _ID["TranslateX"], shift, 0.0),
        jnp.where(op == _ID["TranslateY"], shift, 0.0),
    )
    angle = jnp.where(op == _ID["Rotate"], mag, 0.0)
    m = _inverse_matrix(angle, translate, 1.0, shear)
    # shears turn about the top-left corner: torchvision's centre (0, 0) is (-W/2, -H/2)
    # from the image centre; C · M^-1 · C^-1 adds (I - M^-1) c to the offset
    is_shear = (op == _ID["ShearX"]) | (op == _ID["ShearY"])
    cx, cy = jnp.where(is_shear, -W / 2.0, 0.0), jnp.where(is_shear, -H / 2.0, 0.0)
    return m.at[2].add(cx - m[0] * cx - m[1] * cy).at[5].add(cy - m[3] * cx - m[4] * cy)


def _matrix_np(op_id: int, mag: float, H: int, W: int) -> np.ndarray:
    """:func:`_affine_matrix` of a concrete op and magnitude, in float64 as torchvision
    computes it (so that half-pixel ties of nearest sampling round as there)."""
    name = OPS[op_id]
    if name in ("ShearX", "ShearY"):
        deg = math.degrees(math.atan(float(mag)))
        shear = (deg, 0.0) if name == "ShearX" else (0.0, deg)
        # about the top-left corner, (-W/2, -H/2) from the centre (torchvision's center=[0, 0])
        return _inverse_matrix_np(0.0, (0.0, 0.0), 1.0, shear, center=(-W / 2.0, -H / 2.0))
    if name in ("TranslateX", "TranslateY"):
        shift = float(np.trunc(mag))
        translate = (shift, 0.0) if name == "TranslateX" else (0.0, shift)
        return _inverse_matrix_np(0.0, translate, 1.0, (0.0, 0.0))
    angle = float(mag) if name == "Rotate" else 0.0
    return _inverse_matrix_np(angle, (0.0, 0.0), 1.0, (0.0, 0.0))


def _matrix_table(ids: np.ndarray, mags: np.ndarray, H: int, W: int) -> jnp.ndarray:
    """``[..., 2, 6]``: the inverse matrix of each table entry at ``+mag`` and ``-mag``."""
    out = np.zeros((*mags.shape, 2, 6), np.float64)
    for index in np.ndindex(*mags.shape):
        op = int(ids[index[: ids.ndim]])
        for sign in range(2):
            mag = float(mags[index]) * (-1.0 if sign else 1.0)
            out[index + (sign,)] = _matrix_np(op, mag, H, W)
    return jnp.asarray(out)


def _negated(signed: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """1 where :func:`_signed` flips the magnitude, else 0 (an index into the sign axis)."""
    return (signed & (u <= 0.5)).astype(jnp.int32)


def _blend_reference(img: jnp.ndarray, which: jnp.ndarray) -> jnp.ndarray:
    """Reference image of brightness (black), colour (gray), contrast (mean gray) or
    sharpness (3x3 smoothed), ``which`` in 0..3: only the one asked for is computed."""
    return jax.lax.switch(
        which,
        [
            lambda im: jnp.zeros_like(im),
            lambda im: jnp.broadcast_to(_gray(im), im.shape),
            lambda im: jnp.broadcast_to(_contrast_ref(im), im.shape),
            sharpness_reference,
        ],
        img,
    )


def _step(
    img: jnp.ndarray,
    op: jnp.ndarray,
    mag: jnp.ndarray,
    interpolation: str,
    fill: jnp.ndarray,
    matrix: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Apply op ``op`` (an index of :data:`OPS`) with magnitude ``mag`` to one image.

    A ``lax.switch`` over the kernel groups (identity, the affine warp of the five
    geometric ops, the blend of the four colour ops, and the five tone maps), so only the
    drawn op's kernel runs for this image. ``matrix``: the geometric op's inverse matrix
    from :func:`_matrix_table` (float64-exact, as torchvision's); by default it is
    computed from the traced ``mag`` in float32.
    """
    H, W = img.shape[-3:-1]

    def geometric(im: jnp.ndarray) -> jnp.ndarray:
        m = _affine_matrix(op, mag, H, W) if matrix is None else matrix
        return _warp(im, m, interpolation, fill)

    def blend(im: jnp.ndarray) -> jnp.ndarray:
        if H <= 2 or W <= 2:  # torchvision leaves such images unsharpened
            which = jnp.where(op == _ID["Sharpness"], -1, op - _ID["Brightness"])
        else:
            which = op - _ID["Brightness"]
        factor = (1.0 + mag).astype(im.dtype)
        out = jnp.clip(
            im * factor + _blend_reference(im, jnp.maximum(which, 0)) * (1.0 - factor), 0.0, 1.0
        )
        return jnp.where(which < 0, im, out)

    branches = [
        lambda im: im,
        geometric,
        blend,
        lambda im: posterize_kernel(im, jnp.trunc(mag).astype(jnp.int32)),
        lambda im: solarize_kernel(im, mag),
        autocontrast_kernel,
        equalize_kernel,
        invert_kernel,
    ]
    group = jnp.select(
        [
            op == _ID["Identity"],
            op <= _ID["Rotate"],
            op <= _ID["Sharpness"],
            op == _ID["Posterize"],
            op == _ID["Solarize"],
            op == _ID["AutoContrast"],
            op == _ID["Equalize"],
        ],
        list(range(7)),
        7,
    )
    return jax.lax.switch(group, branches, img)


def _map_samples(one: Callable, key: Any, x: jnp.ndarray, num_uniforms: int) -> jnp.ndarray:
    """``one(u_i, image_i)`` for every image, one image at a time (``lax.map``), so that the
    ``lax.switch`` of each step runs only the op that image drew (under ``vmap`` a switch
    would compute every branch for every image: 8x slower for RandAugment on 224x224)."""
    if x.ndim == 3:
        return one(_sampling.flat_draw(jax.random.uniform, key, (num_uniforms,)), x)
    u = _sampling.batch_draw(jax.random.uniform, key, (x.shape[0], num_uniforms))
    return jax.lax.map(lambda args: one(*args), (u, x))


def _table_np(space: dict, num_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(op ids [K], magnitudes [K, num_bins], signed [K])`` of an augmentation space."""
    ids = np.asarray([_ID[name] for name in space], np.int32)
    mags = np.zeros((len(space), num_bins), np.float32)
    for k, (values, _) in enumerate(space.values()):
        if values is not None:
            mags[k] = values
    signed = np.asarray([s for _, s in space.values()])
    return ids, mags, signed


def _table(space: dict, num_bins: int) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """:func:`_table_np` as JAX arrays."""
    ids, mags, signed = _table_np(space, num_bins)
    return jnp.asarray(ids), jnp.asarray(mags), jnp.asarray(signed)


def _signed(mag: jnp.ndarray, signed: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """torchvision flips the sign of a signed op's magnitude when ``rand <= 0.5``."""
    return jnp.where(signed & (u <= 0.5), -mag, mag)


def _check_policy_images(images: Any, fn: str) -> None:
    _image.check(images, fn=fn, channels=(1, 3))


def _prepare(images: Any, fill: Any, interpolation: str, fn: str) -> None:
    check_choice("interpolation", interpolation, ("nearest", "bilinear"), fn=fn)
    _check_policy_images(images, fn)
    _image.check_value("fill", fill, np.shape(images)[-1:], fn=fn)


# ----------------------------------------------------------------- the policies


@_image.float_kernel(image_arg=1, static=("num_ops", "magnitude", "num_bins", "interpolation"))
def _rand_augment(
    key: Any,
    x: jnp.ndarray,
    fill: Any,
    *,
    num_ops: int,
    magnitude: int,
    num_bins: int,
    interpolation: str,
) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    space = augmentation_space("rand_augment", num_bins, H, W)
    ids, mags, signed = _table(space, num_bins)
    mats = _matrix_table(*_table_np(space, num_bins)[:2], H, W)
    fill = _image.expand_to(jnp.asarray(fill, x.dtype), 3)

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        for s in range(num_ops):
            k = _sampling.randint(u[2 * s], ids.shape[0] - 1)
            mag = _signed(mags[k, magnitude], signed[k], u[2 * s + 1])
            matrix = mats[k, magnitude, _negated(signed[k], u[2 * s + 1])]
            img = _step(img, ids[k], mag, interpolation, fill, matrix)
        return img

    return _map_samples(one, key, x, max(2 * num_ops, 1))


def rand_augment(
    key: Any,
    images: Any,
    *,
    num_ops: int = 2,
    magnitude: int = 9,
    num_magnitude_bins: int = 31,
    interpolation: str = "nearest",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """RandAugment: each sample applies ``num_ops`` ops drawn uniformly from torchvision's
    14 (identity, shears, translations, rotation, brightness, colour, contrast, sharpness,
    posterize, solarize, autocontrast, equalize), all at bin ``magnitude``, signed ops with
    a random sign.

    Each sample draws its own ops and signs in one compiled call; see the module
    docstring for what a step costs (one warp + one blend + one histogram per image).

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``, C in {1, 3}, float in [0, 1] or uint8.
      num_ops: ops per sample, ``>= 0``.
      magnitude: the bin index, ``0 <= magnitude < num_magnitude_bins``.
      num_magnitude_bins: number of bins of each op's magnitude range, ``>= 2``.
      interpolation: ``'nearest'`` (default) or ``'bilinear'`` for the geometric ops.
      fill: value for pixels from outside the image (scalar or one per channel).

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.RandAugment(num_ops, magnitude,
    num_magnitude_bins)`` (one draw per call there, one per sample here).

    Example:
      >>> images = jax.random.uniform(jax.random.key(0), (8, 32, 32, 3))
      >>> rand_augment(jax.random.key(1), images).shape
      (8, 32, 32, 3)
    """
    images = as_arrays(images)
    fn = "rand_augment"
    check_int("num_ops", num_ops, minimum=0, fn=fn)
    check_int("num_magnitude_bins", num_magnitude_bins, minimum=2, fn=fn)
    check_int("magnitude", magnitude, minimum=0, fn=fn)
    if magnitude >= num_magnitude_bins:
        raise ValueError(
            f"{fn}: magnitude must be < num_magnitude_bins={num_magnitude_bins}, "
            f"got magnitude={magnitude}"
        )
    _prepare(images, fill, interpolation, fn)
    if num_ops == 0:
        return jnp.asarray(images)
    return _rand_augment(
        key,
        images,
        fill,
        num_ops=num_ops,
        magnitude=magnitude,
        num_bins=num_magnitude_bins,
        interpolation=interpolation,
    )


@_image.float_kernel(image_arg=1, static=("num_bins", "interpolation"))
def _trivial(
    key: Any, x: jnp.ndarray, fill: Any, *, num_bins: int, interpolation: str
) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    space = augmentation_space("trivial_augment_wide", num_bins, H, W)
    ids, mags, signed = _table(space, num_bins)
    mats = _matrix_table(*_table_np(space, num_bins)[:2], H, W)
    fill = _image.expand_to(jnp.asarray(fill, x.dtype), 3)

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        k = _sampling.randint(u[0], ids.shape[0] - 1)
        b = _sampling.randint(u[1], num_bins - 1)
        mag = _signed(mags[k, b], signed[k], u[2])
        matrix = mats[k, b, _negated(signed[k], u[2])]
        return _step(img, ids[k], mag, interpolation, fill, matrix)

    return _map_samples(one, key, x, 3)


def trivial_augment_wide(
    key: Any,
    images: Any,
    *,
    num_magnitude_bins: int = 31,
    interpolation: str = "nearest",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """TrivialAugment Wide: each sample applies one op of torchvision's 14 with a magnitude
    bin drawn uniformly (wide ranges: shear 0.99, translate 32 px, rotate 135°, colour
    0.99, posterize down to 2 bits), signed ops with a random sign.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``, C in {1, 3}.
      num_magnitude_bins: ``>= 2``.
      interpolation: ``'nearest'`` (default) or ``'bilinear'``.
      fill: value for pixels from outside the image.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.TrivialAugmentWide(num_magnitude_bins)``.

    Example:
      >>> images = jax.random.uniform(jax.random.key(0), (4, 16, 16, 3))
      >>> trivial_augment_wide(jax.random.key(1), images).shape
      (4, 16, 16, 3)
    """
    images = as_arrays(images)
    fn = "trivial_augment_wide"
    check_int("num_magnitude_bins", num_magnitude_bins, minimum=2, fn=fn)
    _prepare(images, fill, interpolation, fn)
    return _trivial(key, images, fill, num_bins=num_magnitude_bins, interpolation=interpolation)


# (op, probability, magnitude bin or None) pairs: torchvision's AutoAugment sub-policies
AUTO_AUGMENT_POLICIES: dict[str, tuple] = {
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
        (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ),
    "cifar10": (
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
        (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
        (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ),
    "svhn": (
        (("ShearX", 0.9, 4), ("Invert", 0.2, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.6, None), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, None)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, None), ("AutoContrast", 0.8, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
    ),
}


def _auto_table(policy: str, H: int, W: int) -> tuple[jnp.ndarray, ...]:
    """:func:`_auto_table_np` as JAX arrays."""
    return tuple(jnp.asarray(a) for a in _auto_table_np(policy, H, W))


def _auto_table_np(policy: str, H: int, W: int) -> tuple[np.ndarray, ...]:
    """Per sub-policy and step: op id, probability, magnitude, signed (``[25, 2]`` each)."""
    space = augmentation_space("auto_augment", 10, H, W)
    rows = AUTO_AUGMENT_POLICIES[policy]
    ids = np.zeros((len(rows), 2), np.int32)
    probs = np.zeros((len(rows), 2), np.float32)
    mags = np.zeros((len(rows), 2), np.float32)
    signed = np.zeros((len(rows), 2), bool)
    for r, pair in enumerate(rows):
        for s, (name, prob, bin_) in enumerate(pair):
            values, sign = space[name]
            ids[r, s], probs[r, s], signed[r, s] = _ID[name], prob, sign
            mags[r, s] = 0.0 if values is None else values[bin_]
    return ids, probs, mags, signed


@_image.float_kernel(image_arg=1, static=("policy", "interpolation"))
def _auto_augment(
    key: Any, x: jnp.ndarray, fill: Any, *, policy: str, interpolation: str
) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    ids, probs, mags, signed = _auto_table(policy, H, W)
    np_ids, _, np_mags, _ = _auto_table_np(policy, H, W)
    mats = _matrix_table(np_ids, np_mags, H, W)
    fill = _image.expand_to(jnp.asarray(fill, x.dtype), 3)

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        r = _sampling.randint(u[0], ids.shape[0] - 1)
        for s in range(2):
            apply = u[1 + 2 * s] <= probs[r, s]
            mag = _signed(mags[r, s], signed[r, s], u[2 + 2 * s])
            matrix = mats[r, s, _negated(signed[r, s], u[2 + 2 * s])]
            op = jnp.where(apply, ids[r, s], _ID["Identity"])  # skipped: the identity
            img = _step(img, op, mag, interpolation, fill, matrix)
        return img

    return _map_samples(one, key, x, 5)


def auto_augment(
    key: Any,
    images: Any,
    *,
    policy: str = "imagenet",
    interpolation: str = "nearest",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """AutoAugment: each sample draws one of the policy's 25 sub-policies and applies its
    two ops, each with its probability, at its fixed magnitude bin (of 10), signed ops with
    a random sign.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``, C in {1, 3}.
      policy: ``'imagenet'``, ``'cifar10'`` or ``'svhn'`` (torchvision's tables).
      interpolation: ``'nearest'`` (default) or ``'bilinear'``.
      fill: value for pixels from outside the image.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.AutoAugment(AutoAugmentPolicy.IMAGENET)``.

    Example:
      >>> images = jax.random.uniform(jax.random.key(0), (4, 16, 16, 3))
      >>> auto_augment(jax.random.key(1), images, policy="cifar10").shape
      (4, 16, 16, 3)
    """
    images = as_arrays(images)
    fn = "auto_augment"
    check_choice("policy", policy, tuple(AUTO_AUGMENT_POLICIES), fn=fn)
    _prepare(images, fill, interpolation, fn)
    return _auto_augment(key, images, fill, policy=policy, interpolation=interpolation)


@_image.float_kernel(image_arg=1, static=("severity", "width", "depth", "interpolation"))
def _augmix(
    key: Any,
    x: jnp.ndarray,
    alpha: Any,
    fill: Any,
    *,
    severity: int,
    width: int,
    depth: int,
    interpolation: str,
) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    space = augmentation_space("augmix", 10, H, W)
    ids, mags, signed = _table(space, 10)
    mats = _matrix_table(*_table_np(space, 10)[:2], H, W)
    fill = _image.expand_to(jnp.asarray(fill, x.dtype), 3)
    batch = x.shape[:-3]
    k_mix, k_ops = jax.random.split(key)
    k_beta, k_dir = jax.random.split(k_mix)
    alpha = jnp.asarray(alpha, jnp.float32)
    m = jax.random.dirichlet(k_beta, jnp.broadcast_to(alpha, (2,)), batch)  # [..., 2]
    weights = jax.random.dirichlet(k_dir, jnp.broadcast_to(alpha, (width,)), batch)
    weights = weights * m[..., 1:2]
    max_depth = depth if depth > 0 else 3
    per_chain = 1 + 3 * max_depth  # the depth draw, then (op, bin, sign) per step

    def one(u: jnp.ndarray, img: jnp.ndarray, m0: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
        mix = m0.astype(img.dtype) * img
        for c in range(width):
            v = u[c * per_chain : (c + 1) * per_chain]
            chain_depth = depth if depth > 0 else 1 + _sampling.randint(v[0], 2)
            aug = img
            for s in range(max_depth):
                k = _sampling.randint(v[1 + 3 * s], ids.shape[0] - 1)
                b = _sampling.randint(v[2 + 3 * s], severity - 1)
                mag = _signed(mags[k, b], signed[k], v[3 + 3 * s])
                matrix = mats[k, b, _negated(signed[k], v[3 + 3 * s])]
                op = jnp.where(s < chain_depth, ids[k], _ID["Identity"])  # past the depth
                aug = _step(aug, op, mag, interpolation, fill, matrix)
            mix = mix + w[c].astype(img.dtype) * aug
        return mix

    if not batch:
        u = _sampling.flat_draw(jax.random.uniform, k_ops, (width * per_chain,))
        return one(u, x, m[0], weights)
    u = _sampling.batch_draw(jax.random.uniform, k_ops, (batch[0], width * per_chain))
    return jax.lax.map(lambda args: one(*args), (u, x, m[:, 0], weights))


def augmix(
    key: Any,
    images: Any,
    *,
    severity: int = 3,
    mixture_width: int = 3,
    chain_depth: int = -1,
    alpha: float = 1.0,
    interpolation: str = "bilinear",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """AugMix: mix each sample with ``mixture_width`` augmentation chains of its own.

    Per sample: ``m ~ Dirichlet(alpha, alpha)``, chain weights
    ``w ~ Dirichlet(alpha, …, alpha) · m[1]``; each chain applies ``chain_depth`` ops (or
    a depth drawn from 1..3 when ``chain_depth <= 0``) drawn from torchvision's 13 AugMix
    ops at a magnitude bin drawn from ``0..severity - 1`` of 10; the output is
    ``m[0] · x + Σ_i w_i · chain_i(x)``.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``, C in {1, 3}.
      severity: ``1..10``.
      mixture_width: number of chains, ``>= 1``.
      chain_depth: ops per chain; ``<= 0`` draws 1..3 per chain and sample.
      alpha: Dirichlet concentration, ``> 0``.
      interpolation: ``'bilinear'`` (default, as torchvision's AugMix) or ``'nearest'``.
      fill: value for pixels from outside the image.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.AugMix(severity, mixture_width, chain_depth,
    alpha)`` (``all_ops=True``).

    Example:
      >>> images = jax.random.uniform(jax.random.key(0), (4, 16, 16, 3))
      >>> augmix(jax.random.key(1), images).shape
      (4, 16, 16, 3)
    """
    images = as_arrays(images)
    fn = "augmix"
    check_int("severity", severity, minimum=1, fn=fn)
    if severity > 10:
        raise ValueError(f"{fn}: severity must be in 1..10, got severity={severity}")
    check_int("mixture_width", mixture_width, minimum=1, fn=fn)
    check_int("chain_depth", chain_depth, fn=fn)
    alpha = check_positive("alpha", alpha, fn=fn)
    _prepare(images, fill, interpolation, fn)
    return _augmix(
        key,
        images,
        alpha,
        fill,
        severity=severity,
        width=mixture_width,
        depth=chain_depth,
        interpolation=interpolation,
    )


# ----------------------------------------------------------------- random_apply / choice


def random_apply(key: Any, images: Any, fn: Callable, *, p: Any = 0.5) -> jnp.ndarray:
    """Apply ``fn(key, images)`` to each sample with probability ``p`` (its own draw).

    ``fn`` runs once on the whole batch and each sample keeps its result or its input,
    so ``fn`` must keep the shape. torchvision's ``RandomApply`` decides once per call.

    Args:
      key: a ``jax.random`` key (split between the draw and ``fn``).
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      fn: ``fn(key, images) -> images`` of the same shape, e.g. a ``functools.partial``
        of a random op, or ``lambda k, x: fdl.augment.invert(x)``.
      p: probability in ``[0, 1]``.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.RandomApply([t], p)``.

    Example:
      >>> out = random_apply(jax.random.key(0), jnp.zeros((64, 2, 2, 1)), lambda k, x: x + 1)
      >>> 16 < int(out[:, 0, 0, 0].sum()) < 48  # about half the samples
      True
    """
    images = as_arrays(images)
    name = "random_apply"
    p = _sampling.check_p(p, fn=name)
    _image.check(images, fn=name)
    if not callable(fn):
        raise TypeError(f"{name}: fn must be callable as fn(key, images), got fn={fn!r}")
    images = jnp.asarray(images)
    k_draw, k_fn = jax.random.split(key)
    out = fn(k_fn, images)
    if np.shape(out) != images.shape:
        raise ValueError(f"{name}: fn must keep the shape {images.shape}, got {np.shape(out)}")
    n = images.shape[0] if images.ndim == 4 else 1
    apply = jax.random.uniform(k_draw, (n,)) < p
    apply = apply.reshape((n, 1, 1, 1) if images.ndim == 4 else ())
    return _sampling.propagate_nan(p, jnp.where(apply, out, images).astype(images.dtype))


def random_choice(
    key: Any, images: Any, fns: Sequence[Callable], *, p: Sequence[float] | None = None
) -> jnp.ndarray:
    """Apply one of ``fns`` to each sample, drawn per sample with probabilities ``p``.

    Every ``fn(key_i, images)`` runs once on the whole batch (with its own key) and each
    sample keeps the result of its draw: the cost is that of all ``fns``.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      fns: non-empty sequence of ``fn(key, images) -> images`` keeping the shape.
      p: non-negative weights, one per fn (normalised to sum 1); default uniform.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.RandomChoice(transforms, p)`` (one draw per call).

    Example:
      >>> fns = [lambda k, x: x, lambda k, x: x + 1, lambda k, x: x + 2]
      >>> out = random_choice(jax.random.key(0), jnp.zeros((300, 1, 1, 1)), fns, p=[0, 1, 1])
      >>> sorted(set(out.ravel().tolist()))
      [1.0, 2.0]
    """
    images = as_arrays(images)
    name = "random_choice"
    _image.check(images, fn=name)
    fns = list(fns)
    if not fns or not all(callable(f) for f in fns):
        raise ValueError(f"{name}: fns must be a non-empty sequence of callables, got fns={fns!r}")
    weights = np.ones(len(fns)) if p is None else np.asarray(p, np.float64)
    if weights.shape != (len(fns),) or np.any(weights < 0) or not np.sum(weights) > 0:
        raise ValueError(
            f"{name}: p must hold one non-negative weight per fn ({len(fns)}) with a positive "
            f"sum, got p={p!r}"
        )
    images = jnp.asarray(images)
    k_draw, *k_fns = jax.random.split(key, len(fns) + 1)
    outs = []
    for f, k in zip(fns, k_fns, strict=True):
        out = f(k, images)
        if np.shape(out) != images.shape:
            raise ValueError(
                f"{name}: every fn must keep the shape {images.shape}, got {np.shape(out)}"
            )
        outs.append(jnp.asarray(out, images.dtype))
    n = images.shape[0] if images.ndim == 4 else 1
    logits = jnp.log(jnp.asarray(weights / weights.sum(), jnp.float32))
    choice = jax.random.categorical(k_draw, logits, shape=(n,))
    stacked = jnp.stack(outs)  # [K, N, H, W, C] or [K, H, W, C]
    if images.ndim == 4:
        return jnp.take_along_axis(stacked, choice.reshape(1, n, 1, 1, 1), axis=0)[0]
    return stacked[choice[0]]
