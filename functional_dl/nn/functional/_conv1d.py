"""1-D convolution on channels-last sequences ``[N, L, C]``, and its hand-derived backward.

The backward pass is the 2-D one of :func:`~._conv.conv2d_backward` on a height-1 image:
``dx`` is the transposed convolution of ``g`` with the flipped kernel, ``dw`` the
correlation of the input with ``g``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..._checks import as_arrays
from ._conv import check_kernel, conv2d_backward, conv_padding, register_conv
from ._linear_rules import bilinear_op
from ._utils import as_ints, check_input, param

__all__ = ["conv1d", "conv1d_backward"]


def _geometry(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int):
    """``(stride, (lo, hi), dilation)`` after checking every argument."""
    fn = "conv1d"
    check_input("x", x, 3, fn=fn, what="[N, L, C]")
    kernel = check_kernel(x, w, b, groups, fn=fn, layout="[k, C/groups, out]")
    s = as_ints("stride", stride, 1, fn=fn)
    d = as_ints("dilation", dilation, 1, fn=fn)
    (pads,) = conv_padding(padding, x.shape[1:2], kernel, s, d, fn=fn)
    return s[0], pads, d[0]


def _plain(x: Any, w: Any, s: int, pads: tuple[int, int], d: int, groups: int) -> Any:
    return jax.lax.conv_general_dilated(
        x,
        w,
        (s,),
        (pads,),
        rhs_dilation=(d,),
        dimension_numbers=("NWC", "WIO", "NWC"),
        feature_group_count=groups,
    )


_conv1d = bilinear_op(_plain)


def conv1d(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """1-D cross-correlation of ``[N, L, C]`` sequences with a ``[k, C/groups, out]`` kernel.

    .. math:: y_{n,i,o} = b_o + \\sum_{a,c} x^{pad}_{n,\\, i s + a d,\\, g(o) C/G + c}\\; w_{a,c,o}

    Args:
      x: ``[N, L, C]``.
      w: ``[k, C // groups, out]`` (PyTorch stores ``[out, C/groups, k]``: permute ``(2, 1, 0)``).
      b: optional ``[out]``.
      stride, dilation: ints.
      padding: int (zeros on both ends), ``'valid'`` or ``'same'`` (stride 1; the extra
        zero at the end, as PyTorch).
      groups: channel groups; must divide ``C`` and ``out``.

    Returns:
      ``[N, L_out, out]`` with ``L_out = (L + 2p - d(k - 1) - 1) // s + 1``.

    Gradient: the product rule ``dy = conv1d(dx, w) + conv1d(x, dw) + db`` (a
    ``jax.custom_jvp``); its transpose is :func:`conv1d_backward`.
    PyTorch: ``torch.nn.functional.conv1d`` (``[N, C, L]`` there).

    Example:
      >>> conv1d(jnp.ones((2, 10, 3)), jnp.ones((3, 3, 4)), padding="same").shape
      (2, 10, 4)
    """
    x, w, b = as_arrays(x, w, b)
    s, pads, d = _geometry(x, w, b, stride, padding, dilation, groups)
    b3 = None if b is None else jnp.reshape(param(b, x), (1, 1, -1))
    return _conv1d(x, param(w, x), b3, s, pads, d, groups)


def conv1d_backward(
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
    """Vjp of :func:`conv1d`: ``(dx, dw, db)``, the 2-D rule on a height-1 image.

    ``dx`` correlates ``g`` (dilated by the stride, padded by ``d(k-1) - pad``) with the
    flipped kernel whose in/out channels are swapped per group;
    ``dw[a, c, o] = sum_{n,i} x^{pad}[n, i s + a d, c] g[n, i, o]``; ``db = sum_{n,i} g``.
    """
    s, pads, d = _geometry(x, w, b, stride, padding, dilation, groups)
    dx, dw, db = conv2d_backward(
        x[:, None],
        param(w, x)[None],
        b,
        g[:, None],
        stride=(1, s),
        padding=(0, pads[0]) if pads[0] == pads[1] else "same",
        dilation=(1, d),
        groups=groups,
    )
    return dx[:, 0], dw[0], db


_CONFIGS = [  # (x shape, w shape, kwargs)
    ((2, 7, 3), (3, 3, 4), {}),
    ((1, 9, 4), (3, 2, 6), {"stride": 2, "padding": 2, "groups": 2}),
    ((1, 10, 2), (2, 2, 3), {"stride": 3, "dilation": 2, "padding": 3}),
    ((1, 6, 2), (4, 2, 2), {"padding": "same", "dilation": 1}),
]


def _formula(x: Any, w: Any, b: Any, kw: dict) -> Any:
    full = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **kw}
    return _plain(x, w, *_geometry(x, w, b, **full), full["groups"]) + b[None, None, :]


register_conv(
    "conv1d",
    _CONFIGS,
    seed=40,
    forward=_formula,
    backward=conv1d_backward,
    public=conv1d,
)
