"""Resizing with torchvision's antialias, padding, cropping and vertical flips (torchvision v2).

``resize`` builds, once per (input size, output size, mode) at trace time, the
interpolation matrix of each axis with PyTorch's rules (``interpolate(...,
align_corners=False)``, and its antialiased ``_upsample_*_aa`` kernels when
``antialias=True``) and applies them as two matrix products.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_arrays, check_choice, check_int, is_concrete
from . import _image, _sampling

RESIZE_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


# ------------------------------------------------------------------ resize


def _triangle(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a``."""
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((x - 5.0) * x + 8.0) * x * a - 4.0 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.cache
def resize_matrix(in_size: int, out_size: int, mode: str, antialias: bool) -> np.ndarray:
    """``[out_size, in_size]`` float32 weights of PyTorch's 1-D resampling.

    ``scale = in / out``. Antialiased bilinear/bicubic (``_upsample_*2d_aa``): output ``i``
    centred at ``c = scale (i + 0.5)`` averages inputs ``j`` in
    ``[int(c - s + 0.5), int(c + s + 0.5))`` (``s = support · max(scale, 1)``, support 1
    for bilinear and 2 for bicubic) with weights ``filter((j - c + 0.5) / max(scale, 1))``
    normalised to sum 1 (bicubic with ``a = -0.5``). Without antialias: bilinear reads
    ``max(scale (i + 0.5) - 0.5, 0)``; bicubic the four taps around ``scale (i + 0.5) -
    0.5`` (clamped to the image) with ``a = -0.75``; nearest ``floor(i · scale)``.
    """
    scale = in_size / out_size
    m = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    if mode == "nearest":
        src = np.minimum(np.floor(rows * np.float32(scale)).astype(np.int64), in_size - 1)
        m[rows, src] = 1.0
    elif antialias:
        support = (1.0 if mode == "bilinear" else 2.0) * max(scale, 1.0)
        inv = 1.0 / max(scale, 1.0)
        for i in rows:
            center = scale * (i + 0.5)
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), in_size)
            j = np.arange(lo, hi)
            d = (j - center + 0.5) * inv
            w = _triangle(d) if mode == "bilinear" else _cubic(d, -0.5)
            total = w.sum()
            m[i, lo:hi] = w / total if total != 0 else w
    elif mode == "bilinear":
        src = np.maximum(scale * (rows + 0.5) - 0.5, 0.0)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, in_size - 1)
        frac = src - i0
        np.add.at(m, (rows, i0), 1.0 - frac)
        np.add.at(m, (rows, i1), frac)
    else:  # bicubic
        src = scale * (rows + 0.5) - 0.5
        i0 = np.floor(src).astype(np.int64)
        t = src - i0
        for k, w in zip(
            range(-1, 3),
            (_cubic(t + 1, -0.75), _cubic(t, -0.75), _cubic(1 - t, -0.75), _cubic(2 - t, -0.75)),
            strict=True,
        ):
            np.add.at(m, (rows, np.clip(i0 + k, 0, in_size - 1)), w)
    return m.astype(np.float32)


def output_size(size: Any, H: int, W: int, *, fn: str) -> tuple[int, int]:
    """torchvision's rule: an int (or 1-sequence) matches the smaller edge, keeping the
    aspect ratio (``long = int(size · long / short)``); a pair is ``(h, w)``."""
    if isinstance(size, (int, np.integer)) or (isinstance(size, (tuple, list)) and len(size) == 1):
        s = int(size if isinstance(size, (int, np.integer)) else size[0])
        check_int("size", s, minimum=1, fn=fn)
        if W <= H:
            return int(s * H / W), s
        return s, int(s * W / H)
    return _image.parse_size("size", size, fn=fn)


@_image.float_kernel(static=("size", "interpolation", "antialias"))
def _resize(x: jnp.ndarray, *, size: tuple, interpolation: str, antialias: bool) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    aa = antialias and interpolation != "nearest"
    mh = jnp.asarray(resize_matrix(H, size[0], interpolation, aa), x.dtype)
    mw = jnp.asarray(resize_matrix(W, size[1], interpolation, aa), x.dtype)
    y = _resample_pass(mh, x, "oh,...hwc->...owc")
    return _resample_pass(mw, y, "pw,...owc->...opc")


