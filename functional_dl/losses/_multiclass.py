"""Multi-class losses besides cross-entropy: multi-class margin and softmax focal loss."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_choice, check_floating, check_nonnegative
from ._common import (
    EXAMPLE_WEIGHT,
    check_broadcastable,
    check_class_target,
    check_class_weight,
    class_mask,
    class_target_masks,
    dpow0,
    live_class_loss,
    per_class,
    poison,
    pow0,
)
from ._reduction import check_reduction

__all__ = ["multi_margin_loss", "softmax_focal_loss"]


def _logits_and_target(fn, input, target):
    x = jnp.asarray(input)
    check_floating("input", x, fn=fn)
    target = jnp.asarray(target)
    return x, target


# ------------------------------------------------------------------ multi_margin_loss
def _margins(x, target, margin):
    """``(h, y, bad)``: hinge terms ``max(0, margin − x_y + x_i)`` for ``i ≠ y``, [..., C]."""
    num_classes = x.shape[-1]
    _, bad, y = class_target_masks(target, num_classes)
    xy = jnp.take_along_axis(x, y[..., None], axis=-1)
    h = margin - xy + x
    active = ~class_mask(y, num_classes) & ((h > 0) | jnp.isnan(h))  # NaN stays
    return jnp.where(active, h, 0), y, bad


def _multi_margin_formula(x, target, weight=None, *, p=1, margin=1.0):
    h, y, bad = _margins(x, target, margin)
    w_y = 1.0 if weight is None else jnp.take(weight, y)
    loss = w_y * jnp.sum(h if p == 1 else h * h, axis=-1) / x.shape[-1]
    return poison(bad, loss)


def _multi_margin_backward(x, target, weight, g, *, p=1, margin=1.0):
    """With ``h_i = margin − x_y + x_i`` (i ≠ y) and ``k_i = w[y]/C·p·max(0, h_i)^(p−1)``
    (``[h_i > 0]`` for p = 1): ``dx_i = g·k_i`` for i ≠ y and ``dx_y = −g·Σ_i k_i``.
    """
    h, y, bad = _margins(x, target, margin)
    w_y = 1.0 if weight is None else jnp.take(weight, y)
    k = (h > 0).astype(x.dtype) if p == 1 else 2 * h
    k = poison(bad, g * w_y / x.shape[-1])[..., None] * k
    onehot = class_mask(y, x.shape[-1])
    return k - jnp.where(onehot, jnp.sum(k, axis=-1, keepdims=True), 0)


def multi_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    p: int = 1,
    margin: float = 1.0,
    weight: ArrayLike | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Multi-class hinge loss (Weston–Watkins form, PyTorch's ``multi_margin_loss``).

    ``loss_n = Σ_{i ≠ y_n} max(0, margin − x_n[y_n] + x_n[i])^p · w[y_n] / C``;
    ``'mean'`` divides by the number of elements (not by the weights). The gradient of
    ``max(0, ·)`` at 0 is 0. A target outside ``[0, C)`` gives a NaN loss and gradient.
    Gradient, with ``h_i = margin − x_y + x_i``: ``dx_i = w[y]/C·p·max(0, h_i)^(p−1)``
    (``[h_i > 0]`` for p = 1) for ``i ≠ y``, and ``dx_y = −Σ_{i≠y} dx_i``.

    Args:
      input: scores ``[..., C]`` (class axis last).
      target: integer class indices ``[...]``.
      p: 1 or 2 (default 1).
      margin: margin (default 1.0).
      weight: optional per-class weight ``[C]``.
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[...]`` for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.multi_margin_loss`` (class axis last; ``p``,
    ``margin`` and ``weight`` keyword-only). ``optax.multiclass_hinge_loss`` is the
    Crammer–Singer form (a max, not a sum) and differs.

    Example::

        >>> multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))  # 0.325
        Array(0.325, dtype=float32)
    """
    fn = "multi_margin_loss"
    check_reduction(reduction, fn=fn)
    check_choice("p", p, (1, 2), fn=fn)
    x, target = _logits_and_target(fn, input, target)
    check_class_target(x, target, fn=fn)
    check_class_weight(weight, x.shape[-1], fn=fn)
    return live_class_loss(
        _multi_margin_formula,
        _multi_margin_backward,
        x,
        target,
        weight,
        reduction,
        p=p,
        margin=margin,
    )


# ----------------------------------------------------------------- softmax_focal_loss
def _focal_parts(x, target, alpha):
    """``(t, a, log p, 1 − p, bad)``; integer targets become one-hot."""
    num_classes = x.shape[-1]
    if jnp.issubdtype(target.dtype, jnp.integer):
        _, bad, y = class_target_masks(target, num_classes)
        t = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
    else:
        t, bad = target.astype(x.dtype), None
    a = 1.0 if alpha is None else per_class(alpha, x.shape)
    logp = jax.nn.log_softmax(x, axis=-1)
    return t, a, logp, -jnp.expm1(logp), bad


def _softmax_focal_formula(x, target, alpha=None, *, gamma=2.0):
    t, a, logp, q, bad = _focal_parts(x, target, alpha)
    on = t != 0
    terms = jnp.where(on, a * t * pow0(q, gamma) * jnp.where(on, logp, 0), 0)
    loss = -jnp.sum(terms, axis=-1)
    return loss if bad is None else poison(bad, loss)


