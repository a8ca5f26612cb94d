"""Resizing ``[N, H, W, C]`` images by interpolation (PyTorch's coordinate rules).

Every mode is separable and linear in the image: ``y = A_h x A_w^T`` with one
interpolation matrix per axis, built at trace time from the sizes. So the JVP is the
same product of the tangent (a ``jax.custom_jvp``) and the backward is
``dx = A_h^T g A_w`` (:func:`interpolate_backward`).

Source coordinate of output index ``i`` (PyTorch's ``area_pixel_compute_source_index``),
with ``scale = 1 / scale_factor`` when a scale factor is given, else ``in / out``:

* ``align_corners=True``: ``src = i (in - 1) / (out - 1)`` (0 when ``out == 1``);
* otherwise: ``src = (i + 0.5) scale - 0.5``, clamped at 0 for bilinear (not bicubic);
* ``'nearest'``: ``src = min(floor(i scale), in - 1)``.

Two shortcuts of PyTorch's kernels come first (they matter only with a ``scale_factor``
whose output size is ``in`` or ``2 in``, e.g. ``1.2`` on a size-2 axis): ``'nearest'`` and
``'bilinear'`` copy an axis whose size does not change, and ``'nearest'`` reads
``src = i // 2`` when the size doubles.

Bilinear mixes ``floor(src)`` and the next index (clamped) with weights ``1 - t, t``;
bicubic mixes four neighbours (clamped to the border) with Keys' cubic convolution
weights at ``A = -0.75``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_choice, check_static
from ._linear_rules import linear_op
from ._utils import check_input, register_grad

__all__ = ["interpolate", "interpolate_backward", "interpolation_matrix", "interpolation_taps"]

_MODES = ("nearest", "bilinear", "bicubic")
_A = -0.75  # PyTorch's bicubic coefficient


def _cubic_weights(t: float) -> list[float]:
    def near(x):  # |x| <= 1
        return ((_A + 2) * x - (_A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def interpolation_taps(
    n_in: int, n_out: int, mode: str, align_corners: bool, scale_factor: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Input indices ``[n_out, K]`` and weights ``[n_out, K]`` of one axis (``K`` is 1 for
    ``'nearest'``, 2 for ``'bilinear'``, 4 for ``'bicubic'``): ``y[i] = sum_k w[i, k]
    x[idx[i, k]]``, the taps PyTorch's kernels read (clamped at the borders).

    As PyTorch's kernels, ``'nearest'`` and ``'bilinear'`` copy an axis whose size does
    not change (``n_out == n_in``) whatever the scale factor, and ``'nearest'`` maps
    output ``i`` to ``i // 2`` when ``n_out == 2 n_in``; ``'bicubic'`` always follows the
    coordinate mapping.
    """
    out = np.arange(n_out)
    if mode != "bicubic" and n_out == n_in:
        return out[:, None], np.ones((n_out, 1))
    if mode == "nearest" and n_out == 2 * n_in:
        return (out // 2)[:, None], np.ones((n_out, 1))
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    taps = {"nearest": 1, "bilinear": 2, "bicubic": 4}[mode]
    idx = np.zeros((n_out, taps), np.int64)
    w = np.zeros((n_out, taps))
    for i in range(n_out):
        if mode == "nearest":
            idx[i, 0], w[i, 0] = min(int(math.floor(i * scale)), n_in - 1), 1.0
            continue
        src = i * scale if align_corners else (i + 0.5) * scale - 0.5
        if mode == "bilinear":
            src = max(src, 0.0)
            i0 = min(int(math.floor(src)), n_in - 1)
            t = src - i0
            idx[i] = i0, min(i0 + 1, n_in - 1)
            w[i] = 1.0 - t, t
        else:
            i0 = int(math.floor(src))
            idx[i] = [min(max(i0 - 1 + k, 0), n_in - 1) for k in range(4)]
            w[i] = _cubic_weights(src - i0)
    return idx, w


def interpolation_matrix(
    n_in: int, n_out: int, mode: str, align_corners: bool, scale_factor: float | None
) -> np.ndarray:
    """``[n_out, n_in]`` float64 matrix ``A`` of one axis: ``y = A x`` (the taps of
    :func:`interpolation_taps` summed)."""
    idx, w = interpolation_taps(n_in, n_out, mode, align_corners, scale_factor)
    a = np.zeros((n_out, n_in))
    np.add.at(a, (np.repeat(np.arange(n_out), idx.shape[1]), idx.ravel()), w.ravel())
    return a


def _resolve(x, size, scale_factor, mode, align_corners):
    """``(out_hw, scales, align)`` after checking every argument."""
    fn = "interpolate"
    check_input("x", x, 4, fn=fn, what="[N, H, W, C]")
    check_choice("mode", mode, _MODES, fn=fn)
    if mode == "nearest" and align_corners is not None:
        raise ValueError(
            f"interpolate: align_corners only applies to 'bilinear' and 'bicubic', got "
            f"align_corners={align_corners!r} with mode='nearest'"
        )
    if align_corners is not None:
        check_choice("align_corners", align_corners, (True, False, None), fn=fn)
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"interpolate: give exactly one of size and scale_factor, got size={size!r}, "
            f"scale_factor={scale_factor!r}"
        )
    check_static("size", size, fn="interpolate")
    check_static("scale_factor", scale_factor, fn="interpolate")
    if size is not None:
        out = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        if len(out) != 2 or any(
            isinstance(o, bool) or not isinstance(o, (int, np.integer)) or o < 1 for o in out
        ):
            raise ValueError(
                f"interpolate: size must be a positive int or a pair of them, got size={size!r}"
            )
        scales: tuple = (None, None)
    else:
        sf = (
            tuple(scale_factor)
            if isinstance(scale_factor, (tuple, list))
            else (scale_factor, scale_factor)
        )
        if len(sf) != 2 or any(
            isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0 for s in sf
        ):
            raise ValueError(
                f"interpolate: scale_factor must be a positive number or a pair of them, got "
                f"scale_factor={scale_factor!r}"
            )
        scales = tuple(float(s) for s in sf)
        out = tuple(int(math.floor(n * s)) for n, s in zip(x.shape[1:3], scales, strict=True))
        if min(out) < 1:
            raise ValueError(
                f"interpolate: scale_factor={scale_factor!r} gives an empty output for "
                f"x.shape={tuple(x.shape)}"
            )
    return (int(out[0]), int(out[1])), scales, bool(align_corners)


