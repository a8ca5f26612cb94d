"""Muon (Jordan et al., 2024): ``orthogonalize``, ``scale_by_muon`` and ``muon``.

Follows ``torch.optim.Muon`` (PyTorch 2.9) for leaves stored in our ``[in, out]``
layout (PyTorch's ``[out, in]`` transposed, see ``fdl.nn.Linear``): the orthogonalisation
commutes with the transpose, and the shape adjustment of the learning rate reads
``(out, in)`` as PyTorch does, so a model ported from PyTorch gets the same updates.
See ``_base.py`` for the dtype rules.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._checks import check_choice, check_int, check_nonnegative
from ._base import (
    ScalarOrSchedule,
    advance,
    leafwise,
    validate,
    value_at,
    zero_count,
    zeros_like_moment,
)
from ._param_groups import path_str
from ._transforms import chain_optimizer

__all__ = ["ScaleByMuonState", "orthogonalize", "scale_by_muon", "muon"]

ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def orthogonalize(
    x: jax.Array,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    ns_steps: int = 5,
    eps: float = 1e-7,
) -> jax.Array:
    """Newton–Schulz approximation of the orthogonal factor ``UVᵀ`` of ``x = USVᵀ``.

    With ``X₀ = x / max(‖x‖_F, eps)`` (transposed so that it is wide) and ``ns_steps``
    iterations of ``A = XXᵀ``, ``X ← aX + (bA + cA²)X`` (PyTorch's
    ``_zeropower_via_newtonschulz``; its singular values end up in about ``[0.7, 1.2]``,
    not exactly 1). Runs in ``x``'s dtype (PyTorch runs it in bfloat16).

    Args:
        x: ``[m, n]``.
        ns_coefficients: ``(a, b, c)``.
        ns_steps: number of iterations, ``0 <= ns_steps < 100``.
        eps: floor of the Frobenius norm.

    Returns:
        ``[m, n]``, same dtype.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> o = fdl.optim.orthogonalize(jnp.array([[3.0, 0.0], [0.0, 0.5]]))
        >>> bool(jnp.all(jnp.abs(jnp.diag(o) - 1.0) < 0.35))
        True
    """
    a, b, c = ns_coefficients
    wide = x.shape[0] <= x.shape[1]
    y = x if wide else x.T
    y = y / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(y))), eps).astype(y.dtype)
    for _ in range(ns_steps):
        gram = y @ y.T
        y = a * y + (b * gram + c * (gram @ gram)) @ y
    return y if wide else y.T


def _ratio(shape: tuple[int, ...], adjust_lr_fn: str | None) -> float:
    fan_in, fan_out = shape[0], shape[1]  # our [in, out]; PyTorch's (A, B) = (out, in)
    if adjust_lr_fn in (None, "original"):
        return math.sqrt(max(1.0, fan_out / fan_in))
    return 0.2 * math.sqrt(max(fan_in, fan_out))


class ScaleByMuonState(NamedTuple):
    """State of Muon's momentum."""

    count: jax.Array  # int32 scalar: updates done so far (for a scheduled momentum)
    momentum_buffer: Any  # pytree like params: B_t


