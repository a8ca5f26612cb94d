"""Multi-label margin losses and the triplet loss with a custom distance.

Hand-derived gradients are the live ones (``jax.custom_jvp``, tangents linear in the
input tangents); each is registered in :mod:`functional_dl.grads`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_choice, check_ndim, check_positive, is_concrete
from ._common import check_broadcastable, float_inputs, same_shape_inputs
from ._pointwise_more import with_jvp
from ._reduction import check_reduction, reduce_loss

__all__ = [
    "multilabel_soft_margin_loss",
    "multilabel_margin_loss",
    "triplet_margin_with_distance_loss",
]


# ------------------------------------------------------- multilabel_soft_margin_loss
def _mlsm_formula(x, y, w):
    """Per-element ``−w·(y·log σ(x) + (1 − y)·log σ(−x))`` (summed over classes later)."""
    return w * (jnp.logaddexp(0.0, -x) + (1 - y) * x)


def _mlsm_derivative(x, y, w):
    """``∂/∂x = w·(σ(x) − y)``, ``∂/∂y = −w·x``, ``∂/∂w = the unweighted loss``."""
    return w * (jax.nn.sigmoid(x) - y), -w * x, jnp.logaddexp(0.0, -x) + (1 - y) * x


_mlsm = with_jvp(_mlsm_formula, _mlsm_derivative, 3)


def multilabel_soft_margin_loss(
    input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None, *, reduction: str = "mean"
) -> jax.Array:
    """One-versus-all logistic loss over ``C`` independent labels, averaged over classes.

    ``loss_n = −(1/C)·Σ_c w_c·(y_c·log σ(x_c) + (1 − y_c)·log σ(−x_c))`` (computed as
    ``w·(softplus(−x) + (1 − y)·x)``, finite at ±1e4). Gradient: ``w·(σ(x) − y)/C``.

    Args:
      input: ``[..., C]`` logits.
      target: ``[..., C]`` labels in {0, 1} (or probabilities).
      weight: optional per-class weights broadcastable to ``[..., C]`` (typically ``[C]``).
      reduction: ``'mean'`` over the rows (default), ``'sum'`` or ``'none'`` (``[...]``).

    Returns:
      a scalar, or ``[...]`` for ``'none'``; the inputs' dtype.

    Equivalent to ``torch.nn.functional.multilabel_soft_margin_loss``; equals
    ``binary_cross_entropy_with_logits(..., weight)`` summed over classes divided by ``C``.

    Example::

        >>> multilabel_soft_margin_loss(jnp.zeros((1, 2)), jnp.array([[1.0, 0.0]]))  # log 2
        Array(0.6931472, dtype=float32)
    """
    fn = "multilabel_soft_margin_loss"
    check_reduction(reduction, fn=fn)
    (x, y), out = same_shape_inputs(fn, input=input, target=target)
    check_ndim("input", x, range(1, 33), fn=fn)
    check_broadcastable("weight", weight, x.shape, fn=fn)
    if weight is None:
        w = jnp.ones_like(x)
    else:
        (w,), _ = float_inputs(fn, weight=weight)
        w = jnp.broadcast_to(w.astype(x.dtype), x.shape)
    loss = jnp.sum(_mlsm(x, y, w), -1) / x.shape[-1]
    return reduce_loss(loss, reduction, dtype=out)


# ------------------------------------------------------------- multilabel_margin_loss
def _label_counts(target, num_classes):
    """``[..., C]`` how often each class appears before the first ``−1`` of ``target``."""
    before_end = jnp.cumprod(target >= 0, axis=-1).astype(bool)
    onehot = jax.nn.one_hot(jnp.where(before_end, target, -1), num_classes, dtype=jnp.int32)
    return jnp.sum(onehot, -2)


def _mlm_pairs(x, counts):
    """``(z, weight)``: ``z[..., j, i] = 1 − x_j + x_i`` and the pair weight
    ``count_j·[count_i = 0]`` (``j`` a target, ``i`` not)."""
    z = 1 - x[..., :, None] + x[..., None, :]
    w = counts[..., :, None] * (counts[..., None, :] == 0)
    return z, w.astype(x.dtype)


def _mlm_value(x, counts):
    z, w = _mlm_pairs(x, counts)
    hinge = jnp.where(z > 0, z, jnp.where(jnp.isnan(z), z, jnp.zeros_like(z)))
    return jnp.sum(w * hinge, (-2, -1)) / x.shape[-1]


@jax.custom_jvp
def _mlm(x, counts):
    return _mlm_value(x, counts)


def _mlm_grad(x, counts):
    """``∂loss/∂x_k = (1/C)·(Σ_j w_{j,k}·[z_{j,k} > 0] − Σ_i w_{k,i}·[z_{k,i} > 0])``."""
    z, w = _mlm_pairs(x, counts)
    active = w * (z > 0)
    return (jnp.sum(active, -2) - jnp.sum(active, -1)) / x.shape[-1]


@_mlm.defjvp
def _mlm_jvp(primals, tangents):
    x, counts = primals
    return _mlm_value(x, counts), jnp.sum(_mlm_grad(x, counts) * tangents[0], -1)


def multilabel_margin_loss(
    input: ArrayLike, target: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Multi-label hinge loss: every target class above every other class by a margin of 1.

    ``loss = Σ_{j ∈ targets} Σ_{i ∉ targets} max(0, 1 − (x_j − x_i)) / C``, where the
    targets of a row are its entries before the first ``−1`` (a class listed twice
    counts twice, as in PyTorch's kernel). Gradient (hinge slope 0 at the kink, as
    PyTorch): ``−1/C`` to ``x_j`` and ``+1/C`` to ``x_i`` per active pair.

    Args:
      input: ``[C]`` or ``[N, C]`` scores.
      target: integer class indices of ``input``'s shape, padded with ``−1``.
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[N]``, or a scalar).

    Returns:
      a scalar, or ``[N]`` for ``'none'``; ``input``'s dtype.

    Raises:
      TypeError: naming ``target`` for a non-integer dtype.
      ValueError: naming ``target`` for another shape or (when concrete) an entry
        outside ``[−1, C)``.

    Equivalent to ``torch.nn.functional.multilabel_margin_loss``.

    Example::

        >>> x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
        >>> multilabel_margin_loss(x, jnp.array([[3, 0, -1, 1]]))  # PyTorch's example
        Array(0.85, dtype=float32)
    """
    fn = "multilabel_margin_loss"
    check_reduction(reduction, fn=fn)
    (x,), out = float_inputs(fn, input=input)
    check_ndim("input", x, (1, 2), fn=fn)
    t = jnp.asarray(target)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{fn}: target must hold integer class indices, got target.dtype={t.dtype}")
    if t.shape != x.shape:
        raise ValueError(
            f"{fn}: target must have input's shape {x.shape}, got target.shape={t.shape}"
        )
    c = x.shape[-1]
    if is_concrete(target) and t.size:
        host = np.asarray(target)
        if host.min() < -1 or host.max() >= c:
            raise ValueError(
                f"{fn}: target entries must be in [-1, {c}), got target={host.tolist()}"
            )
    return _mlm_loss(x, t, reduction, out)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _mlm_loss(x, target, reduction, dtype):
    """Counts, pairwise hinges and reduction compiled as one program."""
    return reduce_loss(_mlm(x, _label_counts(target, x.shape[-1])), reduction, dtype=dtype)


