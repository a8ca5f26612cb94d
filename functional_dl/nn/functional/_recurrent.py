"""Recurrent ops ``rnn``, ``lstm``, ``gru`` (PyTorch's equations and gate order), with
backpropagation through time written by hand.

Layout (batch first): ``x [N, L, I]``, ``h0 [N, H]``, ``weight_ih [I, G H]``,
``weight_hh [H, G H]``, biases ``[G H]``, with ``G = 1`` (rnn), 4 (lstm: gates i, f, g, o)
or 3 (gru: r, z, n). PyTorch stores ``weight_ih_l0`` as ``[G H, I]``: ours is its
transpose.

Forward: the input projection ``x W_ih + b_ih`` of every step is one matrix product;
a ``lax.scan`` then runs the recurrence and saves the gate activations.

Backward (BPTT): a reverse ``lax.scan`` over the saved gates carries ``dh`` (and ``dc``)
from step ``L`` down to 1; at each step it forms ``da_t``, the gradient of the gate
pre-activations, and sends ``da_t W_hh^T`` to the previous hidden state. The weight
gradients are then batched products outside the loop:
``dW_ih = sum_t x_t^T da_t``, ``dW_hh = sum_t h_{t-1}^T da_t``, ``db = sum_t da_t``,
``dx_t = da_t W_ih^T``.

The three public functions are ``jax.custom_vjp`` functions, so that this reverse scan
(and not autodiff of the forward scan) is their gradient: a ``custom_jvp`` rule would be
transposed by JAX into its own reverse scan. The price is forward mode: ``jax.jvp`` /
``jacfwd`` of ``rnn``/``lstm``/``gru`` raise; the plain formulas (:func:`rnn_formula`,
... ) are forward-differentiable. Arithmetic runs in at least float32
(:func:`~functional_dl._dtypes.compute_dtype`); outputs keep ``x``'s dtype.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_arrays, check_choice
from ..._dtypes import compute_dtype
from ._utils import check_input, register_grad

__all__ = [
    "rnn",
    "lstm",
    "gru",
    "rnn_backward",
    "lstm_backward",
    "gru_backward",
    "rnn_formula",
    "lstm_formula",
    "gru_formula",
]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _check(fn, x, h0, c0, wih, whh, bih, bhh) -> tuple[int, int, int]:
    """``(N, L, H)`` after checking every shape; errors name the argument."""
    g = _GATES[fn]
    check_input("x", x, 3, fn=fn, what="[N, L, I]")
    n, length, i = x.shape
    if np.ndim(whh) != 2 or np.shape(whh)[1] != g * np.shape(whh)[0]:
        raise ValueError(
            f"{fn}: weight_hh must have shape [H, {g}*H], got weight_hh.shape="
            f"{tuple(np.shape(whh))}"
        )
    h = np.shape(whh)[0]
    if tuple(np.shape(wih)) != (i, g * h):
        raise ValueError(
            f"{fn}: weight_ih must have shape [I, {g}*H] = {(i, g * h)} for x.shape="
            f"{tuple(x.shape)} and weight_hh.shape={tuple(np.shape(whh))}, got "
            f"weight_ih.shape={tuple(np.shape(wih))}"
        )
    for name, b in (("bias_ih", bih), ("bias_hh", bhh)):
        if b is not None and tuple(np.shape(b)) != (g * h,):
            raise ValueError(
                f"{fn}: {name} must have shape ({g * h},), got {name}.shape={tuple(np.shape(b))}"
            )
    for name, s in (("h0", h0), ("c0", c0)):
        if s is not None and tuple(np.shape(s)) != (n, h):
            raise ValueError(
                f"{fn}: {name} must have shape [N, H] = {(n, h)}, got {name}.shape="
                f"{tuple(np.shape(s))}"
            )
    if length < 1:
        raise ValueError(f"{fn}: x must hold at least one step, got x.shape={tuple(x.shape)}")
    return n, length, h


def _cast(dtype: Any, *arrays: Any) -> Any:
    return tuple(None if a is None else jnp.asarray(a).astype(dtype) for a in arrays)


def _proj(x, wih, bih):
    """Time-major input projections ``[L, N, G H]``."""
    xw = jnp.einsum("nli,ig->lng", x, wih)
    return xw if bih is None else xw + bih[None, None, :]


def _hid(h, whh, bhh):
    hw = h @ whh
    return hw if bhh is None else hw + bhh[None, :]


def _act(nonlinearity: str):
    return jnp.tanh if nonlinearity == "tanh" else jax.nn.relu


def _sig(a):
    return jax.nn.sigmoid(a)


# ---------------------------------------------------------------------- forward scans
def _rnn_scan(x, h0, wih, whh, bih, bhh, nonlinearity):
    act = _act(nonlinearity)

    def step(h, xw_t):
        h = act(xw_t + _hid(h, whh, bhh))
        return h, h

    h_n, hs = jax.lax.scan(step, h0, _proj(x, wih, bih))
    return hs, h_n  # hs time-major [L, N, H]


def _lstm_scan(x, h0, c0, wih, whh, bih, bhh):
    hsz = h0.shape[-1]

    def step(carry, xw_t):
        h, c = carry
        a = xw_t + _hid(h, whh, bhh)
        i, f = _sig(a[:, :hsz]), _sig(a[:, hsz : 2 * hsz])
        g, o = jnp.tanh(a[:, 2 * hsz : 3 * hsz]), _sig(a[:, 3 * hsz :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

    (h_n, c_n), (hs, cs, gates) = jax.lax.scan(step, (h0, c0), _proj(x, wih, bih))
    return hs, h_n, c_n, cs, gates


def _gru_scan(x, h0, wih, whh, bih, bhh):
    hsz = h0.shape[-1]

    def step(h, xw_t):
        hw = _hid(h, whh, bhh)
        r = _sig(xw_t[:, :hsz] + hw[:, :hsz])
        z = _sig(xw_t[:, hsz : 2 * hsz] + hw[:, hsz : 2 * hsz])
        hn = hw[:, 2 * hsz :]
        n = jnp.tanh(xw_t[:, 2 * hsz :] + r * hn)
        h = (1 - z) * n + z * h
        return h, (h, jnp.concatenate([r, z, n, hn], axis=-1))

    h_n, (hs, saved) = jax.lax.scan(step, h0, _proj(x, wih, bih))
    return hs, h_n, saved


def _batch_first(hs):
    return jnp.transpose(hs, (1, 0, 2))


# ------------------------------------------------------------------ shared gradients
def _param_grads(x, hs_prev, da_x, da_h, wih, bih, bhh):
    """``dx, dW_ih, dW_hh, db_ih, db_hh`` from the per-step pre-activation gradients
    (time-major ``[L, N, G H]``): batched products outside the recurrence."""
    dx = jnp.einsum("lng,ig->nli", da_x, wih)
    dwih = jnp.einsum("nli,lng->ig", x, da_x)
    dwhh = jnp.einsum("lnh,lng->hg", hs_prev, da_h)
    dbih = None if bih is None else jnp.sum(da_x, axis=(0, 1))
    dbhh = None if bhh is None else jnp.sum(da_h, axis=(0, 1))
    return dx, dwih, dwhh, dbih, dbhh


def _prev(h0, hs):
    """``[h_0, ..., h_{L-1}]``: the hidden state each step started from."""
    return jnp.concatenate([h0[None], hs[:-1]], axis=0)


def _out(dtypes_of, *grads):
    return tuple(
        None if g is None else g.astype(jnp.asarray(a).dtype)
        for g, a in zip(grads, dtypes_of, strict=True)
    )


# ------------------------------------------------------------------------------ rnn
def _rnn_bwd_core(x, h0, wih, whh, bih, bhh, hs, g_out, g_hn, nonlinearity):
    """BPTT of the Elman RNN: ``a_t = x_t W_ih + b_ih + h_{t-1} W_hh + b_hh``,
    ``h_t = act(a_t)``; ``da_t = (g_t + dh_t) act'(a_t)`` with ``tanh' = 1 - h_t^2`` and
    ``relu' = [h_t > 0]``; ``dh_{t-1} = da_t W_hh^T``."""
    whh_t = whh.T  # transposed once, outside the loop

    def step(dh, xs):
        h_t, g_t = xs
        dh = dh + g_t
        da = dh * (1 - h_t * h_t) if nonlinearity == "tanh" else jnp.where(h_t > 0, dh, 0)
        return da @ whh_t, da

    dh0, da = jax.lax.scan(step, g_hn, (hs, g_out), reverse=True)
    dx, dwih, dwhh, dbih, dbhh = _param_grads(x, _prev(h0, hs), da, da, wih, bih, bhh)
    return dx, dh0, dwih, dwhh, dbih, dbhh