def _check_2d(params: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.ndim(leaf) != 2:
            raise ValueError(
                f"muon: only 2-D parameters are supported, got parameter {path_str(path)!r} "
                f"with shape {jnp.shape(leaf)}; optimize it with another optimizer through "
                "fdl.optim.param_groups"
            )


def scale_by_muon(
    momentum: ScalarOrSchedule = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Muon's direction: orthogonalised momentum scaled by the shape ratio.

    .. math::
        B_t = \\mu B_{t-1} + (1-\\mu) g_t, \\quad
        \\tilde B_t = (1-\\mu) g_t + \\mu B_t \\text{ (Nesterov) or } B_t, \\quad
        u_t = r \\cdot \\operatorname{NS}(\\tilde B_t)

    (PyTorch's ``lerp`` form of the momentum), with ``r = sqrt(max(1, out/in))``
    (``adjust_lr_fn=None`` or ``'original'``) or ``0.2·sqrt(max(out, in))``
    (``'match_rms_adamw'``). 2-D leaves only: ``init`` raises ``ValueError`` naming any
    other leaf.

    Args:
        momentum: ``μ >= 0`` or a schedule.
        nesterov: use the Nesterov form.
        ns_coefficients: ``(a, b, c)`` of ``orthogonalize``.
        eps: floor of the Frobenius norm.
        ns_steps: Newton–Schulz iterations.
        adjust_lr_fn: ``None``, ``'original'`` or ``'match_rms_adamw'``.
        state_dtype: dtype of the buffer (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` with ``ScaleByMuonState``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.scale_by_muon()
        >>> u, _ = t.update({"w": jnp.eye(2)}, t.init({"w": jnp.zeros((2, 2))}))
        >>> u["w"].shape
        (2, 2)
    """
    fn = "scale_by_muon"
    _check_muon(fn, momentum, ns_coefficients, eps, ns_steps, adjust_lr_fn)

    def init(params):
        _check_2d(params)
        return ScaleByMuonState(zero_count(), zeros_like_moment(params, state_dtype))

    def update(updates, state, params=None):
        del params
        count, step, _ = advance(state.count)
        mu = value_at(momentum, step)

        def leaf(g, buf):
            dt = buf.dtype
            x = g.astype(dt)
            m = mu.astype(dt)
            buf = buf + (1 - m) * (x - buf)
            u = x + m * (buf - x) if nesterov else buf
            u = orthogonalize(u, ns_coefficients, ns_steps, eps) * _ratio(g.shape, adjust_lr_fn)
            return u.astype(g.dtype), buf

        updates, buf = leafwise(leaf, 2, updates, state.momentum_buffer)
        return updates, ScaleByMuonState(count, buf)

    return optax.GradientTransformation(init, update)


def _check_muon(fn, momentum, ns_coefficients, eps, ns_steps, adjust_lr_fn) -> None:
    momentum, eps = validate(fn, momentum=momentum, eps=eps)
    check_int("ns_steps", ns_steps, minimum=0, fn=fn)
    if ns_steps >= 100:
        raise ValueError(f"{fn}: ns_steps must be < 100, got ns_steps={ns_steps!r}")
    if len(tuple(ns_coefficients)) != 3:
        raise ValueError(
            f"{fn}: ns_coefficients must be three numbers (a, b, c), "
            f"got ns_coefficients={ns_coefficients!r}"
        )
    check_choice("adjust_lr_fn", adjust_lr_fn, ADJUST_LR_FNS, fn=fn)


def muon(
    lr: ScalarOrSchedule = 1e-3,
    weight_decay: float = 0.1,
    momentum: ScalarOrSchedule = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> optax.GradientTransformation:
    """Muon as ``torch.optim.Muon``: momentum orthogonalised by Newton–Schulz, for matrices.

    .. math::
        \\theta_t = \\theta_{t-1}(1 - \\gamma\\lambda) - \\gamma\\, r\\,
        \\operatorname{NS}(\\tilde B_t)

    (see ``scale_by_muon``). For the 2-D weights of hidden layers only (``init`` raises
    ``ValueError`` naming any other leaf); pair it with AdamW for embeddings, biases,
    norms and the output layer through ``param_groups``::

        opt = fdl.optim.param_groups({r".*/w": fdl.optim.muon(0.02)}, fdl.optim.adamw(3e-4))

    Differences: PyTorch runs Newton–Schulz in bfloat16 (we use the parameter's compute
    dtype, at least float32); ``optax.contrib.muon`` bias-corrects the momentum and
    normalises by ``‖x‖ + eps``: the same update without Nesterov up to ``eps``.

    Args:
        lr: learning rate ``>= 0`` or schedule.
        weight_decay: decoupled decay ``λ >= 0`` (``θ ← θ(1 - lr·λ)``).
        momentum: ``μ >= 0`` or a schedule.
        nesterov: Nesterov momentum.
        ns_coefficients: ``(a, b, c)`` of the quintic iteration.
        eps: floor of the Frobenius norm.
        ns_steps: Newton–Schulz iterations, ``< 100``.
        adjust_lr_fn: ``None``/``'original'`` (``sqrt(max(1, out/in))``) or
            ``'match_rms_adamw'`` (``0.2·sqrt(max(out, in))``).

    Returns:
        An ``optax.GradientTransformation``.

    Paper: Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024;
    Liu et al., "Muon is Scalable for LLM Training", 2025.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.muon(0.1, weight_decay=0.0)
        >>> p = {"w": jnp.zeros((2, 2))}
        >>> u, _ = opt.update({"w": jnp.eye(2)}, opt.init(p), p)
        >>> bool(jnp.all(jnp.abs(jnp.diag(u["w"]) + 0.1) < 0.03))
        True
        >>> opt.init({"b": jnp.zeros(3)})
        Traceback (most recent call last):
        ValueError: muon: only 2-D parameters are supported, got parameter 'b' with shape (3,)...
    """
    fn = "muon"
    lr, weight_decay = validate(fn, lr=lr, weight_decay=weight_decay)
    _check_muon(fn, momentum, ns_coefficients, eps, ns_steps, adjust_lr_fn)
    weight_decay = check_nonnegative("weight_decay", weight_decay, fn=fn)
    direction = scale_by_muon(momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn)
    return chain_optimizer(direction, lr, weight_decay, decoupled=True)