# --------------------------------------------------- triplet_margin_with_distance_loss
_PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance's default


@jax.custom_jvp
def _pairwise_distance(x1, x2):
    d = x1 - x2 + _PAIRWISE_EPS
    return jnp.sqrt(jnp.sum(d * d, -1))


@_pairwise_distance.defjvp
def _pairwise_distance_jvp(primals, tangents):
    """``∂‖δ‖/∂x1 = δ/‖δ‖`` (0 at ‖δ‖ = 0), ``∂/∂x2 = −δ/‖δ‖``, ``δ = x1 − x2 + eps``."""
    x1, x2 = primals
    d = x1 - x2 + _PAIRWISE_EPS
    norm = jnp.sqrt(jnp.sum(d * d, -1))
    u = d / jnp.where(norm > 0, norm, 1.0)[..., None]
    return norm, jnp.sum(u * (tangents[0] - tangents[1]), -1)


def _hinge_formula(z):
    return jnp.where(z > 0, z, jnp.where(jnp.isnan(z), z, jnp.zeros_like(z)))


def _hinge_derivative(z):
    """``d/dz max(z, 0) = [z > 0]`` (PyTorch's ``clamp_min``: 0 at the kink)."""
    return ((z > 0).astype(z.dtype),)


_hinge = with_jvp(_hinge_formula, _hinge_derivative, 1)


