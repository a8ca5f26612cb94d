"""Argument validation shared by every module.

Each helper raises ``ValueError``/``TypeError`` at call (trace) time with a message
that names the argument, the value received and what was expected, e.g.
``ValueError("dropout: rate must be in [0, 1], got rate=1.5")``.

Values that are JAX tracers (a hyperparameter passed through ``jit`` as a traced
array) cannot be inspected at trace time; the numeric checks skip them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "is_concrete",
    "check_choice",
    "check_positive",
    "check_nonnegative",
    "check_in_range",
    "check_int",
    "check_probability",
    "check_ndim",
    "check_same_shape",
    "check_vector",
    "check_floating",
    "check_pair",
    "as_arrays",
    "check_static",
    "nan_if_invalid",
]


def as_arrays(*values: Any) -> Any:
    """The input policy at the boundary of every public array function: a Python list
    given for an array argument becomes a jax array (``jnp.asarray``); anything else
    (arrays, ``None``, tracers) is returned unchanged. One value in, one value out;
    several in, a tuple out.

    Example:
        >>> as_arrays([1.0, 2.0]).dtype, as_arrays(None, [0])[1].shape
        (dtype('float32'), (1,))
    """
    out = tuple(jnp.asarray(v) if isinstance(v, list) else v for v in values)
    return out[0] if len(out) == 1 else out


def is_concrete(value: Any) -> bool:
    """True when ``value`` can be inspected in Python (not a tracer)."""
    return not isinstance(value, jax.core.Tracer)  # pyright: ignore[reportAttributeAccessIssue]


def nan_if_invalid(value: Any, valid: Any) -> Any:
    """A traced hyperparameter that fails its check becomes NaN (so the result is NaN,
    never a plausible number); a concrete one (already checked) is returned unchanged.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> jax.jit(lambda d: nan_if_invalid(d, d > 0))(jnp.float32(-1.0))
        Array(nan, dtype=float32)
    """
    if is_concrete(value):
        return value
    return jnp.where(valid, value, jnp.nan)


def check_static(name: str, value: Any, *, fn: str | None = None) -> None:
    """Raise ``TypeError`` when a hyperparameter that selects the compiled program is
    traced (passed through ``jit`` as an array)."""
    if not is_concrete(value):
        raise TypeError(
            f"{_where(fn)}{name} is static (it selects the compiled program): pass a "
            f"Python value, got a traced {name}"
        )


def _where(fn: str | None) -> str:
    return f"{fn}: " if fn else ""


def check_choice(name: str, value: Any, choices: Iterable[Any], *, fn: str | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{_where(fn)}{name} must be one of {choices!r}, got {name}={value!r}")


def _scalar(name: str, value: Any, fn: str | None) -> float | None:
    if not is_concrete(value):
        return None
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{_where(fn)}{name} must be a number, got {name}={value!r}") from exc
    if arr.ndim != 0 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{_where(fn)}{name} must be a real scalar, got {name}={value!r}")
    return float(arr)


def check_positive(name: str, value: Any, *, fn: str | None = None) -> Any:
    """Raise ``ValueError`` unless ``value > 0`` (and not NaN). Returns ``value``; a traced
    one is returned NaN when invalid (see :func:`nan_if_invalid`)."""
    v = _scalar(name, value, fn)
    if v is not None and not v > 0:
        raise ValueError(f"{_where(fn)}{name} must be > 0, got {name}={value!r}")
    return value if v is not None else nan_if_invalid(value, value > 0)


def check_nonnegative(name: str, value: Any, *, fn: str | None = None) -> Any:
    """Raise ``ValueError`` unless ``value >= 0`` (and not NaN). Returns ``value``; a
    traced one is returned NaN when invalid."""
    v = _scalar(name, value, fn)
    if v is not None and not v >= 0:
        raise ValueError(f"{_where(fn)}{name} must be >= 0, got {name}={value!r}")
    return value if v is not None else nan_if_invalid(value, value >= 0)


def check_in_range(
    name: str,
    value: Any,
    lo: float,
    hi: float,
    *,
    lo_closed: bool = True,
    hi_closed: bool = True,
    fn: str | None = None,
) -> Any:
    """Raise ``ValueError`` unless ``value`` lies in the interval ``lo..hi``. Returns
    ``value``; a traced one is returned NaN when outside the interval."""
    v = _scalar(name, value, fn)
    if v is None:
        ok = (value >= lo if lo_closed else value > lo) & (value <= hi if hi_closed else value < hi)
        return nan_if_invalid(value, ok)
    ok_lo = v >= lo if lo_closed else v > lo
    ok_hi = v <= hi if hi_closed else v < hi
    if not (ok_lo and ok_hi):
        interval = f"{'[' if lo_closed else '('}{lo}, {hi}{']' if hi_closed else ')'}"
        raise ValueError(f"{_where(fn)}{name} must be in {interval}, got {name}={value!r}")
    return value


def check_probability(name: str, value: Any, *, fn: str | None = None) -> Any:
    """Raise ``ValueError`` unless ``0 <= value <= 1``. Returns ``value`` (traced: NaN
    when invalid)."""
    return check_in_range(name, value, 0.0, 1.0, fn=fn)


def check_int(name: str, value: Any, *, minimum: int | None = None, fn: str | None = None) -> None:
    """Raise unless ``value`` is a Python/NumPy integer (not bool), optionally ``>= minimum``.
    Integers (sizes, counts, strides) are static: a traced one gets :func:`check_static`'s
    ``TypeError``."""
    check_static(name, value, fn=fn)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{_where(fn)}{name} must be an int, got {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{_where(fn)}{name} must be >= {minimum}, got {name}={value!r}")


def check_pair(name: str, value: Any, *, ordered: bool = True, fn: str | None = None) -> tuple:
    """Return ``value`` as a 2-tuple of floats; with ``ordered`` require ``lo <= hi``."""
    try:
        lo, hi = value
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{_where(fn)}{name} must be a pair (lo, hi), got {name}={value!r}"
        ) from exc
    if ordered and is_concrete(lo) and is_concrete(hi) and float(lo) > float(hi):
        raise ValueError(f"{_where(fn)}{name} must satisfy lo <= hi, got {name}={value!r}")
    return lo, hi


def check_ndim(name: str, x: Any, ndims: int | Iterable[int], *, fn: str | None = None) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is (one of) ``ndims``."""
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    nd = np.ndim(x)
    if nd not in allowed:
        want = allowed[0] if len(allowed) == 1 else f"one of {allowed}"
        raise ValueError(
            f"{_where(fn)}{name} must have rank {want}, got {name}.shape={tuple(np.shape(x))}"
        )