@partial(jax.custom_vjp, nondiff_argnums=(6,))
def _rnn_core(x, h0, wih, whh, bih, bhh, nonlinearity):
    cd = compute_dtype(x.dtype)
    hs, h_n = _rnn_scan(*_cast(cd, x, h0, wih, whh, bih, bhh), nonlinearity)  # pyright: ignore[reportCallIssue]
    return _batch_first(hs).astype(x.dtype), h_n.astype(x.dtype)


def _rnn_fwd(x, h0, wih, whh, bih, bhh, nonlinearity):
    cd = compute_dtype(x.dtype)
    hs, h_n = _rnn_scan(*_cast(cd, x, h0, wih, whh, bih, bhh), nonlinearity)  # pyright: ignore[reportCallIssue]
    out = (_batch_first(hs).astype(x.dtype), h_n.astype(x.dtype))
    return out, (x, h0, wih, whh, bih, bhh, hs)


def _rnn_bwd(nonlinearity, res, cts):
    x, h0, wih, whh, bih, bhh, hs = res
    cd = hs.dtype
    g_out, g_hn = cts
    args = _cast(cd, x, h0, wih, whh, bih, bhh)
    gs = _cast(cd, jnp.transpose(g_out, (1, 0, 2)), g_hn)
    grads = _rnn_bwd_core(*args, hs, *gs, nonlinearity)  # pyright: ignore[reportCallIssue]
    return _out((x, h0, wih, whh, bih, bhh), *grads)


