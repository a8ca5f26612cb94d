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

from ..._checks import as_arrays, check_choice, check_int
from ._conv import conv_padding
from ._utils import as_pair, check_input, is_zero, register_grad, to_rank

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"]


def _geometry(
    fn: str,
    x: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any = 1,
    ceil_mode: bool = False,
):
    """``(kernel, stride, dilation, pads, out_hw)`` with PyTorch's output size.

    ``out = floor_or_ceil((n + 2p - d (k - 1) - 1) / s) + 1``; with ``ceil_mode`` a last
    window starting at or past ``n + p`` (in the right padding) is dropped. ``pads`` is the
    ``(lo, hi)`` padding every window fits in: ``hi`` grows past ``p`` for a window that
    ``ceil_mode`` adds. PyTorch's rule ``padding <= kernel // 2`` holds.
    """
    check_input("x", x, 4, fn=fn, what="[N, H, W, C]")
    check_choice("ceil_mode", ceil_mode, (True, False), fn=fn)
    k = as_pair("kernel_size", kernel_size, fn=fn)
    s = k if stride is None else as_pair("stride", stride, fn=fn)
    d = as_pair("dilation", dilation, fn=fn)
    p = as_pair("padding", padding, fn=fn, minimum=0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"{fn}: padding must be at most half the kernel size, got padding={p} "
            f"with kernel_size={k}"
        )
    if not ceil_mode:
        conv_padding(p, x.shape[1:3], k, s, d, fn=fn)  # the kernel fits the padded input
    out, pads = [], []
    for n, kk, ss, dd, pp in zip(x.shape[1:3], k, s, d, p, strict=True):
        span = n + 2 * pp - dd * (kk - 1) - 1
        o = (-(-span // ss) if ceil_mode else span // ss) + 1
        if ceil_mode and (o - 1) * ss >= n + pp:
            o -= 1
        if o < 1:
            raise ValueError(
                f"{fn}: kernel (size {k}, dilation {d}) is larger than the padded input: "
                f"spatial size {tuple(x.shape[1:3])} with padding {p}"
            )
        out.append(o)
        pads.append((pp, max(pp, (o - 1) * ss + dd * (kk - 1) + 1 - n - pp)))
    return k, s, d, tuple(pads), tuple(out)


def _window_args(k, s, pads):
    return (1, *k, 1), (1, *s, 1), ((0, 0), *pads, (0, 0))


def _windows(xp: Any, k, s, d, out) -> list[Any]:
    """One strided view ``[N, Ho, Wo, C]`` per kernel offset ``(a, b)`` (at ``(a d_h,
    b d_w)``), row-major."""
    return [
        jax.lax.slice(
            xp,
            (0, a * d[0], b * d[1], 0),
            (
                xp.shape[0],
                a * d[0] + s[0] * (out[0] - 1) + 1,
                b * d[1] + s[1] * (out[1] - 1) + 1,
                xp.shape[3],
            ),
            (1, *s, 1),
        )
        for a in range(k[0])
        for b in range(k[1])
    ]


def _scatter_windows(parts: list[Any], x_shape, k, s, d, pads, out) -> Any:
    """Adjoint of :func:`_windows` cropped to ``x_shape``: each offset's ``[N, Ho, Wo, C]``
    contribution is placed at ``(a d_h + i s_h, b d_w + j s_w)`` (interior padding), then
    summed."""
    ph = x_shape[1] + sum(pads[0])
    pw = x_shape[2] + sum(pads[1])
    total: Any = 0
    for t, part in enumerate(parts):
        a, b = divmod(t, k[1])
        a, b = a * d[0], b * d[1]
        hi_h = ph - a - (s[0] * (out[0] - 1) + 1)
        hi_w = pw - b - (s[1] * (out[1] - 1) + 1)
        total = total + jax.lax.pad(
            part,
            jnp.zeros((), part.dtype),
            ((0, 0, 0), (a, hi_h, s[0] - 1), (b, hi_w, s[1] - 1), (0, 0, 0)),
        )
    return total[:, pads[0][0] : ph - pads[0][1], pads[1][0] : pw - pads[1][1], :]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4, 5))
def _max_pool(x, k, s, d, pads, out):
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, *_window_args(k, s, pads), window_dilation=(1, *d, 1)
    )