def _resample_pass(m: jnp.ndarray, x: jnp.ndarray, spec: str) -> jnp.ndarray:
    """``einsum(spec, m, x)`` where each output sums only its support (non-zero weights),
    as PyTorch's kernels: a NaN or inf input reaches only the outputs that read it, not,
    through ``0 * nan``, every output of its row or column."""
    hp = jax.lax.Precision.HIGHEST

    def dense(v: jnp.ndarray) -> jnp.ndarray:
        return jnp.einsum(spec, m, v, precision=hp)

    def masked(v: jnp.ndarray) -> jnp.ndarray:
        y = dense(jnp.where(jnp.isfinite(v), v, 0.0))
        pos, neg = (m > 0).astype(v.dtype), (m < 0).astype(v.dtype)

        def hits(w: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
            return jnp.einsum(spec, w, mask.astype(v.dtype), precision=hp) > 0

        nan = hits(pos + neg, jnp.isnan(v))
        up = hits(pos, v == jnp.inf) | hits(neg, v == -jnp.inf)  # contributes +inf
        down = hits(pos, v == -jnp.inf) | hits(neg, v == jnp.inf)  # contributes -inf
        y = jnp.where(up, jnp.inf, jnp.where(down, -jnp.inf, y))
        return jnp.where(nan | (up & down), jnp.nan, y)

    y = dense(x)  # a non-finite input leaves a non-finite output (0 * inf = nan)
    return jax.lax.cond(jnp.all(jnp.isfinite(y)), lambda v: y, masked, x)


def resize(
    images: Any, size: Any, *, interpolation: str = "bilinear", antialias: bool = True
) -> jnp.ndarray:
    """Resize images to ``size`` with PyTorch's interpolation, antialiased by default.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``, float or uint8.
      size: ``(h, w)``, or an int matching the smaller edge (the larger one becomes
        ``int(size · long / short)``, torchvision's rule).
      interpolation: ``'bilinear'`` (default), ``'nearest'`` or ``'bicubic'``.
      antialias: low-pass filter when shrinking (bilinear and bicubic), as torchvision's
        default ``antialias=True``; ``False`` is plain ``interpolate``. Ignored for nearest.

    Returns:
      ``[..., h, w, C]`` in the input dtype (bicubic may overshoot ``[0, 1]`` on float
      images, as torchvision).

    PyTorch: ``torchvision.transforms.v2.functional.resize(..., antialias=True)``;
    ``jax.image.resize`` differs (its antialias uses a different support and no
    half-pixel clamping).

    Example:
      >>> x = jnp.arange(4.0).reshape(1, 4, 1)
      >>> resize(x, (1, 2))[..., 0]  # triangle of half-width 2, cut at the border
      Array([[0.71428573, 2.2857144 ]], dtype=float32)
      >>> resize(x, (1, 2), antialias=False)[..., 0]  # plain bilinear: two inputs each
      Array([[0.5, 2.5]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "resize"
    check_choice("interpolation", interpolation, RESIZE_INTERPOLATIONS, fn=fn)
    if not isinstance(antialias, bool):
        raise TypeError(f"{fn}: antialias must be a bool, got antialias={antialias!r}")
    _image.check(images, fn=fn)
    H, W = np.shape(images)[-3:-1]
    out = output_size(size, H, W, fn=fn)
    if H == 0 or W == 0:
        raise ValueError(f"{fn}: images must be non-empty, got images.shape={np.shape(images)}")
    return _resize(images, size=out, interpolation=interpolation, antialias=antialias)


# ------------------------------------------------------------------ flip, crop, pad


def vflip(images: Any) -> jnp.ndarray:
    """Mirror images top-bottom: ``out[..., i, j, :] = images[..., H - 1 - i, j, :]``.

    PyTorch: ``torchvision.transforms.v2.functional.vertical_flip``; ``dm_pix.flip_up_down``.

    Example:
      >>> vflip(jnp.arange(3.0).reshape(3, 1, 1))[:, 0, 0]
      Array([2., 1., 0.], dtype=float32)
    """
    images = as_arrays(images)
    _image.check(images, fn="vflip")
    return jnp.flip(jnp.asarray(images), axis=-3)


@jax.jit
def _random_vertical_flip(key: Any, images: Any, p: Any) -> jnp.ndarray:
    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        rows = jnp.arange(img.shape[-3])
        rows = jnp.where(_sampling.bernoulli(u[0], p), rows[::-1], rows)
        return jnp.take(img, rows, axis=-3, mode="clip")

    return _sampling.per_sample(one, key, jnp.asarray(images), 1)


def random_vertical_flip(key: Any, images: Any, *, p: Any = 0.5) -> jnp.ndarray:
    """Mirror each sample top-bottom with probability ``p`` (its own draw).

    PyTorch: ``torchvision.transforms.v2.RandomVerticalFlip(p)`` (one draw per call there).

    Example:
      >>> images = jnp.broadcast_to(jnp.arange(3.0).reshape(1, 3, 1, 1), (2, 3, 1, 1))
      >>> random_vertical_flip(jax.random.key(0), images, p=1.0)[:, :, 0, 0]
      Array([[2., 1., 0.],
             [2., 1., 0.]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "random_vertical_flip"
    p = _sampling.check_p(p, fn=fn)
    _image.check(images, fn=fn)
    return _sampling.propagate_nan(p, _random_vertical_flip(key, images, p))


def crop(images: Any, top: Any, left: Any, height: int, width: int) -> jnp.ndarray:
    """``images[..., top:top + height, left:left + width, :]``, zero outside the image.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      top, left: corner (ints, may be negative, may be traced).
      height, width: positive Python ints (the output size).

    Returns:
      ``[..., height, width, C]`` in the input dtype.

    PyTorch: ``torchvision.transforms.v2.functional.crop`` (which also zero-pads a box
    reaching outside the image).

    Example:
      >>> crop(jnp.arange(9.0).reshape(3, 3, 1), 1, 2, 2, 2)[..., 0]
      Array([[5., 0.],
             [8., 0.]], dtype=float32)
    """
    images = as_arrays(images)
    fn = "crop"
    check_int("height", height, minimum=1, fn=fn)
    check_int("width", width, minimum=1, fn=fn)
    for name, v in (("top", top), ("left", left)):
        if is_concrete(v) and not isinstance(v, jax.Array):
            check_int(name, v, fn=fn)
    _image.check(images, fn=fn)
    return _crop(images, top, left, size=(int(height), int(width)))


@functools.partial(jax.jit, static_argnames=("size",))
def _crop(x: jnp.ndarray, top: Any, left: Any, *, size: tuple) -> jnp.ndarray:
    H, W = x.shape[-3:-1]
    rows = top + jnp.arange(size[0])
    cols = left + jnp.arange(size[1])
    inside = ((rows >= 0) & (rows < H))[:, None, None] & ((cols >= 0) & (cols < W))[None, :, None]
    y = jnp.take(x, jnp.clip(rows, 0, H - 1), axis=-3, mode="clip")
    y = jnp.take(y, jnp.clip(cols, 0, W - 1), axis=-2, mode="clip")
    return jnp.where(_image.expand_to(inside, x.ndim), y, jnp.zeros((), x.dtype))


def parse_padding(padding: Any, *, fn: str) -> tuple[int, int, int, int]:
    """torchvision's padding: int, ``(left/right, top/bottom)`` or ``(left, top, right,
    bottom)`` -> ``(left, top, right, bottom)``, non-negative ints."""
    if isinstance(padding, (int, np.integer)):
        pads = (padding,) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) in (1, 2, 4):
        pads = tuple(padding)
        pads = pads * 4 if len(pads) == 1 else pads * 2 if len(pads) == 2 else pads
    else:
        raise ValueError(
            f"{fn}: padding must be an int, (lr, tb) or (left, top, right, bottom), "
            f"got padding={padding!r}"
        )
    for v in pads:
        check_int("padding", v, minimum=0, fn=fn)
    return tuple(int(v) for v in pads)  # type: ignore[return-value]


def _pad(x: jnp.ndarray, pads: tuple, fill: Any, mode: str) -> jnp.ndarray:
    left, top, right, bottom = pads
    widths = [(0, 0)] * (x.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
    if mode != "constant":
        return jnp.pad(x, widths, mode=mode)
    y = jnp.pad(x, widths)
    H, W = x.shape[-3:-1]
    rows = jnp.arange(H + top + bottom)
    cols = jnp.arange(W + left + right)
    inside = ((rows >= top) & (rows < top + H))[:, None, None] & (
        (cols >= left) & (cols < left + W)
    )[None, :, None]
    return jnp.where(_image.expand_to(inside, x.ndim), y, _image.expand_to(fill, x.ndim))


def _check_pad_args(images: Any, pads: tuple, fill: Any, mode: str, fn: str) -> None:
    check_choice("padding_mode", mode, PADDING_MODES, fn=fn)
    _image.check(images, fn=fn)
    _image.check_value("fill", fill, np.shape(images), fn=fn)
    H, W = np.shape(images)[-3:-1]
    if mode == "reflect" and (max(pads[1], pads[3]) >= H or max(pads[0], pads[2]) >= W):
        raise ValueError(
            f"{fn}: reflect padding must be smaller than the image side, got padding={pads} "
            f"for images of {H}x{W}"
        )
    if mode in ("edge", "reflect", "symmetric") and (H == 0 or W == 0):
        raise ValueError(f"{fn}: padding_mode={mode!r} needs a non-empty image")


@_image.float_kernel(static=("pads", "mode"))
def _pad_kernel(x: jnp.ndarray, fill: Any, *, pads: tuple, mode: str) -> jnp.ndarray:
    return _pad(x, pads, jnp.asarray(fill, x.dtype), mode)


def pad(
    images: Any, padding: Any, *, fill: Any = 0.0, padding_mode: str = "constant"
) -> jnp.ndarray:
    """Pad the borders of images.

    Args:
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      padding: int (all sides), ``(left/right, top/bottom)`` or ``(left, top, right,
        bottom)``, non-negative.
      fill: value of constant padding: a scalar or one per channel (``[0, 1]`` scale).
      padding_mode: ``'constant'``, ``'edge'`` (repeat the last pixel), ``'reflect'``
        (mirror without repeating the edge; padding must be smaller than the side) or
        ``'symmetric'`` (mirror repeating the edge).

    Returns:
      ``[..., H + top + bottom, W + left + right, C]`` in the input dtype.

    PyTorch: ``torchvision.transforms.v2.functional.pad``.

    Example:
      >>> pad(jnp.array([[[1.0], [2.0], [3.0]]]), (2, 0), padding_mode="reflect")[0, :, 0]
      Array([3., 2., 1., 2., 3., 2., 1.], dtype=float32)
    """
    images = as_arrays(images)
    fn = "pad"
    pads = parse_padding(padding, fn=fn)
    _check_pad_args(images, pads, fill, padding_mode, fn)
    return _pad_kernel(images, fill, pads=pads, mode=padding_mode)


def random_crop(
    key: Any,
    images: Any,
    size: Any,
    *,
    padding: Any = None,
    pad_if_needed: bool = False,
    fill: Any = 0.0,
    padding_mode: str = "constant",
) -> jnp.ndarray:
    """Crop a ``size`` box at a random position of each sample (its own draw).

    torchvision's order: pad by ``padding`` first; with ``pad_if_needed`` pad each side
    that is still smaller than the crop by the missing amount on both ends; then draw
    ``top ~ U{0..H' - h}`` and ``left ~ U{0..W' - w}`` per sample.

    Args:
      key: a ``jax.random`` key.
      images: ``[N, H, W, C]`` or ``[H, W, C]``.
      size: int or ``(h, w)``.
      padding, fill, padding_mode: as :func:`pad` (``padding=None``: none).
      pad_if_needed: pad an image smaller than ``size`` instead of raising.

    Returns:
      ``[..., h, w, C]`` in the input dtype.

    PyTorch: ``torchvision.transforms.v2.RandomCrop(size, padding, pad_if_needed, fill,
    padding_mode)`` (one position per call there, one per sample here).

    Example:
      >>> random_crop(jax.random.key(0), jnp.ones((4, 32, 32, 3)), 28, padding=4).shape
      (4, 28, 28, 3)
    """
    images = as_arrays(images)
    fn = "random_crop"
    h, w = _image.parse_size("size", size, fn=fn)
    pads = (0, 0, 0, 0) if padding is None else parse_padding(padding, fn=fn)
    _check_pad_args(images, pads, fill, padding_mode, fn)
    H, W = np.shape(images)[-3:-1]
    left, top, right, bottom = pads
    if pad_if_needed:
        if W + left + right < w:
            diff = w - (W + left + right)
            left, right = left + diff, right + diff
        if H + top + bottom < h:
            diff = h - (H + top + bottom)
            top, bottom = top + diff, bottom + diff
    if H + top + bottom < h or W + left + right < w:
        raise ValueError(
            f"{fn}: size={size!r} is larger than the (padded) images "
            f"{H + top + bottom}x{W + left + right}; pass pad_if_needed=True"
        )
    return _random_crop(
        key, images, fill, pads=(left, top, right, bottom), size=(h, w), mode=padding_mode
    )


@_image.float_kernel(image_arg=1, static=("pads", "size", "mode"))
def _random_crop(
    key: Any, x: jnp.ndarray, fill: Any, *, pads: tuple, size: tuple, mode: str
) -> jnp.ndarray:
    x = _pad(x, pads, jnp.asarray(fill, x.dtype), mode) if any(pads) else x
    H, W = x.shape[-3:-1]

    def one(u: jnp.ndarray, img: jnp.ndarray) -> jnp.ndarray:
        top = _sampling.randint(u[0], H - size[0])
        left = _sampling.randint(u[1], W - size[1])
        return jax.lax.dynamic_slice(img, (top, left, 0), (size[0], size[1], img.shape[-1]))

    return _sampling.per_sample(one, key, x, 2)
