"""The one reduction step shared by every loss: ``'none'``, ``'mean'`` or ``'sum'``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._checks import check_choice

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: Any, *, fn: str, extra: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` naming ``reduction`` unless it is a known reduction."""
    check_choice("reduction", reduction, REDUCTIONS + extra, fn=fn)


def reduce_loss(loss: jnp.ndarray, reduction: str, *, dtype: Any, denominator: Any = None):
    """Reduce the per-element ``loss`` and cast it to the output ``dtype``.

    ``'none'`` returns ``loss``; ``'sum'`` its sum; ``'mean'`` the sum divided by
    ``denominator`` (default: the number of elements; a mean over zero elements is
    NaN, as in PyTorch). The sum is taken in the dtype of ``loss`` (float32 or wider).

    Its vector-Jacobian product is a broadcast of the cotangent (divided by
    ``denominator`` for ``'mean'``); autodiff derives it.
    """
    if reduction == "none":
        return loss.astype(dtype)
    total = jnp.sum(loss)
    if reduction == "mean":
        total = total / (loss.size if denominator is None else denominator)
    return total.astype(dtype)