def _max_pool_jvp(k, s, d, pads, out, primals, tangents):
    """``dy = dx`` at each window's first arg-max (row-major order, as PyTorch)."""
    (x,), (dx,) = primals, tangents
    y = _max_pool(x, k, s, d, pads, out)
    if is_zero(dx):
        return y, jnp.zeros_like(y)
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    first = jnp.argmax(jnp.stack(_windows(xp, k, s, d, out)), axis=0)
    dxp = jnp.pad(dx, ((0, 0), *pads, (0, 0)))
    dy: Any = 0
    for t, part in enumerate(_windows(dxp, k, s, d, out)):
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


def max_pool2d(
    x: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Any:
    """Maximum over ``kernel_size`` windows of ``[N, H, W, C]`` images (padding is ``-inf``).

    .. math:: y_{n,i,j,c} = \\max_{a,b}\\;
              x^{pad}_{n,\\, i s_h + a d_h,\\, j s_w + b d_w,\\, c}

    Args:
      x: ``[N, H, W, C]``.
      kernel_size: int or ``(kh, kw)``.
      stride: int or pair, default ``kernel_size``.
      padding: int or pair, at most half the kernel (PyTorch's rule).
      dilation: int or pair, spacing between the window's taps.
      ceil_mode: round the output size up (a last, partial window), as PyTorch.

    Returns ``[N, H_out, W_out, C]`` with
    ``H_out = floor((H + 2p - d (k - 1) - 1) / s) + 1`` (``ceil`` with ``ceil_mode``; a
    last window that would start in the right padding is dropped). PyTorch:
    ``torch.nn.functional.max_pool2d`` (no ``return_indices``).

    Example:
      >>> max_pool2d(jnp.ones((1, 4, 4, 3)), 2).shape
      (1, 2, 2, 3)
      >>> max_pool2d(jnp.ones((1, 5, 5, 3)), 2, ceil_mode=True).shape
      (1, 3, 3, 3)
      >>> max_pool2d(jnp.ones((1, 7, 7, 3)), 3, stride=1, dilation=2).shape
      (1, 3, 3, 3)
    """
    x = as_arrays(x)
    k, s, d, pads, out = _geometry(
        "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode
    )
    return _max_pool(x, k, s, d, _hashable(pads), out)


def max_pool2d_backward(
    x: Any,
    g: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Any:
    """Vjp of :func:`max_pool2d`: each window's gradient goes to its arg-max.

    ``dx[p] = sum over windows w with argmax(w) = p of g[w]``; ties go to the first
    maximum in row-major window order (as PyTorch).
    """
    k, s, d, pads, out = _geometry(
        "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode
    )
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    win = jnp.stack(_windows(xp, k, s, d, out))  # (K, N, Ho, Wo, C)
    first = jnp.argmax(win, axis=0)
    g = g.astype(x.dtype)
    parts = [jnp.where(first == t, g, 0) for t in range(win.shape[0])]
    return _scatter_windows(parts, x.shape, k, s, d, pads, out)


def _avg_divisor(
    x_shape, k, s, pads, out, p, count_include_pad: bool, divisor_override: Any
) -> Any:
    """Per-window divisor: ``divisor_override``; else, as PyTorch, the window's size
    clipped to the padded input ``[-p, n + p)`` (``count_include_pad``) or to the image
    ``[0, n)``; a float when constant, else ``[Ho, Wo, 1]``."""
    if divisor_override is not None:
        return float(divisor_override)
    if count_include_pad and all(hi == pp for (_, hi), pp in zip(pads, p, strict=True)):
        return float(k[0] * k[1])  # every window lies inside the padded input
    counts = []
    for n, (lo, _), kk, ss, o in zip(x_shape[1:3], pads, k, s, out, strict=True):
        start = np.arange(o) * ss - lo
        if count_include_pad:
            counts.append(np.minimum(start + kk, n + lo) - start)
        else:
            counts.append(np.minimum(start + kk, n) - np.maximum(start, 0))
    return np.outer(counts[0], counts[1])[:, :, None].astype(np.float32)


def _check_divisor(divisor_override: Any, fn: str) -> None:
    if divisor_override is not None:
        check_int("divisor_override", divisor_override, minimum=1, fn=fn)


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    count_include_pad: bool = True,
    ceil_mode: bool = False,
    divisor_override: int | None = None,
) -> Any:
    """Mean over ``kernel_size`` windows of ``[N, H, W, C]`` images (zero padding).

    .. math:: y_{n,i,j,c} = \\frac{1}{D_{ij}} \\sum_{a,b}
              x^{pad}_{n,\\, i s_h + a,\\, j s_w + b,\\, c}

    ``D = divisor_override`` if given; else with ``count_include_pad`` (PyTorch's
    default) the number of window entries inside the padded input (``kh*kw`` unless a
    ``ceil_mode`` window sticks out past the right padding), without it the number of
    window entries inside the unpadded image.

    Args:
      x: ``[N, H, W, C]``.
      kernel_size: int or ``(kh, kw)``; stride: default ``kernel_size``;
      padding: int or pair, at most half the kernel.
      count_include_pad: whether padded zeros count in the divisor.
      ceil_mode: round the output size up (a last, partial window), as PyTorch.
      divisor_override: a positive int used as every window's divisor.

    Returns ``[N, H_out, W_out, C]`` with ``H_out = floor((H + 2p - k) / s) + 1``
    (``ceil`` with ``ceil_mode``; a last window that would start in the right padding is
    dropped). PyTorch: ``torch.nn.functional.avg_pool2d``.

    Example:
      >>> y = avg_pool2d(jnp.ones((1, 4, 4, 3)), 2, padding=1, count_include_pad=False)
      >>> float(y[0, 0, 0, 0])
      1.0
      >>> y = avg_pool2d(jnp.ones((1, 5, 5, 1)), 2, ceil_mode=True)
      >>> y.shape, float(y[0, 2, 2, 0])
      ((1, 3, 3, 1), 1.0)
      >>> float(avg_pool2d(jnp.ones((1, 4, 4, 1)), 2, divisor_override=1)[0, 0, 0, 0])
      4.0
    """
    x = as_arrays(x)
    check_choice("count_include_pad", count_include_pad, (True, False), fn="avg_pool2d")
    _check_divisor(divisor_override, "avg_pool2d")
    k, s, _, pads, out = _geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    p = as_pair("padding", padding, fn="avg_pool2d", minimum=0)
    div = _avg_divisor(x.shape, k, s, pads, out, p, count_include_pad, divisor_override)
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
    ceil_mode: bool = False,
    divisor_override: int | None = None,
) -> Any:
    """Vjp of :func:`avg_pool2d`: ``g / D`` spread evenly over each window's entries."""
    check_choice("count_include_pad", count_include_pad, (True, False), fn="avg_pool2d")
    _check_divisor(divisor_override, "avg_pool2d")
    k, s, _, pads, out = _geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    p = as_pair("padding", padding, fn="avg_pool2d", minimum=0)
    div = _avg_divisor(x.shape, k, s, pads, out, p, count_include_pad, divisor_override)
    part = g.astype(x.dtype) / to_rank(jnp.asarray(div, x.dtype), g.ndim)
    return _scatter_windows([part] * (k[0] * k[1]), x.shape, k, s, (1, 1), pads, out)