def _triplet_distance_formula(a, p, n, distance, margin, swap):
    d_pos = distance(a, p)
    d_neg = distance(a, n)
    if swap:
        d_neg = jnp.minimum(d_neg, distance(p, n))
    return _hinge(margin + d_pos - d_neg)


def triplet_margin_with_distance_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    distance_function: Callable[[Any, Any], Any] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    """Triplet margin loss with any distance: ``max(0, margin + d(a, p) − d(a, n))``.

    ``d`` is ``distance_function(x1, x2) -> [...]`` (default: the pairwise distance
    ``‖x1 − x2 + 1e-6‖₂`` over the last axis, which makes this ``triplet_margin_loss``
    with ``p=2``); ``swap=True`` uses ``min(d(a, n), d(p, n))`` as the negative
    distance. Gradient: the hinge's ``[z > 0]`` (PyTorch's ``clamp_min``, 0 at the kink) times the
    distances' gradients: ``δ/‖δ‖`` for the default distance (hand-derived), autodiff
    of a given ``distance_function``.

    Args:
      anchor: ``[..., D]`` embeddings.
      positive: same shape.
      negative: same shape.
      distance_function: a function of two ``[..., D]`` arrays returning ``[...]``
        non-negative distances (default the Euclidean pairwise distance).
      margin: margin, ``> 0`` (default 1.0).
      swap: the distance swap of Balntas et al., 2016 (default False).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[...]``).

    Returns:
      a scalar, or ``[...]`` for ``'none'``; the inputs' dtype.

    Raises:
      ValueError: naming ``margin`` (not > 0), the shapes, or a ``distance_function``
        whose output is not ``[...]``.
      TypeError: if ``distance_function`` is not callable.

    Equivalent to ``torch.nn.functional.triplet_margin_with_distance_loss``.

    Example::

        >>> a, pos, neg = jnp.zeros((1, 2)), jnp.array([[0.0, 1.0]]), jnp.array([[0.5, 0.0]])
        >>> l1 = lambda x, y: jnp.sum(jnp.abs(x - y), -1)
        >>> triplet_margin_with_distance_loss(a, pos, neg, distance_function=l1)  # 1 + 1 − 0.5
        Array(1.5, dtype=float32)
    """
    fn = "triplet_margin_with_distance_loss"
    check_reduction(reduction, fn=fn)
    margin = check_positive("margin", margin, fn=fn)
    check_choice("swap", swap, (False, True), fn=fn)
    if distance_function is not None and not callable(distance_function):
        raise TypeError(
            f"{fn}: distance_function must be callable or None, got "
            f"distance_function={distance_function!r}"
        )
    (a, p, n), out = same_shape_inputs(fn, anchor=anchor, positive=positive, negative=negative)
    check_ndim("anchor", a, range(1, 33), fn=fn)
    distance = distance_function or _pairwise_distance
    if distance_function is not None:
        shape = jax.eval_shape(distance, a, p).shape
        if tuple(shape) != a.shape[:-1]:
            raise ValueError(
                f"{fn}: distance_function must return shape {a.shape[:-1]} (anchor.shape[:-1]),"
                f" got {tuple(shape)}"
            )
    loss = _triplet_distance_formula(a, p, n, distance, margin, bool(swap))
    return reduce_loss(loss, reduction, dtype=out)


# ---------------------------------------------------------------- gradient registry
def _euclid(x1, x2):
    d = x1 - x2 + _PAIRWISE_EPS
    return jnp.sqrt(jnp.sum(d * d, -1))