_rnn_core.defvjp(_rnn_fwd, _rnn_bwd)


def _zeros_state(x, whh, s):
    return jnp.zeros((x.shape[0], np.shape(whh)[0]), x.dtype) if s is None else s


def _params(x: Any, *ps: Any) -> Any:
    return tuple(None if p is None else jnp.asarray(p).astype(x.dtype) for p in ps)


def rnn(
    x: Any,
    h0: Any,
    weight_ih: Any,
    weight_hh: Any,
    bias_ih: Any = None,
    bias_hh: Any = None,
    *,
    nonlinearity: str = "tanh",
) -> tuple[Any, Any]:
    """Elman RNN over a batch-first sequence (one layer, one direction).

    .. math:: h_t = \\mathrm{act}(x_t W_{ih} + b_{ih} + h_{t-1} W_{hh} + b_{hh})

    Args:
      x: ``[N, L, I]``.
      h0: ``[N, H]`` initial hidden state (``None``: zeros).
      weight_ih: ``[I, H]``; weight_hh: ``[H, H]``; bias_ih, bias_hh: optional ``[H]``.
      nonlinearity: ``'tanh'`` or ``'relu'``.

    Returns:
      ``(outputs [N, L, H], h_n [N, H])``.

    Gradient: BPTT by hand (:func:`rnn_backward`, a ``jax.custom_vjp``; see the module
    docstring for why not a ``custom_jvp``). PyTorch: ``torch.nn.RNN(batch_first=True)``
    with ``weight_ih_l0 = weight_ih.T``.

    Example:
      >>> out, h_n = rnn(jnp.ones((2, 5, 3)), None, jnp.zeros((3, 4)), jnp.eye(4))
      >>> out.shape, h_n.shape
      ((2, 5, 4), (2, 4))
    """
    x, h0, weight_ih, weight_hh, bias_ih, bias_hh = as_arrays(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh
    )
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"), fn="rnn")
    _check("rnn", x, h0, None, weight_ih, weight_hh, bias_ih, bias_hh)
    h0 = _zeros_state(x, weight_hh, h0)
    return _rnn_core(x, *_params(x, h0, weight_ih, weight_hh, bias_ih, bias_hh), nonlinearity)


def rnn_formula(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    """The plain forward of :func:`rnn` (a ``lax.scan``; differentiated by autodiff)."""
    hs, h_n = _rnn_scan(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)
    return _batch_first(hs), h_n


def rnn_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, g, *, nonlinearity="tanh"):
    """Hand BPTT of :func:`rnn`: ``g = (g_outputs, g_h_n)`` ->
    ``(dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh)``."""
    _check("rnn", x, h0, None, weight_ih, weight_hh, bias_ih, bias_hh)
    args = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    _, res = _rnn_fwd(*args, nonlinearity)
    return _rnn_bwd(nonlinearity, res, g)


