"""2-D convolution on channels-last images, and its backward written as convolutions.

``conv2d`` is a ``jax.custom_jvp`` whose tangent rule ``dy = conv(dx, w) + conv(x, dw) +
db`` is linear in the tangents: reverse mode transposes it into the transposed
convolution and the input-gradient correlation that :func:`conv2d_backward` writes out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_int, check_vector
from ._utils import (
    as_ints,
    as_pair,
    check_input,
    is_zero,
    param,
    register_grad,
    tangent_sum,
    to_rank,
)

__all__ = ["conv2d", "conv2d_backward", "conv_padding", "check_kernel", "register_conv"]

_DIMS = ("NHWC", "HWIO", "NHWC")


def _shown(t: tuple) -> Any:
    """A per-axis tuple as the user wrote it for a 1-D op: ``(3,)`` reads ``3``."""
    return t[0] if len(t) == 1 else t


def conv_padding(
    padding: Any,
    size: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    *,
    fn: str,
) -> tuple[tuple[int, int], ...]:
    """Explicit ``(lo, hi)`` padding of each spatial axis; checks the kernel fits.

    ``padding`` is an int, one int per axis, ``'valid'`` (none) or ``'same'`` (stride 1
    only, as PyTorch; total ``dilation * (kernel - 1)``, the extra one at the end).
    """
    n = len(size)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            per_axis = ", a pair" if n == 2 else ""
            raise ValueError(
                f"{fn}: padding must be an int{per_axis}, 'same' or 'valid', "
                f"got padding={padding!r}"
            )
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"{fn}: padding='same' needs stride 1, got stride={_shown(stride)}")
        totals = [
            d * (k - 1) if padding == "same" else 0 for d, k in zip(dilation, kernel, strict=True)
        ]
        pads = tuple((t // 2, t - t // 2) for t in totals)
    else:
        pads = tuple((p, p) for p in as_ints("padding", padding, n, fn=fn, minimum=0))
    for m, k, d, (lo, hi) in zip(size, kernel, dilation, pads, strict=True):
        if d * (k - 1) + 1 > m + lo + hi:
            raise ValueError(
                f"{fn}: kernel (size {_shown(kernel)}, dilation {_shown(dilation)}) is larger "
                f"than the padded input: spatial size {_shown(tuple(size))} with padding "
                f"{_shown(pads)}"
            )
    return pads


def check_kernel(x: Any, w: Any, b: Any, groups: int, *, fn: str, layout: str) -> tuple:
    """Checks a ``[..., C/groups, out]`` kernel ``w`` (``layout``), of the rank of ``x``,
    against ``x = [N, ..., C]`` and the bias ``b`` (``None`` or ``[out]``); returns the
    kernel's spatial shape."""
    if np.ndim(w) != x.ndim:
        raise ValueError(
            f"{fn}: w must have rank {x.ndim} ({layout}), got w.shape={tuple(np.shape(w))}"
        )
    check_int("groups", groups, minimum=1, fn=fn)
    c, (cg, o) = x.shape[-1], w.shape[-2:]
    shapes = f"x.shape={tuple(x.shape)}, w.shape={tuple(w.shape)}"
    if c % groups or o % groups:
        raise ValueError(
            f"{fn}: groups must divide the input and output channels, got groups={groups}, {shapes}"
        )
    if cg * groups != c:
        raise ValueError(
            f"{fn}: x has C={c} channels but w expects C/groups={cg} with groups={groups}: {shapes}"
        )
    check_vector("b", b, o, fn=fn, of=f"w.shape={tuple(w.shape)}")
    return tuple(w.shape[:-2])


def _geometry(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int):
    fn = "conv2d"
    check_input("x", x, 4, fn=fn, what="[N, H, W, C]")
    kernel = check_kernel(x, w, b, groups, fn=fn, layout="[kh, kw, C/groups, out]")
    s = as_pair("stride", stride, fn=fn)
    d = as_pair("dilation", dilation, fn=fn)
    pads = conv_padding(padding, x.shape[1:3], kernel, s, d, fn=fn)
    return s, pads, d


