"""Binary losses: cross-entropy on probabilities and on logits, hinge, sigmoid focal."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_nonnegative
from ._common import check_broadcastable, pointwise_loss, pow0, relu_nan, same_shape_inputs
from ._reduction import check_reduction, reduce_loss

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "hinge_loss",
    "sigmoid_focal_loss",
]

_BCE_EPS = 1e-12  # PyTorch's clamp of the BCE gradient denominator


def _weighted(loss, weight):
    return loss if weight is None else loss * jnp.broadcast_to(weight, loss.shape)


# -------------------------------------------------------------- binary_cross_entropy
def _bce_formula(p, y):
    log_p = jnp.maximum(jnp.log(p), -100.0)
    log_1mp = jnp.maximum(jnp.log1p(-p), -100.0)
    return -(y * log_p + (1 - y) * log_1mp)


def _bce_backward(p, y, g):
    """PyTorch's BCE backward, finite at p in {0, 1}.

    d/dp = (p − y) / max(p·(1 − p), 1e-12);
    d/dy = max(log(1 − p), −100) − max(log p, −100).
    """
    gp = g * (p - y) / jnp.maximum(p * (1 - p), _BCE_EPS)
    gy = g * (jnp.maximum(jnp.log1p(-p), -100.0) - jnp.maximum(jnp.log(p), -100.0))
    return gp, gy


_bce = grads.hand_rule(_bce_formula, _bce_backward, argnums=(0, 1))


def binary_cross_entropy(
    input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None, *, reduction: str = "mean"
) -> jax.Array:
    """Binary cross-entropy between probabilities and targets.

    ``loss = −weight·[y·max(log p, −100) + (1 − y)·max(log(1 − p), −100)]`` with
    ``p = input``, ``y = target``: each log is clamped at −100, so ``p = 0, y = 1``
    gives 100, not inf.

    Args:
      input: probabilities in ``[0, 1]``, any shape ``[...]``. Values outside give NaN
        (PyTorch raises instead).
      target: same shape as ``input``, values in ``[0, 1]``.
      weight: optional rescaling weight, broadcastable to ``input.shape``.
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.binary_cross_entropy``, gradient included: the
    backward is PyTorch's ``weight·(p − y) / max(p(1 − p), 1e-12)``, finite at
    ``p ∈ {0, 1}`` (a ``jax.custom_jvp`` rule). Prefer
    :func:`binary_cross_entropy_with_logits` for training.

    Example::

        >>> binary_cross_entropy(jnp.array([0.9, 0.2]), jnp.array([1.0, 0.0]))
        Array(0.1642..., dtype=float32)
    """
    fn = "binary_cross_entropy"
    check_reduction(reduction, fn=fn)
    (p, y), out = same_shape_inputs(fn, input=input, target=target)
    check_broadcastable("weight", weight, p.shape, fn=fn)
    w = None if weight is None else jnp.asarray(weight, p.dtype)
    return reduce_loss(_weighted(_bce(p, y), w), reduction, dtype=out)


# -------------------------------------------------- binary_cross_entropy_with_logits
def _softplus_pair(x):
    """``(softplus(x), softplus(−x))`` from one exp and one log1p, accurate for all x.

    Values only: its autodiff derivative at exactly 0 is wrong (max and abs split the
    kink), so it serves the fused forward and the hand backward, never autodiff.
    """
    tail = jnp.log1p(jnp.exp(-jnp.abs(x)))
    return jnp.maximum(x, 0) + tail, jnp.maximum(-x, 0) + tail


def _bce_logits_terms(x, y, pos_weight, softplus_pair):
    # PyTorch: (1 − y)·x − (1 + (pw − 1)·y)·log σ(x), rewritten as a sum of two
    # non-negative terms, (1 − y)·softplus(x) + pw·y·softplus(−x): no cancellation.
    sp, sp_neg = softplus_pair(x)
    py = y if pos_weight is None else pos_weight * y
    return (1 - y) * sp + py * sp_neg


def _bce_logits_formula(x, y, pos_weight=None):
    """The plain formula (autodiff reference), with ``jax.nn.softplus``."""
    return _bce_logits_terms(x, y, pos_weight, lambda z: (jax.nn.softplus(z), jax.nn.softplus(-z)))


def _bce_logits_backward(x, y, pos_weight, g):
    """Fused backward of BCE with logits.

    d/dx = (1 + (pw − 1)·y)·σ(x) − pw·y   (= σ(x) − y without pos_weight);
    d/dy = pw·softplus(−x) − softplus(x)   (= −x − (pw − 1)·log σ(x));
    d/dpw = y·softplus(−x).
    """
    sig = jax.nn.sigmoid(x)
    sp, sp_neg = _softplus_pair(x)
    if pos_weight is None:
        return g * (sig - y), g * (sp_neg - sp), None
    gx = g * ((1 + (pos_weight - 1) * y) * sig - pos_weight * y)
    return gx, g * (pos_weight * sp_neg - sp), g * y * sp_neg


# the fused forward: one exp and one log1p per element, fused into the reduction
_bce_logits_plain = grads.hand_rule(
    lambda x, y: _bce_logits_terms(x, y, None, _softplus_pair),
    lambda x, y, g: _bce_logits_backward(x, y, None, g)[:2],
    argnums=(0, 1),
)
_bce_logits_pw = grads.hand_rule(
    lambda x, y, pw: _bce_logits_terms(x, y, pw, _softplus_pair),
    _bce_logits_backward,
    argnums=(0, 1, 2),
)


def _bce_logits(x, y, pw):
    return _bce_logits_plain(x, y) if pw is None else _bce_logits_pw(x, y, pw)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    pos_weight: ArrayLike | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Binary cross-entropy on logits, with optional per-class positive weight.

    ``loss = weight·[(1 − y)·x − (1 + (pos_weight − 1)·y)·log σ(x)]``, computed as
    ``weight·[(1 − y)·softplus(x) + pos_weight·y·softplus(−x)]``, which is finite and
    accurate for any logit (±1e4 included).

    Args:
      input: logits ``x``, any shape ``[..., C]``.
      target: ``y``, same shape, values in ``[0, 1]`` (soft labels allowed).
      weight: optional rescaling weight, broadcastable to ``input.shape``.
      pos_weight: optional weight of the positive term, broadcastable to
        ``input.shape`` (typically ``[C]``: one per class, along the last axis).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.binary_cross_entropy_with_logits``; with
    ``'none'`` and no weights to ``optax.sigmoid_binary_cross_entropy``. The backward
    is fused by hand (``jax.custom_vjp``): ``σ(x) − y``, or
    ``(1 + (pw − 1)y)·σ(x) − pw·y``, times ``weight``; gradients with respect to
    ``target`` and ``pos_weight`` are provided too.

    Example::

        >>> binary_cross_entropy_with_logits(jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0]))
        Array(0.2200..., dtype=float32)
    """
    fn = "binary_cross_entropy_with_logits"
    check_reduction(reduction, fn=fn)
    (x, y), out = same_shape_inputs(fn, input=input, target=target)
    check_broadcastable("weight", weight, x.shape, fn=fn)
    check_broadcastable("pos_weight", pos_weight, x.shape, fn=fn)
    pw = None if pos_weight is None else jnp.broadcast_to(jnp.asarray(pos_weight, x.dtype), x.shape)
    w = None if weight is None else jnp.asarray(weight, x.dtype)
    return reduce_loss(_weighted(_bce_logits(x, y, pw), w), reduction, dtype=out)


