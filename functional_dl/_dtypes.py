"""The compute-dtype policy shared by every area: arithmetic in at least float32.

Half-precision inputs (``float16``, ``bfloat16``) are computed in float32 and the
result is cast back to the input dtype; float32 and float64 compute in themselves.
Activations, losses, norm statistics, optimizer moments and image augmentations all
follow this one rule.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["compute_dtype", "upcast"]


def compute_dtype(dtype: Any) -> Any:
    """The dtype arithmetic on ``dtype`` runs in: ``promote_types(dtype, float32)``.

    >>> compute_dtype(jnp.bfloat16), compute_dtype(jnp.float32)
    (dtype('float32'), dtype('float32'))
    """
    return jnp.promote_types(dtype, jnp.float32)


def upcast(x: Any) -> jax.Array:
    """``x`` as an array in its compute dtype (see :func:`compute_dtype`)."""
    x = jnp.asarray(x)
    return x.astype(compute_dtype(x.dtype))
