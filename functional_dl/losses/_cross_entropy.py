"""Softmax cross-entropy and negative log-likelihood, with a fused hand-written backward.

Every variant of :func:`cross_entropy` is assembled from three per-row statistics of
the logits ``x`` (class axis last), taken relative to the row maximum ``m`` (a
constant for differentiation: every loss built from them is invariant to shifting a
row of logits, and the shift keeps ``log p = (x_y − m) − lse`` accurate at ±1e4)::

    lse = log Σ_c exp(x_c − m)      x_y − m      s = Σ_c v_c·(x_c − m)

One primitive computes them; its hand-derived vjp is
``dx = g_lse·softmax(x) + g_y·onehot(target) + g_s·v`` (``softmax − onehot`` for the
plain loss), one pass that writes nothing but ``dx``. For float32/float64 logits the
forward keeps ``e = exp(x − m)`` for it (so ``exp`` runs once per element, and ``dx``
can take over the buffer of ``e``); half-precision logits keep only themselves and the
backward recomputes ``e`` in float32. The weighting, ignoring and smoothing around the
primitive act on ``[...]``-sized vectors and are differentiated by JAX.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_floating, check_int, check_probability
from .._dtypes import compute_dtype
from ._common import (
    EXAMPLE_WEIGHT,
    check_class_target,
    check_class_weight,
    class_mask,
    class_target_masks,
    live,
    per_class,
    poison,
)
from ._reduction import check_reduction, reduce_loss

__all__ = ["cross_entropy", "nll_loss"]


# ------------------------------------------------------------ the statistics primitive
def _softmax_parts(x, y, v):
    """``(lse, x_y − m, s)`` (``None`` where ``y``/``v`` is), and ``(m, e)`` for the vjp.

    Computed in float32 or wider; ``m`` is the row maximum, at least the lowest finite
    float (so an all −inf row gets a finite shift without a select per element).
    """
    xf = x.astype(compute_dtype(x.dtype))
    m = jax.lax.stop_gradient(jnp.max(xf, axis=-1, initial=jnp.finfo(xf.dtype).min))
    e = jnp.exp(xf - m[..., None])
    lse = jnp.log(jnp.sum(e, axis=-1))
    zy = None if y is None else jnp.take_along_axis(xf, y[..., None], axis=-1)[..., 0] - m
    # 0·(−inf) counts as 0: a class with zero target mass and −inf logit adds nothing
    if v is None:
        s = None
    else:
        vb = per_class(v, xf.shape)
        z = xf - m[..., None]
        finite = jnp.isfinite(z)
        # −inf logits (with v ≠ 0) make s −inf through a term without derivative, so
        # that a zero cotangent (an ignored row) gives the weight a zero, not NaN, gradient
        s = jnp.sum(jnp.where((vb != 0) & finite, vb * jnp.where(finite, z, 0), 0), axis=-1)
        s = s + jax.lax.stop_gradient(jnp.sum(jnp.where((vb != 0) & ~finite, z, 0), axis=-1))
    return (lse, zy, s), (m, e)


def _stats_formula(x, y, v):
    """The statistics ``(lse, x_y − m, s)``; plain JAX, differentiable by autodiff."""
    return _softmax_parts(x, y, v)[0]


def _stats_backward(x, e, y, v, m, lse, g_lse, g_xy, g_s):
    """Hand vjp of :func:`_stats_formula` (``m`` held constant).

    dx = g_lse·softmax(x) + g_xy·onehot(y) + g_s·v, with softmax(x) = e / Σe from the
    saved ``e = exp(x − m)`` (recomputed from ``x`` when ``e`` is None);
    dv = g_s·(x − m) (summed over the axes ``v`` was broadcast along); none for y.
    """
    out_dtype = x.dtype if e is None else e.dtype  # e is only kept in x's dtype
    finite = jnp.isfinite(lse)  # False only for an all −inf row: its softmax is taken as 0
    # The per-row factor ends in a division, which XLA evaluates once per row; cheap
    # per-row work (masks, weights) would otherwise be redone for every class.
    scale = jnp.where(finite, g_lse, 0) / jnp.where(finite, jnp.exp(lse), 1)
    if e is None:
        e = jnp.exp(x.astype(compute_dtype(x.dtype)) - m[..., None])
    dx = e * scale[..., None]
    if y is not None:  # + g_xy at the target class: a scatter of one value per row
        rows = dx.reshape(-1, dx.shape[-1])
        rows = rows.at[jnp.arange(rows.shape[0]), y.reshape(-1)].add(g_xy.reshape(-1))
        dx = rows.reshape(dx.shape)
    dv = None
    if v is not None:
        dx = dx + g_s[..., None] * per_class(v, dx.shape)
        # 0 where g_s is 0 (ignored rows), even at a −inf logit
        dv = jnp.where(g_s[..., None] == 0, 0, g_s[..., None] * (x.astype(e.dtype) - m[..., None]))
        dv = jnp.sum(dv, axis=tuple(range(dv.ndim - v.ndim))).astype(v.dtype)
    return dx.astype(out_dtype), None, dv


# ------------------------------------------------------------ loss assembly (shared)
def _target_weight(weight, y_safe, valid, dtype):
    """Weight of each element's target class, 0 where ignored."""
    w = jnp.ones(y_safe.shape, dtype) if weight is None else jnp.take(weight, y_safe)
    return jnp.where(valid, w, 0).astype(dtype)


