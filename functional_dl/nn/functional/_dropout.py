"""Inverted dropout with an explicit key, and its backward (the same mask).

``dropout`` is a ``jax.custom_jvp`` of ``x`` (the mask and scale are constants): the
tangent ``dy = dx * m / (1 - rate)`` is linear, and its transpose is the rule
:func:`dropout_backward`. ``rate`` gets no gradient.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_floating, check_probability, is_concrete
from ._utils import register_grad


@jax.custom_jvp
def _apply_mask(x: Any, mask: Any, scale: Any) -> Any:
    # a dropped element is x * 0, as PyTorch's x * m: 0 for finite x, NaN for NaN/inf
    # (and for a NaN scale: an invalid traced rate)
    scale = jnp.asarray(scale, x.dtype)
    return jnp.where(mask, x * scale, x * (jnp.zeros((), x.dtype) * scale))


@_apply_mask.defjvp
def _apply_mask_jvp(primals, tangents):
    """``dy = dx * m * scale``: the mask and the scale are constants."""
    x, mask, scale = primals
    return _apply_mask(x, mask, scale), _apply_mask(tangents[0], mask, scale)


__all__ = ["dropout", "dropout_backward"]


def _keep_mask(key: Any, shape: tuple[int, ...], rate: Any) -> tuple[Any, Any]:
    """``(mask, scale)``: ``mask ~ Bernoulli(1 - rate)``, ``scale = 1/(1 - rate)`` (0 at rate 1)."""
    keep = 1.0 - rate
    if is_concrete(rate):
        scale = 0.0 if float(keep) == 0.0 else 1.0 / float(keep)
    else:  # traced rate: a safe reciprocal so rate 1 gives no inf (and no NaN gradient);
        # a NaN rate (invalid, see check_probability) gives a NaN scale
        scale = jnp.where(keep > 0, 1.0 / jnp.where(keep > 0, keep, 1.0), keep * 0.0)
    return jax.random.bernoulli(key, keep, shape), scale


def _is_identity(key: Any, rate: Any, train: bool) -> bool:
    if not train or (is_concrete(rate) and float(rate) == 0.0):
        return True
    if key is None:
        raise ValueError("dropout: a key is required when train=True and rate > 0, got key=None")
    return False


def dropout(key: Any, x: Any, rate: float, *, train: bool = True) -> Any:
    """Zero each element with probability ``rate`` and scale the rest by ``1/(1 - rate)``.

    .. math:: y = x \\cdot m / (1 - rate), \\qquad m \\sim \\mathrm{Bernoulli}(1 - rate)

    Args:
      key: a ``jax.random`` key (may be ``None`` when ``train=False`` or ``rate == 0``).
      x: any floating array.
      rate: drop probability in ``[0, 1]``; ``rate == 1`` gives zeros (finite gradients).
      train: ``False`` returns ``x`` unchanged.

    Returns an array of ``x``'s shape and dtype. PyTorch:
    ``torch.nn.functional.dropout(x, p=rate, training=train)`` (the mask comes from ``key``).

    Example:
      >>> dropout(jax.random.key(0), jnp.ones(4), 0.5)  # entries 0 or 1 / (1 - 0.5)
      Array([0., 0., 2., 2.], dtype=float32)
    """
    x = as_arrays(x)
    check_floating("x", x, fn="dropout")
    rate = check_probability("rate", rate, fn="dropout")  # traced and invalid: NaN
    if _is_identity(key, rate, train):
        return x
    mask, scale = _keep_mask(key, x.shape, rate)
    return _apply_mask(x, mask, jax.lax.stop_gradient(jnp.asarray(scale, x.dtype)))


def dropout_backward(key: Any, x: Any, rate: float, g: Any, *, train: bool = True) -> Any:
    """Vjp of :func:`dropout` w.r.t. ``x``: the same mask, ``dx = g * m / (1 - rate)``."""
    rate = check_probability("rate", rate, fn="dropout")  # traced and invalid: NaN
    if _is_identity(key, rate, train):
        return g
    mask, scale = _keep_mask(key, x.shape, rate)
    return _apply_mask(g, mask, scale)


def _examples():
    rng = np.random.default_rng(2)
    return [(rng.standard_normal((4, 5)),), (np.array([0.0, 1e4, -1e4, 20.0]),)]


def _KEY():  # noqa: N802  (a fixed key; the RBG generator compiles fast)
    return jax.random.key(0, impl="rbg")


for _rate in (0.3, 1.0):
    register_grad(
        f"dropout(rate={_rate})",
        forward=lambda x, r=_rate: dropout(_KEY(), x, r),
        backward=lambda x, g, r=_rate: dropout_backward(_KEY(), x, r, g),
        examples=_examples,
        public=lambda x, r=_rate: dropout(_KEY(), x, r),
    )
