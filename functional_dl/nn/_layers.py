"""Dense, per-sample normalisation, embedding, dropout and reshaping layers.

Every constructor returns a :class:`Layer` whose ``init`` infers input sizes from
``input_shape`` and uses PyTorch's default initialization, whose ``apply`` calls the
matching :mod:`functional_dl.nn.functional` op, and whose ``backward`` calls that op's
hand-derived vjp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_int, check_positive, check_probability
from . import init as initializers
from ._core import Layer
from ._dropout import dropout, dropout_backward
from ._embedding import embedding, embedding_backward
from ._linear import linear, linear_backward
from ._norm import layer_norm, layer_norm_backward, rms_norm, rms_norm_backward

__all__ = [
    "stateless",
    "named_grads",
    "fan_in_uniform",
    "default_weight_init",
    "affine_init",
    "Linear",
    "Flatten",
    "LayerNorm",
    "RMSNorm",
    "Embedding",
    "Dropout",
]

Init = Callable[..., Any]


def stateless(name: str, init: Callable, forward: Callable, backward: Callable) -> Layer:
    """A :class:`Layer` without state from ``forward(params, x, key, train) -> y`` and
    ``backward(params, x, g, key, train) -> (param_grads, dx)``."""

    def apply(params, state, x, *, key=None, train=False):
        return forward(params, x, key, train), state

    def bwd(params, state, x, g, *, key=None, train=False):
        return backward(params, x, g, key, train)

    return Layer(init, apply, name, bwd)


def named_grads(params: dict, **grads: Any) -> dict:
    """The gradients of ``params``' keys only (absent optional parameters stay absent)."""
    return {k: grads[k] for k in params}


def fan_in_uniform(key: Any, shape: tuple[int, ...], fan_in: int, dtype: Any) -> Any:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default bias init of linear/conv."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return initializers.uniform(key, shape, dtype, a=-bound, b=bound)