def _smoothing_on(eps):
    return not isinstance(eps, (int, float)) or eps != 0


def _ce_int(x, target, weight, ignore_index, eps, stats):
    """Per-element loss and mean denominator for integer targets."""
    num_classes = x.shape[-1]
    cd = compute_dtype(x.dtype)
    valid, bad, y = class_target_masks(target, num_classes, ignore_index)
    w_y = _target_weight(weight, y, valid, cd)
    smooth = _smoothing_on(eps)
    v = (jnp.ones(num_classes, cd) if weight is None else weight) if smooth else None
    lse, xy, s = stats(x, y, v)
    loss = w_y * jnp.where(valid, lse - xy, 0)  # ignored rows: no inf·0, not even in grads
    if v is not None:
        loss = (1 - eps) * loss + eps / num_classes * jnp.where(valid, jnp.sum(v) * lse - s, 0)
    return poison(bad, loss), jnp.sum(w_y)


def _ce_prob(x, target, weight, eps, stats):
    """Per-element loss for probability targets (mean divides by the element count)."""
    num_classes = x.shape[-1]
    t = target.astype(compute_dtype(x.dtype))
    if _smoothing_on(eps):
        t = t * (1 - eps) + eps / num_classes
    v = t if weight is None else t * per_class(weight, t.shape)
    lse, _, s = stats(x, None, v)
    return lse * jnp.sum(v, axis=-1) - s, None


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> jax.Array:
    """Softmax cross-entropy between logits and class indices or class probabilities.

    Integer targets ``y`` (shape ``[...]``), class weights ``w`` (default 1),
    smoothing ``ε`` and ``C`` classes, with ``log p = log_softmax(input)``::

        loss_n = (1 − ε)·w[y_n]·(−log p_n[y_n]) + ε/C·Σ_c w_c·(−log p_n[c])

    and ``loss_n = 0`` where ``y_n == ignore_index``. ``'mean'`` divides the sum by
    ``Σ_n w[y_n]`` over the non-ignored elements (PyTorch's denominator, for every
    combination of weight, ignore_index and smoothing). A fully ignored batch gives
    ``0/0 = NaN`` for ``'mean'`` (as PyTorch) with a zero, finite gradient; ``'sum'``
    gives 0. A non-ignored target outside ``[0, C)`` gives a NaN loss for its element
    and a NaN gradient for its logits (PyTorch raises an error; a jitted function cannot),
    so a training step on such a batch turns the parameters into NaN, never silently
    trains on the other elements. Ignored rows add nothing to the
    gradient either, even when their logits are all −inf (padding).

    Probability targets (floating, shape ``[..., C]``): ``t' = t·(1 − ε) + ε/C`` and
    ``loss_n = −Σ_c w_c·t'_c·log p_n[c]``; ``'mean'`` divides by the number of
    elements ``n``; ``ignore_index`` does not apply. Terms with ``t'_c = 0`` count as
    0 even where the logit is −inf.

    Args:
      input: logits, ``[..., C]`` (class axis last, any leading batch axes).
      target: integer class indices ``[...]`` or probabilities ``[..., C]``.
      weight: optional per-class weight ``[C]``.
      ignore_index: integer target value that is skipped (default −100).
      label_smoothing: ``ε`` in ``[0, 1]`` (default 0).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[...]`` for ``'none'``; ``input``'s dtype (computed in float32
      for half-precision logits).

    Equivalent to ``torch.nn.functional.cross_entropy`` (class axis last instead of
    1); with ``'none'`` and no options to
    ``optax.softmax_cross_entropy_with_integer_labels`` and
    ``optax.softmax_cross_entropy``. The backward is the fused hand-derived
    ``coef·(a·softmax − b·onehot − ε/C·w)`` (``softmax − onehot`` without options)
    as a ``jax.custom_jvp`` rule (its transpose in forward mode, so ``jax.jvp``,
    ``jax.jacfwd`` and ``jax.hessian`` work); finite for logits of ±1e4 and −inf logits on
    non-target classes (with ``ε > 0`` such a class makes the loss +inf, as in PyTorch).
    ``weight`` and probability targets receive gradients too.

    Example::

        >>> logits = jnp.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
        >>> cross_entropy(logits, jnp.array([0, 2]), label_smoothing=0.1)
        Array(0.3454..., dtype=float32)
    """
    fn = "cross_entropy"
    check_reduction(reduction, fn=fn)
    label_smoothing = check_probability("label_smoothing", label_smoothing, fn=fn)
    x = jnp.asarray(input)
    check_floating("input", x, fn=fn)
    target = jnp.asarray(target)
    if x.ndim < 1:
        raise ValueError(f"{fn}: input must have a class axis, got input.shape=()")
    check_class_weight(weight, x.shape[-1], fn=fn)
    w = None if weight is None else jnp.asarray(weight, compute_dtype(x.dtype))
    if jnp.issubdtype(target.dtype, jnp.floating):
        if target.shape != x.shape:
            raise ValueError(
                f"{fn}: probability targets (floating dtype) must have input's shape "
                f"{x.shape}, got target.shape={target.shape}; integer class targets "
                f"have shape input.shape[:-1]={x.shape[:-1]}"
            )
    else:
        check_class_target(x, target, fn=fn)
        check_int("ignore_index", ignore_index, fn=fn)
    kw = {"ignore_index": ignore_index, "eps": label_smoothing, "reduction": reduction}
    argnums = (0, 1) if jnp.issubdtype(target.dtype, jnp.floating) else (0,)
    if w is None:
        rule = grads.hand_rule(
            lambda x, t: _cross_entropy_formula(x, t, None, **kw),
            lambda x, t, g: _cross_entropy_backward(x, t, None, g, **kw),
            argnums,
        )
        return rule(x, target)
    # the weight is an argument (differentiated by autodiff of the formula, if at all)
    rule = grads.hand_rule(
        lambda x, t, w: _cross_entropy_formula(x, t, w, **kw),
        lambda x, t, w, g: _cross_entropy_backward(x, t, w, g, **kw),
        argnums,
    )
    return rule(x, target, w)


def nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> jax.Array:
    """Negative log-likelihood of class indices given log-probabilities.

    ``loss_n = −w[y_n]·input_n[y_n]``, 0 where ``y_n == ignore_index``; ``'mean'``
    divides by ``Σ_n w[y_n]`` over the non-ignored elements (NaN when all are ignored,
    as in PyTorch). A non-ignored target outside ``[0, C)`` gives a NaN loss and a NaN
    gradient for its element.

    Args:
      input: log-probabilities ``[..., C]`` (e.g. ``log_softmax`` output).
      target: integer class indices ``[...]``.
      weight: optional per-class weight ``[C]``.
      ignore_index: integer target value that is skipped (default −100).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[...]`` for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.nll_loss`` (class axis last).
    ``cross_entropy(x, y) == nll_loss(log_softmax(x), y)``. Gradient:
    ``−w[y]·onehot(y)`` (times ``1/Σw`` for ``'mean'``).

    Example::

        >>> nll_loss(jnp.log(jnp.array([[0.7, 0.3]])), jnp.array([0]))  # −log 0.7
        Array(0.3566..., dtype=float32)
    """
    fn = "nll_loss"
    check_reduction(reduction, fn=fn)
    x = jnp.asarray(input)
    check_floating("input", x, fn=fn)
    target = jnp.asarray(target)
    check_class_target(x, target, fn=fn)
    check_int("ignore_index", ignore_index, fn=fn)
    check_class_weight(weight, x.shape[-1], fn=fn)
    cd = compute_dtype(x.dtype)
    w = None if weight is None else jnp.asarray(weight, cd)
    loss = live(
        _nll_elements, _nll_elements_backward, (x.astype(cd), target, w), (0,), ii=ignore_index
    )
    den = _nll_terms(x.astype(cd), target, w, ignore_index)[1]
    return reduce_loss(loss, reduction, dtype=x.dtype, denominator=den)


