"""Adaptive average and max pooling to a fixed output size, with hand-derived backwards.

Output cell ``i`` of an axis of size ``n`` pooled to ``m`` reads the window
``[floor(i n / m), ceil((i + 1) n / m))`` (PyTorch's rule; windows overlap when ``m``
does not divide ``n``). Average pooling is separable and linear: ``y = A_h x A_w^T``
with the row-normalised window matrices ``A``, so its JVP is the same product and its
backward ``dx = A_h^T g A_w``. Max pooling routes each output to the arg-max of its
window (the first maximum in row-major order, as PyTorch).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_static
from ._linear_rules import linear_op
from ._utils import check_input, register_grad

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "adaptive_windows",
]


def adaptive_windows(n: int, m: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` of the ``m`` windows over an axis of size ``n`` (PyTorch's rule)."""
    return [((i * n) // m, -((-(i + 1) * n) // m)) for i in range(m)]


def _sizes(fn: str, x: Any, output_size: Any) -> tuple[int, int]:
    check_input("x", x, 4, fn=fn, what="[N, H, W, C]")
    check_static("output_size", output_size, fn=fn)
    pair = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(pair) != 2:
        raise ValueError(
            f"{fn}: output_size must be an int or a pair, got output_size={output_size!r}"
        )
    out = tuple(n if o is None else o for o, n in zip(pair, x.shape[1:3], strict=True))
    for o in out:
        if isinstance(o, bool) or not isinstance(o, (int, np.integer)) or o < 1:
            raise ValueError(
                f"{fn}: output_size must hold positive ints (or None), got "
                f"output_size={output_size!r}"
            )
    return int(out[0]), int(out[1])


def _avg_matrix(n: int, m: int, dtype: Any) -> Any:
    a = np.zeros((m, n))
    for i, (s, e) in enumerate(adaptive_windows(n, m)):
        a[i, s:e] = 1.0 / (e - s)
    return jnp.asarray(a, dtype)


def _avg_along(x: Any, axis: int, m: int) -> Any:
    """Window means along ``axis``: sums of the window's own entries over their length,
    so a NaN or inf reaches only the windows that hold it (a dense product with the
    averaging matrix spread ``0 * nan`` everywhere)."""
    idx, lengths = _window_index(x.shape[axis], m)
    shape = [1] * x.ndim
    shape[axis] = m
    terms = []
    for k in range(idx.shape[1]):
        term = jnp.take(x, jnp.asarray(idx[:, k]), axis=axis)
        inside = k < lengths
        if not inside.all():  # short windows repeat their last index: leave it out
            term = jnp.where(jnp.asarray(inside).reshape(shape), term, jnp.zeros((), x.dtype))
        terms.append(term)
    return sum(terms[1:], terms[0]) / jnp.asarray(lengths, x.dtype).reshape(shape)


def _avg_plain(x: Any, out: tuple[int, int]) -> Any:
    return _avg_along(_avg_along(x, 1, out[0]), 2, out[1])


_adaptive_avg = linear_op(_avg_plain)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Any:
    """Average over adaptive windows of ``[N, H, W, C]`` images to ``output_size``.

    .. math:: y_{n,i,j,c} = \\frac{1}{|R_i||S_j|} \\sum_{h \\in R_i, w \\in S_j} x_{n,h,w,c},
              \\quad R_i = [\\lfloor iH/H_o \\rfloor, \\lceil (i+1)H/H_o \\rceil)

    Args:
      x: ``[N, H, W, C]``.
      output_size: int or ``(H_o, W_o)`` (``None`` keeps that axis).

    Returns ``[N, H_o, W_o, C]``. Linear, so the JVP is the op itself (``jax.custom_jvp``)
    and the backward spreads ``g / |window|`` over each window
    (:func:`adaptive_avg_pool2d_backward`). PyTorch: ``torch.nn.functional.adaptive_avg_pool2d``.

    Example:
      >>> y = adaptive_avg_pool2d(jnp.arange(5.0).reshape(1, 1, 5, 1), (1, 3))
      >>> y[0, 0, :, 0]
      Array([0.5, 2. , 3.5], dtype=float32)
    """
    x = as_arrays(x)
    return _adaptive_avg(x, _sizes("adaptive_avg_pool2d", x, output_size))


def adaptive_avg_pool2d_backward(x: Any, g: Any, output_size: Any) -> Any:
    """Vjp of :func:`adaptive_avg_pool2d`: ``dx = A_h^T g A_w`` (each window gets
    ``g / |window|``, summed where windows overlap)."""
    oh, ow = _sizes("adaptive_avg_pool2d", x, output_size)
    ah = _avg_matrix(x.shape[1], oh, x.dtype)
    aw = _avg_matrix(x.shape[2], ow, x.dtype)
    d = jnp.einsum("ih,nijc->nhjc", ah, g.astype(x.dtype))
    return jnp.einsum("jw,nhjc->nhwc", aw, d)


def _window_index(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``[m, kmax]`` indices of each window (short windows repeat their last index) and
    the window lengths."""
    wins = adaptive_windows(n, m)
    k = max(e - s for s, e in wins)
    idx = np.array([[min(s + t, e - 1) for t in range(k)] for s, e in wins])
    return idx, np.array([e - s for s, e in wins])


def _argmax_flat(x: Any, out: tuple[int, int]) -> Any:
    """Flat index ``h * W + w`` of each window's first maximum: ``[N, H_o, W_o, C]``."""
    ih, _ = _window_index(x.shape[1], out[0])
    iw, _ = _window_index(x.shape[2], out[1])
    win = x[:, ih][:, :, :, iw]  # (N, Ho, kh, Wo, kw, C)
    n, oh, kh, ow, kw, c = win.shape
    win = jnp.transpose(win, (0, 1, 3, 2, 4, 5)).reshape(n, oh, ow, kh * kw, c)
    a = jnp.argmax(win, axis=3)  # first maximum, row-major (NaN counts as the maximum)
    rows = jnp.asarray(ih)[jnp.arange(oh)[None, :, None, None], a // kw]
    cols = jnp.asarray(iw)[jnp.arange(ow)[None, None, :, None], a % kw]
    return rows * x.shape[2] + cols


def _gather(x: Any, idx: Any) -> Any:
    n, h, w, c = x.shape
    flat = jnp.take_along_axis(x.reshape(n, h * w, c), idx.reshape(n, -1, c), axis=1)
    return flat.reshape(idx.shape)


@jax.custom_jvp
def _max_pool(x: Any, idx: Any) -> Any:
    return _gather(x, idx)


@_max_pool.defjvp
def _max_pool_jvp(primals, tangents):
    x, idx = primals
    return _gather(x, idx), _gather(tangents[0], idx)


def adaptive_max_pool2d(x: Any, output_size: Any) -> Any:
    """Maximum over adaptive windows of ``[N, H, W, C]`` images to ``output_size``.

    .. math:: y_{n,i,j,c} = \\max_{h \\in R_i, w \\in S_j} x_{n,h,w,c}

    with PyTorch's windows ``R_i = [floor(i H / H_o), ceil((i + 1) H / H_o))``.

    Args:
      x: ``[N, H, W, C]``.
      output_size: int or ``(H_o, W_o)`` (``None`` keeps that axis).

    Returns ``[N, H_o, W_o, C]``. The JVP gathers the tangent at each window's arg-max
    (the first maximum in row-major order; NaN propagates); the backward scatters ``g``
    there (:func:`adaptive_max_pool2d_backward`). PyTorch:
    ``torch.nn.functional.adaptive_max_pool2d`` (``return_indices=False``).

    Example:
      >>> y = adaptive_max_pool2d(jnp.arange(5.0).reshape(1, 1, 5, 1), (1, 3))
      >>> y[0, 0, :, 0]
      Array([1., 3., 4.], dtype=float32)
    """
    x = as_arrays(x)
    out = _sizes("adaptive_max_pool2d", x, output_size)
    idx = jax.lax.stop_gradient(_argmax_flat(x, out))
    return _max_pool(x, idx)


def adaptive_max_pool2d_backward(x: Any, g: Any, output_size: Any) -> Any:
    """Vjp of :func:`adaptive_max_pool2d`: ``dx[arg-max of window (i, j)] += g[i, j]``."""
    out = _sizes("adaptive_max_pool2d", x, output_size)
    idx = _argmax_flat(x, out)
    n, h, w, c = x.shape
    dx = jnp.zeros((n, h * w, c), x.dtype)
    nn_ = jnp.arange(n)[:, None, None]
    cc = jnp.arange(c)[None, None, :]
    dx = dx.at[nn_, idx.reshape(n, -1, c), cc].add(g.astype(x.dtype).reshape(n, -1, c))
    return dx.reshape(x.shape)


def _examples():
    rng = np.random.default_rng(60)
    return [(rng.permutation(2 * 7 * 5 * 2).reshape(2, 7, 5, 2) / 10.0 - 3,)]  # no ties


for _out in (3, (2, 4), (7, 1)):
    register_grad(
        f"adaptive_avg_pool2d(output_size={_out!r})",
        forward=lambda x, o=_out: _avg_plain(x, _sizes("", x, o)),
        backward=lambda x, g, o=_out: adaptive_avg_pool2d_backward(x, g, o),
        examples=_examples,
        public=lambda x, o=_out: adaptive_avg_pool2d(x, o),
    )
    register_grad(
        f"adaptive_max_pool2d(output_size={_out!r})",
        forward=lambda x, o=_out: _gather(x, _argmax_flat(x, _sizes("", x, o))),
        backward=lambda x, g, o=_out: adaptive_max_pool2d_backward(x, g, o),
        examples=_examples,
        public=lambda x, o=_out: adaptive_max_pool2d(x, o),
    )
