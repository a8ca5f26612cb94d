"""Non-affine warps (torchvision v2): perspective, random_perspective, elastic_transform.

Both read the input through :func:`._affine.sample_at` (``grid_sample`` with zeros
outside, then torchvision's fill rule), so they share the interpolation and fill
semantics of ``rotate``/``affine``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_choice, check_in_range, check_nonnegative, check_pair
from . import _image, _sampling
from ._affine import _unnormalize, sample_at
from ._blur import _blur
from ._geometry import INTERPOLATIONS


def _coefficients(startpoints: jnp.ndarray, endpoints: jnp.ndarray) -> jnp.ndarray:
    """The 8 coefficients of the map endpoints -> startpoints (PIL's convention).

    Solves ``x_s = (c0 x_e + c1 y_e + c2) / (c6 x_e + c7 y_e + 1)`` and the same for
    ``y_s`` with ``c3, c4, c5`` at the four point pairs (torchvision's
    ``_get_perspective_coeffs``).
    """
    rows = []
    for i in range(4):
        xe, ye = endpoints[i, 0], endpoints[i, 1]
        xs, ys = startpoints[i, 0], startpoints[i, 1]
        one, zero = jnp.ones_like(xe), jnp.zeros_like(xe)
        rows.append(jnp.stack([xe, ye, one, zero, zero, zero, -xs * xe, -xs * ye]))
        rows.append(jnp.stack([zero, zero, zero, xe, ye, one, -ys * xe, -ys * ye]))
    a = jnp.stack(rows)
    return jnp.linalg.solve(a, startpoints.reshape(8))


def _perspective_warp(
    x: jnp.ndarray, coeffs: jnp.ndarray, interpolation: str, fill: Any
) -> jnp.ndarray:
    """Output pixel ``(x, y)`` reads the input at the map of its centre ``(x + .5, y + .5)``
    minus one half pixel (``grid_sample``'s ``align_corners=False``), computed as
    torchvision's ``_perspective_grid``: normalised ``[x, y, 1] @ theta1^T / (W/2, H/2)``
    over ``[x, y, 1] @ theta2^T``, minus one, then grid_sample's unnormalisation (so that
    positions on or a rounding away from a half-pixel round as there)."""
    H, W = x.shape[-3:-1]
    dtype = x.dtype
    barrier = jax.lax.optimization_barrier
    c = coeffs.astype(jnp.float32).astype(dtype)  # torchvision's float32 coefficients
    X, Y = jnp.meshgrid(jnp.arange(W, dtype=dtype) + 0.5, jnp.arange(H, dtype=dtype) + 0.5)
    theta1 = jnp.stack([c[0:3], c[3:6]])
    # an opaque divisor: XLA turns a division by a constant into a multiplication by
    # its reciprocal, which rounds differently from torchvision's division
    theta1 = theta1 / barrier(jnp.asarray([[W / 2.0] * 3, [H / 2.0] * 3], dtype))
    den = X * c[6] + Y * c[7] + 1.0
    gx = (X * theta1[0, 0] + Y * theta1[0, 1] + theta1[0, 2]) / den - 1.0
    gy = (X * theta1[1, 0] + Y * theta1[1, 1] + theta1[1, 2]) / den - 1.0
    src_x, src_y = barrier((_unnormalize(barrier(gx), W), _unnormalize(barrier(gy), H)))
    return sample_at(x, src_x, src_y, interpolation, fill)


def _check_points(name: str, points: Any, fn: str) -> np.ndarray:
    arr = np.asarray(points, np.float64)
    if arr.shape != (4, 2):
        raise ValueError(
            f"{fn}: {name} must be four (x, y) corners [top-left, top-right, bottom-right, "
            f"bottom-left], got {name}={points!r}"
        )
    return arr


@_image.float_kernel(static=("interpolation",))
def _perspective(x: jnp.ndarray, coeffs: Any, fill: Any, *, interpolation: str) -> jnp.ndarray:
    fill = _image.expand_to(jnp.asarray(fill, x.dtype), x.ndim)
    return _perspective_warp(x, jnp.asarray(coeffs), interpolation, fill)


def perspective(
    images: Any,
    startpoints: Any,
    endpoints: Any,
    *,
    interpolation: str = "bilinear",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """Warp images so that the four ``startpoints`` land on the ``endpoints``.

    The output pixel at ``(x, y)`` reads the input at ``((c0 x + c1 y + c2) / d,
    (c3 x + c4 y + c5) / d)``, ``d = c6 x + c7 y + 1``, with the coefficients that map
    the endpoints onto the startpoints (solved in float64, used in float32, as
    torchvision), pixel centres at half-integers.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      startpoints, endpoints: four ``(x, y)`` corners each: top-left, top-right,
        bottom-right, bottom-left, in pixels.
      interpolation: ``'bilinear'`` (default) or ``'nearest'``.
      fill: value for pixels from outside the image: scalar or one per channel.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.functional.perspective``.

    Example:
      >>> corners = [[0, 0], [3, 0], [3, 3], [0, 3]]
      >>> x = jnp.arange(16.0).reshape(4, 4, 1)
      >>> bool(jnp.allclose(perspective(x, corners, corners), x))  # the identity
      True
    """
    images = as_arrays(images)
    fn = "perspective"
    start = _check_points("startpoints", startpoints, fn)
    end = _check_points("endpoints", endpoints, fn)
    check_choice("interpolation", interpolation, INTERPOLATIONS, fn=fn)
    _image.check(images, fn=fn)
    _image.check_value("fill", fill, np.shape(images), fn=fn)
    a = np.zeros((8, 8))
    for i, ((xe, ye), (xs, ys)) in enumerate(zip(end, start, strict=True)):
        a[2 * i] = [xe, ye, 1, 0, 0, 0, -xs * xe, -xs * ye]
        a[2 * i + 1] = [0, 0, 0, xe, ye, 1, -ys * xe, -ys * ye]
    coeffs = np.linalg.lstsq(a, start.reshape(8), rcond=None)[0].astype(np.float32)
    return _perspective(images, coeffs, fill, interpolation=interpolation)


@_image.float_kernel(image_arg=1, static=("interpolation",))
def _random_perspective(
    key: Any, x: jnp.ndarray, distortion: Any, p: Any, fill: Any, *, interpolation: str
) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    fill = _image.expand_to(jnp.asarray(fill, x.dtype), x.ndim - 1)
    bound_h = jnp.floor(distortion * (H // 2)).astype(jnp.int32) + 1
    bound_w = jnp.floor(distortion * (W // 2)).astype(jnp.int32) + 1
    start = jnp.asarray([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]], jnp.float32)

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        def w(i):  # a column within bw of the left edge
            return _sampling.randint(u[i], bound_w - 1)

        def h(i):  # a row within bh of the top edge
            return _sampling.randint(u[i], bound_h - 1)

        tl = jnp.stack([w(1), h(2)])
        tr = jnp.stack([W - bound_w + w(3), h(4)])
        br = jnp.stack([W - bound_w + w(5), H - bound_h + h(6)])
        bl = jnp.stack([w(7), H - bound_h + h(8)])
        end = jnp.stack([tl, tr, br, bl]).astype(jnp.float32)
        warped = _perspective_warp(img, _coefficients(start, end), interpolation, fill)
        return jnp.where(_sampling.bernoulli(u[0], p), warped, img)

    return _sampling.per_sample(one, key, x, 9)


def random_perspective(
    key: Any,
    images: Any,
    *,
    distortion_scale: Any = 0.5,
    p: Any = 0.5,
    interpolation: str = "bilinear",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """Apply a random perspective to each sample with probability ``p`` (its own draw).

    torchvision's draw: with ``bh = int(distortion_scale · (H // 2)) + 1`` and
    ``bw = int(distortion_scale · (W // 2)) + 1``, each corner of the image moves to a
    point drawn uniformly within ``bw x bh`` pixels of it, inwards; the image is then
    warped by :func:`perspective` from the corners to those points.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      distortion_scale: in ``[0, 1]``.
      p: probability in ``[0, 1]``.
      interpolation: ``'bilinear'`` (default) or ``'nearest'``.
      fill: value for pixels from outside the image.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.RandomPerspective(distortion_scale, p)`` (one
    draw per call there).

    Example:
      >>> out = random_perspective(jax.random.key(0), jnp.ones((2, 16, 16, 3)), p=1.0)
      >>> out.shape, bool(out.min() < 1.0)  # corners pulled in: fill appears
      ((2, 16, 16, 3), True)
    """
    images = as_arrays(images)
    fn = "random_perspective"
    distortion_scale = check_in_range("distortion_scale", distortion_scale, 0.0, 1.0, fn=fn)
    p = _sampling.check_p(p, fn=fn)
    check_choice("interpolation", interpolation, INTERPOLATIONS, fn=fn)
    _image.check(images, fn=fn)
    _image.check_value("fill", fill, np.shape(images)[-1:], fn=fn)
    out = _random_perspective(key, images, distortion_scale, p, fill, interpolation=interpolation)
    return _sampling.propagate_nan(p, out)


def _elastic_kernel_size(sigma: float) -> int:
    """torchvision's ``int(8 sigma + 1)``, made odd."""
    k = int(8 * sigma + 1)
    return k + 1 if k % 2 == 0 else k


@_image.float_kernel(image_arg=1, static=("interpolation", "sizes", "sigma"))
def _elastic(
    key: Any,
    x: jnp.ndarray,
    alpha: tuple,
    fill: Any,
    *,
    sigma: tuple,
    interpolation: str,
    sizes: tuple,
) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    batch = x.shape[:-3]
    fill = _image.expand_to(jnp.asarray(fill, x.dtype), x.ndim - len(batch))
    kx, ky = sizes
    noise = _sampling.batch_draw(jax.random.uniform, key, (*batch, 2, H, W, 1))
    noise = noise.astype(jnp.float32) * 2.0 - 1.0  # U(-1, 1), one field per axis and sample
    dx, dy = noise[..., 0, :, :, :], noise[..., 1, :, :, :]
    if sigma[0] > 0:
        dx = _blur(dx, kx, kx, sigma[0], sigma[1])
    if sigma[1] > 0:
        dy = _blur(dy, ky, ky, sigma[0], sigma[1])
    # torchvision scales both displacements by alpha / size, in grid units of [-1, 1]
    # (dx by alpha[0] / H, dy by alpha[1] / W), i.e. pixels: dx · W / 2, dy · H / 2
    dx = dx[..., 0] * (alpha[0] / H) * (W / 2.0)
    dy = dy[..., 0] * (alpha[1] / W) * (H / 2.0)
    cols = jnp.arange(W, dtype=jnp.float32)[None, :]
    rows = jnp.arange(H, dtype=jnp.float32)[:, None]

    def one(img, ddx, ddy):
        src_x = (cols + ddx).astype(x.dtype)
        src_y = (rows + ddy).astype(x.dtype)
        return sample_at(img, src_x, src_y, interpolation, fill)

    if not batch:
        return one(x, dx, dy)
    return jax.vmap(one)(x, dx, dy)


def elastic_transform(
    key: Any,
    images: Any,
    *,
    alpha: Any = 50.0,
    sigma: Any = 5.0,
    interpolation: str = "bilinear",
    fill: Any = 0.0,
) -> jnp.ndarray:
    """Displace every pixel of each sample by its own smooth random field.

    torchvision's draw: ``dx, dy ~ U(-1, 1)`` per pixel, each blurred by a Gaussian of
    size ``int(8 sigma + 1)`` (made odd) and ``(sigma_x, sigma_y)`` with reflect padding,
    then scaled by ``alpha[0] / H`` and ``alpha[1] / W`` in the ``[-1, 1]`` grid units of
    ``grid_sample`` (``dx · W / 2`` and ``dy · H / 2`` pixels). Output pixel ``(x, y)``
    reads the input at ``(x + dx, y + dy)``.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      alpha: magnitude, ``>= 0``, a number or ``(alpha_x, alpha_y)``.
      sigma: smoothness, ``>= 0``, a number or ``(sigma_x, sigma_y)`` (0: no blur).
      interpolation: ``'bilinear'`` (default) or ``'nearest'``.
      fill: value for pixels from outside the image.

    Returns:
      Array of the same shape and dtype.

    PyTorch: ``torchvision.transforms.v2.ElasticTransform(alpha, sigma)`` (one field per
    call there, one per sample here).

    Example:
      >>> x = jnp.ones((2, 16, 16, 1))
      >>> elastic_transform(jax.random.key(0), x, alpha=0.0).shape  # alpha 0: identity
      (2, 16, 16, 1)
    """
    images = as_arrays(images)
    fn = "elastic_transform"
    ax, ay = (
        (alpha, alpha)
        if _sampling.is_scalar(alpha)
        else check_pair("alpha", alpha, ordered=False, fn=fn)
    )
    sx, sy = (
        (sigma, sigma)
        if _sampling.is_scalar(sigma)
        else check_pair("sigma", sigma, ordered=False, fn=fn)
    )
    for name, v in (("alpha", ax), ("alpha", ay), ("sigma", sx), ("sigma", sy)):
        v = check_nonnegative(name, v, fn=fn)
    check_choice("interpolation", interpolation, INTERPOLATIONS, fn=fn)
    _image.check(images, fn=fn)
    _image.check_value("fill", fill, np.shape(images)[-1:], fn=fn)
    sizes = (_elastic_kernel_size(float(sx)), _elastic_kernel_size(float(sy)))
    return _elastic(
        key,
        images,
        (float(ax), float(ay)),
        fill,
        sigma=(float(sx), float(sy)),
        interpolation=interpolation,
        sizes=sizes,
    )
