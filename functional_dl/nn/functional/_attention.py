"""Scaled dot-product attention: plain and blockwise (memory-efficient) paths.

Both paths use hand-derived gradients, registered in :mod:`functional_dl.grads` next to
the plain formula they differentiate. The plain path (and :func:`attention_weights`) is
a ``jax.custom_jvp`` whose tangent rule is linear in the tangents::

    dS   = scale (dq k^T + q dk^T) + dbias
    dP   = P * (dS - rowsum(P * dS))              (softmax jvp; 0 at masked entries)
    dout = (dP * z) v + (P * z) dv

so reverse mode (by transposition), ``jax.jvp``, ``jacfwd`` and ``hessian`` work. The
blockwise path is a ``jax.custom_vjp``: its backward recomputes the probabilities block
by block from the saved log-sum-exp, which keeps memory linear in the sequence length
(a jvp rule, transposed, would save every block's probabilities); it has no forward
mode.

Masking: a boolean ``mask``, ``is_causal``, and bias entries ``<= finfo(bias.dtype).min``
(``-inf`` or the dtype's most negative value) all exclude a key; a query row without any
key outputs 0 and gets zero gradients, on both paths.
"""

from __future__ import annotations

import functools
import math
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from ... import grads
from ..._checks import (
    check_choice,
    check_floating,
    check_in_range,
    check_int,
    check_static,
)
from . import _blockwise
from ._utils import is_zero, tangent_sum, to_rank

__all__ = ["scaled_dot_product_attention", "attention_weights"]

_FN = "scaled_dot_product_attention"
# implementation=None picks the blockwise path when both lengths reach this (it is
# faster on CPU from there on, and its memory stays linear).
AUTO_BLOCKWISE_MIN_LENGTH = 256