def _softmax_focal_backward(x, target, alpha, g, *, gamma=2.0):
    """With ``ℓ = log_softmax(x)``, ``q = 1 − p``:
    ``A_c = −g·α_c·t_c·(q_c^γ − γ·q_c^(γ−1)·p_c·ℓ_c)`` and
    ``dx_j = A_j − p_j·Σ_c A_c``.
    """
    t, a, logp, q, bad = _focal_parts(x, target, alpha)
    g = g if bad is None else poison(bad, g)
    on = t != 0
    logp_on = jnp.where(on, logp, 0)
    p = jnp.exp(logp)
    big_a = -g[..., None] * a * t * (pow0(q, gamma) - dpow0(q, gamma) * p * logp_on)
    big_a = jnp.where(on, big_a, 0)
    return big_a - p * jnp.sum(big_a, axis=-1, keepdims=True)


def softmax_focal_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    gamma: float = 2.0,
    alpha: ArrayLike | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Multi-class focal loss on softmax probabilities.

    ``loss_n = −Σ_c α_c·t_c·(1 − p_c)^γ·log p_c`` with ``p = softmax(input)``; for
    integer targets ``t`` is one-hot, i.e. ``loss_n = −α_y·(1 − p_y)^γ·log p_y``.
    ``γ = 0`` with ``alpha=None`` is :func:`cross_entropy`. ``1 − p`` is computed as
    ``−expm1(log p)``; classes with ``t_c = 0`` add nothing, even at a −inf logit.
    A target index outside ``[0, C)`` gives a NaN loss and gradient. Gradient, with
    ``ℓ = log p``, ``q = 1 − p`` and ``A_c = −α_c·t_c·(q_c^γ − γ·q_c^(γ−1)·p_c·ℓ_c)``:
    ``dx_j = A_j − p_j·Σ_c A_c``.

    Args:
      input: logits ``[..., C]`` (class axis last).
      target: integer class indices ``[...]`` or probabilities ``[..., C]``.
      gamma: focusing exponent ``>= 0`` (default 2.0).
      alpha: ``None`` (no weighting), a scalar, or per-class weights ``[C]``.
      reduction: ``'mean'`` (default, over elements), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[...]`` for ``'none'``; ``input``'s dtype.

    PyTorch has no built-in counterpart; this is the softmax form of Lin et al., *Focal
    Loss for Dense Object Detection*, 2017 (see :func:`sigmoid_focal_loss` for the
    sigmoid form).

    Example::

        >>> softmax_focal_loss(jnp.array([[2.0, 0.0, -1.0]]), jnp.array([0]), gamma=2.0)
        Array(0.0041..., dtype=float32)
    """
    fn = "softmax_focal_loss"
    check_reduction(reduction, fn=fn)
    gamma = check_nonnegative("gamma", gamma, fn=fn)
    x, target = _logits_and_target(fn, input, target)
    if jnp.issubdtype(target.dtype, jnp.floating):
        if target.shape != x.shape:
            raise ValueError(
                f"{fn}: probability targets must have input's shape {x.shape}, "
                f"got target.shape={target.shape}"
            )
    else:
        check_class_target(x, target, fn=fn)
    check_broadcastable("alpha", alpha, x.shape[-1:], fn=fn)
    return live_class_loss(
        _softmax_focal_formula, _softmax_focal_backward, x, target, alpha, reduction, gamma=gamma
    )


# ---------------------------------------------------------------- gradient registry


def _scores():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(6, 5))
    x[0] = [1.0, 0.0, 0.5, -2.0, 1e4]
    x[1] = [0.0, 1.0, 0.0, 0.0, 0.0]  # h = 0 exactly: the kink of max(0, ·)
    return [(x, np.array([2, 1, 0, 4, 3, 1]))]


def _smooth_scores():
    rng = np.random.default_rng(11)
    return [(rng.normal(size=(6, 5)) * 2, np.array([2, 1, 0, 4, 3, 1]))]


for _p, _margin, _w in [(1, 1.0, None), (2, 0.5, EXAMPLE_WEIGHT)]:
    _kw = dict(p=_p, margin=_margin)
    grads.register(
        f"multi_margin_loss(p={_p}, margin={_margin}{', weight' if _w is not None else ''})",
        forward=functools.partial(_multi_margin_formula, weight=_w, **_kw),
        backward=lambda x, y, g, w=_w, kw=_kw: _multi_margin_backward(x, y, w, g, **kw),
        examples=_scores,
        fd_examples=_smooth_scores,
        public=lambda x, y, w=_w, kw=_kw: multi_margin_loss(x, y, weight=w, **kw, reduction="none"),
    )


def _focal_examples():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 5)) * 2
    x[0] = [40.0, -1e4, 0.0, 1.0, 2.0]  # p_y = 1: q = 0
    x[1, 1:] = -np.inf
    soft = (rng.normal(size=(6, 5)), rng.dirichlet(np.ones(5), size=6))
    return [(x, np.array([0, 0, 1, 2, 3, 4])), soft]


_ALPHA = np.array([0.25, 1.0, 0.5, 2.0, 1.5])
for _gamma, _alpha in [(2.0, None), (0.5, _ALPHA)]:
    grads.register(
        f"softmax_focal_loss(gamma={_gamma}{', alpha' if _alpha is not None else ''})",
        forward=functools.partial(_softmax_focal_formula, alpha=_alpha, gamma=_gamma),
        backward=lambda x, t, g, a=_alpha, gm=_gamma: _softmax_focal_backward(x, t, a, g, gamma=gm),
        examples=_focal_examples,
        fd_examples=lambda: [
            (np.random.default_rng(13).normal(size=(6, 5)), np.array([0, 3, 1, 2, 4, 1]))
        ],
        public=lambda x, t, a=_alpha, gm=_gamma: softmax_focal_loss(
            x, t, alpha=a, gamma=gm, reduction="none"
        ),
    )
