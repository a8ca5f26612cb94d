"""1-D convolution on channels-last sequences ``[N, L, C]``, and its hand-derived backward.

The backward pass is the 2-D one of :func:`~._conv.conv2d_backward` on a height-1 image:
``dx`` is the transposed convolution of ``g`` with the flipped kernel, ``dw`` the
correlation of the input with ``g``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_int
from ._conv import conv2d_backward
from ._linear_rules import bilinear_op
from ._utils import check_input, check_vector, param, register_grad

__all__ = ["conv1d", "conv1d_backward"]


def _int(name: str, value: Any, fn: str, minimum: int = 1) -> int:
    v: Any = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    check_int(name, v, minimum=minimum, fn=fn)
    return int(v)


def _geometry(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int):
    """``(stride, (lo, hi), dilation)`` after checking every argument."""
    fn = "conv1d"
    check_input("x", x, 3, fn=fn, what="[N, L, C]")
    if np.ndim(w) != 3:
        raise ValueError(
            f"conv1d: w must have rank 3 ([k, C/groups, out]), got w.shape={tuple(np.shape(w))}"
        )
    check_int("groups", groups, minimum=1, fn=fn)
    c, (k, cg, o) = x.shape[-1], w.shape
    if c % groups or o % groups:
        raise ValueError(
            f"conv1d: groups must divide the input and output channels, got groups={groups}, "
            f"x.shape={tuple(x.shape)}, w.shape={tuple(w.shape)}"
        )
    if cg * groups != c:
        raise ValueError(
            f"conv1d: x has C={c} channels but w expects C/groups={cg} with groups={groups}: "
            f"x.shape={tuple(x.shape)}, w.shape={tuple(w.shape)}"
        )
    check_vector("b", b, o, fn=fn, of=f"w.shape={tuple(w.shape)}")
    s, d = _int("stride", stride, fn), _int("dilation", dilation, fn)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(
                f"conv1d: padding must be an int, 'same' or 'valid', got padding={padding!r}"
            )
        if padding == "same" and s != 1:
            raise ValueError(f"conv1d: padding='same' needs stride 1, got stride={stride}")
        total = d * (k - 1) if padding == "same" else 0
        pads = (total // 2, total - total // 2)
    else:
        p = _int("padding", padding, fn, minimum=0)
        pads = (p, p)
    if d * (k - 1) + 1 > x.shape[1] + sum(pads):
        raise ValueError(
            f"conv1d: kernel (size {k}, dilation {d}) is larger than the padded input: "
            f"length {x.shape[1]} with padding {pads}"
        )
    return s, pads, d


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


def _register(i: int, xs: tuple, ws: tuple, kw: dict) -> None:
    def examples():
        rng = np.random.default_rng(40 + i)
        return [(rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[-1]))]

    opts = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    register_grad(
        f"conv1d({opts})",
        forward=lambda x, w, b: (
            _plain(x, w, *_geometry(x, w, b, **_full(kw)), _full(kw)["groups"]) + b[None, None, :]
        ),
        backward=lambda x, w, b, g: conv1d_backward(x, w, b, g, **kw),
        examples=examples,
        argnums=(0, 1, 2),
        public=lambda x, w, b: conv1d(x, w, b, **kw),
    )


def _full(kw: dict) -> dict:
    out = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    out.update(kw)
    return out


for _i, (_xs, _ws, _kw) in enumerate(_CONFIGS):
    _register(_i, _xs, _ws, _kw)