def _default_block_size(lq, lk):
    """Block length: ``max(Lq, Lk) / 8`` rounded down to a power of two, in [64, 256]."""
    return int(min(256, max(64, 2 ** int(math.log2(max(lq, lk, 8) // 8)))))


# ----------------------------------------------------------------------------- plain
def _valid(mask, is_causal, lq, lk):
    """Boolean validity ``[..., Lq, Lk]`` from a mask and/or the causal triangle."""
    valid = mask
    if is_causal:
        tri = jnp.tril(jnp.ones((lq, lk), bool))  # top-left aligned, as PyTorch
        valid = tri if valid is None else valid & to_rank(tri, valid.ndim)
    return valid


def _probs(q, k, bias, valid, scale):
    """Safe softmax of the scores: fully masked rows give all-zero probabilities."""
    s = jnp.einsum("...qd,...kd->...qk", q, k) * scale
    if bias is not None:
        s = s + to_rank(bias, s.ndim)
    if valid is not None:
        valid = to_rank(valid, s.ndim)
        s = jnp.where(valid, s, _blockwise.NEG)
    m = jax.lax.stop_gradient(jnp.max(s, axis=-1, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, 0.0)  # a row of -inf scores: exp gives 0, not NaN
    e = jnp.exp(s - m)
    if valid is not None:
        e = jnp.where(valid, e, 0.0)
    den = jnp.sum(e, axis=-1, keepdims=True)
    return e / jnp.where(den > 0, den, 1.0)


def _dropout_factor(key, dropout_p, shape, dtype):
    """``keep / (1 - p)`` with ``keep ~ Bernoulli(1 - p)`` (0 everywhere when ``p = 1``)."""
    keep = jax.random.bernoulli(key, 1.0 - dropout_p, shape)
    factor = 0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p)
    return jnp.where(keep, jnp.asarray(factor, dtype), jnp.asarray(0.0, dtype))


def _plain_formula(
    q, k, v, bias=None, mask=None, key=None, *, is_causal=False, scale=None, dropout_p=0.0, z=None
):
    """``softmax(scale * q k^T + bias, masked) * z @ v``: the formula autodiff checks against.

    ``z`` is the dropout factor ``keep / (1 - p)``, drawn from ``key`` unless given.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    p = _probs(q, k, bias, _valid(mask, is_causal, q.shape[-2], k.shape[-2]), scale)
    if dropout_p > 0.0:
        p = p * (_dropout_factor(key, dropout_p, p.shape, p.dtype) if z is None else z)
    return jnp.einsum("...qk,...kd->...qd", p, v)


def _plain_backward(
    q, k, v, bias, mask, key, g, *, is_causal=False, scale=None, dropout_p=0.0, z=None
):
    """Hand-derived vjp of the plain formula: ``(dq, dk, dv, dbias)``.

    With ``P = softmax(S)``, ``S = scale * q k^T + bias`` and ``out = (P * z) v``::

        dv    = (P * z)^T g
        dP    = (g v^T) * z
        dS    = P * (dP - rowsum(P * dP))       (softmax vjp; 0 at masked entries)
        dq    = scale * dS k,   dk = scale * dS^T q,   dbias = dS (summed over broadcast)
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    p = _probs(q, k, bias, _valid(mask, is_causal, q.shape[-2], k.shape[-2]), scale)
    dp = jnp.einsum("...qd,...kd->...qk", g, v)
    if dropout_p > 0.0:
        z = _dropout_factor(key, dropout_p, p.shape, p.dtype) if z is None else z
        dv = _blockwise._t_matmul(p * z, g)
        dp = dp * z
    else:
        dv = _blockwise._t_matmul(p, g)
    ds = p * (dp - jnp.sum(p * dp, axis=-1, keepdims=True))
    dq = scale * jnp.einsum("...qk,...kd->...qd", ds, k)
    dk = scale * _blockwise._t_matmul(ds, q)
    dbias = None if bias is None else _blockwise._reduce_to(ds, bias.shape)
    return dq, dk, dv, dbias


@functools.partial(jax.custom_jvp, nondiff_argnums=(6,))
def _plain(q, k, v, bias, mask, key, static):
    return _plain_formula(q, k, v, bias, mask, key, **dict(static))


def _probs_jvp(p, q, k, dq, dk, dbias, scale):
    """Tangent of the probabilities: ``dP = P * (dS - rowsum(P * dS))`` with
    ``dS = scale (dq k^T + q dk^T) + dbias``; ``None`` when every tangent is zero."""
    terms = []
    if not is_zero(dq):
        terms.append(jnp.einsum("...qd,...kd->...qk", dq, k) * scale)
    if not is_zero(dk):
        terms.append(jnp.einsum("...qd,...kd->...qk", q, dk) * scale)
    if dbias is not None and not is_zero(dbias):
        terms.append(to_rank(dbias, p.ndim))
    if not terms:
        return None
    ds = tangent_sum(p, terms)
    return p * (ds - jnp.sum(p * ds, axis=-1, keepdims=True))


@functools.partial(_plain.defjvp, symbolic_zeros=True)
def _plain_jvp(static, primals, tangents):
    """``dout = (dP * z) v + (P * z) dv`` with ``dP`` from :func:`_probs_jvp`."""
    (q, k, v, bias, mask, key), (dq, dk, dv, dbias, _, _) = primals, tangents
    opts = dict(static)
    scale = 1.0 / math.sqrt(q.shape[-1]) if opts["scale"] is None else opts["scale"]
    p = _probs(q, k, bias, _valid(mask, opts["is_causal"], q.shape[-2], k.shape[-2]), scale)
    dp = _probs_jvp(p, q, k, dq, dk, None if bias is None else dbias, scale)
    if opts["dropout_p"] > 0.0:
        z = _dropout_factor(key, opts["dropout_p"], p.shape, p.dtype)
        p = p * z
        dp = None if dp is None else dp * z
    out = jnp.einsum("...qk,...kd->...qd", p, v)
    terms = []
    if dp is not None:
        terms.append(jnp.einsum("...qk,...kd->...qd", dp, v))
    if not is_zero(dv):
        terms.append(jnp.einsum("...qk,...kd->...qd", p, dv))
    return out, tangent_sum(out, terms)


# ------------------------------------------------------------------------- blockwise
@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _blocks(q, k, v, bias, mask, key, cfg):
    return _blockwise.forward(cfg, q, k, v, mask, bias, key)[0]


def _blocks_fwd(q, k, v, bias, mask, key, cfg):
    out, lse = _blockwise.forward(cfg, q, k, v, mask, bias, key)
    return out, (q, k, v, bias, mask, key, out, lse)


def _blocks_bwd(cfg, res, g):
    q, k, v, bias, mask, key, out, lse = res
    dq, dk, dv, dbias = _blockwise.backward(cfg, q, k, v, mask, bias, key, out, lse, g)
    return dq, dk, dv, dbias, None, None


_blocks.defvjp(_blocks_fwd, _blocks_bwd)


def _pad_axis(x, axis, size, value=0):
    if x is None or x.shape[axis] in (1, size):
        return x
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, pad, constant_values=value)


def _pad_to_blocks(q, k, v, mask, bias, *, block_size, **opts):
    """Pad the sequence axes to whole blocks; the padded arrays and their
    :class:`_blockwise.Config` (``opts``: ``scale``, ``is_causal``, ``dropout_p``)."""
    lq, lk = q.shape[-2], k.shape[-2]
    bq, bk = min(block_size, lq), min(block_size, lk)
    lq_pad, lk_pad = -(-lq // bq) * bq, -(-lk // bk) * bk
    q = _pad_axis(q, -2, lq_pad)
    k, v = _pad_axis(k, -2, lk_pad), _pad_axis(v, -2, lk_pad)
    mask = _pad_axis(_pad_axis(mask, -2, lq_pad, True), -1, lk_pad, False)
    bias = _pad_axis(_pad_axis(bias, -2, lq_pad), -1, lk_pad)
    has = dict(has_mask=mask is not None, has_bias=bias is not None)
    cfg = _blockwise.Config(block_q=bq, block_k=bk, lk=lk, **has, **opts)
    return (q, k, v, mask, bias), cfg


def _blockwise_attention(q, k, v, bias, mask, key, *, is_causal, scale, dropout_p, block_size):
    """Pad to whole blocks, run the blockwise kernel, slice the padding off."""
    lq = q.shape[-2]
    opts = dict(scale=scale, is_causal=is_causal, dropout_p=dropout_p)
    (q, k, v, mask, bias), cfg = _pad_to_blocks(q, k, v, mask, bias, block_size=block_size, **opts)
    out = cast(jax.Array, _blocks(q, k, v, bias, mask, key, cfg))
    return out[..., :lq, :]


# ---------------------------------------------------------------------------- public
def _check_inputs(q, k, v, mask, bias, dropout_p, key):
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_floating(name, x, fn=_FN)
        if np.ndim(x) < 2:
            raise ValueError(
                f"{_FN}: {name} must have rank >= 2 ([..., L, D]), "
                f"got {name}.shape={tuple(np.shape(x))}"
            )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{_FN}: expected q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv], "
            f"got q.shape={q.shape}, k.shape={k.shape}, v.shape={v.shape}"
        )
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{_FN}: the leading (batch/head) dims of q, k, v must broadcast, got "
            f"q.shape={q.shape}, k.shape={k.shape}, v.shape={v.shape}"
        ) from None
    scores = tuple(batch) + (q.shape[-2], k.shape[-2])
    for name, x in (("mask", mask), ("bias", bias)):
        if x is None:
            continue
        if name == "mask" and jnp.result_type(x) != jnp.bool_:
            raise TypeError(
                f"{_FN}: mask must be boolean (True = may attend), "
                f"got mask.dtype={jnp.result_type(x)}; use bias= for additive masks"
            )
        try:
            ok = np.ndim(x) <= len(scores) and np.broadcast_shapes(np.shape(x), scores) == scores
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{_FN}: {name} of shape {tuple(np.shape(x))} does not broadcast to "
                f"the scores [..., Lq, Lk] = {scores}"
            )
    dropout_p = check_in_range("dropout_p", dropout_p, 0.0, 1.0, fn=_FN)
    if dropout_p > 0 and key is None:
        raise ValueError(f"{_FN}: dropout_p={dropout_p} > 0 needs a random key, got key=None")
    return tuple(batch)


def scaled_dot_product_attention(
    q: Any,
    k: Any,
    v: Any,
    *,
    mask: Any = None,
    is_causal: bool = False,
    scale: float | None = None,
    bias: Any = None,
    dropout_p: float = 0.0,
    key: Any = None,
    implementation: str | None = None,
    block_size: int | None = None,
) -> jax.Array:
    """Scaled dot-product attention ``softmax(q k^T * scale + bias, masked) v``.

    .. math::
        \\mathrm{out} = \\mathrm{softmax}\\big(\\mathrm{scale}\\, q k^T + \\mathrm{bias},
        \\ \\text{masked}\\big)\\, v, \\qquad \\mathrm{scale} = 1/\\sqrt{D}\\ \\text{by default}

    A query row whose keys are all masked outputs 0 with zero, finite gradients
    (PyTorch's "safe softmax"), never NaN, on both paths; a key is masked by ``mask``,
    ``is_causal`` or a bias entry ``<= finfo(bias.dtype).min`` (``-inf`` or the most
    negative value). ``Lk = 0`` (or ``Lq = 0``) gives zeros. Dropout (``dropout_p``) is
    applied to the attention weights after the softmax, kept weights scaled by
    ``1/(1 - dropout_p)``.

    Two paths with hand-derived backward passes: ``'plain'`` materialises the
    ``[..., Lq, Lk]`` weights; ``'blockwise'`` runs an online softmax over blocks of
    ``block_size`` queries and keys and recomputes them in the backward pass, so memory
    grows linearly with the sequence length, and with ``is_causal`` the blocks above
    the diagonal are skipped. Both agree within float32 rounding (without dropout; the
    dropout masks of the two paths are drawn differently).

    Gradients are hand-derived: the plain path is a ``jax.custom_jvp`` (tangent rule in
    the module docstring), so ``jax.jvp``, ``jacfwd`` and ``hessian`` work on it; the
    blockwise path is a ``jax.custom_vjp`` whose backward recomputes each block's
    probabilities from the saved log-sum-exp (memory linear in ``L``): reverse mode
    only, pass ``implementation='plain'`` for forward mode.

    Args:
      q: queries ``[..., Lq, D]`` (``...`` = batch, heads; broadcast against k and v).
      k: keys ``[..., Lk, D]``.
      v: values ``[..., Lk, Dv]``.
      mask: optional boolean mask broadcastable to ``[..., Lq, Lk]``; True = may attend.
      is_causal: mask out keys after the query (``tril`` of ``[Lq, Lk]``, top-left
        aligned as in PyTorch); combined with ``mask`` when both are given.
      scale: score scale; default ``1/sqrt(D)``.
      bias: optional additive float bias broadcastable to ``[..., Lq, Lk]`` (ALiBi,
        relative position bias); differentiable.
      dropout_p: dropout probability on the attention weights (needs ``key``).
      key: ``jax.random`` key for dropout.
      implementation: ``None`` (blockwise when ``Lq`` and ``Lk`` are both >= 256, else
        plain), ``'plain'`` or ``'blockwise'``.
      block_size: blockwise block length (default ``max(Lq, Lk) / 8`` as a power of two,
        clipped to [64, 256]).

    Returns:
      ``[..., Lq, Dv]`` in the promoted dtype of ``q, k, v`` (computed in at least float32).

    PyTorch: ``torch.nn.functional.scaled_dot_product_attention(query, key, value,
    attn_mask, dropout_p, is_causal, scale)`` with a boolean ``attn_mask``; a float
    ``attn_mask`` corresponds to ``bias`` here. JAX: ``jax.nn.dot_product_attention``
    (layout ``[B, L, N, D]``; it averages ``v`` over a fully masked row instead of 0).

    Example:
      >>> q = k = v = jnp.ones((2, 4, 8, 16))          # [batch, heads, L, D]
      >>> scaled_dot_product_attention(q, k, v, is_causal=True).shape
      (2, 4, 8, 16)
    """
    for name, value in (("is_causal", is_causal), ("scale", scale), ("dropout_p", dropout_p)):
        check_static(name, value, fn=_FN)
    if scale is not None and not math.isfinite(float(scale)):
        raise ValueError(f"{_FN}: scale must be finite, got scale={scale}")
    q, k, v = jnp.asarray(q), jnp.asarray(k), jnp.asarray(v)
    batch = _check_inputs(q, k, v, mask, bias, dropout_p, key)
    check_choice("implementation", implementation, (None, "plain", "blockwise"), fn=_FN)
    if block_size is not None:
        check_int("block_size", block_size, minimum=1, fn=_FN)
    lq, lk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    if lq == 0 or lk == 0:  # no query, or no key to attend to: every row is empty
        return jnp.zeros(batch + (lq, v.shape[-1]), jnp.result_type(q, k, v))
    if implementation is None:
        implementation = "blockwise" if min(lq, lk) >= AUTO_BLOCKWISE_MIN_LENGTH else "plain"
    if mask is not None:
        mask = jnp.asarray(mask)
    if bias is not None:
        bias = jnp.asarray(bias)
    return _attention(
        q,
        k,
        v,
        bias,
        mask,
        key,
        batch=batch,
        is_causal=bool(is_causal),
        scale=1.0 / math.sqrt(d) if scale is None else float(scale),
        dropout_p=float(dropout_p),
        implementation=implementation,
        block_size=block_size or _default_block_size(lq, lk),
    )


def _bias_mask(mask, bias):
    """Bias entries ``<= finfo(bias.dtype).min`` (``-inf``, the most negative value) mask
    their key: they join ``mask`` and are replaced by 0 (so no inf reaches the arithmetic
    and a row without any key outputs 0 on every path); a NaN entry stays and makes its
    row NaN. Same ranks in, same out."""
    if not jnp.issubdtype(bias.dtype, jnp.floating):
        return mask, bias
    keep = ~(bias <= jnp.finfo(bias.dtype).min)  # a NaN bias is kept: NaN in, NaN out
    bias = jnp.where(keep, bias, jnp.zeros((), bias.dtype))
    return (keep if mask is None else mask & keep), bias


@functools.partial(
    jax.jit,
    static_argnames=("batch", "is_causal", "scale", "dropout_p", "implementation", "block_size"),
)
def _attention(
    q, k, v, bias, mask, key, *, batch, is_causal, scale, dropout_p, implementation, block_size
):
    """Broadcast to the common batch shape, compute in >= float32, dispatch to a path."""
    out_dtype = jnp.result_type(q, k, v)
    ct = jnp.promote_types(out_dtype, jnp.float32)
    q, k, v = (jnp.broadcast_to(x.astype(ct), batch + x.shape[-2:]) for x in (q, k, v))
    rank = len(batch) + 2
    if mask is not None:
        mask = jnp.reshape(mask, (1,) * (rank - mask.ndim) + mask.shape)
    if bias is not None:
        bias = jnp.reshape(bias, (1,) * (rank - bias.ndim) + bias.shape)
        mask, bias = _bias_mask(mask, bias)
        bias = bias.astype(ct)
    if implementation == "plain":
        static = (("is_causal", is_causal), ("scale", scale), ("dropout_p", dropout_p))
        out = cast(jax.Array, _plain(q, k, v, bias, mask, key, static))
    else:
        out = _blockwise_attention(
            q,
            k,
            v,
            bias,
            mask,
            key,
            is_causal=is_causal,
            scale=scale,
            dropout_p=dropout_p,
            block_size=block_size,
        )
    return out.astype(out_dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _weights(q, k, bias, valid, scale):
    return _probs(q, k, bias, valid, scale)


@functools.partial(_weights.defjvp, symbolic_zeros=True)
def _weights_jvp(scale, primals, tangents):
    """``dP = P * (dS - rowsum(P * dS))``, ``dS = scale (dq k^T + q dk^T) + dbias``."""
    (q, k, bias, valid), (dq, dk, dbias, _) = primals, tangents
    p = _weights(q, k, bias, valid, scale)
    dp = _probs_jvp(p, q, k, dq, dk, None if bias is None else dbias, scale)
    return p, jnp.zeros_like(p) if dp is None else dp


def _weights_backward(q, k, bias, valid, g, scale):
    """Hand-derived vjp of the attention weights: ``(dq, dk, dbias)``.

    ``dS = P * (g - rowsum(P * g))``, ``dq = scale dS k``, ``dk = scale dS^T q``,
    ``dbias = dS`` summed over the axes ``bias`` broadcasts along.
    """
    p = _probs(q, k, bias, valid, scale)
    ds = p * (g - jnp.sum(p * g, axis=-1, keepdims=True))
    dq = scale * jnp.einsum("...qk,...kd->...qd", ds, k)
    dk = scale * _blockwise._t_matmul(ds, q)
    return dq, dk, None if bias is None else _blockwise._reduce_to(ds, bias.shape)


def attention_weights(
    q: Any,
    k: Any,
    *,
    mask: Any = None,
    is_causal: bool = False,
    scale: float | None = None,
    bias: Any = None,
) -> jax.Array:
    """The attention probabilities ``softmax(scale * q k^T + bias, masked)``, ``[..., Lq, Lk]``.

    .. math:: P = \\mathrm{softmax}(\\mathrm{scale}\\, q k^T + \\mathrm{bias},\\ \\text{masked})

    The weights that :func:`scaled_dot_product_attention` applies to ``v`` (without
    dropout), for inspection and plots; fully masked rows (``mask``, ``is_causal``, bias
    entries ``<= finfo.min``) are all zeros. Same arguments and broadcasting as
    :func:`scaled_dot_product_attention`. A ``jax.custom_jvp`` with the tangent
    ``dP = P * (dS - rowsum(P * dS))``, ``dS = scale (dq k^T + q dk^T) + dbias``; its
    transpose is ``dS = P * (g - rowsum(P * g))``.

    Example:
      >>> attention_weights(jnp.ones((4, 8)), jnp.ones((6, 8))).sum(-1)
      Array([1., 1., 1., 1.], dtype=float32)
    """
    q, k = jnp.asarray(q), jnp.asarray(k)
    _check_inputs(q, k, k, mask, bias, 0.0, None)
    out_dtype = jnp.result_type(q, k)
    ct = jnp.promote_types(out_dtype, jnp.float32)
    lq, lk = q.shape[-2], k.shape[-2]
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    if lq == 0 or lk == 0:
        return jnp.zeros(tuple(batch) + (lq, lk), out_dtype)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    rank = len(batch) + 2
    if mask is not None:
        mask = jnp.asarray(mask)
        mask = jnp.reshape(mask, (1,) * (rank - mask.ndim) + mask.shape)
    if bias is not None:
        bias = jnp.asarray(bias)
        bias = jnp.reshape(bias, (1,) * (rank - bias.ndim) + bias.shape)
        mask, bias = _bias_mask(mask, bias)
        bias = bias.astype(ct)
    valid = _valid(mask, is_causal, lq, lk)
    return _weights(q.astype(ct), k.astype(ct), bias, valid, scale).astype(out_dtype)


# ----------------------------------------------------------------------- registry
def _qkv_examples(shape_q=(2, 3, 5, 4), shape_k=(2, 3, 6, 4), seed=0, large=True, big=20.0):
    rng = np.random.default_rng(seed)
    out = [tuple(rng.standard_normal(s) for s in (shape_q, shape_k, shape_k))]
    if large:  # saturated softmax: scores of order +-big^2
        out.append(tuple(big * rng.standard_normal(s) for s in (shape_q, shape_k, shape_k)))
    return out


def _mask_example():
    rng = np.random.default_rng(1)
    mask = rng.random((2, 1, 5, 6)) > 0.4
    mask[0, 0, 2] = False  # a fully masked query row
    mask[1, 0, 0] = False
    return mask


def _with(extra, large=True, big=20.0):
    return lambda: [args + extra() for args in _qkv_examples(large=large, big=big)]


# With a mask and the causal triangle, big=20 saturates every row that keeps more than one
# key (1 - p_max ~ 1e-14): the whole gradient is then ~1e-11, at float64's rounding floor
# of ``dp - rowsum(P dp)`` (cancellation, error ~eps |dp|). There the hand vjp, the
# transpose of the hand jvp and autodiff each differ from a long-double reference by
# ~1e-3 relative, none more accurate than the others. The masked entries therefore use
# big=8: scores of order +-1e2 still saturate the softmax, and the gradient stays
# measurable (the three agree to 1e-14).
_MASKED_BIG = 8.0


_CAUSAL: dict[str, Any] = {"is_causal": True, "scale": 0.7}
_DROP: dict[str, Any] = {"dropout_p": 0.3}
_jit = jax.jit  # the checks call these many times on same-shaped examples


def _sdpa(kw):
    """``scaled_dot_product_attention`` with options bound, jitted (a ``public=`` entry)."""
    return _jit(lambda q, k, v, *extra: scaled_dot_product_attention(q, k, v, **kw(*extra)))


def _key():  # a fixed dropout key; the RBG generator compiles fast
    return jax.random.key(0, impl="rbg")


def _blockwise_vjp(q, k, v, mask, bias, g, *, block_size, **opts):
    """The blockwise path's hand-derived vjp (:func:`_blockwise.backward` after
    :func:`_blockwise.forward`, on the padded inputs): ``(dq, dk, dv, dbias)``."""
    lq, lk = q.shape[-2], k.shape[-2]
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k, v = (jnp.broadcast_to(x, batch + x.shape[-2:]) for x in (q, k, v))
    rank = len(batch) + 2
    mask = jnp.reshape(mask, (1,) * (rank - mask.ndim) + mask.shape)
    bias = jnp.reshape(bias, (1,) * (rank - bias.ndim) + bias.shape)
    (qp, kp, vp, mp, bp), cfg = _pad_to_blocks(
        q, k, v, mask, bias, block_size=block_size, dropout_p=0.0, **opts
    )
    gp = _pad_axis(g, -2, cast(jax.Array, qp).shape[-2])
    out, lse = _blockwise.forward(cfg, qp, kp, vp, mp, bp, None)
    dq, dk, dv, db = _blockwise.backward(cfg, qp, kp, vp, mp, bp, None, out, lse, gp)
    return dq[..., :lq, :], dk[..., :lk, :], dv[..., :lk, :], db[..., :lq, :lk]


def _register():
    grads.register(
        "scaled_dot_product_attention",
        forward=_jit(lambda q, k, v: _plain_formula(q, k, v)),
        backward=_jit(lambda q, k, v, g: _plain_backward(q, k, v, None, None, None, g)[:3]),
        examples=_qkv_examples,
        argnums=(0, 1, 2),
        fd_examples=lambda: _qkv_examples(large=False),
        public=_sdpa(lambda: {"implementation": "plain"}),
    )
    grads.register(
        "scaled_dot_product_attention(mask, is_causal=True, scale=0.7)",
        forward=_jit(lambda q, k, v, m: _plain_formula(q, k, v, None, m, **_CAUSAL)),
        backward=_jit(
            lambda q, k, v, m, g: _plain_backward(q, k, v, None, m, None, g, **_CAUSAL)[:3]
        ),
        examples=_with(lambda: (_mask_example(),), big=_MASKED_BIG),  # (see _MASKED_BIG)
        argnums=(0, 1, 2),
        fd_examples=_with(lambda: (_mask_example(),), large=False),
        public=_sdpa(lambda m: {"mask": m, "implementation": "plain", **_CAUSAL}),
    )

    def bias():
        return (np.random.default_rng(2).standard_normal((3, 5, 6)),)

    grads.register(
        "scaled_dot_product_attention(bias)",
        forward=_jit(lambda q, k, v, b: _plain_formula(q, k, v, b)),
        backward=_jit(lambda q, k, v, b, g: _plain_backward(q, k, v, b, None, None, g)),
        examples=_with(bias),
        argnums=(0, 1, 2, 3),
        fd_examples=_with(bias, large=False),
        public=_sdpa(lambda b: {"bias": b, "implementation": "plain"}),
    )

    grads.register(
        "scaled_dot_product_attention(dropout_p=0.3)",
        forward=_jit(lambda q, k, v: _plain_formula(q, k, v, key=_key(), **_DROP)),
        backward=_jit(
            lambda q, k, v, g: _plain_backward(q, k, v, None, None, _key(), g, **_DROP)[:3]
        ),
        examples=_qkv_examples,
        argnums=(0, 1, 2),
        fd_examples=lambda: _qkv_examples(large=False),
        public=_sdpa(lambda: {"key": _key(), "implementation": "plain", **_DROP}),
    )

    @_jit
    def blockwise_vjp(q, k, v, m, b, g):
        dq, dk, dv, db = _blockwise_vjp(q, k, v, m, b, g, block_size=2, **_CAUSAL)
        return dq, dk, dv, _blockwise._reduce_to(db, b.shape)

    def bias_mask():
        return (_mask_example(),) + bias()

    grads.register(
        "scaled_dot_product_attention(implementation='blockwise', block_size=2, mask, bias, "
        "is_causal=True, scale=0.7)",
        forward=_jit(lambda q, k, v, m, b: _plain_formula(q, k, v, b, m, **_CAUSAL)),
        backward=blockwise_vjp,
        examples=_with(bias_mask),
        argnums=(0, 1, 2, 4),
        fd_examples=_with(bias_mask, large=False),
        public=_sdpa(
            lambda m, b: {
                "mask": m,
                "bias": b,
                "implementation": "blockwise",
                "block_size": 2,
                **_CAUSAL,
            }
        ),
    )

    def qk(large=True):
        return lambda: [args[:2] for args in _qkv_examples(large=large)]

    grads.register(
        "attention_weights",
        forward=_jit(lambda q, k: _probs(q, k, None, None, 0.5)),
        backward=_jit(lambda q, k, g: _weights_backward(q, k, None, None, g, 0.5)[:2]),
        examples=qk(),
        argnums=(0, 1),
        fd_examples=qk(large=False),
        public=_jit(lambda q, k: attention_weights(q, k)),
    )

    def qk_mask_bias(large=True):
        examples = _qkv_examples(large=large, big=_MASKED_BIG)
        return lambda: [args[:2] + bias_mask() for args in examples]

    def valid(m):
        return _valid(jnp.asarray(m), True, 5, 6)

    grads.register(
        "attention_weights(mask, bias, is_causal=True, scale=0.7)",
        forward=_jit(lambda q, k, m, b: _probs(q, k, b, valid(m), 0.7)),
        backward=_jit(lambda q, k, m, b, g: _weights_backward(q, k, b, valid(m), g, 0.7)),
        examples=qk_mask_bias(),  # (see _MASKED_BIG)
        argnums=(0, 1, 3),
        fd_examples=qk_mask_bias(large=False),
        public=_jit(lambda q, k, m, b: attention_weights(q, k, mask=m, bias=b, **_CAUSAL)),
    )


_register()
