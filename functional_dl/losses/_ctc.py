"""Connectionist temporal classification: forward (alpha) and backward (beta) recursions.

Notation. For one sample with log-probabilities ``lp[t, c]`` (``t < T``) and target
``l = (l_1 … l_S)``, the *extended* target inserts a blank around every label:
``l' = (b, l_1, b, l_2, …, l_S, b)``, of length ``L = 2S + 1``. A path visits one
position ``s`` of ``l'`` per time step; from ``s`` it may stay, move to ``s + 1``, or
skip to ``s + 2`` when ``l'_{s+2}`` is a label different from ``l'_s`` (the skip over a
blank is forbidden between repeated labels). A valid path starts at ``s ∈ {0, 1}`` and
ends at ``s ∈ {L − 1, L − 2}``; its log-probability is ``Σ_t lp[t, l'_{s_t}]``.

* alpha (forward): ``α_0(s) = lp[0, l'_s]`` for ``s < 2`` (``−inf`` elsewhere),
  ``α_t(s) = lp[t, l'_s] + logsumexp(α_{t−1}(s), α_{t−1}(s−1), α_{t−1}(s−2) if skip)``;
* beta (backward), without the emission at ``t``: ``β_{T−1}(s) = 0`` for
  ``s ∈ {L−1, L−2}``, ``β_t(s) = logsumexp_{s' ∈ {s, s+1, s+2 if skip}}
  (lp[t+1, l'_{s'}] + β_{t+1}(s'))``;
* ``log Z = logsumexp(α_{T−1}(L−1), α_{T−1}(L−2))`` and the loss is ``−log Z``.

Gradient. ``log Z`` is a log-sum-exp over paths of ``Σ_t lp[t, l'_{s_t}]``; each path's
score is linear in ``lp`` with coefficient 1 at each ``(t, l'_{s_t})`` it visits, so
``∂ log Z / ∂ lp[t, c]`` is the posterior probability that the path emits ``c`` at
``t``. The paths through ``(t, s)`` have total log-probability ``α_t(s) + β_t(s)``,
hence the *occupancy*

    γ_t(c) = Σ_{s : l'_s = c} exp(α_t(s) + β_t(s) − log Z),

and ``∂ loss / ∂ lp[t, c] = −γ_t(c)`` (0 for ``t`` past the input length). Both
recursions run in log space as ``lax.scan``s with the three-term log-sum-exp written so
that ``−inf`` (an unreachable state) stays ``−inf`` without NaN.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import grads
from .._checks import check_floating, check_int, is_concrete
from .._dtypes import compute_dtype
from ._common import poison
from ._reduction import check_reduction, reduce_loss

__all__ = ["ctc_loss"]

_FN = "ctc_loss"


def _safe_log(total, m):
    """``m + log(total)``, −inf where ``total`` is 0, with no NaN in its derivatives (the
    recursions are differentiated again for second derivatives)."""
    safe = jnp.where(total > 0, total, jnp.where(jnp.isnan(total), total, 1.0))  # NaN stays
    return jnp.where(total == 0, -jnp.inf, m + jnp.log(safe))


def _shift_of(m):
    """A stop-gradient shift for a log-sum-exp: ``m`` where finite, else 0 (NaN stays)."""
    return jax.lax.stop_gradient(jnp.where(jnp.isinf(m), jnp.zeros_like(m), m))


def _lse3(a, b, c):
    """``log(exp a + exp b + exp c)``: −inf when all three are −inf, NaN in → NaN out."""
    m = _shift_of(jnp.maximum(jnp.maximum(a, b), c))
    return _safe_log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m), m)


def _shift(x, k, fill):
    """``x`` moved ``k`` places to higher ``s`` (``k < 0``: lower) along the last axis."""
    pad = jnp.full(x.shape[:-1] + (abs(k),), fill, x.dtype)
    if k > 0:
        return jnp.concatenate([pad, x[..., :-k]], -1)
    return jnp.concatenate([x[..., -k:], pad], -1)


def _extend(targets, target_lengths, blank, num_classes):
    """``(ext, skip, bad)``: extended labels ``[N, 2S+1]`` (in range for indexing),
    where a skip from ``s − 2`` to ``s`` is allowed ``[N, 2S+1]``, and the samples with
    a label (within their length) out of ``[0, C)`` or equal to ``blank`` ``[N]``."""
    n, s = targets.shape
    valid = jnp.arange(s)[None, :] < target_lengths[:, None]
    bad = jnp.any(valid & ((targets < 0) | (targets >= num_classes) | (targets == blank)), 1)
    labels = jnp.clip(jnp.where(valid, targets, blank), 0, num_classes - 1)
    ext = jnp.full((n, 2 * s + 1), blank, labels.dtype).at[:, 1::2].set(labels)
    skip = jnp.zeros((n, 2 * s + 1), bool)
    if s > 1:
        skip = skip.at[:, 3::2].set(labels[:, 1:] != labels[:, :-1])
    return ext, skip, bad


def _alpha(lp_t, ext, skip, input_lengths, history):
    """Forward recursion over ``lp_t [T, N, C]``: the last alpha ``[N, L]`` (frozen past
    each input length) and, with ``history``, every alpha ``[T, N, L]``."""
    neg = jnp.asarray(-jnp.inf, lp_t.dtype)
    first = jnp.take_along_axis(lp_t[0], ext, 1)
    alpha0 = jnp.where(jnp.arange(ext.shape[1])[None, :] < 2, first, neg)

    def step(alpha, xs):
        t, row = xs
        em = jnp.take_along_axis(row, ext, 1)
        new = em + _lse3(alpha, _shift(alpha, 1, neg), jnp.where(skip, _shift(alpha, 2, neg), neg))
        new = jnp.where((t < input_lengths)[:, None], new, alpha)
        return new, (new if history else None)

    ts = jnp.arange(1, lp_t.shape[0])
    last, hist = jax.lax.scan(step, alpha0, (ts, lp_t[1:]))
    if hist is not None:
        hist = jnp.concatenate([alpha0[None], hist], 0)
    return last, hist


def _end_states(target_lengths, length):
    """``[N, L]`` booleans: the two final states ``2S_n`` and ``2S_n − 1`` (one if S_n = 0)."""
    s = jnp.arange(length)[None, :]
    end = 2 * target_lengths[:, None]
    return (s == end) | ((s == end - 1) & (end > 0))


def _log_z(last, input_lengths, target_lengths):
    """``log Z`` from the last alpha; an empty input has ``log Z = 0`` iff its target is empty."""
    neg = jnp.asarray(-jnp.inf, last.dtype)
    ends = jnp.where(_end_states(target_lengths, last.shape[1]), last, neg)
    m = _shift_of(jnp.max(ends, 1))
    log_z = _safe_log(jnp.sum(jnp.exp(ends - m[:, None]), 1), m)
    empty = jnp.where(target_lengths == 0, jnp.zeros_like(log_z), neg)
    return jnp.where(input_lengths == 0, empty, log_z)


def _nll(lp, ext, skip, input_lengths, target_lengths, zero_infinity, history=False):
    """Per-sample ``−log Z`` (0 where infinite with ``zero_infinity``), ``lp [N, T, C]``."""
    lp_t = jnp.swapaxes(lp, 0, 1)
    last, hist = _alpha(lp_t, ext, skip, input_lengths, history)
    log_z = _log_z(last, input_lengths, target_lengths)
    nll = -log_z
    if zero_infinity:
        nll = jnp.where(nll == jnp.inf, jnp.zeros_like(nll), nll)
    return nll, log_z, lp_t, hist


def _occupancy(lp_t, hist, log_z, ext, skip, input_lengths, target_lengths, zero_infinity):
    """``γ [T, N, C]``: the occupancy ``∂ log Z / ∂ lp`` from the beta recursion and the
    alpha history. A sample whose loss is infinite gets NaN (0 with ``zero_infinity``)."""
    neg = jnp.asarray(-jnp.inf, lp_t.dtype)
    num_classes = lp_t.shape[-1]
    onehot = jax.nn.one_hot(ext, num_classes, dtype=lp_t.dtype)  # [N, L, C]
    terminal = jnp.where(_end_states(target_lengths, ext.shape[1]), 0.0, neg).astype(lp_t.dtype)
    z = jnp.where(jnp.isfinite(log_z), log_z, jnp.zeros_like(log_z))[:, None]
    skip_from = _shift(skip, -2, False)  # skip_from[s]: s -> s + 2 allowed

    def occupancy(t, alpha, beta):
        post = jnp.exp(alpha + beta - z) * (t < input_lengths)[:, None]
        return jnp.einsum("nl,nlc->nc", post, onehot)

    def step(beta, xs):
        t, alpha, row = xs  # beta is beta_t; returns beta_{t-1}
        out = occupancy(t, alpha, beta)
        x = jnp.take_along_axis(row, ext, 1) + beta
        prev = _lse3(x, _shift(x, -1, neg), jnp.where(skip_from, _shift(x, -2, neg), neg))
        prev = jnp.where((t - 1 >= input_lengths - 1)[:, None], terminal, prev)
        return prev, out

    ts = jnp.arange(1, lp_t.shape[0])
    beta0, occ = jax.lax.scan(step, terminal, (ts, hist[1:], lp_t[1:]), reverse=True)
    occ = jnp.concatenate([occupancy(0, hist[0], beta0)[None], occ], 0)
    fill = jnp.asarray(0.0 if zero_infinity else jnp.nan, occ.dtype)
    return jnp.where((log_z == -jnp.inf)[None, :, None], fill, occ)


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _ctc(lp, ext, skip, input_lengths, target_lengths, zero_infinity):
    return _nll(lp, ext, skip, input_lengths, target_lengths, zero_infinity)[0]


@_ctc.defjvp
def _ctc_jvp(zero_infinity, primals, tangents):
    """Tangent ``−Σ_{t,c} γ_t(c)·dlp[t, c]``: linear in ``dlp``, so reverse mode
    transposes it into ``∂ loss / ∂ lp = −γ`` (γ is computed once, in the forward pass)."""
    lp, ext, skip, input_lengths, target_lengths = primals
    nll, log_z, lp_t, hist = _nll(
        lp, ext, skip, input_lengths, target_lengths, zero_infinity, history=True
    )
    occ = _occupancy(lp_t, hist, log_z, ext, skip, input_lengths, target_lengths, zero_infinity)
    return nll, -jnp.einsum("tnc,ntc->n", occ, tangents[0])


def _as_lengths(name, value, n, limit, limit_name):
    arr = jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"{_FN}: {name} must hold integers, got {name}.dtype={arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{_FN}: {name} must have shape (N,)=({n},), got {name}.shape={arr.shape}")
    if is_concrete(value):
        host = np.asarray(value)
        if host.size and (host.min() < 0 or host.max() > limit):
            raise ValueError(
                f"{_FN}: {name} must be in [0, {limit_name}={limit}], got {name}={host.tolist()}"
            )
    return arr.astype(jnp.int32)


def ctc_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike,
    target_lengths: ArrayLike,
    *,
    blank: int = 0,
    zero_infinity: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    """Connectionist temporal classification loss (Graves et al., 2006).

    ``loss_n = −log Σ_{π ∈ B⁻¹(l_n)} Π_t p_t(π_t)``: the negative log of the total
    probability of every alignment ``π`` (one symbol per frame, blanks allowed) that
    collapses to the target ``l_n`` once repeats are merged and blanks removed. It is
    computed with the alpha recursion in log space (a ``lax.scan``; the recursions and
    the derivation are in the module docstring).

    Gradient (hand-derived, the live one through ``jax.custom_jvp``): the true partial
    derivative ``∂ loss_n / ∂ log_probs[n, t, c] = −γ_t(c)``, minus the occupancy
    ``γ_t(c) = Σ_{s: l'_s = c} exp(α_t(s) + β_t(s) + loss_n)`` (0 past the input
    length), from one beta ``lax.scan`` over the alpha history. PyTorch's backward
    returns ``exp(log_probs) − γ`` instead, which is the gradient with respect to the
    logits when ``log_probs = log_softmax(logits)``; composed with ``log_softmax``
    both give ``softmax(logits) − γ``. A custom JVP (rather than a VJP) keeps forward
    mode and second derivatives working; under ``grad`` the occupancy ``[T, N, C]`` is
    the only residual.

    Args:
      log_probs: ``[N, T, C]`` log-probabilities (usually ``log_softmax`` output),
        batch first; class ``blank`` is the blank.
      targets: ``[N, S]`` integer labels in ``[0, C)``, not ``blank``, padded; entries
        at positions ``>= target_lengths[n]`` are ignored. A label out of range (or equal
        to ``blank``) within the length makes that sample's loss NaN.
      input_lengths: ``[N]`` integers in ``[0, T]``: frames used per sample.
      target_lengths: ``[N]`` integers in ``[0, S]``.
      blank: index of the blank class (default 0).
      zero_infinity: replace infinite losses (an input too short for its target) and
        their gradients by 0 (default False: ``inf`` loss, NaN gradient, as PyTorch).
      reduction: ``'mean'`` (default: each loss divided by its target length, clamped
        to at least 1, then averaged over the batch, as PyTorch), ``'sum'`` or ``'none'``.

    Returns:
      a scalar, or ``[N]`` for ``'none'``; in ``log_probs``' dtype (half precision is
      computed in float32).

    Raises:
      ValueError: naming the argument, for bad shapes, lengths out of range or ``blank``
        out of ``[0, C)``.
      TypeError: naming the argument, for bad dtypes.

    Equivalent to ``torch.nn.functional.ctc_loss`` with batch-first ``log_probs`` (PyTorch
    takes ``[T, N, C]``) and padded targets; ``optax.ctc_loss(logits, logit_paddings,
    labels, label_paddings)`` gives the per-sample loss from the logits (its paddings are
    ``1 − mask``).

    Example::

        >>> lp = jnp.log(jnp.full((1, 2, 2), 0.5))  # two frames, classes {blank, a}
        >>> # alignments of "a": (a, a), (a, blank), (blank, a): probability 3/4
        >>> ctc_loss(lp, jnp.array([[1]]), jnp.array([2]), jnp.array([1]))  # −log(3/4)
        Array(0.287682..., dtype=float32)
    """
    check_reduction(reduction, fn=_FN)
    check_floating("log_probs", log_probs, fn=_FN)
    lp = jnp.asarray(log_probs)
    if lp.ndim != 3:
        raise ValueError(
            f"{_FN}: log_probs must have shape [N, T, C], got log_probs.shape={lp.shape}"
        )
    n, t, c = lp.shape
    if t < 1 or c < 1:
        raise ValueError(
            f"{_FN}: log_probs needs T >= 1 and C >= 1, got log_probs.shape={lp.shape}"
        )
    tg = jnp.asarray(targets)
    if not jnp.issubdtype(tg.dtype, jnp.integer):
        raise TypeError(f"{_FN}: targets must hold integer labels, got targets.dtype={tg.dtype}")
    if tg.ndim != 2 or tg.shape[0] != n:
        raise ValueError(f"{_FN}: targets must have shape [N={n}, S], got targets.shape={tg.shape}")
    check_int("blank", blank, minimum=0, fn=_FN)
    if blank >= c:
        raise ValueError(f"{_FN}: blank must be in [0, C={c}), got blank={blank!r}")
    if not isinstance(zero_infinity, (bool, np.bool_)):
        raise TypeError(f"{_FN}: zero_infinity must be a bool, got zero_infinity={zero_infinity!r}")
    il = _as_lengths("input_lengths", input_lengths, n, t, "T")
    tl = _as_lengths("target_lengths", target_lengths, n, tg.shape[1], "S")
    return _ctc_loss(lp, tg.astype(jnp.int32), il, tl, blank, bool(zero_infinity), reduction)


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _ctc_loss(lp, targets, input_lengths, target_lengths, blank, zero_infinity, reduction):
    """The checked arguments to the reduced loss, compiled as one program (eager calls
    would otherwise dispatch the recursions op by op)."""
    ext, skip, bad = _extend(targets, target_lengths, blank, lp.shape[-1])
    lpc = lp.astype(compute_dtype(lp.dtype))
    nll = poison(bad, _ctc(lpc, ext, skip, input_lengths, target_lengths, zero_infinity))
    if reduction == "mean":
        nll = nll / jnp.maximum(target_lengths, 1).astype(nll.dtype)
    return reduce_loss(nll, reduction, dtype=lp.dtype)


# ---------------------------------------------------------------- gradient registry
_NEG = -1e30  # a finite log 0, so that plain autodiff of the recursion has no NaN


def _ctc_formula(log_probs, targets, input_lengths, target_lengths):
    """Plain alpha recursion (``jnp.logaddexp``, finite log 0), differentiated by JAX."""
    n, t, c = log_probs.shape
    ext, skip, _ = _extend(jnp.asarray(targets), jnp.asarray(target_lengths), 0, c)
    em = jnp.take_along_axis(log_probs, ext[:, None, :], 2)  # [N, T, L]
    pos = jnp.arange(ext.shape[1])[None, :]
    il = jnp.asarray(input_lengths)

    def step(alpha, xs):
        i, em_t = xs
        a1 = jnp.concatenate([jnp.full((n, 1), _NEG), alpha[:, :-1]], 1)
        a2 = jnp.concatenate([jnp.full((n, 2), _NEG), alpha[:, :-2]], 1)
        new = em_t + jnp.logaddexp(jnp.logaddexp(alpha, a1), jnp.where(skip, a2, _NEG))
        return jnp.where((i < il)[:, None], new, alpha), None

    alpha0 = jnp.where(pos < 2, em[:, 0], _NEG)
    alpha, _ = jax.lax.scan(step, alpha0, (jnp.arange(1, t), jnp.swapaxes(em, 0, 1)[1:]))
    ends = _end_states(jnp.asarray(target_lengths), ext.shape[1])
    return -jax.nn.logsumexp(jnp.where(ends, alpha, _NEG), axis=1)


def _ctc_backward(log_probs, targets, input_lengths, target_lengths, g):
    """``∂ loss_n / ∂ lp[n, t, c] = −g_n·γ_t(c)`` (occupancy from alpha·beta)."""
    il, tl = jnp.asarray(input_lengths), jnp.asarray(target_lengths)
    ext, skip, _ = _extend(jnp.asarray(targets), tl, 0, log_probs.shape[-1])
    _, log_z, lp_t, hist = _nll(log_probs, ext, skip, il, tl, False, history=True)
    occ = _occupancy(lp_t, hist, log_z, ext, skip, il, tl, False)
    return -jnp.einsum("tnc,n->ntc", occ, g)


def _ctc_examples():
    """Log-softmax inputs and unnormalised scores; repeats, padding, short inputs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 5)) * 2
    lp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    targets = np.array([[1, 2, 2], [3, 3, 3], [4, 1, -1], [2, 0, 0]])  # padding ignored
    input_lengths = np.array([6, 6, 5, 2])
    target_lengths = np.array([3, 2, 2, 1])
    return [
        (lp, targets, input_lengths, target_lengths),
        (x, targets, input_lengths, target_lengths),
    ]


grads.register(
    "ctc_loss",
    forward=jax.jit(_ctc_formula),  # compiled: the checker calls it eagerly
    backward=jax.jit(_ctc_backward),
    examples=_ctc_examples,
    fd_examples=_ctc_examples,
    public=lambda lp, tg, il, tl: ctc_loss(lp, tg, il, tl, reduction="none"),
)
