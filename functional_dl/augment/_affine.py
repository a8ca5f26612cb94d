"""Rotation and affine warps (torchvision's matrix convention, counter-clockwise angles)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_choice, check_pair, check_positive, is_concrete
from . import _image, _sampling
from ._geometry import INTERPOLATIONS


def _inverse_matrix(angle: Any, translate: Any, scale: Any, shear: Any) -> jnp.ndarray:
    """The output -> input map ``[a, b, c, d, e, f]`` in centred pixel coordinates.

    torchvision's ``_get_inverse_affine_matrix`` with centre ``(0, 0)`` (the image
    centre) and rotation ``-angle``: the forward map is
    ``M = T · R(-angle) · S(scale) · SHy(shear_y) · SHx(shear_x)``, with ``x`` to the
    right and ``y`` down, so a positive ``angle`` turns the picture counter-clockwise.
    Input position of output pixel ``(x, y)``: ``(a x + b y + c, d x + e y + f)``.
    """
    rad = jnp.pi / 180.0
    rot = -jnp.asarray(angle, jnp.float32) * rad
    sx = jnp.asarray(shear[0], jnp.float32) * rad
    sy = jnp.asarray(shear[1], jnp.float32) * rad
    tx, ty = (jnp.asarray(t, jnp.float32) for t in translate)
    a = jnp.cos(rot - sy) / jnp.cos(sy)
    b = -(a * jnp.tan(sx) + jnp.sin(rot))
    c = jnp.sin(rot - sy) / jnp.cos(sy)
    d = jnp.cos(rot) - c * jnp.tan(sx)
    scale = jnp.asarray(scale, jnp.float32)
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    return jnp.stack([m0, m1, -m0 * tx - m1 * ty, m3, m4, -m3 * tx - m4 * ty])


def _inverse_matrix_np(
    angle: Any, translate: Any, scale: Any, shear: Any, center: tuple = (0.0, 0.0)
) -> np.ndarray:
    """:func:`_inverse_matrix` of concrete arguments, in float64 and in the order of
    torchvision's ``_get_inverse_affine_matrix`` (with ``-angle``; ``center`` relative to
    the image centre): ``rotate(x, 90)`` gets ``cos = 6e-17``, not float32's ``-4e-8``,
    so that source positions exactly between two pixels stay exact ties."""
    rot = math.radians(-float(angle))
    sx, sy = math.radians(float(shear[0])), math.radians(float(shear[1]))
    cx, cy = (float(c) for c in center)
    tx, ty = (float(t) for t in translate)
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    scale = float(scale)
    m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return np.array(m, np.float64)


def _fma(a: jnp.ndarray, b: float, c: float) -> jnp.ndarray:
    """``a * b + c`` rounded once (a fused multiply-add), for a constant ``b``.

    The product's rounding error comes from Veltkamp's split (exact without an FMA
    instruction) and the sum's from Knuth's two-sum; each step is materialised so the
    compiler cannot reassociate or contract them.
    """
    barrier = jax.lax.optimization_barrier
    split = 4097.0 if a.dtype == jnp.float32 else 134217729.0  # 2^12 + 1, 2^27 + 1
    b_hi = float(np.float64(b))  # b is a small (half-)integer: its own high part
    p = barrier(a * b_hi)
    t = barrier(a * split)
    a_hi = barrier(t - (t - a))
    a_lo = a - a_hi
    err = barrier((a_hi * b_hi - p) + a_lo * b_hi)  # exact: p + err == a * b
    s = barrier(p + c)
    bb = barrier(s - p)
    sum_err = (p - (s - bb)) + (c - bb)  # exact: s + sum_err == p + c
    return s + (sum_err + err)


def _unnormalize(g: jnp.ndarray, size: int) -> jnp.ndarray:
    """``grid_sample``'s pixel position of a normalised coordinate (``align_corners=False``):
    ``(g + 1) · size / 2 − 0.5``, evaluated as PyTorch's CPU kernel does (``g + 1``, then
    one fused multiply-add), so that exact half-pixel ties round as in torchvision."""
    return _fma(jax.lax.optimization_barrier(g + 1.0), size / 2.0, -0.5)


def _warp(x: jnp.ndarray, matrix: jnp.ndarray, interpolation: str, fill: Any) -> jnp.ndarray:
    """Resample ``x`` ``[..., H, W, C]`` through ``matrix`` (see :func:`_inverse_matrix`).

    As torchvision's ``grid_sample(padding_mode='zeros', align_corners=False)`` followed
    by its fill rule: nearest takes ``fill`` where the rounded (half to even) source
    pixel is outside; bilinear blends ``mask * (sampled - fill) + fill`` where ``mask``
    is the interpolation weight that fell inside the image.
    """
    H, W = x.shape[-3:-1]
    src_x, src_y = _source_positions(matrix, H, W, x.dtype)
    return sample_at(x, src_x, src_y, interpolation, _image.expand_to(fill, x.ndim))


def _source_positions(matrix: jnp.ndarray, H: int, W: int, dtype: Any) -> tuple:
    """``(src_x, src_y)``, each ``[H, W]``: where each output pixel reads the input."""
    m = matrix.astype(dtype)
    X, Y = jnp.meshgrid(
        jnp.arange(W, dtype=dtype) - (W - 1) / 2, jnp.arange(H, dtype=dtype) - (H - 1) / 2
    )
    # torchvision's _affine_grid: normalised coordinates [x, y, 1] @ theta^T / (W/2, H/2)
    # as a matrix product (XLA computes a dot once, where it would recompute an
    # elementwise formula in each kernel that reads it, and two evaluations that round
    # differently make a coordinate a rounding away from an integer floor to k for the
    # gather but get the weights of k + 1: 0.6 errors seen in jit(blur . rotate)), then
    # grid_sample's unnormalisation, materialised once.
    barrier = jax.lax.optimization_barrier
    theta = jnp.stack([jnp.stack([m[0], m[1], m[2]]), jnp.stack([m[3], m[4], m[5]])])
    # an opaque divisor: XLA turns a division by a constant into a multiplication by
    # its reciprocal, which rounds differently from torchvision's division
    theta = theta / barrier(jnp.asarray([[W / 2.0] * 3, [H / 2.0] * 3], dtype))

    grid = jnp.stack([X.ravel(), Y.ravel(), jnp.ones(H * W, dtype)], axis=-1)

    def coordinate(row: jnp.ndarray, size: int) -> jnp.ndarray:
        g = jnp.dot(grid, row, precision=jax.lax.Precision.HIGHEST).reshape(H, W)
        return _unnormalize(barrier(g), size)

    src_x, src_y = barrier((coordinate(theta[0], W), coordinate(theta[1], H)))
    return src_x, src_y


def sample_at(
    x: jnp.ndarray, src_x: jnp.ndarray, src_y: jnp.ndarray, interpolation: str, fill: Any
) -> jnp.ndarray:
    """Read ``x`` ``[..., H, W, C]`` at pixel positions ``(src_x, src_y)`` (each ``[H, W]``).

    torchvision's ``grid_sample(padding_mode='zeros', align_corners=False)`` followed by
    its fill rule (see :func:`_warp`); ``fill`` is already expanded to ``x.ndim``.
    """
    H, W, C = x.shape[-3:]
    flat = x.reshape(x.shape[:-3] + (H * W, C))

    def sample(iy: jnp.ndarray, ix: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
        index = jnp.clip(iy, 0, H - 1) * W + jnp.clip(ix, 0, W - 1)
        # in range after clipping: mode 'clip' avoids a bounds test per element
        values = jnp.take(flat, index.reshape(-1), axis=-2, mode="clip").reshape(x.shape)
        return values, inside[..., None]  # [H, W, 1]

    if interpolation == "nearest":
        values, inside = sample(
            jnp.round(src_y).astype(jnp.int32), jnp.round(src_x).astype(jnp.int32)
        )
        return jnp.where(inside, values, fill)
    x0, y0 = jnp.floor(src_x), jnp.floor(src_y)
    fx, fy = (src_x - x0)[..., None], (src_y - y0)[..., None]
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    sampled = mask = 0.0
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            values, inside = sample(y0 + dy, x0 + dx)
            weight = jnp.where(inside, wy * wx, 0.0)  # [H, W, 1]
            sampled = sampled + _image.expand_to(weight, x.ndim) * values
            mask = mask + weight
    return _image.expand_to(mask, x.ndim) * (sampled - fill) + fill


def _check_warp_args(images: Any, interpolation: str, fill: Any, fn: str) -> None:
    _image.check(images, fn=fn)
    check_choice("interpolation", interpolation, INTERPOLATIONS, fn=fn)
    _image.check_value("fill", fill, np.shape(images), fn=fn)


@_image.float_kernel(static=("interpolation",))
def _affine(x: jnp.ndarray, matrix: Any, fill: Any, *, interpolation: str) -> jnp.ndarray:
    return _warp(x, jnp.asarray(matrix), interpolation, jnp.asarray(fill, x.dtype))


def rotate(
    images: Any, angle: Any, *, interpolation: str = "nearest", fill: Any = 0.0
) -> jnp.ndarray:
    """Rotate images by ``angle`` degrees counter-clockwise about their centre.

    Same size as the input (corners cut off, uncovered pixels set to ``fill``); equal
    to ``affine(images, angle, (0, 0), 1.0, (0.0, 0.0))``.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      angle: degrees, counter-clockwise (scalar, may be traced).
      interpolation: ``'nearest'`` (default) or ``'bilinear'``.
      fill: value for pixels from outside the image: scalar or one per channel.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.rotate(expand=False, center=None)``.

    Example:
      >>> images = jnp.zeros((1, 3, 3, 1)).at[0, 0, 1, 0].set(1.0)  # top centre pixel
      >>> rotate(images, 90.0)[0, :, :, 0]  # counter-clockwise: to the left centre
      Array([[0., 0., 0.],
             [1., 0., 0.],
             [0., 0., 0.]], dtype=float32)
    """
    images = as_arrays(images)
    return affine(
        images, angle, (0.0, 0.0), 1.0, (0.0, 0.0), interpolation=interpolation, fill=fill
    )


def affine(
    images: Any,
    angle: Any,
    translate: Any,
    scale: Any,
    shear: Any,
    *,
    interpolation: str = "nearest",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """Rotate, scale, shear and translate images about their centre (one warp).

    The forward map in pixel coordinates centred on the image (``x`` right, ``y`` down)
    is ``M = T(translate) · R(angle) · S(scale) · SHy(shear_y) · SHx(shear_x)`` with
    ``R`` counter-clockwise on screen and torchvision's shear matrices
    ``SHx = [[1, -tan(sx)], [0, 1]]``, ``SHy = [[1, 0], [-tan(sy), 1]]``; each output
    pixel reads the input at ``M^-1`` of its position.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      angle: rotation in degrees, counter-clockwise.
      translate: ``(tx, ty)`` in pixels (right, down).
      scale: positive zoom factor.
      shear: degrees, a number (x only) or ``(shear_x, shear_y)``.
      interpolation: ``'nearest'`` (default) or ``'bilinear'``.
      fill: value for pixels from outside the image: scalar or one per channel.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.affine`` with the angle negated:
    torchvision's ``affine`` turns clockwise for positive angles while its ``rotate``
    turns counter-clockwise; here both turn counter-clockwise and agree, so
    ``affine(x, a, t, s, sh) == torchvision affine(x, -a, t, s, sh)``.

    Example:
      >>> images = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(1.0)
      >>> affine(images, 0.0, (1, 0), 1.0, (0.0, 0.0))[0, :, :, 0]  # one pixel to the right
      Array([[0., 0., 0.],
             [0., 0., 1.],
             [0., 0., 0.]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "affine"
    scale = check_positive("scale", scale, fn=fn)
    translate = check_pair("translate", translate, ordered=False, fn=fn)
    shear = (
        (shear, 0.0)
        if _sampling.is_scalar(shear)
        else check_pair("shear", shear, ordered=False, fn=fn)
    )
    for name, values in (("angle", (angle,)), ("translate", translate), ("shear", shear)):
        for v in values:
            if is_concrete(v) and np.ndim(v) == 0 and not np.isfinite(float(v)):
                raise ValueError(f"{fn}: {name} must be finite, got {name}={values!r}")
    _check_warp_args(images, interpolation, fill, fn)
    params = (angle, *translate, scale, *shear)
    if all(is_concrete(v) and np.ndim(v) == 0 for v in params):
        matrix = _inverse_matrix_np(angle, translate, scale, shear)  # float64, as torchvision
    else:
        matrix = _inverse_matrix(angle, translate, scale, shear)
    return _affine(images, matrix, fill, interpolation=interpolation)


def random_rotation(
    key: Any, images: Any, degrees: Any, *, fill: Any = 0.0, interpolation: str = "nearest"
) -> jnp.ndarray:
    """Rotate each sample by its own angle ``~ U(degrees)`` (counter-clockwise).

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      degrees: ``d >= 0`` for ``(-d, d)``, or an ordered pair.
      fill: value for pixels from outside the image: scalar or one per channel.
      interpolation: ``'nearest'`` (default) or ``'bilinear'``.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.RandomRotation(degrees, fill=fill)``.

    Example:
      >>> key, images = jax.random.key(0), jnp.ones((2, 8, 8, 3))
      >>> random_rotation(key, images, 15.0).shape
      (2, 8, 8, 3)
    """
    images = as_arrays(images)
    fn = "random_rotation"
    degrees = _sampling.symmetric_range("degrees", degrees, fn=fn)
    _check_warp_args(images, interpolation, fill, fn)
    return _random_affine(key, images, degrees, None, None, None, fill, interpolation=interpolation)


def _shear_ranges(shear: Any, fn: str) -> tuple | None:
    """torchvision's shear argument: number, ``(lo, hi)`` for x, or 4 values (x and y)."""
    if shear is None:
        return None
    if _sampling.is_scalar(shear):
        return _sampling.symmetric_range("shear", shear, fn=fn), (0.0, 0.0)
    shear = tuple(shear)
    if len(shear) == 2:
        return check_pair("shear", shear, fn=fn), (0.0, 0.0)
    if len(shear) == 4:
        return check_pair("shear", shear[:2], fn=fn), check_pair("shear", shear[2:], fn=fn)
    raise ValueError(f"{fn}: shear must be a number, 2 or 4 values, got shear={shear!r}")


def random_affine(
    key: Any,
    images: Any,
    degrees: Any,
    *,
    translate: Any = None,
    scale: Any = None,
    shear: Any = None,
    fill: Any = 0.0,
    interpolation: str = "nearest",
) -> jnp.ndarray:
    """Apply :func:`affine` with parameters drawn per sample (torchvision's ranges).

    ``angle ~ U(degrees)``; ``tx = round(U(-a W, a W))``, ``ty = round(U(-b H, b H))``
    for ``translate = (a, b)``; ``scale ~ U(scale)``; ``shear_x ~ U(shear[:2])`` and,
    with four values, ``shear_y ~ U(shear[2:])``. ``None`` leaves that part out.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      degrees: ``d >= 0`` for ``(-d, d)``, or an ordered pair.
      translate: ``(a, b)``, fractions of the width and height in ``[0, 1]``.
      scale: ordered ``(lo, hi)``, positive.
      shear: ``s >= 0`` for ``(-s, s)``, an ordered pair, or four values.
      fill: value for pixels from outside the image: scalar or one per channel.
      interpolation: ``'nearest'`` (default) or ``'bilinear'``.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.RandomAffine`` (angles counter-clockwise here,
    see :func:`affine`; the angle range is symmetric by default, so the distribution is
    the same).

    Example:
      >>> key, images = jax.random.key(0), jnp.ones((2, 8, 8, 3))
      >>> random_affine(key, images, 10.0, translate=(0.1, 0.1), scale=(0.9, 1.1)).shape
      (2, 8, 8, 3)
    """
    images = as_arrays(images)
    fn = "random_affine"
    degrees = _sampling.symmetric_range("degrees", degrees, fn=fn)
    if translate is not None:
        translate = check_pair("translate", translate, ordered=False, fn=fn)
        _sampling.check_range_within("translate", translate, 0.0, 1.0, fn=fn)
    if scale is not None:
        scale = check_pair("scale", scale, fn=fn)
        check_positive("scale[0]", scale[0], fn=fn)
    shears = _shear_ranges(shear, fn)
    _check_warp_args(images, interpolation, fill, fn)
    return _random_affine(
        key, images, degrees, translate, scale, shears, fill, interpolation=interpolation
    )


@_image.float_kernel(static=("interpolation",), image_arg=1)
def _random_affine(
    key: Any,
    x: jnp.ndarray,
    degrees: tuple,
    translate: tuple | None,
    scale: tuple | None,
    shears: tuple | None,
    fill: Any,
    *,
    interpolation: str,
) -> jnp.ndarray:
    """Draw ``angle, tx, ty, scale, shear_x, shear_y`` per sample (None: left out)."""
    H, W = x.shape[-3], x.shape[-2]
    fill = jnp.asarray(fill, x.dtype)

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        shift = (0.0, 0.0)
        if translate is not None:
            dx, dy = translate[0] * W, translate[1] * H
            shift = (
                jnp.round(_sampling.uniform(u[1], (-dx, dx))),
                jnp.round(_sampling.uniform(u[2], (-dy, dy))),
            )
        zoom = 1.0 if scale is None else _sampling.uniform(u[3], scale)
        skew = (0.0, 0.0)
        if shears is not None:
            skew = (_sampling.uniform(u[4], shears[0]), _sampling.uniform(u[5], shears[1]))
        matrix = _inverse_matrix(_sampling.uniform(u[0], degrees), shift, zoom, skew)
        return _warp(img, matrix, interpolation, fill)

    return _sampling.per_sample(one, key, x, 6)
