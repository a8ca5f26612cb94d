"""Backpropagation written out by hand: parameter gradients without ``jax.grad``.

Every layer of :mod:`functional_dl.nn` carries its hand-derived backward pass
(``layer.backward``, built from the vjps registered in :mod:`functional_dl.grads`:
``dW = X^T dZ`` for linear, transposed convolutions for conv, arg-max routing for max
pooling, the closed-form batch-norm backward, the dropout mask, ...). A
:func:`~functional_dl.nn.Sequential` model chains them the classic way::

    forward:  x_0 = x,  x_{l+1} = layer_l(x_l)       (every input x_l is recorded)
    backward: g_L = dL/dy,  (dparams_l, g_l) = layer_l.backward(x_l, g_{l+1})

This module runs that chain for a model and a loss; the result equals ``jax.grad`` of
the same loss (checked in the tests and shown in ``notebooks/05_layers.ipynb``). No
reverse-mode autodiff runs here: every step is a closed-form rule (the loss gradient
too).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import activations, losses
from ._core import Layer

__all__ = ["backward", "cross_entropy_value_and_grad"]

_IGNORE_INDEX = -100  # cross_entropy's default


def backward(
    model: Layer, params: Any, state: Any, x: Any, g: Any, *, key: Any = None, train: bool = False
) -> tuple[Any, Any]:
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
      >>> model = fdl.nn.Sequential(fdl.nn.Linear(4), fdl.nn.ReLU(), fdl.nn.Linear(2))
      >>> x = jnp.ones((3, 5))
      >>> params, state = model.init(jax.random.key(0), x.shape)
      >>> y, _ = model.apply(params, state, x)
      >>> param_grads, dx = backward(model, params, state, x, jnp.ones_like(y))
      >>> param_grads["2_linear"]["weight"].shape, dx.shape
      ((4, 2), (3, 5))
    """
    if model.backward is None:
        raise ValueError(
            f"backward: layer {model.name!r} (or one of its children) has no "
            "hand-derived backward pass"
        )
    return model.backward(params, state, x, g, key=key, train=train)


def cross_entropy_value_and_grad(
    model: Layer,
    params: Any,
    state: Any,
    x: Any,
    labels: Any,
    *,
    key: Any = None,
    train: bool = True,
) -> tuple[tuple[Any, Any], Any]:
    """Mean cross-entropy of ``model`` and its parameter gradients, by hand.

    Args:
      model: a :class:`Layer` whose output is logits ``[N, num_classes]``.
      params, state, x, key, train: as for ``model.apply``.
      labels: integer class indices ``[N]``.

    Returns:
      ``((loss, new_state), param_grads)`` like
      ``jax.value_and_grad(loss_fn, has_aux=True)(params)`` would: the loss is
      :func:`functional_dl.losses.cross_entropy` (default options: ``ignore_index=-100``
      rows skipped), its gradient w.r.t. the logits the closed form
      ``(softmax(z) - onehot(y)) / N`` (``N`` the rows not ignored), and the parameter
      gradients come from :func:`backward`.

    Example:
      >>> model = fdl.nn.Sequential(fdl.nn.Linear(8), fdl.nn.ReLU(), fdl.nn.Linear(3))
      >>> x, labels = jnp.ones((4, 5)), jnp.array([0, 1, 2, 1])
      >>> params, state = model.init(jax.random.key(0), x.shape)
      >>> (loss, state), param_grads = cross_entropy_value_and_grad(
      ...     model, params, state, x, labels
      ... )
      >>> loss.shape, param_grads["0_linear"]["weight"].shape
      ((), (5, 8))
    """
    logits, new_state = model.apply(params, state, x, key=key, train=train)
    loss = losses.cross_entropy(logits, labels)
    # dL/dz = (softmax(z) - onehot(y)) / N over the rows whose label is not ignored
    labels = jnp.asarray(labels)
    keep = (labels != _IGNORE_INDEX)[:, None]
    count = jnp.maximum(jnp.sum(keep), 1).astype(logits.dtype)
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    g = jnp.where(keep, activations.softmax(logits, axis=-1) - onehot, 0.0) / count
    param_grads, _ = backward(model, params, state, x, g, key=key, train=train)
    return (loss, new_state), param_grads
