"""Max and average pooling on channels-last images, and their backward passes.

Both are ``jax.custom_jvp`` functions with tangent rules linear in the tangent: max
pooling routes each window's tangent from its first arg-max (``dy = dx[argmax]``),
average pooling averages the tangent (``dy = avg_pool(dx)``). Reverse mode transposes
them into the scatters that :func:`max_pool2d_backward` and
:func:`avg_pool2d_backward` write out.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_choice
from ._conv import conv_padding
from ._utils import as_pair, check_input, is_zero, register_grad, to_rank

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"]


def _geometry(fn: str, x: Any, kernel_size: Any, stride: Any, padding: Any):
    """``(kernel, stride, pads, out_hw)``; PyTorch's rule ``padding <= kernel // 2``."""
    check_input("x", x, 4, fn=fn, what="[N, H, W, C]")
    k = as_pair("kernel_size", kernel_size, fn=fn)
    s = k if stride is None else as_pair("stride", stride, fn=fn)
    p = as_pair("padding", padding, fn=fn, minimum=0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"{fn}: padding must be at most half the kernel size, got padding={p} "
            f"with kernel_size={k}"
        )
    pads = conv_padding(p, x.shape[1:3], k, s, (1, 1), fn=fn)
    out = tuple(
        (n + lo + hi - kk) // ss + 1
        for n, (lo, hi), kk, ss in zip(x.shape[1:3], pads, k, s, strict=True)
    )
    return k, s, pads, out


def _window_args(k, s, pads):
    return (1, *k, 1), (1, *s, 1), ((0, 0), *pads, (0, 0))


def _windows(xp: Any, k, s, out) -> list[Any]:
    """One strided view ``[N, Ho, Wo, C]`` per kernel offset ``(a, b)``, row-major."""
    return [
        jax.lax.slice(
            xp,
            (0, a, b, 0),
            (xp.shape[0], a + s[0] * (out[0] - 1) + 1, b + s[1] * (out[1] - 1) + 1, xp.shape[3]),
            (1, *s, 1),
        )
        for a in range(k[0])
        for b in range(k[1])
    ]


def _scatter_windows(parts: list[Any], x_shape, k, s, pads, out) -> Any:
    """Adjoint of :func:`_windows` cropped to ``x_shape``: each offset's ``[N, Ho, Wo, C]``
    contribution is placed at ``(a + i s, b + j s)`` (interior padding), then summed."""
    ph = x_shape[1] + sum(pads[0])
    pw = x_shape[2] + sum(pads[1])
    total: Any = 0
    for t, part in enumerate(parts):
        a, b = divmod(t, k[1])
        hi_h = ph - a - (s[0] * (out[0] - 1) + 1)
        hi_w = pw - b - (s[1] * (out[1] - 1) + 1)
        total = total + jax.lax.pad(
            part,
            jnp.zeros((), part.dtype),
            ((0, 0, 0), (a, hi_h, s[0] - 1), (b, hi_w, s[1] - 1), (0, 0, 0)),
        )
    return total[:, pads[0][0] : ph - pads[0][1], pads[1][0] : pw - pads[1][1], :]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def _max_pool(x, k, s, pads, out):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, *_window_args(k, s, pads))


def _max_pool_jvp(k, s, pads, out, primals, tangents):
    """``dy = dx`` at each window's first arg-max (row-major order, as PyTorch)."""
    (x,), (dx,) = primals, tangents
    y = _max_pool(x, k, s, pads, out)
    if is_zero(dx):
        return y, jnp.zeros_like(y)
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    first = jnp.argmax(jnp.stack(_windows(xp, k, s, out)), axis=0)
    dxp = jnp.pad(dx, ((0, 0), *pads, (0, 0)))
    dy: Any = 0
    for t, part in enumerate(_windows(dxp, k, s, out)):
        dy = dy + jnp.where(first == t, part, jnp.zeros((), part.dtype))
    return y, dy


_max_pool.defjvp(_max_pool_jvp, symbolic_zeros=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def _avg_pool(x, k, s, pads, div):
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, *_window_args(k, s, pads))
    d = jnp.asarray(div, x.dtype)  # a float, or the per-window counts [Ho, Wo]
    return total / to_rank(d if d.ndim == 0 else d[:, :, None], total.ndim)


@_avg_pool.defjvp
def _avg_pool_jvp(k, s, pads, div, primals, tangents):
    """``dy = avg_pool(dx)`` (linear)."""
    (x,), (dx,) = primals, tangents
    return _avg_pool(x, k, s, pads, div), _avg_pool(dx, k, s, pads, div)


def _hashable(pads) -> tuple:
    return tuple(tuple(p) for p in pads)


def max_pool2d(x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0) -> Any:
    """Maximum over ``kernel_size`` windows of ``[N, H, W, C]`` images (padding is ``-inf``).

    .. math:: y_{n,i,j,c} = \\max_{a,b}\\; x^{pad}_{n,\\, i s_h + a,\\, j s_w + b,\\, c}

    Args:
      x: ``[N, H, W, C]``.
      kernel_size: int or ``(kh, kw)``.
      stride: int or pair, default ``kernel_size``.
      padding: int or pair, at most half the kernel (PyTorch's rule).

    Returns ``[N, (H + 2p - k) // s + 1, ..., C]``. PyTorch:
    ``torch.nn.functional.max_pool2d`` (``ceil_mode=False``, ``dilation=1``).

    Example:
      >>> max_pool2d(jnp.ones((1, 4, 4, 3)), 2).shape
      (1, 2, 2, 3)
    """
    x = as_arrays(x)
    k, s, pads, out = _geometry("max_pool2d", x, kernel_size, stride, padding)
    return _max_pool(x, k, s, _hashable(pads), out)


