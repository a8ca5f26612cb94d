"""2-D transposed convolution on channels-last images, and its backward: a convolution.

``conv_transpose2d(x, w)`` is the adjoint (the input gradient) of
``conv2d(., w_c)`` with the same stride, padding, dilation and groups, where
``w_c = w.transpose(0, 1, 3, 2)`` reads the transposed kernel ``[kh, kw, C, out/groups]``
as a convolution kernel ``[kh, kw, out/groups, C]``. So its backward is the forward
convolution: ``dx = conv2d(g, w_c)``, and ``dw`` is the convolution kernel gradient of
that same pair (:func:`conv_transpose2d_backward`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_int, check_vector
from ._conv import conv2d, conv2d_backward, register_conv, transposed_conv
from ._linear_rules import bilinear_op
from ._utils import as_pair, check_input, param

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]


def _geometry(x, w, b, stride, padding, output_padding, dilation, groups):
    """``(stride, padding, output_padding, dilation, out_hw)`` after checking the arguments."""
    fn = "conv_transpose2d"
    check_input("x", x, 4, fn=fn, what="[N, H, W, C]")
    if np.ndim(w) != 4:
        raise ValueError(
            f"{fn}: w must have rank 4 ([kh, kw, C, out/groups]), got w.shape={tuple(np.shape(w))}"
        )
    check_int("groups", groups, minimum=1, fn=fn)
    c, (kh, kw, cw, og) = x.shape[-1], w.shape
    if cw != c:
        raise ValueError(
            f"{fn}: x has C={c} channels but w expects C={cw}: x.shape={tuple(x.shape)}, "
            f"w.shape={tuple(w.shape)}"
        )
    if c % groups:
        raise ValueError(
            f"{fn}: groups must divide the input channels, got groups={groups}, "
            f"x.shape={tuple(x.shape)}"
        )
    check_vector("b", b, og * groups, fn=fn, of=f"w.shape={tuple(w.shape)}, groups={groups}")
    s = as_pair("stride", stride, fn=fn)
    p = as_pair("padding", padding, fn=fn, minimum=0)
    op = as_pair("output_padding", output_padding, fn=fn, minimum=0)
    d = as_pair("dilation", dilation, fn=fn)
    for o_, s_, d_ in zip(op, s, d, strict=True):
        if o_ >= max(s_, d_):
            raise ValueError(
                f"{fn}: output_padding must be smaller than either stride or dilation, got "
                f"output_padding={output_padding!r} with stride={stride!r}, dilation={dilation!r}"
            )
    out = tuple(
        (n - 1) * s_ - 2 * p_ + d_ * (k - 1) + o_ + 1
        for n, s_, p_, d_, k, o_ in zip(x.shape[1:3], s, p, d, (kh, kw), op, strict=True)
    )
    if min(out) < 1:
        raise ValueError(
            f"{fn}: padding={padding!r} leaves no output: (H - 1) * stride - 2 * padding + "
            f"dilation * (kernel - 1) + output_padding + 1 = {out} for x.shape={tuple(x.shape)}, "
            f"kernel {(kh, kw)}"
        )
    return s, p, op, d, out


def _plain(x, w, s, p, op, d, groups):
    kh, kw = w.shape[:2]
    pads = [
        (d_ * (k - 1) - p_, d_ * (k - 1) - p_ + o_)
        for d_, k, p_, o_ in zip(d, (kh, kw), p, op, strict=True)
    ]
    return transposed_conv(x, w, s, pads, d, groups)


_conv_transpose2d = bilinear_op(_plain)


def conv_transpose2d(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """2-D transposed convolution ("deconvolution") of ``[N, H, W, C]`` images.

    Each input pixel scatters ``x[n, i, j, :] @ w[a, b]`` to output position
    ``(i s + a d - p, j s + b d - p)``:

    .. math:: y_{n,\\, i s_h + a d_h - p_h,\\, j s_w + b d_w - p_w,\\, g\\,O/G + o}
              \\mathrel{+}= \\sum_{c \\in g} x_{n,i,j,c}\\, w_{a,b,c,o} \\quad (+\\, b)

    i.e. the input gradient of :func:`conv2d` with the same arguments.

    Args:
      x: ``[N, H, W, C]``.
      w: ``[kh, kw, C, out // groups]``: PyTorch's ``(C, out/groups, kh, kw)`` permuted
        ``(2, 3, 0, 1)``.
      b: optional ``[out]``.
      stride, padding, output_padding, dilation: int or ``(h, w)``; ``output_padding``
        (extra rows/columns at the bottom/right) must be smaller than the stride or the
        dilation.
      groups: channel groups; must divide ``C``.

    Returns:
      ``[N, H_out, W_out, out]`` with PyTorch's size rule
      ``H_out = (H - 1) s - 2 p + d (k - 1) + output_padding + 1``.

    Gradient: product rule (``jax.custom_jvp``); the backward is the forward convolution
    (:func:`conv_transpose2d_backward`). PyTorch: ``torch.nn.functional.conv_transpose2d``.

    Example:
      >>> conv_transpose2d(jnp.ones((1, 4, 4, 8)), jnp.ones((3, 3, 8, 2)), stride=2, padding=1,
      ...                  output_padding=1).shape
      (1, 8, 8, 2)
    """
    x, w, b = as_arrays(x, w, b)
    s, p, op, d, _ = _geometry(x, w, b, stride, padding, output_padding, dilation, groups)
    b4 = None if b is None else jnp.reshape(param(b, x), (1, 1, 1, -1))
    return _conv_transpose2d(x, param(w, x), b4, s, p, op, d, groups)


def conv_transpose2d_backward(
    x: Any,
    w: Any,
    b: Any,
    g: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Vjp of :func:`conv_transpose2d`: ``(dx, dw, db)``; ``dx`` is the forward convolution.

    With ``w_c = w.transpose(0, 1, 3, 2)`` (a ``[kh, kw, out/groups, C]`` conv kernel),
    ``y = conv2d_x^T(x)`` is the transpose of ``u -> conv2d(u, w_c)``, hence

    * ``dx = conv2d(g, w_c, stride, padding, dilation, groups)`` (the forward convolution);
    * ``<g, y> = <conv2d(g, w_c), x>`` is bilinear in ``(g, w_c)``, so ``dw_c`` is the
      kernel gradient of that convolution with cotangent ``x``:
      ``dw_c[a, b, o, c] = sum_{n,i,j} g^{pad}[n, i s + a d, j s + b d, o] x[n, i, j, c]``,
      and ``dw = dw_c.transpose(0, 1, 3, 2)``;
    * ``db = sum_{n,i,j} g[n, i, j, :]``.
    """
    s, p, op, d, _ = _geometry(x, w, b, stride, padding, output_padding, dilation, groups)
    wc = jnp.transpose(param(w, x), (0, 1, 3, 2))
    g = g.astype(x.dtype)
    opts = {"stride": s, "padding": p, "dilation": d, "groups": groups}
    dx = conv2d(g, wc, **opts)
    _, dwc, _ = conv2d_backward(g, wc, None, x, **opts)
    db = None if b is None else jnp.sum(g, axis=(0, 1, 2))
    return dx, jnp.transpose(dwc, (0, 1, 3, 2)), db


_CONFIGS = [  # (x shape, w shape, kwargs)
    ((2, 4, 3, 3), (3, 3, 3, 2), {}),
    ((1, 3, 4, 4), (3, 2, 4, 3), {"stride": 2, "padding": (1, 0), "groups": 2}),
    ((1, 3, 3, 2), (2, 3, 2, 2), {"stride": (3, 2), "output_padding": (2, 1), "dilation": 2}),
    ((1, 4, 4, 2), (4, 4, 2, 1), {"stride": 2, "padding": 1}),
]


def _formula(x: Any, w: Any, b: Any, kw: dict) -> Any:
    full = {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1, **kw}
    geo = _geometry(x, w, b, **full)[:4]
    return _plain(x, w, *geo, full["groups"]) + b[None, None, None, :]


register_conv(
    "conv_transpose2d",
    _CONFIGS,
    seed=50,
    forward=_formula,
    backward=conv_transpose2d_backward,
    public=conv_transpose2d,
    out=lambda ws, kw: ws[-1] * kw.get("groups", 1),
)