def _nll_terms(x, target, weight, ignore_index):
    valid, bad, y = class_target_masks(target, x.shape[-1], ignore_index)
    w_y = _target_weight(weight, y, valid, x.dtype)
    xy = jnp.take_along_axis(x, y[..., None], axis=-1)[..., 0]
    loss = -w_y * jnp.where(valid, xy, 0)  # an ignored −inf log-probability stays out
    return poison(bad, loss), jnp.sum(w_y)


def _nll_elements(x, target, weight, *, ii):
    return _nll_terms(x, target, weight, ii)[0]


def _nll_elements_backward(x, target, weight, g, *, ii):
    """Per element: d/dx = −w[y]·onehot(y)·g (0 where ignored, NaN for a bad target)."""
    valid, bad, y = class_target_masks(target, x.shape[-1], ii)
    w_y = _target_weight(weight, y, valid, x.dtype)
    c = poison(bad, jnp.where(valid, g * w_y, 0))  # ignored: 0, even for a NaN cotangent
    return jnp.where(class_mask(y, x.shape[-1]), -c[..., None], 0).astype(x.dtype)


# ------------------------------------------------ plain formulas and hand backward
def _reduce_cotangent(g, den, reduction, shape):
    """vjp of the reduction: the cotangent of each element of the per-element loss."""
    if reduction == "mean":
        g = g / den
    return jnp.broadcast_to(g, shape)


def _cross_entropy_formula(x, target, weight=None, *, ignore_index=-100, eps=0.0, reduction="mean"):
    """Plain formula (autodiff reference): the same assembly on unfused statistics."""
    if jnp.issubdtype(jnp.asarray(target).dtype, jnp.floating):
        loss, den = _ce_prob(x, target, weight, eps, _stats_formula)
    else:
        loss, den = _ce_int(x, target, weight, ignore_index, eps, _stats_formula)
    return reduce_loss(loss, reduction, dtype=x.dtype, denominator=den)


def _cross_entropy_backward(x, target, weight, g, *, ignore_index=-100, eps=0.0, reduction="mean"):
    """Hand-derived gradient of cross-entropy with respect to the logits (and target).

    Integer targets, per element with cotangent ``c`` (``g/Σw[y]`` for ``'mean'``, 0
    where ignored), ``W = Σ_c w_c``::

        dx = c·[((1 − ε)·w[y] + ε/C·W)·softmax(x) − (1 − ε)·w[y]·onehot(y) − ε/C·w]

    Probability targets, ``v = w·(t(1 − ε) + ε/C)``: ``dx = c·(Σ_c v_c·softmax(x) − v)``
    and ``dt = −c·(1 − ε)·w·log_softmax(x)``.
    """
    num_classes = x.shape[-1]
    cd = compute_dtype(x.dtype)
    w = jnp.ones(num_classes, cd) if weight is None else weight
    (lse, _, _), (m, _) = _softmax_parts(x, None, None)
    if jnp.issubdtype(jnp.asarray(target).dtype, jnp.floating):
        w = per_class(w, x.shape)
        v = w * (target * (1 - eps) + eps / num_classes)
        c = _reduce_cotangent(g, None if reduction != "mean" else lse.size, reduction, lse.shape)
        dx = _stats_backward(x, None, None, v, m, lse, c * jnp.sum(v, axis=-1), None, -c)[0]
        return dx, -c[..., None] * (1 - eps) * w * jax.nn.log_softmax(x, axis=-1)
    valid, bad, y = class_target_masks(target, num_classes, ignore_index)
    w_y = _target_weight(weight, y, valid, cd)
    c = _reduce_cotangent(g, jnp.sum(w_y), reduction, y.shape)
    c = poison(bad, jnp.where(valid, c, 0))
    g_lse = c * ((1 - eps) * w_y + eps / num_classes * jnp.sum(w))
    return _stats_backward(
        x, None, y, w, m, lse, g_lse, -c * (1 - eps) * w_y, -c * eps / num_classes
    )[0]


def _nll_formula(x, target, weight, ignore_index):
    loss, den = _nll_terms(x, target, weight, ignore_index)
    return reduce_loss(loss, "mean", dtype=x.dtype, denominator=den)