def _pool_examples():
    rng = np.random.default_rng(20)
    return [(rng.permutation(2 * 7 * 6 * 3).reshape(2, 7, 6, 3) / 10.0 - 10,)]  # no ties


_kw: dict[str, Any]  # keyword options of each registered example
for _kw in (
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0)},
    {"kernel_size": 2, "ceil_mode": True},  # 7 x 6: a last, partial row of windows
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
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

for _kw in (
    {"kernel_size": 3, "stride": 1, "dilation": 2},
    {
        "kernel_size": (3, 2),
        "stride": (3, 2),
        "padding": (0, 1),
        "dilation": (2, 1),
        "ceil_mode": True,
    },
):
    _opts = ", ".join(f"{k}={v!r}" for k, v in _kw.items())
    register_grad(
        f"max_pool2d({_opts})",
        forward=lambda x, kw=_kw: max_pool2d(x, **kw),
        backward=lambda x, g, kw=_kw: max_pool2d_backward(x, g, **kw),
        examples=_pool_examples,
        public=lambda x, kw=_kw: max_pool2d(x, **kw),
    )

for _kw in (
    {"kernel_size": 2, "divisor_override": 3},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "divisor_override": 5},
):
    _opts = ", ".join(f"{k}={v!r}" for k, v in _kw.items())
    register_grad(
        f"avg_pool2d({_opts})",
        forward=lambda x, kw=_kw: avg_pool2d(x, **kw),
        backward=lambda x, g, kw=_kw: avg_pool2d_backward(x, g, **kw),
        examples=_pool_examples,
        public=lambda x, kw=_kw: avg_pool2d(x, **kw),
    )
