"""Losses between distributions: KL divergence, and the GAN objectives."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_same_shape
from ._common import float_inputs, live, same_shape_inputs
from ._reduction import check_reduction, reduce_loss

__all__ = ["kl_div", "gan_discriminator_loss", "gan_generator_loss"]


# ------------------------------------------------------------------------------ kl_div
def _kl_formula(x, t, log_target=False):
    # 0 where the target probability is 0; both branches kept finite for autodiff
    zero = t == -jnp.inf if log_target else t == 0
    t_safe = jnp.where(zero, 0 if log_target else 1, t)
    x_safe = jnp.where(zero, 0, x)
    if log_target:
        value = jnp.exp(t_safe) * (t_safe - x_safe)
    else:
        value = t_safe * (jnp.log(t_safe) - x_safe)
    return jnp.where(zero, 0, value)


def _kl_backward(x, t, g, log_target=False):
    """Pointwise KL ``t·(log t − x)``: d/dx = −t, d/dt = log t − x + 1.

    With ``log_target`` (``e^t·(t − x)``): d/dx = −e^t, d/dt = e^t·(t − x + 1).
    Both are 0 where the target probability is 0.
    """
    zero = t == -jnp.inf if log_target else t == 0
    t_safe = jnp.where(zero, 0 if log_target else 1, t)
    x_safe = jnp.where(zero, 0, x)
    prob = jnp.exp(t_safe) if log_target else t_safe
    dt = prob * (t_safe - x_safe + 1) if log_target else jnp.log(t_safe) - x_safe + 1
    return jnp.where(zero, 0, -prob * g), jnp.where(zero, 0, dt * g)


def kl_div(
    input: ArrayLike, target: ArrayLike, *, log_target: bool = False, reduction: str = "mean"
) -> jax.Array:
    """Kullback–Leibler divergence, with ``input`` given as log-probabilities.

    Pointwise ``loss = target·(log target − input)`` (``exp(target)·(target − input)``
    with ``log_target=True``), 0 where the target probability is 0, including where
    ``input`` is −inf there (PyTorch gives NaN in that case). ``'batchmean'`` is
    ``sum / input.shape[0]``, the true KL divergence per sample; ``'mean'`` averages
    over every element (PyTorch's default, which is not the KL divergence).

    Args:
      input: log-probabilities ``log q``, any shape ``[N, ...]``.
      target: probabilities ``p`` (or ``log p`` with ``log_target``), same shape.
      log_target: whether ``target`` holds log-probabilities (default False).
      reduction: ``'mean'`` (default), ``'batchmean'``, ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array of ``input``'s shape for ``'none'``; ``input``'s dtype.

    Equivalent to ``torch.nn.functional.kl_div``; ``kl_div(..., reduction='none')``
    summed over the class axis is ``optax.kl_divergence(input, target)`` (or
    ``optax.kl_divergence_with_log_targets``). Gradient: ``−target`` (``−exp(target)``).

    Example::

        >>> p = jnp.array([[0.5, 0.5]])
        >>> log_q = jnp.log(jnp.array([[0.9, 0.1]]))
        >>> kl_div(log_q, p, reduction="batchmean")  # KL(p || q)
        Array(0.5108..., dtype=float32)
    """
    fn = "kl_div"
    check_reduction(reduction, fn=fn, extra=("batchmean",))
    (x, t), out = same_shape_inputs(fn, input=input, target=target)
    loss = live(_kl_formula, _kl_backward, (x, t), (0, 1), log_target=bool(log_target))
    if reduction == "batchmean":
        return reduce_loss(
            loss, "mean" if x.ndim else "sum", dtype=out, denominator=x.shape[0] if x.ndim else None
        )
    return reduce_loss(loss, reduction, dtype=out)


# ---------------------------------------------------------------------------- GAN losses
def _gan_d_terms(real, fake):
    return jax.nn.softplus(-real), jax.nn.softplus(fake)


def _gan_d_formula(real, fake):
    loss_real, loss_fake = _gan_d_terms(real, fake)
    return loss_real + loss_fake


def _gan_d_backward(real, fake, g):
    """−log σ(r) − log(1 − σ(f)) = softplus(−r) + softplus(f): d/dr = −σ(−r), d/df = σ(f)."""
    return -jax.nn.sigmoid(-real) * g, jax.nn.sigmoid(fake) * g


def gan_discriminator_loss(
    real_logits: ArrayLike, fake_logits: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Discriminator loss of the standard GAN: classify real as 1 and fake as 0.

    ``loss = −log σ(real) − log(1 − σ(fake)) = softplus(−real) + softplus(fake)``.
    ``'mean'``/``'sum'`` reduce the real and the fake terms separately and add them
    (so the two batches may differ in size); ``'none'`` needs equal shapes and returns
    the per-element sum. Gradient: ``−σ(−real)`` and ``σ(fake)``.

    Args:
      real_logits: discriminator logits on real samples, any shape.
      fake_logits: discriminator logits on generated samples, any shape.
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array for ``'none'``; the logits' dtype. Finite at any logit.

    Equivalent to ``bce_with_logits(real, ones) + bce_with_logits(fake, zeros)`` in
    PyTorch (no factor 1/2). Goodfellow et al., *Generative Adversarial Nets*, 2014.

    Example::

        >>> gan_discriminator_loss(jnp.array([3.0, 2.0]), jnp.array([-2.0, -4.0]))
        Array(0.1602..., dtype=float32)
    """
    fn = "gan_discriminator_loss"
    check_reduction(reduction, fn=fn)
    if reduction == "none":
        check_same_shape("real_logits", real_logits, "fake_logits", fake_logits, fn=fn)
    (r, f), out = float_inputs(fn, real_logits=real_logits, fake_logits=fake_logits)
    loss_real, loss_fake = _softplus_neg(r), _softplus_pos(f)
    return reduce_loss(loss_real, reduction, dtype=out) + reduce_loss(
        loss_fake, reduction, dtype=out
    )


_softplus_neg = grads.hand_rule(lambda r: jax.nn.softplus(-r), lambda r, g: -jax.nn.sigmoid(-r) * g)
_softplus_pos = grads.hand_rule(jax.nn.softplus, lambda f, g: jax.nn.sigmoid(f) * g)


def _gan_g_formula(fake, non_saturating=True):
    return jax.nn.softplus(-fake) if non_saturating else -jax.nn.softplus(fake)


def _gan_g_backward(fake, g, non_saturating=True):
    """Non-saturating ``−log σ(f)``: d/df = −σ(−f); saturating ``log(1 − σ(f))``: −σ(f)."""
    return -(jax.nn.sigmoid(-fake) if non_saturating else jax.nn.sigmoid(fake)) * g


def gan_generator_loss(
    fake_logits: ArrayLike, *, non_saturating: bool = True, reduction: str = "mean"
) -> jax.Array:
    """Generator loss of the standard GAN, non-saturating (default) or minimax.

    ``non_saturating=True``: ``loss = −log σ(fake) = softplus(−fake)``, strong
    gradients while the discriminator wins. ``False``: the original minimax objective
    ``loss = log(1 − σ(fake)) = −softplus(fake)``, whose gradient ``−σ(fake)``
    vanishes when ``fake`` is very negative. Gradient: ``−σ(−fake)`` (non-saturating)
    or ``−σ(fake)``.

    Args:
      fake_logits: discriminator logits on generated samples, any shape.
      non_saturating: which objective (default True).
      reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or an array for ``'none'``; the logits' dtype. Finite at any logit.

    PyTorch equivalent: ``bce_with_logits(fake, ones)`` for the non-saturating loss.
    Goodfellow et al., *Generative Adversarial Nets*, 2014.

    Example::

        >>> gan_generator_loss(jnp.array([-2.0, 0.5]))
        Array(1.3005..., dtype=float32)
    """
    fn = "gan_generator_loss"
    check_reduction(reduction, fn=fn)
    (f,), out = float_inputs(fn, fake_logits=fake_logits)
    loss = live(_gan_g_formula, _gan_g_backward, (f,), (0,), non_saturating=bool(non_saturating))
    return reduce_loss(loss, reduction, dtype=out)


# ---------------------------------------------------------------- gradient registry
def _kl_examples(log_target):
    rng = np.random.default_rng(20)
    t = rng.dirichlet(np.ones(5), size=6)
    t[0, :2] = 0.0
    x = np.log(rng.dirichlet(np.ones(5), size=6))
    x[0, 0] = -np.inf  # target probability 0 there
    if log_target:
        with np.errstate(divide="ignore"):
            t = np.log(t)
    return [(x, t)]


def _kl_fd_examples(log_target):
    rng = np.random.default_rng(21)
    t = (rng.dirichlet(np.ones(5), size=6) + 0.05) / 1.25  # >= 0.04: the steps stay inside
    return [(np.log(rng.dirichlet(np.ones(5), size=6)), np.log(t) if log_target else t)]


for _lt in (False, True):
    grads.register(
        f"kl_div(log_target={_lt})",
        forward=functools.partial(_kl_formula, log_target=_lt),
        backward=functools.partial(_kl_backward, log_target=_lt),
        examples=functools.partial(_kl_examples, _lt),
        fd_examples=functools.partial(_kl_fd_examples, _lt),
        argnums=(0, 1),
        public=lambda x, t, lt=_lt: kl_div(x, t, log_target=lt, reduction="none"),
    )


def _gan_logits(seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=13) * 3, [-1e4, 1e4, 0.0]])


grads.register(
    "gan_discriminator_loss",
    forward=_gan_d_formula,
    backward=_gan_d_backward,
    examples=lambda: [(_gan_logits(22), _gan_logits(23))],
    argnums=(0, 1),
    fd_examples=lambda: [(np.linspace(-3, 3, 16), np.linspace(-2, 4, 16))],
    public=lambda r, f: gan_discriminator_loss(r, f, reduction="none"),
)
for _ns in (True, False):
    grads.register(
        f"gan_generator_loss(non_saturating={_ns})",
        forward=functools.partial(_gan_g_formula, non_saturating=_ns),
        backward=functools.partial(_gan_g_backward, non_saturating=_ns),
        examples=lambda: [(_gan_logits(24),)],
        fd_examples=lambda: [(np.linspace(-3, 3, 16),)],
        public=lambda f, ns=_ns: gan_generator_loss(f, non_saturating=ns, reduction="none"),
    )
