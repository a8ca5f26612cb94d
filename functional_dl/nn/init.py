"""Parameter initializers with PyTorch's gain and fan conventions.

Every initializer is ``init_fn(key, shape, dtype=jnp.float32, *, ...) -> array``.
Fans follow PyTorch for our weight layouts (``[in, out]`` linear, ``[kh, kw, in, out]``
conv): with ``receptive = prod(shape[:-2])``,

.. math:: fan_{in} = shape[-2] \\cdot receptive, \\qquad fan_{out} = shape[-1] \\cdot receptive

so a conv kernel ``[kh, kw, C, O]`` has ``fan_in = kh·kw·C`` exactly as PyTorch's
``[O, C, kh, kw]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_choice, check_nonnegative, is_concrete

__all__ = [
    "calculate_gain",
    "fans",
    "uniform",
    "normal",
    "zeros",
    "ones",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_normal",
    "orthogonal",
]

_NONLINEARITIES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    linear/conv/sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu:
    sqrt(2 / (1 + param^2)) with ``param`` the negative slope (default 0.01); selu: 3/4.

    Example:
      >>> round(calculate_gain("relu"), 4)
      1.4142
    """
    check_choice("nonlinearity", nonlinearity, _NONLINEARITIES, fn="calculate_gain")
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 0.75
    return 1.0


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (layout ``[..., in, out]``).

    Raises ``ValueError`` for fewer than 2 dimensions (as PyTorch).
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fans: shape must have at least 2 dimensions, got shape={shape}")
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def uniform(
    key: Any, shape: Sequence[int], dtype: Any = jnp.float32, *, a: float = 0.0, b: float = 1.0
) -> Any:
    """Samples of ``U(a, b)`` (``torch.nn.init.uniform_``).

    Example:
      >>> uniform(jax.random.key(0), (2, 3), a=-1.0, b=1.0).shape
      (2, 3)
    """
    if is_concrete(a) and is_concrete(b) and not float(a) <= float(b):
        raise ValueError(f"uniform: needs a <= b, got a={a}, b={b}")
    return jax.random.uniform(key, tuple(shape), dtype, minval=a, maxval=b)


def normal(
    key: Any, shape: Sequence[int], dtype: Any = jnp.float32, *, mean: float = 0.0, std: float = 1.0
) -> Any:
    """Samples of ``N(mean, std^2)`` (``torch.nn.init.normal_``).

    Example:
      >>> normal(jax.random.key(0), (3,), std=0.02).shape
      (3,)
    """
    check_nonnegative("std", std, fn="normal")
    return mean + std * jax.random.normal(key, tuple(shape), dtype)


def zeros(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
    """All zeros (``torch.nn.init.zeros_``); ``key`` is ignored.

    Example:
      >>> zeros(None, (2,))
      Array([0., 0.], dtype=float32)
    """
    return jnp.zeros(tuple(shape), dtype)


def ones(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
    """All ones (``torch.nn.init.ones_``); ``key`` is ignored.

    Example:
      >>> ones(None, (2,))
      Array([1., 1.], dtype=float32)
    """
    return jnp.ones(tuple(shape), dtype)


def xavier_uniform(
    key: Any, shape: Sequence[int], dtype: Any = jnp.float32, *, gain: float = 1.0
) -> Any:
    """Glorot uniform: ``U(-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    PyTorch: ``torch.nn.init.xavier_uniform_``. Glorot & Bengio (2010).

    Example:
      >>> xavier_uniform(jax.random.key(0), (64, 32)).shape
      (64, 32)
    """
    bound = gain * math.sqrt(6.0 / sum(fans(shape)))  # fan_in + fan_out
    return uniform(key, shape, dtype, a=-bound, b=bound)


def xavier_normal(
    key: Any, shape: Sequence[int], dtype: Any = jnp.float32, *, gain: float = 1.0
) -> Any:
    """Glorot normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    PyTorch: ``torch.nn.init.xavier_normal_``. Glorot & Bengio (2010).

    Example:
      >>> xavier_normal(jax.random.key(0), (3, 3, 8, 16)).shape
      (3, 3, 8, 16)
    """
    return normal(key, shape, dtype, std=gain * math.sqrt(2.0 / sum(fans(shape))))


def _kaiming_std(shape: Sequence[int], a: float, mode: str, nonlinearity: str, fn: str) -> float:
    check_choice("mode", mode, ("fan_in", "fan_out"), fn=fn)
    fan_in, fan_out = fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform(
    key: Any,
    shape: Sequence[int],
    dtype: Any = jnp.float32,
    *,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
) -> Any:
    """He uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``.

    ``gain = calculate_gain(nonlinearity, a)``; ``fan`` is ``fan_in`` or ``fan_out``
    (``mode``). PyTorch: ``torch.nn.init.kaiming_uniform_`` (same defaults; with
    ``a=sqrt(5)`` it is the default init of ``nn.Linear``/``nn.Conv2d``). He et al. (2015).

    Example:
      >>> kaiming_uniform(jax.random.key(0), (3, 3, 16, 32)).shape
      (3, 3, 16, 32)
    """
    bound = math.sqrt(3.0) * _kaiming_std(shape, a, mode, nonlinearity, "kaiming_uniform")
    return uniform(key, shape, dtype, a=-bound, b=bound)


def kaiming_normal(
    key: Any,
    shape: Sequence[int],
    dtype: Any = jnp.float32,
    *,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
) -> Any:
    """He normal: ``N(0, std^2)`` with ``std = gain / sqrt(fan)``.

    PyTorch: ``torch.nn.init.kaiming_normal_`` (same defaults). He et al. (2015).

    Example:
      >>> kaiming_normal(jax.random.key(0), (128, 64), nonlinearity="relu").shape
      (128, 64)
    """
    return normal(
        key, shape, dtype, std=_kaiming_std(shape, a, mode, nonlinearity, "kaiming_normal")
    )


def lecun_normal(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
    """LeCun normal: ``N(0, 1 / fan_in)``.

    PyTorch: ``kaiming_normal_(w, nonlinearity='linear')``. ``jax.nn.initializers.lecun_normal``
    samples a truncated normal instead (same variance). LeCun et al. (1998).

    Example:
      >>> lecun_normal(jax.random.key(0), (128, 64)).shape
      (128, 64)
    """
    return normal(key, shape, dtype, std=1.0 / math.sqrt(fans(shape)[0]))


def orthogonal(
    key: Any, shape: Sequence[int], dtype: Any = jnp.float32, *, gain: float = 1.0
) -> Any:
    """A (semi-)orthogonal matrix times ``gain``, from the QR decomposition of a Gaussian.

    The weight is viewed as ``[fan_in, out]`` (``prod(shape[:-1])`` rows): its columns are
    orthonormal when ``out <= fan_in``, else its rows are. Signs are fixed by
    ``diag(R)`` so the result is Haar-distributed. PyTorch: ``torch.nn.init.orthogonal_``
    (there on the ``[out, in]`` layout, so the same matrices up to transposition).
    Saxe et al. (2014).

    Example:
      >>> w = orthogonal(jax.random.key(0), (64, 32))
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(32), atol=1e-5))
      True
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: shape must have at least 2 dimensions, got shape={shape}")
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = jax.random.normal(
        key, (max(rows, cols), min(rows, cols)), jnp.promote_types(dtype, jnp.float32)
    )
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)
