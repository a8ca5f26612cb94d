"""Shared test utilities: tolerances in one place, eager/jit/vmap and retrace checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# (rtol, atol) per dtype: the single home of test tolerances.
TOLERANCES: dict[Any, tuple[float, float]] = {
    np.dtype(np.float64): (1e-10, 1e-12),
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(jnp.bfloat16): (2e-2, 2e-2),
    np.dtype(np.float16): (2e-3, 2e-3),
}

FLOAT_DTYPES = (jnp.float32, jnp.bfloat16, jnp.float16)


def tol(dtype: Any = np.float32) -> dict[str, float]:
    """``dict(rtol=..., atol=...)`` for ``dtype``."""
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    return {"rtol": rtol, "atol": atol}


def assert_close(
    actual: Any,
    expected: Any,
    *,
    dtype: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    err_msg: str = "",
) -> None:
    """Assert two pytrees are elementwise close, with the dtype's default tolerance."""
    a_leaves = jax.tree_util.tree_leaves(actual)
    e_leaves = jax.tree_util.tree_leaves(expected)
    if len(a_leaves) == 1 and isinstance(expected, list):
        e_leaves = [np.asarray(expected)]  # a plain list of expected values is one array
    assert len(a_leaves) == len(e_leaves), f"tree mismatch: {len(a_leaves)} vs {len(e_leaves)}"
    for a, e in zip(a_leaves, e_leaves, strict=True):
        d = dtype if dtype is not None else np.asarray(a).dtype
        if not np.issubdtype(np.dtype(d), np.floating) and np.dtype(d) != np.dtype(jnp.bfloat16):
            d = np.float32
        t = tol(d)
        np.testing.assert_allclose(
            np.asarray(a, np.float64),
            np.asarray(e, np.float64),
            rtol=t["rtol"] if rtol is None else rtol,
            atol=t["atol"] if atol is None else atol,
            err_msg=err_msg,
        )


def assert_finite(tree: Any, err_msg: str = "") -> None:
    """Assert no NaN/inf anywhere in a pytree."""
    for leaf in jax.tree_util.tree_leaves(tree):
        arr = np.asarray(leaf, np.float64)
        bad = arr[~np.isfinite(arr)][:5]
        assert np.all(np.isfinite(arr)), f"non-finite values {err_msg}: {bad}"


def assert_eager_jit_vmap(fn: Callable[..., Any], *args: Any, dtype: Any = None) -> None:
    """``fn(*args)`` eager, under ``jit`` and mapped with ``vmap`` over a stacked batch of 2."""
    eager = fn(*args)
    assert_close(jax.jit(fn)(*args), eager, dtype=dtype)
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), args)
    batched = jax.vmap(fn)(*stacked)
    assert_close(jax.tree_util.tree_map(lambda b: b[1], batched), eager, dtype=dtype)


class TraceCounter:
    """Wrap ``fn`` so each trace increments ``count``: ``jax.jit(counter)`` retrace tests."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.fn(*args, **kwargs)


def fast_key(seed: int = 0) -> Any:
    """A ``jax.random`` key of the RBG generator: the same API as the default threefry key,
    but its random-number kernels compile several times faster (tests with many shapes)."""
    return jax.random.key(seed, impl="rbg")