def max_pool2d_backward(
    x: Any, g: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0
) -> Any:
    """Vjp of :func:`max_pool2d`: each window's gradient goes to its arg-max.

    ``dx[p] = sum over windows w with argmax(w) = p of g[w]``; ties go to the first
    maximum in row-major window order (as PyTorch).
    """
    k, s, pads, out = _geometry("max_pool2d", x, kernel_size, stride, padding)
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    win = jnp.stack(_windows(xp, k, s, out))  # (K, N, Ho, Wo, C)
    first = jnp.argmax(win, axis=0)
    g = g.astype(x.dtype)
    parts = [jnp.where(first == t, g, 0) for t in range(win.shape[0])]
    return _scatter_windows(parts, x.shape, k, s, pads, out)


def _avg_divisor(x_shape, k, s, pads, out, count_include_pad: bool) -> Any:
    """Per-window divisor ``[Ho, Wo, 1]``: ``kh*kw``, or the number of unpadded entries."""
    if count_include_pad:
        return float(k[0] * k[1])
    counts = []
    for n, (lo, _), kk, ss, o in zip(x_shape[1:3], pads, k, s, out, strict=True):
        start = np.arange(o) * ss - lo
        counts.append(np.minimum(start + kk, n) - np.maximum(start, 0))
    return np.outer(counts[0], counts[1])[:, :, None].astype(np.float32)


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    count_include_pad: bool = True,
) -> Any:
    """Mean over ``kernel_size`` windows of ``[N, H, W, C]`` images (zero padding).

    .. math:: y_{n,i,j,c} = \\frac{1}{D_{ij}} \\sum_{a,b}
              x^{pad}_{n,\\, i s_h + a,\\, j s_w + b,\\, c}

    ``D = kh*kw`` with ``count_include_pad`` (PyTorch's default), else the number of
    window entries inside the unpadded image.

    Args:
      x: ``[N, H, W, C]``.
      kernel_size: int or ``(kh, kw)``; stride: default ``kernel_size``;
      padding: int or pair, at most half the kernel.
      count_include_pad: whether padded zeros count in the divisor.

    Returns ``[N, H_out, W_out, C]``. PyTorch: ``torch.nn.functional.avg_pool2d``
    (``ceil_mode=False``, no ``divisor_override``).

    Example:
      >>> y = avg_pool2d(jnp.ones((1, 4, 4, 3)), 2, padding=1, count_include_pad=False)
      >>> float(y[0, 0, 0, 0])
      1.0
    """
    x = as_arrays(x)
    check_choice("count_include_pad", count_include_pad, (True, False), fn="avg_pool2d")
    k, s, pads, out = _geometry("avg_pool2d", x, kernel_size, stride, padding)
    div = _avg_divisor(x.shape, k, s, pads, out, count_include_pad)
    if not isinstance(div, float):  # a hashable static argument
        div = tuple(map(tuple, div[:, :, 0].tolist()))
    return _avg_pool(x, k, s, _hashable(pads), div)


def avg_pool2d_backward(
    x: Any,
    g: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    count_include_pad: bool = True,
) -> Any:
    """Vjp of :func:`avg_pool2d`: ``g / D`` spread evenly over each window's entries."""
    k, s, pads, out = _geometry("avg_pool2d", x, kernel_size, stride, padding)
    div = _avg_divisor(x.shape, k, s, pads, out, count_include_pad)
    part = g.astype(x.dtype) / to_rank(jnp.asarray(div, x.dtype), g.ndim)
    return _scatter_windows([part] * (k[0] * k[1]), x.shape, k, s, pads, out)


def _pool_examples():
    rng = np.random.default_rng(20)
    return [(rng.permutation(2 * 7 * 6 * 3).reshape(2, 7, 6, 3) / 10.0 - 10,)]  # no ties


for _kw in (
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0)},
):
    _opts = ", ".join(f"{k}={v!r}" for k, v in _kw.items())
    register_grad(
        f"max_pool2d({_opts})",
        forward=lambda x, kw=_kw: max_pool2d(x, **kw),
        backward=lambda x, g, kw=_kw: max_pool2d_backward(x, g, **kw),
        examples=_pool_examples,
        public=lambda x, kw=_kw: max_pool2d(x, **kw),
    )
    for _cip in (True, False):
        register_grad(
            f"avg_pool2d({_opts}, count_include_pad={_cip})",
            forward=lambda x, kw=_kw, c=_cip: avg_pool2d(x, **kw, count_include_pad=c),
            backward=lambda x, g, kw=_kw, c=_cip: avg_pool2d_backward(
                x, g, **kw, count_include_pad=c
            ),
            examples=_pool_examples,
            public=lambda x, kw=_kw, c=_cip: avg_pool2d(x, **kw, count_include_pad=c),
        )