def _nll_backward(x, target, weight, ignore_index, g):
    """d/dx of the weighted mean: −w[y]/Σw[y]·onehot(y) per element (0 if ignored, also
    when all are; NaN for a target outside ``[0, C)``)."""
    valid, bad, y = class_target_masks(target, x.shape[-1], ignore_index)
    w_y = _target_weight(weight, y, valid, x.dtype)
    den = jnp.sum(w_y)
    c = poison(bad, g * w_y / jnp.where(den == 0, 1, den))
    return jnp.where(class_mask(y, x.shape[-1]), -c[..., None], 0)


# ---------------------------------------------------------------- gradient registry
def _nll_reference(x, y, g):
    w_y = np.where(np.asarray(y) == 1, 0.0, EXAMPLE_WEIGHT[np.asarray(y)])
    onehot = np.eye(x.shape[-1])[np.asarray(y)]
    return -np.asarray(g) * w_y[:, None] * onehot / w_y.sum()


def _ce_examples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5)) * 3
    x[0, 1:] = -np.inf  # -inf logits on non-target classes (target 0)
    x[1] = [1e4, -1e4, 0.0, 5.0, -3.0]
    y = np.array([0, 1, 2, 3, 4, 1])
    return [(x, y)]


def _ce_fd_examples():
    rng = np.random.default_rng(1)
    return [(rng.normal(size=(6, 5)), np.array([0, 1, 2, 3, 4, 1]))]


def _ce_weighted_examples():
    x = np.random.default_rng(2).normal(size=(6, 5)) * 2
    x[2] = [1e4, -1e4, 0.0, 5.0, -3.0]
    return [(x, np.array([0, 1, 1, 3, 4, 2]))]


def _ce_prob_examples():
    rng = np.random.default_rng(3)
    t = rng.dirichlet(np.ones(5), size=6)
    t[0] = [1.0, 0.0, 0.0, 0.0, 0.0]
    return [(rng.normal(size=(6, 5)) * 2, t)]


grads.register(
    "cross_entropy",
    forward=_cross_entropy_formula,
    backward=lambda x, y, g: _cross_entropy_backward(x, y, None, g),
    examples=_ce_examples,
    fd_examples=_ce_fd_examples,
    public=cross_entropy,
    reference=lambda x, y, g: jax.vjp(
        lambda x: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(x, y)), x
    )[1](g)[0],
    reference_name="optax.softmax_cross_entropy_with_integer_labels",
)
grads.register(
    "cross_entropy(weight, ignore_index=1, label_smoothing=0.1)",
    forward=lambda x, y: _cross_entropy_formula(x, y, EXAMPLE_WEIGHT, ignore_index=1, eps=0.1),
    backward=lambda x, y, g: _cross_entropy_backward(
        x, y, EXAMPLE_WEIGHT, g, ignore_index=1, eps=0.1
    ),
    examples=_ce_weighted_examples,
    public=lambda x, y: cross_entropy(
        x, y, jnp.asarray(EXAMPLE_WEIGHT, x.dtype), ignore_index=1, label_smoothing=0.1
    ),
)
grads.register(
    "cross_entropy(probability targets, weight, label_smoothing=0.2, reduction='none')",
    forward=lambda x, t: _cross_entropy_formula(x, t, EXAMPLE_WEIGHT, eps=0.2, reduction="none"),
    backward=lambda x, t, g: _cross_entropy_backward(
        x, t, EXAMPLE_WEIGHT, g, eps=0.2, reduction="none"
    ),
    examples=_ce_prob_examples,
    argnums=(0, 1),
    public=lambda x, t: cross_entropy(
        x, t, jnp.asarray(EXAMPLE_WEIGHT, x.dtype), label_smoothing=0.2, reduction="none"
    ),
)
grads.register(
    "nll_loss(weight, ignore_index=1)",
    forward=lambda x, y: _nll_formula(x, y, EXAMPLE_WEIGHT, 1),
    backward=lambda x, y, g: _nll_backward(x, y, EXAMPLE_WEIGHT, 1, g),
    examples=lambda: [
        (
            np.log(np.random.default_rng(4).dirichlet(np.ones(5), size=6)),
            np.array([0, 1, 2, 3, 4, 1]),
        )
    ],
    public=lambda x, y: nll_loss(x, y, jnp.asarray(EXAMPLE_WEIGHT, x.dtype), ignore_index=1),
    reference=lambda x, y, g: _nll_reference(x, y, g),
    reference_name="closed form −w[y]·onehot(y)/Σw[y]",
)