# ----------------------------------------------------------------------------- lstm
def _lstm_bwd_core(x, h0, c0, wih, whh, bih, bhh, hs, cs, gates, g_out, g_hn, g_cn):
    """BPTT of the LSTM. With ``c_t = f c_{t-1} + i g`` and ``h_t = o tanh(c_t)``:
    ``dh = g_t + dh_{t+1}``, ``do = dh tanh(c_t)``,
    ``dc = dc_{t+1} + dh o (1 - tanh^2 c_t)``, ``di = dc g``, ``df = dc c_{t-1}``,
    ``dg = dc i``, ``dc_{t-1} = dc f``; pre-activations: ``da_i = di i (1 - i)``,
    ``da_f = df f (1 - f)``, ``da_g = dg (1 - g^2)``, ``da_o = do o (1 - o)``;
    ``dh_{t-1} = da_t W_hh^T``."""
    hsz = h0.shape[-1]
    c_prev = _prev(c0, cs)
    whh_t = whh.T  # transposed once, outside the loop

    def step(carry, xs):
        dh, dc = carry
        gt, c_t, cp, g_t = xs
        i, f = gt[:, :hsz], gt[:, hsz : 2 * hsz]
        g, o = gt[:, 2 * hsz : 3 * hsz], gt[:, 3 * hsz :]
        dh = dh + g_t
        tc = jnp.tanh(c_t)
        dc = dc + dh * o * (1 - tc * tc)
        da = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * cp * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tc * o * (1 - o),
            ],
            axis=-1,
        )
        return (da @ whh_t, dc * f), da

    (dh0, dc0), da = jax.lax.scan(step, (g_hn, g_cn), (gates, cs, c_prev, g_out), reverse=True)
    dx, dwih, dwhh, dbih, dbhh = _param_grads(x, _prev(h0, hs), da, da, wih, bih, bhh)
    return dx, dh0, dc0, dwih, dwhh, dbih, dbhh


@jax.custom_vjp
def _lstm_core(x, h0, c0, wih, whh, bih, bhh):
    return _lstm_fwd(x, h0, c0, wih, whh, bih, bhh)[0]


def _lstm_fwd(x, h0, c0, wih, whh, bih, bhh):
    cd = compute_dtype(x.dtype)
    hs, h_n, c_n, cs, gates = _lstm_scan(*_cast(cd, x, h0, c0, wih, whh, bih, bhh))
    out = (_batch_first(hs).astype(x.dtype), (h_n.astype(x.dtype), c_n.astype(x.dtype)))
    return out, (x, h0, c0, wih, whh, bih, bhh, hs, cs, gates)


def _lstm_bwd(res, cts):
    x, h0, c0, wih, whh, bih, bhh, hs, cs, gates = res
    cd = hs.dtype
    g_out, (g_hn, g_cn) = cts
    args = _cast(cd, x, h0, c0, wih, whh, bih, bhh)
    gs = _cast(cd, jnp.transpose(g_out, (1, 0, 2)), g_hn, g_cn)
    grads = _lstm_bwd_core(*args, hs, cs, gates, *gs)  # pyright: ignore[reportCallIssue]
    return _out((x, h0, c0, wih, whh, bih, bhh), *grads)


_lstm_core.defvjp(_lstm_fwd, _lstm_bwd)