# ------------------------------------------------------------------------ hinge_loss
def _hinge_formula(x, y):
    return relu_nan(1 - y * x)


def _hinge_backward(x, y, g):
    """d/dx max(0, 1 − y·x) = −y where 1 − y·x > 0, else 0 (0 at the kink)."""
    m = 1 - y * x
    active = (m > 0) | jnp.isnan(m)
    return jnp.where(active, -y * g, 0), jnp.where(active, -x * g, 0)


_hinge = grads.hand_rule(_hinge_formula, _hinge_backward, argnums=(0, 1))


def hinge_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Binary hinge loss for labels in {−1, +1}.

    ``loss = max(0, 1 − target·input)``; the gradient at the kink
    ``target·input = 1`` is 0.

    Args:
      input: scores, any shape ``[...]``.
      target: labels in ``{−1, +1}``, same shape (other values enter the formula as is).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``optax.hinge_loss`` with ``'none'`` (PyTorch has no binary hinge
    loss; ``HingeEmbeddingLoss`` is a different function). Gradient: ``−target`` where
    the margin is violated, else 0.

    Example::

        >>> hinge_loss(jnp.array([0.5, -2.0]), jnp.array([1.0, -1.0]))  # 0.25
        Array(0.25, dtype=float32)
    """
    return pointwise_loss("hinge_loss", _hinge, input, target, reduction)


# ---------------------------------------------------------------- sigmoid_focal_loss
def _focal_terms(x, y):
    """``(ce, 1 − p_t)`` with ``p_t = σ(x)·y + σ(−x)·(1 − y)``, both computed stably."""
    ce = _bce_logits_formula(x, y)
    return ce, jax.nn.sigmoid(x) * (1 - y) + jax.nn.sigmoid(-x) * y


def _alpha_t(y, alpha):
    a = alpha * y + (1 - alpha) * (1 - y)
    return jnp.where(jnp.asarray(alpha) >= 0, a, 1.0)


def _sigmoid_focal_formula(x, y, alpha, gamma):
    ce, q = _focal_terms(x, y)
    return _alpha_t(y, alpha) * ce * pow0(q, gamma)


def _sigmoid_focal_backward(x, y, alpha, gamma, g):
    """d/dx = α_t·[(σ − y)·q^γ + ce·γ·q^(γ−1)·σ(1 − σ)(1 − 2y)], q = 1 − p_t.

    ``q^(γ−1)`` is taken as 0 where ``q = 0`` (its product with ``σ(1 − σ)`` vanishes).
    """
    ce, q = _focal_terms(x, y)
    s = jax.nn.sigmoid(x)
    dq = s * jax.nn.sigmoid(-x) * (1 - 2 * y)
    gamma_term = jnp.where(q > 0, gamma * jnp.where(q > 0, q, 1) ** (gamma - 1), 0)
    return g * _alpha_t(y, alpha) * ((s - y) * pow0(q, gamma) + ce * gamma_term * dq)


_sigmoid_focal = grads.hand_rule(_sigmoid_focal_formula, _sigmoid_focal_backward)


def sigmoid_focal_loss(
    input: ArrayLike,
    target: ArrayLike,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> jax.Array:
    """Sigmoid focal loss (torchvision's formula).

    ``loss = α_t·(1 − p_t)^γ·BCE_with_logits(x, y)`` with ``p = σ(x)``,
    ``p_t = p·y + (1 − p)·(1 − y)`` and ``α_t = α·y + (1 − α)·(1 − y)``; a negative
    ``alpha`` disables the α weighting. ``1 − p_t`` is computed as
    ``σ(x)(1 − y) + σ(−x)·y``, so values and gradients are finite at any logit.
    Gradient (``q = 1 − p_t``, ``ce = BCE_with_logits``):
    ``α_t·[(σ(x) − y)·q^γ + ce·γ·q^(γ−1)·σ(x)·σ(−x)·(1 − 2y)]``.

    Args:
      input: logits ``x``, any shape ``[...]``.
      target: ``y`` in ``[0, 1]``, same shape.
      alpha: weight of the positives in ``[0, 1]``, or negative for none (default 0.25).
      gamma: focusing exponent ``>= 0`` (default 2.0; 0 gives α-weighted BCE).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torchvision.ops.sigmoid_focal_loss`` (whose default reduction is
    ``'none'``; here ``'mean'`` as for every loss) and, with ``'none'``, to
    ``optax.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma)``. Lin et al., *Focal
    Loss for Dense Object Detection*, 2017.

    Example::

        >>> sigmoid_focal_loss(jnp.array([3.0, -1.0]), jnp.array([1.0, 1.0]))
        Array(0.0877..., dtype=float32)
    """
    gamma = check_nonnegative("gamma", gamma, fn="sigmoid_focal_loss")
    return pointwise_loss(
        "sigmoid_focal_loss", _sigmoid_focal, input, target, reduction, alpha, gamma
    )


# ---------------------------------------------------------------- gradient registry
def _logits(seed, n=11):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=n) * 3, [-1e4, 1e4, -100.0, 100.0, 0.0]])


def _labels(seed, n):
    return np.random.default_rng(seed).integers(0, 2, size=n).astype(np.float64)


def _logit_examples():
    x = _logits(0)
    soft = np.random.default_rng(3).uniform(size=x.size)
    return [(x, _labels(1, x.size)), (x, soft)]


def _smooth_logit_examples():
    x = np.random.default_rng(4).normal(size=16) * 3
    return [(x, _labels(5, 16)), (x, np.random.default_rng(6).uniform(size=16))]


def _prob_examples():
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(0.01, 0.99, size=14), [1e-6, 1 - 1e-6]])
    return [(p, _labels(8, p.size)), (p, rng.uniform(size=p.size))]


grads.register(
    "binary_cross_entropy",
    forward=_bce_formula,
    backward=_bce_backward,
    examples=_prob_examples,
    argnums=(0, 1),
    fd_examples=lambda: [(np.linspace(0.05, 0.95, 16), _labels(9, 16))],
    public=lambda p, y: binary_cross_entropy(p, y, reduction="none"),
)
grads.register(
    "binary_cross_entropy_with_logits",
    forward=_bce_logits_formula,
    backward=lambda x, y, g: _bce_logits_backward(x, y, None, g)[:2],
    examples=_logit_examples,
    argnums=(0, 1),
    fd_examples=_smooth_logit_examples,
    public=lambda x, y: binary_cross_entropy_with_logits(x, y, reduction="none"),
    reference=lambda x, y, g: jax.vjp(optax.sigmoid_binary_cross_entropy, x, y)[1](g),
    reference_name="optax.sigmoid_binary_cross_entropy",
)


def _pos_weight_examples(examples):
    return [(x, y, np.linspace(0.5, 3.0, x.size)) for x, y in examples()]


grads.register(
    "binary_cross_entropy_with_logits(pos_weight)",
    forward=_bce_logits_formula,
    backward=_bce_logits_backward,
    examples=lambda: _pos_weight_examples(_logit_examples),
    argnums=(0, 1, 2),
    fd_examples=lambda: _pos_weight_examples(_smooth_logit_examples),
    public=lambda x, y, pw: binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none"),
)
grads.register(
    "hinge_loss",
    forward=_hinge_formula,
    backward=_hinge_backward,
    examples=lambda: [
        (
            np.concatenate([[0.0, 1.0, -1.0, 1e4], np.linspace(-3, 3, 12)]),
            np.tile([1.0, 1.0, -1.0, -1.0], 4),
        )
    ],  # kinks at y·x = 1
    argnums=(0, 1),
    fd_examples=_smooth_logit_examples,
    public=lambda x, y: hinge_loss(x, y, reduction="none"),
)
for _alpha, _gamma in [(0.25, 2.0), (-1.0, 0.5), (0.75, 0.0)]:
    grads.register(
        f"sigmoid_focal_loss(alpha={_alpha}, gamma={_gamma})",
        forward=functools.partial(_sigmoid_focal_formula, alpha=_alpha, gamma=_gamma),
        backward=lambda x, y, g, a=_alpha, gm=_gamma: _sigmoid_focal_backward(x, y, a, gm, g),
        examples=_logit_examples,
        fd_examples=_smooth_logit_examples,
        public=lambda x, y, a=_alpha, gm=_gamma: sigmoid_focal_loss(
            x, y, alpha=a, gamma=gm, reduction="none"
        ),
        reference=lambda x, y, g, a=_alpha, gm=_gamma: jax.vjp(
            lambda x: optax.sigmoid_focal_loss(x, y, alpha=None if a < 0 else a, gamma=gm), x
        )[1](g)[0],
        reference_name="optax.sigmoid_focal_loss",
    )
