"""Dense, embedding, dropout and reshaping layers.

Every constructor returns a :class:`Layer` whose ``init`` infers input sizes from
``input_shape`` and uses PyTorch's default initialization, whose ``apply`` calls the
matching :mod:`functional_dl.nn.functional` op, and whose ``backward`` calls that op's
hand-derived vjp.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._checks import check_int, check_probability
from . import init as initializers
from ._core import Init, Layer, constructor, no_params, stateless, weight_and_bias, weighted_layer
from .functional._dropout import dropout, dropout_backward
from .functional._embedding import embedding, embedding_backward
from .functional._linear import linear, linear_backward

__all__ = ["Linear", "Flatten", "Embedding", "Dropout"]


@constructor(("in_features", "out_features", "bias"), inferred=("in_features",))
def Linear(
    out_features: int,
    *,
    bias: bool = True,
    weight_init: Init | None = None,
    bias_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """Fully connected layer ``y = x @ weight + bias`` on the last axis.

    Params: ``{"weight": [in, out], "bias": [out]}``; ``in`` is ``input_shape[-1]``.
    Default init as PyTorch: weight ``kaiming_uniform(a=sqrt(5))`` = ``U(+-1/sqrt(in))``,
    bias ``U(+-1/sqrt(in))``. ``weight_init``/``bias_init`` (``fn(key, shape, dtype)``)
    override it. PyTorch: ``torch.nn.Linear(in, out_features, bias)``; ``in`` is inferred,
    so ``torch.nn.Linear(400, 120)`` is ``Linear(120)`` (``Linear(400, 120)`` raises).

    Example:
      >>> params, state = Linear(10).init(jax.random.key(0), (32, 64))
      >>> params["weight"].shape, params["bias"].shape
      ((64, 10), (10,))
    """
    check_int("out_features", out_features, minimum=1, fn="Linear")

    def init(key, input_shape):
        fan_in = int(input_shape[-1])
        shape = (fan_in, out_features)
        inits = (weight_init, bias_init)
        return weight_and_bias(key, shape, fan_in, out_features, bias, *inits, dtype), {}

    return weighted_layer("linear", init, linear, linear_backward)


@constructor(("start_dim", "end_dim"))
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

    return stateless("flatten", no_params, forward, backward)


@constructor(("num_embeddings", "embedding_dim", "padding_idx", "max_norm"))
def Embedding(
    num_embeddings: int,
    embedding_dim: int,
    *,
    padding_idx: int | None = None,
    weight_init: Init | None = None,
    dtype: Any = jnp.float32,
) -> Layer:
    """Lookup table: integer ids ``[...]`` to vectors ``[..., embedding_dim]``.

    Params: ``{"weight": [num_embeddings, embedding_dim]}`` drawn from ``N(0, 1)``
    (PyTorch). In a :func:`Sequential`, pass ``jax.ShapeDtypeStruct(shape, jnp.int32)`` as
    ``input_shape``. ``padding_idx`` (in ``[-num_embeddings, num_embeddings)``, negative
    counts from the end) is PyTorch's: its row starts at zeros and gets no gradient, so it
    stays what it is during training. PyTorch: ``torch.nn.Embedding(num_embeddings,
    embedding_dim, padding_idx)``.

    Example:
      >>> params, _ = Embedding(100, 16).init(jax.random.key(0), (4, 7))
      >>> params["weight"].shape
      (100, 16)
      >>> Embedding(5, 2, padding_idx=0).init(jax.random.key(0), (1,))[0]["weight"][0]
      Array([0., 0.], dtype=float32)
    """
    check_int("num_embeddings", num_embeddings, minimum=1, fn="Embedding")
    check_int("embedding_dim", embedding_dim, minimum=1, fn="Embedding")
    pad = None
    if padding_idx is not None:
        check_int("padding_idx", padding_idx, fn="Embedding")
        if not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(
                f"Embedding: padding_idx must be in [-num_embeddings, num_embeddings) = "
                f"[{-num_embeddings}, {num_embeddings}), got padding_idx={padding_idx}"
            )
        pad = padding_idx % num_embeddings

    def init(key, input_shape):
        shape = (num_embeddings, embedding_dim)
        weight = (weight_init or initializers.normal)(key, shape, dtype)
        if pad is not None:
            weight = weight.at[pad].set(0)
        return {"weight": weight}, {}

    def forward(params, ids, key, train):
        weight = params["weight"]
        if pad is not None:  # the padding row gets no gradient (PyTorch)
            weight = weight.at[pad].set(jax.lax.stop_gradient(weight[pad]))
        return embedding(ids, weight)

    def backward(params, ids, g, key, train):
        dw = embedding_backward(ids, params["weight"], g)
        return {"weight": dw if pad is None else dw.at[pad].set(0)}, None

    return stateless("embedding", init, forward, backward)


@constructor(("p", "inplace"))
def Dropout(rate: float = 0.5) -> Layer:
    """Inverted dropout in training (``train=True``, needs ``key``), identity otherwise.

    Raises ``ValueError`` when ``train=True``, ``rate > 0`` and ``key`` is ``None``.
    PyTorch: ``torch.nn.Dropout(p=rate)``.

    Example:
      >>> y, _ = Dropout(0.5).apply({}, {}, jnp.ones(4), key=jax.random.key(0), train=True)
      >>> y  # entries 0 or 1 / (1 - 0.5)
      Array([0., 0., 2., 2.], dtype=float32)
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

    return stateless("dropout", no_params, forward, backward)
