"""Positional-encoding ops: sinusoidal, rotary (RoPE), T5 relative bias, ALiBi.

``rope`` and ``relative_position_bias`` are ``jax.custom_jvp`` functions with tangent
rules linear in the tangents (a rotation of the tangent; a lookup of the table's
tangent); reverse mode transposes them into the rules registered below.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ... import grads
from ..._checks import check_choice, check_int, check_positive, check_static
from ._utils import is_zero, tangent_sum, to_rank

__all__ = [
    "sinusoidal_positional_encoding",
    "rope",
    "alibi_slopes",
    "alibi_bias",
    "relative_position_bucket",
    "relative_position_bias",
]


def sinusoidal_positional_encoding(
    length: int, dim: int, *, base: float = 10000.0, dtype: Any = jnp.float32
) -> jax.Array:
    """Sinusoidal position table of Vaswani et al. (2017), ``[length, dim]``.

    .. math::
        PE[p, 2i] = \\sin(p / base^{2i/dim}), \\qquad PE[p, 2i+1] = \\cos(p / base^{2i/dim})

    Args:
      length: number of positions ``L`` (rows, positions ``0..L-1``).
      dim: encoding size ``D`` (an odd ``D`` drops the last cosine column).
      base: wavelength base (10000 in the paper).
      dtype: output dtype.

    Returns:
      ``[length, dim]`` table, added to the (scaled) token embeddings.

    PyTorch: the ``PositionalEncoding`` module of the PyTorch Transformer tutorial
    (same interleaved sin/cos layout).

    Example:
      >>> sinusoidal_positional_encoding(50, 16).shape
      (50, 16)
    """
    fn = "sinusoidal_positional_encoding"
    check_int("length", length, minimum=0, fn=fn)
    check_int("dim", dim, minimum=1, fn=fn)
    base = check_positive("base", base, fn=fn)
    pos = np.arange(length, dtype=np.float64)[:, None]
    inv_freq = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)  # (ceil(D/2),)
    table = np.zeros((length, dim + dim % 2))
    table[:, 0::2] = np.sin(pos * inv_freq)
    table[:, 1::2] = np.cos(pos * inv_freq)
    return jnp.asarray(table[:, :dim], dtype)


# ---------------------------------------------------------------------------- RoPE
def _rope_angles(positions, dim, theta, shape, dtype):
    """cos/sin of ``positions * theta^(-2i/dim)``, ``[..., L, dim/2]`` broadcast to ``shape``."""
    inv_freq = theta ** (-jnp.arange(0, dim, 2, dtype=dtype) / dim)
    positions = jnp.asarray(positions, dtype)[..., None]
    angles = positions * jnp.reshape(inv_freq, (1,) * (positions.ndim - 1) + inv_freq.shape)
    angles = jnp.broadcast_to(angles, shape[:-1] + (dim // 2,))
    return jnp.cos(angles), jnp.sin(angles)


def _split_pairs(x, layout):
    if layout == "interleaved":
        return x[..., 0::2], x[..., 1::2]
    half = x.shape[-1] // 2
    return x[..., :half], x[..., half:]


def _merge_pairs(a, b, layout):
    if layout == "interleaved":
        return jnp.stack([a, b], axis=-1).reshape(a.shape[:-1] + (2 * a.shape[-1],))
    return jnp.concatenate([a, b], axis=-1)


def _rotate_formula(x, positions, theta, layout, sign):
    ct = jnp.promote_types(x.dtype, jnp.float32)
    cos, sin = _rope_angles(positions, x.shape[-1], theta, x.shape, ct)
    a, b = _split_pairs(x.astype(ct), layout)
    sin = sign * sin
    out = _merge_pairs(a * cos - b * sin, a * sin + b * cos, layout)
    return out.astype(x.dtype)


_rotate_jvp_fn = jax.custom_jvp(_rotate_formula, nondiff_argnums=(2, 3, 4))


@functools.partial(_rotate_jvp_fn.defjvp, symbolic_zeros=True)
def _rotate_jvp(theta, layout, sign, primals, tangents):
    """``d out = rotate(dx)``, plus ``(-out_b, out_a) * dphi`` for float positions
    (``dphi = dp * theta^(-2i/D)``)."""
    (x, positions), (dx, dpos) = primals, tangents
    out = _rotate_jvp_fn(x, positions, theta, layout, sign)
    terms = []
    if not is_zero(dx):
        terms.append(_rotate_jvp_fn(dx, positions, theta, layout, sign))
    if not is_zero(dpos) and jnp.issubdtype(jnp.result_type(positions), jnp.floating):
        ct = jnp.promote_types(x.dtype, jnp.float32)
        dim = x.shape[-1]
        inv_freq = theta ** (-jnp.arange(0, dim, 2, dtype=ct) / dim)
        dphi = jnp.asarray(dpos, ct)[..., None] * to_rank(inv_freq, jnp.ndim(dpos) + 1)
        dphi = sign * jnp.broadcast_to(dphi, x.shape[:-1] + (dim // 2,))
        oa, ob = _split_pairs(out.astype(ct), layout)
        terms.append(_merge_pairs(-ob * dphi, oa * dphi, layout).astype(x.dtype))
    return out, tangent_sum(out, terms)


_rotate = jax.jit(_rotate_jvp_fn, static_argnums=(2, 3, 4))


def _check_rope(x, positions, layout, fn="rope"):
    check_choice("layout", layout, ("interleaved", "half"), fn=fn)
    if np.ndim(x) < 2:
        raise ValueError(f"{fn}: x must have rank >= 2 ([..., L, D]), got x.shape={np.shape(x)}")
    if x.shape[-1] % 2:
        raise ValueError(f"{fn}: the last (head) dim of x must be even, got x.shape={x.shape}")
    if positions is not None:
        try:
            np.broadcast_shapes(np.shape(positions), x.shape[:-1])
        except ValueError:
            raise ValueError(
                f"{fn}: positions of shape {np.shape(positions)} do not broadcast "
                f"to x.shape[:-1]={x.shape[:-1]}"
            ) from None


def rope(
    x: Any, positions: Any = None, *, theta: float = 10000.0, layout: str = "interleaved"
) -> jax.Array:
    """Rotary position embedding (RoPE, Su et al. 2021): rotate feature pairs by ``p * f_i``.

    .. math::
        (x'_a, x'_b) = (x_a \\cos\\phi - x_b \\sin\\phi,\\ x_a \\sin\\phi + x_b \\cos\\phi),
        \\qquad \\phi = p\\, \\theta^{-2i/D}

    with pairs ``(a, b) = (2i, 2i+1)`` for ``layout='interleaved'`` (RoFormer, LLaMA) or
    ``(i, i + D/2)`` for ``layout='half'`` (GPT-NeoX, HF LLaMA). Since rotations
    compose, ``rope(q, m) . rope(k, n)`` depends only on ``m - n``. The two layouts agree
    after permuting features ``[0, 2, 4, ..., 1, 3, 5, ...]``.

    Args:
      x: ``[..., L, D]`` with even ``D`` (e.g. ``[batch, heads, L, head_dim]``).
      positions: positions broadcastable to ``[..., L]`` (int or float; any values, e.g.
        offsets of a KV cache); default ``arange(L)``.
      theta: frequency base.
      layout: ``'interleaved'`` or ``'half'``.

    Returns:
      ``[..., L, D]`` rotated, same dtype as ``x`` (angles computed in float32).

    Backward: the transpose of a rotation is the rotation by ``-phi``:
    ``dx = rope(g, positions)`` with ``sin -> -sin``.

    Example:
      >>> rope(jnp.ones((2, 4, 8, 16)), jnp.arange(8), layout="half").shape
      (2, 4, 8, 16)
    """
    x = jnp.asarray(x)
    _check_rope(x, positions, layout)
    check_static("theta", theta, fn="rope")
    theta = check_positive("theta", theta, fn="rope")
    if positions is None:
        positions = jnp.arange(x.shape[-2])
    return _rotate(x, positions, float(theta), layout, 1.0)


def _rope_backward(x, positions, g, *, theta=10000.0, layout="interleaved"):
    """``d rope / dx`` transposed: rotate the cotangent by ``-phi``."""
    return _rotate(jnp.asarray(g), positions, float(theta), layout, -1.0)


# --------------------------------------------------------------------------- ALiBi
def alibi_slopes(num_heads: int) -> jax.Array:
    """ALiBi head slopes: ``2^(-8 (h+1) / n)`` for ``n`` a power of two (Press et al. 2022).

    For other ``n`` the slopes of the closest smaller power of two ``m`` are followed by
    every other slope of ``2m`` (the reference implementation).

    Args:
      num_heads: number of attention heads.

    Returns:
      float32 ``[num_heads]``.
    """
    check_int("num_heads", num_heads, minimum=1, fn="alibi_slopes")

    def power_of_two(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    m = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_two(m) + power_of_two(2 * m)[0::2][: num_heads - m]
    return jnp.asarray(slopes, jnp.float32)


def alibi_bias(num_heads: int, q_len: int, k_len: int, *, dtype: Any = jnp.float32) -> jax.Array:
    """ALiBi attention bias ``-slope_h * |i' - j|``, ``[num_heads, q_len, k_len]``.

    Query ``i`` sits at position ``i' = i + k_len - q_len`` (queries are the last
    ``q_len`` positions, as when decoding with a cache). For causal attention this is
    the paper's ``-slope_h (i' - j)``; for keys after the query it is symmetric.

    Args:
      num_heads: heads ``H`` (slopes from :func:`alibi_slopes`).
      q_len: query length ``Lq``.
      k_len: key length ``Lk``.
      dtype: output dtype.

    Returns:
      ``[H, Lq, Lk]`` bias, passed as ``bias=`` to ``scaled_dot_product_attention``.

    Example:
      >>> alibi_bias(8, 4, 4)[0, 3]          # slope 1/2
      Array([-1.5, -1. , -0.5, -0. ], dtype=float32)
    """
    fn = "alibi_bias"
    check_int("q_len", q_len, minimum=0, fn=fn)
    check_int("k_len", k_len, minimum=0, fn=fn)
    qpos = jnp.arange(q_len) + (k_len - q_len)
    dist = jnp.abs(qpos[:, None] - jnp.arange(k_len)[None, :]).astype(jnp.float32)
    return (-alibi_slopes(num_heads)[:, None, None] * dist[None]).astype(dtype)


# ---------------------------------------------------------------------- T5 buckets
def relative_position_bucket(
    relative_position: Any,
    *,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> jax.Array:
    """T5's bucket of a relative position ``key_pos - query_pos`` (Raffel et al. 2020).

    Half of the buckets (per direction when ``bidirectional``) hold exact distances
    ``0..n/2-1``; the rest grow logarithmically up to ``max_distance``, beyond which
    everything shares the last bucket. Same integer arithmetic as HF Transformers'
    ``T5Attention._relative_position_bucket``.

    Args:
      relative_position: int array, ``key_pos - query_pos``.
      bidirectional: separate buckets for keys after the query (encoder); else keys
        after the query share bucket 0 (decoder).
      num_buckets: total number of buckets.
      max_distance: distance from which all positions share a bucket.

    Returns:
      int32 array of bucket ids in ``[0, num_buckets)``, same shape.
    """
    fn = "relative_position_bucket"
    check_int("num_buckets", num_buckets, minimum=2, fn=fn)
    check_int("max_distance", max_distance, minimum=1, fn=fn)
    rel = jnp.asarray(relative_position, jnp.int32)
    ret = jnp.zeros_like(rel)
    n = num_buckets
    if bidirectional:
        n //= 2
        ret = ret + (rel > 0).astype(jnp.int32) * n
        rel = jnp.abs(rel)
    else:
        rel = -jnp.minimum(rel, 0)
    max_exact = n // 2
    large = max_exact + (
        jnp.log(jnp.maximum(rel, 1).astype(jnp.float32) / max_exact)
        / math.log(max_distance / max_exact)
        * (n - max_exact)
    ).astype(jnp.int32)
    large = jnp.minimum(large, n - 1)
    return ret + jnp.where(rel < max_exact, rel, large)


def relative_position_bias(
    table: Any, relative_position: Any, *, bidirectional: bool = True, max_distance: int = 128
) -> jax.Array:
    """T5 relative position bias ``bias[h, i, j] = table[bucket(rel[i, j]), h]``.

    Args:
      table: learned ``[num_buckets, num_heads]``.
      relative_position: int ``[Lq, Lk]``, ``key_pos - query_pos``.
      bidirectional, max_distance: as in :func:`relative_position_bucket`.

    Returns:
      ``[num_heads, Lq, Lk]`` bias in ``table``'s dtype, for ``bias=`` of attention.

    Backward: ``dtable[b, h] = sum_{i,j: bucket(i,j) = b} g[h, i, j]`` (a scatter-add).
    """
    table = jnp.asarray(table)
    buckets = relative_position_bucket(
        relative_position,
        bidirectional=bidirectional,
        num_buckets=table.shape[0],
        max_distance=max_distance,
    )
    return _bias_lookup(table, buckets)


def _bias_lookup_formula(table, buckets):
    return jnp.moveaxis(table[buckets], -1, 0)


_bias_lookup = jax.custom_jvp(_bias_lookup_formula)


@_bias_lookup.defjvp
def _bias_lookup_jvp(primals, tangents):
    """``dbias[h, i, j] = dtable[bucket(i, j), h]`` (linear in ``dtable``)."""
    table, buckets = primals
    return _bias_lookup(table, buckets), _bias_lookup_formula(tangents[0], buckets)


def _relative_position_bias_backward(
    table, relative_position, g, *, bidirectional=True, max_distance=128
):
    buckets = relative_position_bucket(
        relative_position,
        bidirectional=bidirectional,
        num_buckets=table.shape[0],
        max_distance=max_distance,
    )
    rows = jnp.moveaxis(g, 0, -1).reshape(-1, table.shape[1])  # (Lq*Lk, H)
    return jnp.zeros_like(table).at[buckets.reshape(-1)].add(rows)


# ------------------------------------------------------------------------ registry
def _register():
    rng = np.random.default_rng(0)
    pos = np.array([0, 1, 5, 17, 1000, -3])
    for layout in ("interleaved", "half"):
        grads.register(
            f"rope(layout='{layout}')",
            forward=jax.jit(
                lambda x, p, layout=layout: _rotate_formula(x, p, 10000.0, layout, 1.0)
            ),
            backward=jax.jit(lambda x, p, g, layout=layout: _rope_backward(x, p, g, layout=layout)),
            examples=lambda: [
                (rng.standard_normal((2, 6, 8)), pos),
                (1e4 * rng.standard_normal((6, 4)), pos),
            ],
            fd_examples=lambda: [(rng.standard_normal((2, 6, 8)), pos)],
            public=jax.jit(lambda x, p, layout=layout: rope(x, p, layout=layout)),
        )
    rel = np.arange(-40, 41).reshape(9, 9)
    grads.register(
        "relative_position_bias(num_buckets=8, max_distance=20)",
        forward=jax.jit(
            lambda t, r: _bias_lookup_formula(
                t, relative_position_bucket(r, num_buckets=t.shape[0], max_distance=20)
            )
        ),
        backward=jax.jit(
            lambda t, r, g: _relative_position_bias_backward(t, r, g, max_distance=20)
        ),
        examples=lambda: [(rng.standard_normal((8, 3)), rel)],
        public=jax.jit(lambda t, r: relative_position_bias(t, r, max_distance=20)),
    )


_register()