def check_same_shape(name_a: str, a: Any, name_b: str, b: Any, *, fn: str | None = None) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    sa, sb = tuple(np.shape(a)), tuple(np.shape(b))
    if sa != sb:
        raise ValueError(
            f"{_where(fn)}{name_a} and {name_b} must have the same shape, "
            f"got {name_a}.shape={sa} and {name_b}.shape={sb}"
        )


def check_vector(
    name: str, v: Any, size: int, *, fn: str | None = None, of: str = "", size_name: str = ""
) -> None:
    """Raise ``ValueError`` unless ``v`` is ``None`` or has shape ``[size]``.

    The message says where ``size`` comes from: ``of`` (``"... to match w.shape=(8, 3)"``)
    and/or ``size_name`` (``"(num_classes,)=(5,)"``).
    """
    if v is not None and tuple(np.shape(v)) != (size,):
        want = f"({size_name},)=({size},)" if size_name else f"({size},)"
        source = f" to match {of}" if of else ""
        raise ValueError(
            f"{_where(fn)}{name} must have shape {want}{source}, "
            f"got {name}.shape={tuple(np.shape(v))}"
        )


def check_floating(name: str, x: Any, *, fn: str | None = None) -> None:
    """Raise ``TypeError`` unless ``x`` has a floating dtype."""
    dtype = jax.numpy.result_type(x)
    if not jax.numpy.issubdtype(dtype, jax.numpy.floating):
        raise TypeError(f"{_where(fn)}{name} must be a floating array, got {name}.dtype={dtype}")
