"""Instance normalisation: each sample and channel normalised over its spatial axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._checks import as_arrays, check_floating, check_positive, check_vector
from ._norm import normalize, normalize_formula, normalize_vjp
from ._utils import register_grad

__all__ = ["instance_norm", "instance_norm_backward"]


def _axes(x: Any, weight: Any, bias: Any, eps: float) -> tuple[int, ...]:
    fn = "instance_norm"
    check_floating("x", x, fn=fn)
    if np.ndim(x) < 3:
        raise ValueError(
            f"{fn}: x must have rank >= 3 ([N, ..., C] with spatial axes), got "
            f"x.shape={tuple(np.shape(x))}"
        )
    check_vector("weight", weight, x.shape[-1], fn=fn, of=f"x.shape={tuple(x.shape)}")
    check_vector("bias", bias, x.shape[-1], fn=fn, of=f"x.shape={tuple(x.shape)}")
    eps = check_positive("eps", eps, fn=fn)
    return tuple(range(1, x.ndim - 1))


def instance_norm(x: Any, weight: Any = None, bias: Any = None, *, eps: float = 1e-5) -> Any:
    """Normalise each sample's channel over its spatial axes, then scale and shift.

    .. math:: y_{n,\\ldots,c} = \\frac{x_{n,\\ldots,c} - \\mu_{n,c}}
              {\\sqrt{\\sigma^2_{n,c} + \\epsilon}}\\, \\gamma_c + \\beta_c

    with the mean and biased variance over the spatial axes (``[N, L, C]``,
    ``[N, H, W, C]``, ...).

    Args:
      x: ``[N, ..., C]`` with at least one spatial axis.
      weight, bias: optional ``[C]`` (``gamma``, ``beta``).
      eps: added to the variance.

    Returns ``x``'s shape and dtype. Statistics in at least float32 with the
    shifted-data algorithm of :func:`~._norm.normalize`, whose closed-form backward
    ``dx = rstd (dxhat - E[dxhat] - xhat E[dxhat xhat])`` is the live gradient
    (:func:`instance_norm_backward`). PyTorch: ``torch.nn.functional.instance_norm``
    without running statistics (the :class:`~functional_dl.nn.InstanceNorm` layer keeps them).

    Example:
      >>> y = instance_norm(jnp.arange(8.0).reshape(1, 4, 2))
      >>> [round(float(v), 3) for v in y[0, :, 0]]
      [-1.342, -0.447, 0.447, 1.342]
    """
    x, weight, bias = as_arrays(x, weight, bias)
    axes = _axes(x, weight, bias, eps)
    return normalize(x, weight, bias, axes, eps, None)[0]


def instance_norm_backward(
    x: Any, weight: Any, bias: Any, g: Any, *, eps: float = 1e-5
) -> tuple[Any, Any, Any]:
    """Vjp of :func:`instance_norm`: ``(dx, dweight, dbias)``.

    With ``xhat = (x - mu) rstd`` and ``dxhat = g gamma``, means over each sample's
    spatial axes: ``dx = rstd (dxhat - E[dxhat] - xhat E[dxhat xhat])``;
    ``dweight = sum(g xhat)``, ``dbias = sum(g)`` over every axis but the channels.
    """
    axes = _axes(x, weight, bias, eps)
    return normalize_vjp(x, weight, bias, g, axes, eps)


def _examples():
    rng = np.random.default_rng(80)
    shape = (2, 3, 4, 3)
    return [
        (rng.standard_normal(shape), 1 + 0.1 * rng.standard_normal(3), rng.standard_normal(3)),
        (1e4 + 1e-2 * rng.standard_normal(shape), rng.standard_normal(3), np.zeros(3)),
    ]


register_grad(
    "instance_norm",
    forward=lambda x, w, b: normalize_formula(x, w, b, _axes(x, w, b, 1e-5), 1e-5)[0],
    backward=lambda x, w, b, g: instance_norm_backward(x, w, b, g),
    examples=_examples,
    fd_examples=lambda: _examples()[:1],
    argnums=(0, 1, 2),
    public=instance_norm,
)