def default_weight_init(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """PyTorch's ``kaiming_uniform_(w, a=sqrt(5))``: ``U(+-1/sqrt(fan_in))``."""
    return initializers.kaiming_uniform(key, shape, dtype, a=math.sqrt(5.0))


def _ones(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    return initializers.ones(key, shape, dtype)


def _zeros(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    return initializers.zeros(key, shape, dtype)


def Linear(
    out_features: int,
    bias: bool = True,
    *,
    weight_init: Init | None = None,
    bias_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """Fully connected layer ``y = x @ weight + bias`` on the last axis.

    Params: ``{"weight": [in, out], "bias": [out]}``; ``in`` is ``input_shape[-1]``.
    Default init as PyTorch: weight ``kaiming_uniform(a=sqrt(5))`` = ``U(+-1/sqrt(in))``,
    bias ``U(+-1/sqrt(in))``. ``weight_init``/``bias_init`` (``fn(key, shape, dtype)``)
    override it. PyTorch: ``torch.nn.Linear(in, out_features, bias)``.

    Example:
      >>> params, state = Linear(10).init(jax.random.key(0), (32, 64))
    """
    check_int("out_features", out_features, minimum=1, fn="Linear")

    def init(key, input_shape):
        fan_in = int(input_shape[-1])
        kw, kb = jax.random.split(key)
        w_init = weight_init or default_weight_init
        params = {"weight": w_init(kw, (fan_in, out_features), dtype)}
        if bias:
            params["bias"] = (
                bias_init(kb, (out_features,), dtype)
                if bias_init
                else fan_in_uniform(kb, (out_features,), fan_in, dtype)
            )
        return params, {}

    def forward(params, x, key, train):
        return linear(x, params["weight"], params.get("bias"))

    def backward(params, x, g, key, train):
        dx, dw, db = linear_backward(x, params["weight"], params.get("bias"), g)
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("linear", init, forward, backward)


def Flatten() -> Layer:
    """Flatten every axis but the first: ``[N, ...] -> [N, prod(...)]``.

    PyTorch: ``torch.nn.Flatten()`` (``start_dim=1``).

    Example:
      >>> Flatten().apply({}, {}, jnp.ones((2, 3, 4)))[0].shape
      (2, 12)
    """

    def forward(params, x, key, train):
        return jnp.reshape(x, (x.shape[0], -1))

    def backward(params, x, g, key, train):
        return {}, jnp.reshape(g, x.shape)

    return stateless("flatten", lambda key, input_shape: ({}, {}), forward, backward)


def affine_init(shape_fn: Callable, weight: bool, bias: bool, dtype: Any) -> Callable:
    """``init`` of a normalisation layer: ``weight`` ones and ``bias`` zeros of
    ``shape_fn(input_shape)``, no state."""

    def init(key, input_shape):
        shape = shape_fn(tuple(input_shape))
        params = {}
        if weight:
            params["weight"] = _ones(key, shape, dtype)
        if bias:
            params["bias"] = _zeros(key, shape, dtype)
        return params, {}

    return init


def LayerNorm(
    eps: float = 1e-5,
    *,
    elementwise_affine: bool = True,
    bias: bool = True,
    dtype: Any = jnp.float32,
) -> Layer:
    """Layer normalisation over the last axis (:func:`~functional_dl.nn.functional.layer_norm`).

    Params: ``{"weight": [D], "bias": [D]}`` initialised to ones and zeros (PyTorch).
    PyTorch: ``torch.nn.LayerNorm(D, eps, elementwise_affine, bias)``.

    Example:
      >>> params, _ = LayerNorm().init(jax.random.key(0), (8, 16))
    """
    check_positive("eps", eps, fn="LayerNorm")
    init = affine_init(lambda s: s[-1:], elementwise_affine, elementwise_affine and bias, dtype)

    def forward(params, x, key, train):
        return layer_norm(x, params.get("weight"), params.get("bias"), eps=eps)

    def backward(params, x, g, key, train):
        dx, dw, db = layer_norm_backward(x, params.get("weight"), params.get("bias"), g, eps=eps)
        return named_grads(params, weight=dw, bias=db), dx

    return stateless("layer_norm", init, forward, backward)


def RMSNorm(
    eps: float | None = None, *, elementwise_affine: bool = True, dtype: Any = jnp.float32
) -> Layer:
    """RMS normalisation over the last axis (:func:`~functional_dl.nn.functional.rms_norm`).

    Params: ``{"weight": [D]}`` initialised to ones. ``eps=None`` means
    ``finfo(x.dtype).eps`` (PyTorch). PyTorch: ``torch.nn.RMSNorm(D, eps)``.

    Example:
      >>> params, _ = RMSNorm().init(jax.random.key(0), (8, 16))
    """
    if eps is not None:
        check_positive("eps", eps, fn="RMSNorm")
    init = affine_init(lambda s: s[-1:], elementwise_affine, False, dtype)

    def forward(params, x, key, train):
        return rms_norm(x, params.get("weight"), eps=eps)

    def backward(params, x, g, key, train):
        dx, dw = rms_norm_backward(x, params.get("weight"), g, eps=eps)
        return named_grads(params, weight=dw), dx

    return stateless("rms_norm", init, forward, backward)


def Embedding(
    num_embeddings: int,
    embedding_dim: int,
    *,
    weight_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """Lookup table: integer ids ``[...]`` to vectors ``[..., embedding_dim]``.

    Params: ``{"weight": [num_embeddings, embedding_dim]}`` drawn from ``N(0, 1)``
    (PyTorch). In a :func:`Sequential`, pass ``jax.ShapeDtypeStruct(shape, jnp.int32)`` as
    ``input_shape``. PyTorch: ``torch.nn.Embedding(num_embeddings, embedding_dim)``.

    Example:
      >>> params, _ = Embedding(100, 16).init(jax.random.key(0), (4, 7))
    """
    check_int("num_embeddings", num_embeddings, minimum=1, fn="Embedding")
    check_int("embedding_dim", embedding_dim, minimum=1, fn="Embedding")

    def init(key, input_shape):
        shape = (num_embeddings, embedding_dim)
        return {"weight": (weight_init or initializers.normal)(key, shape, dtype)}, {}

    def forward(params, ids, key, train):
        return embedding(ids, params["weight"])

    def backward(params, ids, g, key, train):
        return {"weight": embedding_backward(ids, params["weight"], g)}, None

    return stateless("embedding", init, forward, backward)


def Dropout(rate: float = 0.5) -> Layer:
    """Inverted dropout in training (``train=True``, needs ``key``), identity otherwise.

    Raises ``ValueError`` when ``train=True``, ``rate > 0`` and ``key`` is ``None``.
    PyTorch: ``torch.nn.Dropout(p=rate)``.

    Example:
      >>> y, _ = Dropout(0.1).apply({}, {}, x, key=jax.random.key(0), train=True)
    """
    check_probability("rate", rate, fn="Dropout")

    def forward(params, x, key, train):
        if train and rate > 0 and key is None:
            raise ValueError(
                f"Dropout: apply needs a key when train=True (rate={rate}), got key=None"
            )
        return dropout(key, x, rate, train=train)

    def backward(params, x, g, key, train):
        return {}, dropout_backward(key, x, rate, g, train=train)

    return stateless("dropout", lambda key, input_shape: ({}, {}), forward, backward)
