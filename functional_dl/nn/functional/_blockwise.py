"""Memory-efficient attention: blockwise online softmax with a recomputing backward.

The forward pass walks over query blocks (``lax.map``) and, inside, over key blocks
(``fori_loop``) keeping the running row maximum ``m``, normaliser ``l`` and output
accumulator ``acc`` of the online softmax (Milakov & Gimelshein 2018; Rabe & Staats
2021; Dao et al. 2022, FlashAttention)::

    s    = scale * q_i k_j^T + bias_ij            (masked entries excluded)
    m'   = max(m, rowmax(s))
    p    = exp(s - m')
    l'   = l * exp(m - m') + rowsum(p)
    acc' = acc * exp(m - m') + (p * z) v_j         (z: dropout keep mask / (1 - p_drop))
    out  = acc / l,   lse = m + log(l)

Only ``out`` and the log-sum-exp ``lse`` are saved, so memory is linear in the
sequence length. The backward pass recomputes every block's probabilities
``p = exp(s - lse)`` and applies the softmax vjp with ``D = rowsum(dout * out)``::

    dv_j += (p z)^T dout_i
    ds    = p * ((dout_i v_j^T) z - D_i)
    dq_i += scale * ds k_j,   dk_j += scale * ds^T q_i,   dbias_ij += ds

With ``is_causal`` the key blocks above the diagonal are skipped entirely (half the
work). All arrays here are already padded to whole blocks and in the compute dtype;
the public entry point is :func:`functional_dl.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

NEG = -1e30  # score given to masked entries (finite: exp(NEG - NEG) stays well defined)


def _slice_rows_cols(a, r0, nr, c0, nc):
    """Slice a ``[..., R, C]`` array that may have size-1 (broadcast) R or C dims."""
    if a.shape[-2] != 1:
        a = lax.dynamic_slice_in_dim(a, r0, nr, axis=a.ndim - 2)
    if a.shape[-1] != 1:
        a = lax.dynamic_slice_in_dim(a, c0, nc, axis=a.ndim - 1)
    return a


def _reduce_to(x, shape):
    """Sum ``x`` over the axes where ``shape`` has size 1 (undo broadcasting)."""
    lead = x.ndim - len(shape)
    x = jnp.sum(x, axis=tuple(range(lead))) if lead else x
    pairs = enumerate(zip(shape, x.shape, strict=True))
    axes = tuple(i for i, (n, m) in pairs if n == 1 and m != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


def _t_matmul(a, b):
    """``a^T b`` over the last two axes, with ``a`` transposed explicitly (fast CPU GEMM)."""
    return jnp.einsum("...kq,...qd->...kd", jnp.swapaxes(a, -1, -2), b)


def _keep_scale(key, i, j, shape, dropout_p, dtype):
    """Dropout factor ``z`` of block ``(i, j)``: ``keep / (1 - p)``, drawn from ``key``."""
    block_key = jax.random.fold_in(jax.random.fold_in(key, i), j)
    keep = jax.random.bernoulli(block_key, 1.0 - dropout_p, shape)
    factor = 0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p)
    return jnp.where(keep, jnp.asarray(factor, dtype), jnp.asarray(0.0, dtype))


class Config:
    """Static description of one blockwise call (hashable: used as a static argument)."""

    def __init__(self, *, scale, is_causal, dropout_p, block_q, block_k, lk, has_mask, has_bias):
        self.scale, self.is_causal, self.dropout_p = float(scale), bool(is_causal), float(dropout_p)
        self.block_q, self.block_k, self.lk = int(block_q), int(block_k), int(lk)
        self.has_mask, self.has_bias = bool(has_mask), bool(has_bias)

    def _key(self):
        return tuple(sorted(vars(self).items()))

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Config) and self._key() == other._key()


def _block_scores(cfg, qi, kj, mask, bias, i, j):
    """Scores ``s`` and validity of block ``(i, j)``; masked entries set to ``NEG``."""
    bq, bk = cfg.block_q, cfg.block_k
    s = jnp.einsum("...qd,...kd->...qk", qi, kj) * cfg.scale  # (..., bq, bk)
    if cfg.has_bias:
        s = s + _slice_rows_cols(bias, i * bq, bq, j * bk, bk)
    cols = j * bk + lax.broadcasted_iota(jnp.int32, (bq, bk), 1)
    valid = cols < cfg.lk
    if cfg.is_causal:
        rows = i * bq + lax.broadcasted_iota(jnp.int32, (bq, bk), 0)
        valid = valid & (cols <= rows)
    valid = jnp.reshape(valid, (1,) * (s.ndim - 2) + valid.shape)
    if cfg.has_mask:
        valid = valid & _slice_rows_cols(mask, i * bq, bq, j * bk, bk)
    return jnp.where(valid, s, NEG), valid


def _num_k_blocks(cfg, i, nk):
    """Key blocks that query block ``i`` can see (all, or up to the diagonal if causal)."""
    if not cfg.is_causal:
        return nk
    return jnp.minimum(nk, ((i + 1) * cfg.block_q + cfg.block_k - 1) // cfg.block_k)


def _first_q_block(cfg, j):
    """First query block that can see key block ``j`` (0, or the diagonal if causal)."""
    return (j * cfg.block_k) // cfg.block_q if cfg.is_causal else 0


def forward(
    cfg: Config, q: Any, k: Any, v: Any, mask: Any, bias: Any, key: Any
) -> tuple[jax.Array, jax.Array]:
    """Blockwise attention: returns ``(out, lse)``; ``q`` ``[..., nq*bq, D]`` etc."""
    batch, bq, bk = q.shape[:-2], cfg.block_q, cfg.block_k
    nq, nk, dv = q.shape[-2] // bq, k.shape[-2] // bk, v.shape[-1]
    dtype = q.dtype

    def q_block(i):
        qi = lax.dynamic_slice_in_dim(q, i * bq, bq, axis=q.ndim - 2)

        def body(j, carry):
            m, l, acc = carry
            kj = lax.dynamic_slice_in_dim(k, j * bk, bk, axis=k.ndim - 2)
            vj = lax.dynamic_slice_in_dim(v, j * bk, bk, axis=v.ndim - 2)
            s, valid = _block_scores(cfg, qi, kj, mask, bias, i, j)
            m_new = jnp.maximum(m, jnp.max(s, axis=-1))
            p = jnp.where(valid, jnp.exp(s - m_new[..., None]), 0.0)
            corr = jnp.exp(m - m_new)
            l = l * corr + jnp.sum(p, axis=-1)
            if cfg.dropout_p > 0.0:
                p = p * _keep_scale(key, i, j, p.shape, cfg.dropout_p, dtype)
            acc = acc * corr[..., None] + jnp.einsum("...qk,...kd->...qd", p, vj)
            return m_new, l, acc

        init = (
            jnp.full(batch + (bq,), NEG, dtype),
            jnp.zeros(batch + (bq,), dtype),
            jnp.zeros(batch + (bq, dv), dtype),
        )
        m, l, acc = lax.fori_loop(0, _num_k_blocks(cfg, i, nk), body, init)
        seen = l > 0  # False for fully masked rows: output 0, lse 0
        l_safe = jnp.where(seen, l, 1.0)
        return acc / l_safe[..., None], jnp.where(seen, m + jnp.log(l_safe), 0.0)

    out, lse = lax.map(q_block, jnp.arange(nq))  # (nq, ..., bq, dv), (nq, ..., bq)
    out = jnp.moveaxis(out, 0, -3).reshape(batch + (nq * bq, dv))
    lse = jnp.moveaxis(lse, 0, -2).reshape(batch + (nq * bq,))
    return out, lse


def backward(
    cfg: Config,
    q: Any,
    k: Any,
    v: Any,
    mask: Any,
    bias: Any,
    key: Any,
    out: Any,
    lse: Any,
    g: Any,
) -> tuple[Any, Any, Any, Any]:
    """Hand-derived vjp of :func:`forward`: ``(dq, dk, dv, dbias)`` (dbias None if no bias)."""
    bq, bk = cfg.block_q, cfg.block_k
    nq, nk = q.shape[-2] // bq, k.shape[-2] // bk
    dtype = q.dtype
    delta = jnp.sum(g * out, axis=-1)  # D_i = rowsum(dout * out), (..., Lq)
    axis_q = q.ndim - 2

    def k_block(carry, j):
        dq, dbias = carry
        kj = lax.dynamic_slice_in_dim(k, j * bk, bk, axis=k.ndim - 2)
        vj = lax.dynamic_slice_in_dim(v, j * bk, bk, axis=v.ndim - 2)

        def body(i, c):
            dq, dbias, dkj, dvj = c
            qi = lax.dynamic_slice_in_dim(q, i * bq, bq, axis=axis_q)
            gi = lax.dynamic_slice_in_dim(g, i * bq, bq, axis=axis_q)
            lse_i = lax.dynamic_slice_in_dim(lse, i * bq, bq, axis=lse.ndim - 1)
            d_i = lax.dynamic_slice_in_dim(delta, i * bq, bq, axis=delta.ndim - 1)
            s, valid = _block_scores(cfg, qi, kj, mask, bias, i, j)
            p = jnp.where(valid, jnp.exp(s - lse_i[..., None]), 0.0)  # (..., bq, bk)
            dp = jnp.einsum("...qd,...kd->...qk", gi, vj)
            if cfg.dropout_p > 0.0:
                z = _keep_scale(key, i, j, p.shape, cfg.dropout_p, dtype)
                dvj = dvj + _t_matmul(p * z, gi)
                dp = dp * z
            else:
                dvj = dvj + _t_matmul(p, gi)
            ds = p * (dp - d_i[..., None])
            dq_i = lax.dynamic_slice_in_dim(dq, i * bq, bq, axis=axis_q)
            dq_i = dq_i + cfg.scale * jnp.einsum("...qk,...kd->...qd", ds, kj)
            dq = lax.dynamic_update_slice_in_dim(dq, dq_i, i * bq, axis=axis_q)
            dkj = dkj + cfg.scale * _t_matmul(ds, qi)
            if cfg.has_bias:
                r0 = i * bq if dbias.shape[-2] != 1 else 0
                c0 = j * bk if dbias.shape[-1] != 1 else 0
                blk = _slice_rows_cols(dbias, i * bq, bq, j * bk, bk)
                dbias = lax.dynamic_update_slice(
                    dbias, blk + _reduce_to(ds, blk.shape), (0,) * (dbias.ndim - 2) + (r0, c0)
                )
            return dq, dbias, dkj, dvj

        init = (dq, dbias, jnp.zeros(kj.shape, dtype), jnp.zeros(vj.shape, dtype))
        dq, dbias, dkj, dvj = lax.fori_loop(_first_q_block(cfg, j), nq, body, init)
        return (dq, dbias), (dkj, dvj)

    dbias0 = jnp.zeros(bias.shape, dtype) if cfg.has_bias else jnp.zeros((), dtype)
    (dq, dbias), (dk, dv) = lax.scan(k_block, (jnp.zeros(q.shape, dtype), dbias0), jnp.arange(nk))
    dk = jnp.moveaxis(dk, 0, -3).reshape(k.shape)
    dv = jnp.moveaxis(dv, 0, -3).reshape(v.shape)
    return dq, dk, dv, (dbias if cfg.has_bias else None)