def _conv(x, w, s, pads, d, groups):
    return jax.lax.conv_general_dilated(
        x, w, s, pads, rhs_dilation=d, dimension_numbers=_DIMS, feature_group_count=groups
    )


def transposed_conv(x, w, s, pads, d, groups):
    """The transposed convolution of ``x [N, H, W, C]`` by ``w [kh, kw, C, out/groups]``
    (PyTorch's ``conv_transpose2d`` kernel layout): ``x`` dilated by the stride ``s`` and
    padded by ``pads`` (``[(lo, hi), (lo, hi)]``), correlated with the spatially flipped
    kernel whose in/out channels are swapped within each group."""
    kh, kw, c, og = w.shape
    wt = jnp.reshape(w[::-1, ::-1], (kh, kw, groups, c // groups, og))
    wt = jnp.reshape(jnp.transpose(wt, (0, 1, 3, 2, 4)), (kh, kw, c // groups, groups * og))
    return jax.lax.conv_general_dilated(
        x,
        wt,
        (1, 1),
        pads,
        lhs_dilation=s,
        rhs_dilation=d,
        dimension_numbers=_DIMS,
        feature_group_count=groups,
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5, 6))
def _conv2d(x, w, b, s, pads, d, groups):
    y = _conv(x, w, s, pads, d, groups)
    return y if b is None else y + to_rank(b, y.ndim)


def _conv2d_jvp(s, pads, d, groups, primals, tangents):
    """``dy = conv(dx, w) + conv(x, dw) + db`` (zero tangents skipped)."""
    (x, w, b), (dx, dw, db) = primals, tangents
    y = _conv2d(x, w, b, s, pads, d, groups)
    terms = []
    if not is_zero(dx):
        terms.append(_conv(dx, w, s, pads, d, groups))
    if not is_zero(dw):
        terms.append(_conv(x, dw, s, pads, d, groups))
    if b is not None and not is_zero(db):
        terms.append(to_rank(db, y.ndim))
    return y, tangent_sum(y, terms)


_conv2d.defjvp(_conv2d_jvp, symbolic_zeros=True)


def conv2d(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """2-D cross-correlation of ``[N, H, W, C]`` images with a ``[kh, kw, C/groups, out]`` kernel.

    .. math:: y_{n,i,j,o} = b_o + \\sum_{a,b,c} x^{pad}_{n,\\,i s_h + a d_h,\\,j s_w + b d_w,\\,
              g(o) C/G + c}\\; w_{a,b,c,o}

    Args:
      x: ``[N, H, W, C]``.
      w: ``[kh, kw, C // groups, out]`` (HWIO; PyTorch stores ``[out, C/groups, kh, kw]``).
      b: optional ``[out]``.
      stride, dilation: int or ``(h, w)``.
      padding: int, ``(h, w)`` (zeros on both sides), ``'valid'`` or ``'same'``.
      groups: channel groups; must divide ``C`` and ``out``.

    Returns:
      ``[N, H_out, W_out, out]`` with ``H_out = (H + 2p - d(k - 1) - 1) // s + 1``.

    Gradient: the hand-derived rule of the module docstring (forward and reverse mode).

    PyTorch: ``torch.nn.functional.conv2d`` (NCHW there). Equals
    ``jax.lax.conv_general_dilated`` with NHWC/HWIO dimension numbers.

    Example:
      >>> conv2d(jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 3, 4)), padding="same").shape
      (1, 8, 8, 4)
    """
    x, w, b = as_arrays(x, w, b)
    s, pads, d = _geometry(x, w, b, stride, padding, dilation, groups)
    pads = tuple(tuple(p) for p in pads)
    return _conv2d(x, param(w, x), param(b, x), s, pads, d, groups)


def conv2d_backward(
    x: Any,
    w: Any,
    b: Any,
    g: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Vjp of :func:`conv2d` as two convolutions: ``(dx, dw, db)``.

    * ``dx`` is the transposed convolution: ``g`` dilated by the stride, padded by
      ``d(k-1) - pad`` (plus the rows the forward never reached), correlated with the
      spatially flipped kernel whose in/out channels are swapped (per group).
    * ``dw`` is the correlation of the input with the output gradient:
      ``dw[a, b, c, o] = sum_{n,i,j} x^{pad}[n, i s + a d, j s + b d, c] g[n, i, j, o]``,
      i.e. a convolution whose "batch" is the channels, "features" the samples, with
      window stride ``d`` and kernel dilation ``s`` (``batch_group_count = groups``).
    * ``db = sum_{n,i,j} g[n, i, j, :]`` (``None`` without bias).
    """
    s, pads, d = _geometry(x, w, b, stride, padding, dilation, groups)
    w = param(w, x)
    kh, kw = w.shape[:2]
    g = g.astype(x.dtype)
    # rows/columns of the padded input that no output window reached
    rest = [
        (n + lo + hi - d_ * (k - 1) - 1) % s_
        for n, (lo, hi), k, s_, d_ in zip(x.shape[1:3], pads, (kh, kw), s, d, strict=True)
    ]
    dx_pads = [
        (d_ * (k - 1) - lo, d_ * (k - 1) - hi + r)
        for (lo, hi), k, d_, r in zip(pads, (kh, kw), d, rest, strict=True)
    ]
    # the conv kernel [kh, kw, C/groups, out] read as a transposed one [.., out, C/groups]
    dx = transposed_conv(g, jnp.transpose(w, (0, 1, 3, 2)), s, dx_pads, d, groups)
    dw_pads = [(lo, hi - r) for (lo, hi), r in zip(pads, rest, strict=True)]
    dw = jax.lax.conv_general_dilated(
        x,
        g,
        d,
        dw_pads,
        rhs_dilation=s,
        dimension_numbers=("CHWN", "IHWO", "HWNC"),
        batch_group_count=groups,
    )
    db = None if b is None else jnp.sum(g, axis=(0, 1, 2))
    return dx, dw, db


_CONFIGS = [  # (x shape, w shape, kwargs)
    ((2, 5, 6, 3), (3, 3, 3, 4), {}),
    ((1, 7, 6, 4), (3, 2, 2, 6), {"stride": 2, "padding": (1, 2), "groups": 2}),
    # padding 3 exceeds the dilated kernel's reach: negative padding in the transposed conv
    ((1, 8, 7, 2), (2, 3, 2, 3), {"stride": (3, 2), "dilation": (2, 1), "padding": 3}),
    ((1, 5, 5, 2), (2, 4, 2, 2), {"padding": "same", "dilation": 2}),
]


def register_conv(
    name: str,
    configs: list[tuple[tuple, tuple, dict]],
    *,
    seed: int,
    forward: Callable,
    backward: Callable,
    public: Callable,
    out: Callable[[tuple, dict], int] = lambda ws, kw: ws[-1],
) -> None:
    """Registers the hand-derived vjp ``backward(x, w, b, g, **kw)`` of a convolution
    ``public(x, w, b, **kw)`` (plain formula ``forward(x, w, b, kw)``) for each
    ``(x shape, w shape, kw)`` of ``configs``, at normal draws of seed ``seed + i``
    with a bias of size ``out(w shape, kw)``."""
    for i, (xs, ws, kw) in enumerate(configs):

        def examples(i=i, xs=xs, ws=ws, kw=kw):
            rng = np.random.default_rng(seed + i)
            x, w = rng.standard_normal(xs), rng.standard_normal(ws)
            return [(x, w, rng.standard_normal(out(ws, kw)))]

        opts = ", ".join(f"{k}={v!r}" for k, v in kw.items())
        register_grad(
            f"{name}({opts})",
            forward=lambda x, w, b, kw=kw: forward(x, w, b, kw),
            backward=lambda x, w, b, g, kw=kw: backward(x, w, b, g, **kw),
            examples=examples,
            argnums=(0, 1, 2),
            public=lambda x, w, b, kw=kw: public(x, w, b, **kw),
        )


register_conv(
    "conv2d",
    _CONFIGS,
    seed=10,
    forward=lambda x, w, b, kw: conv2d(x, w, b, **kw),
    backward=conv2d_backward,
    public=conv2d,
)
