"""Affine map ``y = x W + b`` with weights stored ``[in, out]``, and its backward.

``linear`` is a ``jax.custom_jvp`` whose tangent rule ``dy = dx W + x dW + db`` is linear
in the tangents: reverse mode transposes it (``dX = dZ W^T``, ``dW = X^T dZ``,
``db = sum dZ``, the rule :func:`linear_backward` writes out), forward mode uses it as is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_floating, check_ndim, check_vector
from ._utils import is_zero, param, register_grad, tangent_sum, to_rank

__all__ = ["linear", "linear_backward"]


def _check(x: Any, w: Any, b: Any) -> None:
    check_floating("x", x, fn="linear")
    check_ndim("w", w, 2, fn="linear")
    if np.ndim(x) < 1 or np.shape(x)[-1] != np.shape(w)[0]:
        raise ValueError(
            f"linear: the last axis of x must equal w.shape[0] (in_features), got "
            f"x.shape={tuple(np.shape(x))} and w.shape={tuple(np.shape(w))}"
        )
    check_vector("b", b, np.shape(w)[1], fn="linear", of=f"w.shape={tuple(np.shape(w))}")


@jax.custom_jvp
def _linear(x: Any, w: Any, b: Any) -> Any:
    y = jnp.matmul(x, w)
    return y if b is None else y + to_rank(b, y.ndim)


def _linear_jvp(primals, tangents):
    """``dy = dx W + x dW + db`` (absent or zero tangents skipped)."""
    (x, w, b), (dx, dw, db) = primals, tangents
    y = _linear(x, w, b)
    terms = []
    if not is_zero(dx):
        terms.append(jnp.matmul(dx, w))
    if not is_zero(dw):
        terms.append(jnp.matmul(x, dw))
    if b is not None and not is_zero(db):
        terms.append(to_rank(db, y.ndim))
    return y, tangent_sum(y, terms)


_linear.defjvp(_linear_jvp, symbolic_zeros=True)


def linear(x: Any, w: Any, b: Any = None) -> Any:
    """Affine map of the last axis: ``y = x @ w + b``.

    .. math:: y_{...j} = \\sum_i x_{...i} W_{ij} + b_j

    Args:
      x: ``[..., in_features]`` floating array.
      w: ``[in_features, out_features]`` (transposed w.r.t. PyTorch's ``[out, in]``).
      b: optional ``[out_features]``.

    Returns:
      ``[..., out_features]`` in ``x``'s dtype (``w`` and ``b`` are cast to it).

    Gradient: the hand-derived rule (see the module docstring), forward and reverse mode.

    PyTorch: ``torch.nn.functional.linear(x, w.T, b)``.

    Example:
      >>> linear(jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.zeros(4)).shape
      (2, 4)
    """
    x, w, b = as_arrays(x, w, b)
    _check(x, w, b)
    return _linear(x, param(w, x), param(b, x))


def linear_backward(x: Any, w: Any, b: Any, g: Any) -> tuple[Any, Any, Any]:
    """Vector-Jacobian product of :func:`linear`: ``(dx, dw, db)`` for cotangent ``g``.

    With ``X`` the inputs flattened to ``[M, in]`` and ``dZ = g`` flattened to ``[M, out]``:

    .. math:: dX = dZ\\,W^T, \\qquad dW = X^T dZ, \\qquad db = \\textstyle\\sum_m dZ_m

    ``db`` is ``None`` when ``b`` is ``None``.
    """
    w = param(w, x)
    x2 = jnp.reshape(x, (-1, x.shape[-1]))  # (M, in)
    g2 = jnp.reshape(g, (-1, g.shape[-1]))  # (M, out)
    dx = jnp.matmul(g, w.T)
    dw = jnp.matmul(x2.T, g2)
    db = None if b is None else jnp.sum(g2, axis=0)
    return dx, dw, db


def _examples():
    rng = np.random.default_rng(0)
    return [
        (rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)),
        (rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 2)), np.array([0.0, 1e4])),
    ]


register_grad(
    "linear",
    forward=linear,
    backward=linear_backward,
    examples=_examples,
    argnums=(0, 1, 2),
    public=linear,
)