def lstm(
    x: Any,
    h0: Any,
    c0: Any,
    weight_ih: Any,
    weight_hh: Any,
    bias_ih: Any = None,
    bias_hh: Any = None,
) -> tuple[Any, tuple[Any, Any]]:
    """Long short-term memory over a batch-first sequence (one layer, one direction).

    .. math::
        [a_i, a_f, a_g, a_o] = x_t W_{ih} + b_{ih} + h_{t-1} W_{hh} + b_{hh}, \\quad
        i, f, o = \\sigma(a_i, a_f, a_o), \\; g = \\tanh(a_g), \\\\
        c_t = f \\odot c_{t-1} + i \\odot g, \\quad h_t = o \\odot \\tanh(c_t)

    Args:
      x: ``[N, L, I]``.
      h0, c0: ``[N, H]`` initial hidden and cell states (``None``: zeros).
      weight_ih: ``[I, 4H]``; weight_hh: ``[H, 4H]`` (gate order i, f, g, o);
      bias_ih, bias_hh: optional ``[4H]``.

    Returns:
      ``(outputs [N, L, H], (h_n, c_n))``.

    Gradient: BPTT by hand, a reverse ``lax.scan`` over the saved gates
    (:func:`lstm_backward`; ``jax.custom_vjp``, see the module docstring).
    PyTorch: ``torch.nn.LSTM(batch_first=True)`` with ``weight_ih_l0 = weight_ih.T``.
    Hochreiter & Schmidhuber (1997).

    Example:
      >>> w_ih, w_hh = jnp.zeros((3, 8)), jnp.zeros((2, 8))
      >>> out, (h_n, c_n) = lstm(jnp.ones((1, 4, 3)), None, None, w_ih, w_hh)
      >>> out.shape, h_n.shape, c_n.shape
      ((1, 4, 2), (1, 2), (1, 2))
    """
    x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh = as_arrays(
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh
    )
    _check("lstm", x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    h0, c0 = _zeros_state(x, weight_hh, h0), _zeros_state(x, weight_hh, c0)
    return _lstm_core(x, *_params(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh))


def lstm_formula(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """The plain forward of :func:`lstm` (a ``lax.scan``; differentiated by autodiff)."""
    hs, h_n, c_n, _, _ = _lstm_scan(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    return _batch_first(hs), (h_n, c_n)


def lstm_backward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, g):
    """Hand BPTT of :func:`lstm`: ``g = (g_outputs, (g_h_n, g_c_n))`` ->
    ``(dx, dh0, dc0, dweight_ih, dweight_hh, dbias_ih, dbias_hh)``."""
    _check("lstm", x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    _, res = _lstm_fwd(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    return _lstm_bwd(res, g)


# ------------------------------------------------------------------------------ gru
def _gru_bwd_core(x, h0, wih, whh, bih, bhh, hs, saved, g_out, g_hn):
    """BPTT of the GRU. With ``h_t = (1 - z) n + z h_{t-1}``,
    ``n = tanh(a_n + r hn)``, ``hn = h_{t-1} W_hn + b_hn``:
    ``dn = dh (1 - z)``, ``dz = dh (h_{t-1} - n)``, ``da_n = dn (1 - n^2)``,
    ``dr = da_n hn``, ``dhn = da_n r``, ``da_r = dr r (1 - r)``, ``da_z = dz z (1 - z)``;
    input side ``[da_r, da_z, da_n]``, hidden side ``[da_r, da_z, dhn]``;
    ``dh_{t-1} = dh z + [da_r, da_z, dhn] W_hh^T``."""
    hsz = h0.shape[-1]
    hs_prev = _prev(h0, hs)
    whh_t = whh.T  # transposed once, outside the loop

    def step(dh, xs):
        sv, hp, g_t = xs
        r, z = sv[:, :hsz], sv[:, hsz : 2 * hsz]
        n, hn = sv[:, 2 * hsz : 3 * hsz], sv[:, 3 * hsz :]
        dh = dh + g_t
        dan = dh * (1 - z) * (1 - n * n)
        dar = dan * hn * r * (1 - r)
        daz = dh * (hp - n) * z * (1 - z)
        da_x = jnp.concatenate([dar, daz, dan], axis=-1)
        da_h = jnp.concatenate([dar, daz, dan * r], axis=-1)
        return dh * z + da_h @ whh_t, (da_x, da_h)

    dh0, (da_x, da_h) = jax.lax.scan(step, g_hn, (saved, hs_prev, g_out), reverse=True)
    dx, dwih, dwhh, dbih, dbhh = _param_grads(x, hs_prev, da_x, da_h, wih, bih, bhh)
    return dx, dh0, dwih, dwhh, dbih, dbhh


@jax.custom_vjp
def _gru_core(x, h0, wih, whh, bih, bhh):
    return _gru_fwd(x, h0, wih, whh, bih, bhh)[0]


def _gru_fwd(x, h0, wih, whh, bih, bhh):
    cd = compute_dtype(x.dtype)
    hs, h_n, saved = _gru_scan(*_cast(cd, x, h0, wih, whh, bih, bhh))
    out = (_batch_first(hs).astype(x.dtype), h_n.astype(x.dtype))
    return out, (x, h0, wih, whh, bih, bhh, hs, saved)


def _gru_bwd(res, cts):
    x, h0, wih, whh, bih, bhh, hs, saved = res
    cd = hs.dtype
    g_out, g_hn = cts
    args = _cast(cd, x, h0, wih, whh, bih, bhh)
    gs = _cast(cd, jnp.transpose(g_out, (1, 0, 2)), g_hn)
    grads = _gru_bwd_core(*args, hs, saved, *gs)  # pyright: ignore[reportCallIssue]
    return _out((x, h0, wih, whh, bih, bhh), *grads)


_gru_core.defvjp(_gru_fwd, _gru_bwd)


def gru(
    x: Any,
    h0: Any,
    weight_ih: Any,
    weight_hh: Any,
    bias_ih: Any = None,
    bias_hh: Any = None,
) -> tuple[Any, Any]:
    """Gated recurrent unit over a batch-first sequence (one layer, one direction).

    .. math::
        r = \\sigma(x_t W_{ir} + b_{ir} + h_{t-1} W_{hr} + b_{hr}), \\quad
        z = \\sigma(x_t W_{iz} + b_{iz} + h_{t-1} W_{hz} + b_{hz}), \\\\
        n = \\tanh(x_t W_{in} + b_{in} + r \\odot (h_{t-1} W_{hn} + b_{hn})), \\quad
        h_t = (1 - z) \\odot n + z \\odot h_{t-1}

    Args:
      x: ``[N, L, I]``.
      h0: ``[N, H]`` initial hidden state (``None``: zeros).
      weight_ih: ``[I, 3H]``; weight_hh: ``[H, 3H]`` (gate order r, z, n);
      bias_ih, bias_hh: optional ``[3H]``.

    Returns:
      ``(outputs [N, L, H], h_n [N, H])``.

    Gradient: BPTT by hand (:func:`gru_backward`; ``jax.custom_vjp``, see the module
    docstring). PyTorch: ``torch.nn.GRU(batch_first=True)`` with
    ``weight_ih_l0 = weight_ih.T``. Cho et al. (2014).

    Example:
      >>> out, h_n = gru(jnp.ones((2, 5, 3)), None, jnp.zeros((3, 12)), jnp.zeros((4, 12)))
      >>> out.shape, float(h_n[0, 0])
      ((2, 5, 4), 0.0)
    """
    x, h0, weight_ih, weight_hh, bias_ih, bias_hh = as_arrays(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh
    )
    _check("gru", x, h0, None, weight_ih, weight_hh, bias_ih, bias_hh)
    h0 = _zeros_state(x, weight_hh, h0)
    return _gru_core(x, *_params(x, h0, weight_ih, weight_hh, bias_ih, bias_hh))


def gru_formula(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """The plain forward of :func:`gru` (a ``lax.scan``; differentiated by autodiff)."""
    hs, h_n, _ = _gru_scan(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    return _batch_first(hs), h_n


def gru_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, g):
    """Hand BPTT of :func:`gru`: ``g = (g_outputs, g_h_n)`` ->
    ``(dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh)``."""
    _check("gru", x, h0, None, weight_ih, weight_hh, bias_ih, bias_hh)
    _, res = _gru_fwd(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    return _gru_bwd(res, g)


# ------------------------------------------------------------------------- registry
def _examples(gates: int, cell: bool):
    def examples():
        rng = np.random.default_rng(100 + gates)
        n, length, i, h = 2, 5, 3, 4
        args = [rng.standard_normal((n, length, i)), 0.5 * rng.standard_normal((n, h))]
        if cell:
            args.append(0.5 * rng.standard_normal((n, h)))
        args += [
            0.5 * rng.standard_normal((i, gates * h)),
            0.5 * rng.standard_normal((h, gates * h)),
        ]
        args += [0.3 * rng.standard_normal(gates * h), 0.3 * rng.standard_normal(gates * h)]
        return [tuple(args)]

    return examples


register_grad(
    "rnn(nonlinearity='tanh')",
    forward=lambda *a: rnn_formula(*a, nonlinearity="tanh"),
    backward=lambda *a: rnn_backward(*a[:-1], a[-1], nonlinearity="tanh"),  # pyright: ignore[reportCallIssue]
    examples=_examples(1, False),
    argnums=tuple(range(6)),
    public=lambda *a: rnn(*a, nonlinearity="tanh"),
)
register_grad(
    "rnn(nonlinearity='relu')",
    forward=lambda *a: rnn_formula(*a, nonlinearity="relu"),
    backward=lambda *a: rnn_backward(*a[:-1], a[-1], nonlinearity="relu"),  # pyright: ignore[reportCallIssue]
    examples=_examples(1, False),
    argnums=tuple(range(6)),
    public=lambda *a: rnn(*a, nonlinearity="relu"),
)
register_grad(
    "lstm",
    forward=lstm_formula,
    backward=lstm_backward,
    examples=_examples(4, True),
    argnums=tuple(range(7)),
    public=lstm,
)
register_grad(
    "gru",
    forward=gru_formula,
    backward=gru_backward,
    examples=_examples(3, False),
    argnums=tuple(range(6)),
    public=gru,
)