def _plain_triplet(a, p, n, swap):
    d_pos, d_neg = _euclid(a, p), _euclid(a, n)
    if swap:
        d_neg = jnp.minimum(d_neg, _euclid(p, n))
    z = 1.0 + d_pos - d_neg
    return jnp.where(z > 0, z, 0.0)


def _triplet_backward(a, p, n, g, swap):
    """Active hinge ``k = g·[z > 0]``; ``u(x, y) = δ/‖δ‖``: ``da = k·(u(a,p) − u(a,n))``,
    ``dp = −k·u(a,p)``, ``dn = k·u(a,n)`` (with ``swap`` choosing ``d(p, n)``:
    ``da = k·u(a,p)``, ``dp = −k·(u(a,p) + u(p,n))``, ``dn = k·u(p,n)``)."""

    def u(x, y):
        d = x - y + _PAIRWISE_EPS
        norm = jnp.sqrt(jnp.sum(d * d, -1, keepdims=True))
        return d / jnp.where(norm > 0, norm, 1.0)

    d_pos, d_an = _euclid(a, p), _euclid(a, n)
    use_pn = (_euclid(p, n) < d_an) if swap else jnp.zeros(d_an.shape, bool)
    d_neg = jnp.where(use_pn, _euclid(p, n), d_an)
    k = (g * (1.0 + d_pos - d_neg > 0))[..., None]
    sel = use_pn[..., None]
    uap, uan, upn = u(a, p), u(a, n), u(p, n)
    da = k * (uap - jnp.where(sel, 0.0, uan))
    dp = -k * (uap + jnp.where(sel, upn, 0.0))
    dn = k * jnp.where(sel, upn, uan)
    return da, dp, dn


def _triplet_examples():
    r = np.random.default_rng(6)
    a, p, n = r.normal(size=(3, 6, 4))
    p[0] = a[0]  # a coinciding pair (distance eps·sqrt(D))
    return [(a, p, n)]


def _triplet_fd():
    r = np.random.default_rng(7)
    a, p, n = r.normal(size=(3, 6, 4))
    n[:3] = p[:3] + 0.5  # swap active on some rows
    return [(a, p, n)]


for _swap in (False, True):
    grads.register(
        f"triplet_margin_with_distance_loss(swap={_swap})",
        forward=functools.partial(_plain_triplet, swap=_swap),
        backward=functools.partial(_triplet_backward, swap=_swap),
        examples=_triplet_examples,
        fd_examples=_triplet_fd,
        argnums=(0, 1, 2),
        public=lambda a, p, n, _s=_swap: triplet_margin_with_distance_loss(
            a, p, n, swap=_s, reduction="none"
        ),
    )


def _mlsm_examples():
    r = np.random.default_rng(8)
    x = r.normal(size=(4, 5)) * 3
    x[0, :2] = [1e4, -1e4]
    return [(x, r.integers(0, 2, (4, 5)).astype(float), r.uniform(0.5, 2, (4, 5)))]


grads.register(
    "multilabel_soft_margin_loss",
    forward=lambda x, y, w: jnp.sum(_mlsm_formula(x, y, w), -1) / x.shape[-1],
    backward=lambda x, y, w, g: tuple(
        g[..., None] * d / x.shape[-1] for d in _mlsm_derivative(x, y, w)
    ),
    examples=_mlsm_examples,
    argnums=(0, 1, 2),
    public=lambda x, y, w: multilabel_soft_margin_loss(x, y, w, reduction="none"),
)


def _mlm_examples():
    r = np.random.default_rng(9)
    x = r.normal(size=(4, 5)) * 2
    target = np.array([[3, 0, -1, 1, 2], [1, 1, 4, -1, 0], [0, 1, 2, 3, 4], [-1, 2, 2, 2, 2]])
    return [(x, target)]


def _mlm_backward(x, target, g):
    return g[..., None] * _mlm_grad(x, _label_counts(jnp.asarray(target), x.shape[-1]))


grads.register(
    "multilabel_margin_loss",
    forward=lambda x, t: _mlm_value(x, _label_counts(jnp.asarray(t), x.shape[-1])),
    backward=_mlm_backward,
    examples=_mlm_examples,
    public=lambda x, t: multilabel_margin_loss(x, t, reduction="none"),
)
