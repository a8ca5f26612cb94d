"""Backpropagation written out by hand: parameter gradients without ``jax.grad``.

Every layer of :mod:`functional_dl.nn` carries its hand-derived backward pass
(``layer.backward``, built from the vjps registered in :mod:`functional_dl.grads`:
``dW = X^T dZ`` for linear, transposed convolutions for conv, arg-max routing for max
pooling, the closed-form batch-norm backward, the dropout mask, ...). A
:func:`~functional_dl.nn.Sequential` model chains them the classic way::

    forward:  x_0 = x,  x_{l+1} = layer_l(x_l)       (every input x_l is recorded)
    backward: g_L = dL/dy,  (dparams_l, g_l) = layer_l.backward(x_l, g_{l+1})

This module runs that chain for a model and a loss; the result equals ``jax.grad`` of
the same loss (checked in the tests and shown in ``notebooks/05_layers.ipynb``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._core import Layer

__all__ = ["backward", "cross_entropy_value_and_grad"]


def backward(model: Layer, params: Any, state: Any, x: Any, g: Any, *, key: Any = None,
             train: bool = False) -> tuple[Any, Any]:
    """Vjp of ``model.apply`` at ``x`` for output cotangent ``g``, from hand-derived passes.

    Args:
      model: a :class:`Layer` with a ``backward`` (every layer of ``fdl.nn`` and any
        ``Sequential``/``Residual`` of them).
      params, state: as for ``model.apply``.
      x: the input; g: ``dL/dy``, the shape of the output.
      key, train: as for ``model.apply`` (the same key reproduces the dropout masks).

    Returns:
      ``(param_grads, dx)``; ``param_grads`` has the structure of ``params``.

    Example:
      >>> grads, dx = backward(model, params, state, x, jnp.ones_like(y))
    """
    if model.backward is None:
        raise ValueError(f"backward: layer {model.name!r} (or one of its children) has no "
                         "hand-derived backward pass")
    return model.backward(params, state, x, g, key=key, train=train)


def softmax_cross_entropy_backward(logits: Any, labels: Any) -> Any:
    """``d/dlogits`` of the mean softmax cross-entropy with integer ``labels``.

    .. math:: \\frac{\\partial L}{\\partial z_{nc}} = \\frac{softmax(z_n)_c - [c = y_n]}{N}
    """
    n = labels.size
    p = jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)
    return ((p - jax.nn.one_hot(labels, logits.shape[-1], dtype=p.dtype)) / n).astype(logits.dtype)


def cross_entropy_value_and_grad(model: Layer, params: Any, state: Any, x: Any, labels: Any, *,
                                 key: Any = None, train: bool = True):
    """Mean softmax cross-entropy of ``model`` and its parameter gradients, by hand.

    Args:
      model: a :class:`Layer` whose output is logits ``[N, num_classes]``.
      params, state, x, key, train: as for ``model.apply``.
      labels: integer class indices ``[N]``.

    Returns:
      ``((loss, new_state), param_grads)`` like
      ``jax.value_and_grad(loss_fn, has_aux=True)(params)`` would, with the gradients
      from :func:`backward` and the loss gradient ``(softmax(z) - onehot(y)) / N``.

    Example:
      >>> (loss, state), grads = cross_entropy_value_and_grad(model, params, state, x, y, key=k)
    """
    logits, new_state = model.apply(params, state, x, key=key, train=train)
    logp = jax.nn.log_softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)))
    loss = -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))
    g = softmax_cross_entropy_backward(logits, labels)
    grads, _ = backward(model, params, state, x, g, key=key, train=train)
    return (loss, new_state), grads