def _matrices(shape, out, scales, mode, align, dtype):
    return tuple(
        jnp.asarray(interpolation_matrix(n, o, mode, align, s), dtype)
        for n, o, s in zip(shape[1:3], out, scales, strict=True)
    )


_HIGHEST = jax.lax.Precision.HIGHEST  # as jax.image.resize: exact float32 products on TPU/GPU


def _along(x, axis, idx, w):
    """``sum_k w[:, k] x[idx[:, k]]`` along ``axis``: only the taps, so a NaN or inf
    pixel reaches only the outputs that read it (a dense product would spread it)."""
    shape = [1] * x.ndim
    shape[axis] = idx.shape[0]
    terms = []
    for k in range(idx.shape[1]):
        term = jnp.take(x, jnp.asarray(idx[:, k]), axis=axis)
        if not np.all(w[:, k] == 1.0):
            term = term * jnp.asarray(w[:, k], x.dtype).reshape(shape)
        terms.append(term)
    return sum(terms[1:], terms[0])


def _plain(x, out, scales, mode, align):
    for axis, n_out, sf in zip((1, 2), out, scales, strict=True):
        x = _along(x, axis, *interpolation_taps(x.shape[axis], n_out, mode, align, sf))
    return x


_interpolate = linear_op(_plain)


def interpolate(
    x: Any,
    size: Any = None,
    *,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Any:
    """Resize ``[N, H, W, C]`` images by nearest, bilinear or bicubic interpolation.

    .. math:: y_{n,:,:,c} = A_h\\, x_{n,:,:,c}\\, A_w^T

    with the per-axis interpolation matrices of PyTorch's coordinate mapping (see the
    module docstring and :func:`interpolation_matrix`).

    Args:
      x: ``[N, H, W, C]``.
      size: output ``(H_o, W_o)`` or an int for both; or
      scale_factor: a number or pair; the output size is ``floor(in * scale)`` and the
        factor itself (not ``out / in``) is used in the coordinate mapping, as PyTorch
        with ``recompute_scale_factor=None`` (an axis whose size does not change is
        copied in ``'nearest'``/``'bilinear'``, as PyTorch).
      mode: ``'nearest'`` (PyTorch's legacy nearest: ``floor(i * scale)``),
        ``'bilinear'`` or ``'bicubic'`` (``A = -0.75``, borders clamped; values may
        overshoot the input range).
      align_corners: ``True`` maps the corner pixels' centres onto each other;
        ``None``/``False`` uses half-pixel centres. Not allowed with ``'nearest'``.

    Returns ``[N, H_o, W_o, C]`` in ``x``'s dtype. Linear: JVP the op itself, backward
    :func:`interpolate_backward`. PyTorch: ``torch.nn.functional.interpolate``
    (``antialias=False``); ``jax.image.resize(..., 'linear', antialias=False)`` equals
    ``'bilinear'`` with ``align_corners=False`` when upsampling.

    Example:
      >>> x = jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1)
      >>> interpolate(x, (1, 4), mode="bilinear")[0, 0, :, 0]
      Array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
    """
    x = as_arrays(x)
    out, scales, align = _resolve(x, size, scale_factor, mode, align_corners)
    return _interpolate(x, out, scales, mode, align)


def interpolate_backward(
    x: Any,
    g: Any,
    size: Any = None,
    *,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Any:
    """Vjp of :func:`interpolate`: ``dx = A_h^T g A_w`` (each output's gradient goes back
    to the input pixels it mixed, with the same weights)."""
    out, scales, align = _resolve(x, size, scale_factor, mode, align_corners)
    ah, aw = _matrices(x.shape, out, scales, mode, align, x.dtype)
    return jnp.einsum("nijc,ih,jw->nhwc", g.astype(x.dtype), ah, aw, precision=_HIGHEST)


def _examples():
    rng = np.random.default_rng(70)
    return [(rng.standard_normal((2, 5, 4, 2)),)]


def _formula(x: Any, kw: dict) -> Any:
    """The plain product ``A_h x A_w^T`` (autodiff reference of the registry)."""
    mode = kw["mode"]
    out, scales, align = _resolve(
        x, kw.get("size"), kw.get("scale_factor"), mode, kw.get("align_corners")
    )
    return _plain(x, out, scales, mode, align)


for _kw in (
    {"size": (7, 3), "mode": "nearest"},
    {"scale_factor": 2.0, "mode": "bilinear"},
    {"size": (3, 6), "mode": "bilinear", "align_corners": True},
    {"scale_factor": (1.5, 0.75), "mode": "bicubic"},
):
    _opts = ", ".join(f"{k}={v!r}" for k, v in _kw.items())
    register_grad(
        f"interpolate({_opts})",
        forward=lambda x, kw=_kw: _formula(x, kw),
        backward=lambda x, g, kw=_kw: interpolate_backward(x, g, **kw),
        examples=_examples,
        public=lambda x, kw=_kw: interpolate(x, **kw),
    )
