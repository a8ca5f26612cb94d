"""Recurrent ops ``rnn``, ``lstm``, ``gru`` (PyTorch's equations and gate order), with
backpropagation through time written by hand.

Layout (batch first): ``x [N, L, I]``, ``h0 [N, H]``, ``weight_ih [I, G H]``,
``weight_hh [H, G H]``, biases ``[G H]``, with ``G = 1`` (rnn), 4 (lstm: gates i, f, g, o)
or 3 (gru: r, z, n). PyTorch stores ``weight_ih_l0`` as ``[G H, I]``: ours is its
transpose.

Forward: a ``lax.scan`` over time runs the recurrence (each step's input projection
``x_t W_ih + b_ih`` inside the loop) and saves, per step, the local derivatives the
backward needs (``1 - h_t^2``; the LSTM's and GRU's gate factors).

Backward (BPTT): a reverse ``lax.scan`` over the saved factors carries ``dh`` (and
``dc``) from step ``L`` down to 1; at each step it forms ``da_t``, the gradient of the gate
pre-activations, and sends ``da_t W_hh^T`` to the previous hidden state. The weight
gradients are then batched products outside the loop:
``dW_ih = sum_t x_t^T da_t``, ``dW_hh = sum_t h_{t-1}^T da_t``, ``db = sum_t da_t``,
``dx_t = da_t W_ih^T``.

The public functions are ``jax.custom_jvp`` functions built by
:func:`~functional_dl.grads.hand_rule_with_residuals`: the tangent rule is the transpose
of this BPTT, a forward scan linear in the tangents, so ``jax.jvp``, ``jacfwd`` and
``hessian`` work, and reverse mode (``jax.grad``) transposes it back into the BPTT's own
reverse scan over the residuals of one forward. The hand BPTT is the live gradient
(``tests/test_nn_recurrent.py`` perturbs it and sees ``jax.grad`` change). The plain formulas
(:func:`rnn_formula`, ...) are differentiated by autodiff, for reference. Arithmetic runs
in at least float32 (:func:`~functional_dl._dtypes.compute_dtype`); outputs keep ``x``'s
dtype.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ... import grads
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


def _time_major(x):
    return jnp.transpose(x, (1, 0, 2))


def _inp(x_t, wih, bih):
    """One step's input projection ``x_t W_ih + b_ih``, inside the scan: on CPU, 128 small
    products in the loop ran ~1.5x faster than one ``[L N, I] x [I, G H]`` product
    before it (measured in ``bench/bench_layers.py``'s lstm rows)."""
    xw = x_t @ wih
    return xw if bih is None else xw + bih[None, :]


def _hid(h, whh, bhh):
    hw = h @ whh
    return hw if bhh is None else hw + bhh[None, :]


def _sig(a):
    return jax.nn.sigmoid(a)


# ----------------------------------------------------------- forward scans (the formula)
def _rnn_scan(x, h0, wih, whh, bih, bhh, nonlinearity):
    act = jnp.tanh if nonlinearity == "tanh" else jax.nn.relu

    def step(h, x_t):
        h = act(_inp(x_t, wih, bih) + _hid(h, whh, bhh))
        return h, h

    h_n, hs = jax.lax.scan(step, h0, _time_major(x))
    return hs, h_n  # hs time-major [L, N, H]


def _lstm_gates(a, hsz):
    i, f = _sig(a[:, :hsz]), _sig(a[:, hsz : 2 * hsz])
    return i, f, jnp.tanh(a[:, 2 * hsz : 3 * hsz]), _sig(a[:, 3 * hsz :])


def _lstm_scan(x, h0, c0, wih, whh, bih, bhh, *, save=False):
    """The LSTM recurrence; with ``save``, also the local derivatives BPTT needs per step:
    ``coef = [g i(1-i), c_{t-1} f(1-f), i (1-g^2), tanh(c_t) o(1-o)]``,
    ``b = o (1 - tanh^2 c_t)`` and ``f``."""
    hsz = h0.shape[-1]

    def step(carry, x_t):
        h, c = carry
        i, f, g, o = _lstm_gates(_inp(x_t, wih, bih) + _hid(h, whh, bhh), hsz)
        c_new = f * c + i * g
        tc = jnp.tanh(c_new)
        h = o * tc
        if not save:
            return (h, c_new), (h, ())
        coef = jnp.concatenate(
            [g * i * (1 - i), c * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], axis=-1
        )
        return (h, c_new), (h, (coef, o * (1 - tc * tc), f))

    (h_n, c_n), (hs, saved) = jax.lax.scan(step, (h0, c0), _time_major(x))
    return hs, h_n, c_n, saved


def _gru_scan(x, h0, wih, whh, bih, bhh, *, save=False):
    """The GRU recurrence; with ``save``, also per step
    ``coef = [(1-z)(1-n^2) hn r(1-r), (h_{t-1} - n) z(1-z), (1-z)(1-n^2)]``, ``r``, ``z``."""
    hsz = h0.shape[-1]

    def step(h, x_t):
        xw_t, hw = _inp(x_t, wih, bih), _hid(h, whh, bhh)
        r = _sig(xw_t[:, :hsz] + hw[:, :hsz])
        z = _sig(xw_t[:, hsz : 2 * hsz] + hw[:, hsz : 2 * hsz])
        hn = hw[:, 2 * hsz :]
        n = jnp.tanh(xw_t[:, 2 * hsz :] + r * hn)
        h_new = (1 - z) * n + z * h
        if not save:
            return h_new, (h_new, ())
        dn = (1 - z) * (1 - n * n)
        coef = jnp.concatenate([dn * hn * r * (1 - r), (h - n) * z * (1 - z), dn], axis=-1)
        return h_new, (h_new, (coef, r, z))

    h_n, (hs, saved) = jax.lax.scan(step, h0, _time_major(x))
    return hs, h_n, saved


# ------------------------------------------------------------------ shared gradients
def _param_grads(x, hs_prev, da_x, da_h, wih, bih, bhh):
    """``dx, dW_ih, dW_hh, db_ih, db_hh`` from the per-step pre-activation gradients
    (time-major ``[L, N, G H]``): 2-D products outside the recurrence."""
    n, length, i = x.shape
    rows = length * n
    dax, dah = da_x.reshape(rows, -1), da_h.reshape(rows, -1)
    dx = jnp.transpose((dax @ wih.T).reshape(length, n, i), (1, 0, 2))
    dwih = _time_major(x).reshape(rows, i).T @ dax
    dwhh = hs_prev.reshape(rows, -1).T @ dah
    dbih = None if bih is None else jnp.sum(dax, axis=0)
    dbhh = None if bhh is None else jnp.sum(dah, axis=0)
    return dx, dwih, dwhh, dbih, dbhh


def _prev(h0, hs):
    """``[h_0, ..., h_{L-1}]``: the hidden state each step started from."""
    return jnp.concatenate([h0[None], hs[:-1]], axis=0)


def _out(dtypes_of, *grads):
    return tuple(
        None if g is None else g.astype(jnp.asarray(a).dtype)
        for g, a in zip(grads, dtypes_of, strict=True)
    )


def _rule(fwd, bwd):
    """The public op: forward once in at least float32 (``fwd(*args, save)``; with
    ``save`` it keeps what BPTT needs), the hand BPTT ``bwd`` as its gradient
    (:func:`~functional_dl.grads.hand_rule_with_residuals`)."""

    def forward(x, *args, save=True):
        cd = compute_dtype(x.dtype)
        out, res = fwd(*_cast(cd, x, *args), save=save)
        out = jax.tree_util.tree_map(lambda o: o.astype(x.dtype), out)
        return out, (x, *args, res)

    def backward(res, cts):
        *inputs, saved = res
        cd = compute_dtype(inputs[0].dtype)
        g_out, *g_state = jax.tree_util.tree_leaves(cts)
        gs = _cast(cd, _time_major(g_out), *g_state)
        return _out(inputs, *bwd(*_cast(cd, *inputs), saved, *gs))

    def vjp(*args_and_g):
        *args, g = args_and_g
        return backward(forward(*args)[1], g)

    def primal(*args):
        return forward(*args, save=False)[0]

    return grads.hand_rule_with_residuals(forward, backward, primal), vjp


# ------------------------------------------------------------------------------ rnn
def _rnn_fwd(x, h0, wih, whh, bih, bhh, nonlinearity, save):
    hs, h_n = _rnn_scan(x, h0, wih, whh, bih, bhh, nonlinearity)
    if not save:
        return (_time_major(hs), h_n), ()
    deriv = 1 - hs * hs if nonlinearity == "tanh" else (hs > 0).astype(hs.dtype)
    return (_time_major(hs), h_n), (hs, deriv)


def _rnn_bwd(x, h0, wih, whh, bih, bhh, saved, g_out, g_hn):
    """BPTT of the Elman RNN: ``a_t = x_t W_ih + b_ih + h_{t-1} W_hh + b_hh``,
    ``h_t = act(a_t)``; ``da_t = (g_t + dh_t) act'(a_t)`` with ``tanh' = 1 - h_t^2`` and
    ``relu' = [h_t > 0]`` (saved by the forward); ``dh_{t-1} = da_t W_hh^T``."""
    hs, deriv = saved
    whh_t = whh.T  # transposed once, outside the loop

    def step(dh, xs):
        d_t, g_t = xs
        da = (dh + g_t) * d_t
        return da @ whh_t, da

    dh0, da = jax.lax.scan(step, g_hn, (deriv, g_out), reverse=True)
    dx, dwih, dwhh, dbih, dbhh = _param_grads(x, _prev(h0, hs), da, da, wih, bih, bhh)
    return dx, dh0, dwih, dwhh, dbih, dbhh


_RNN = {nl: _rule(partial(_rnn_fwd, nonlinearity=nl), _rnn_bwd) for nl in ("tanh", "relu")}


# ----------------------------------------------------------------------------- lstm
def _lstm_fwd(x, h0, c0, wih, whh, bih, bhh, save):
    hs, h_n, c_n, saved = _lstm_scan(x, h0, c0, wih, whh, bih, bhh, save=save)
    return (_time_major(hs), (h_n, c_n)), (hs, saved)


def _lstm_bwd(x, h0, c0, wih, whh, bih, bhh, saved, g_out, g_hn, g_cn):
    """BPTT of the LSTM. With ``c_t = f c_{t-1} + i g`` and ``h_t = o tanh(c_t)``:
    ``dh = g_t + dh_{t+1}``, ``dc = dc_{t+1} + dh o (1 - tanh^2 c_t)``,
    ``da_i = dc g i (1 - i)``, ``da_f = dc c_{t-1} f (1 - f)``, ``da_g = dc i (1 - g^2)``,
    ``da_o = dh tanh(c_t) o (1 - o)``, ``dc_{t-1} = dc f``, ``dh_{t-1} = da_t W_hh^T``.
    The forward saved the factors (``coef``, ``b``, ``f``): the loop body is linear."""
    hs, (coef, b, f) = saved
    whh_t = whh.T  # transposed once, outside the loop

    def step(carry, xs):
        dh, dc = carry
        cf, b_t, f_t, g_t = xs
        dh = dh + g_t
        dc = dc + dh * b_t
        da = jnp.concatenate([dc, dc, dc, dh], axis=-1) * cf
        return (da @ whh_t, dc * f_t), da

    (dh0, dc0), da = jax.lax.scan(step, (g_hn, g_cn), (coef, b, f, g_out), reverse=True)
    dx, dwih, dwhh, dbih, dbhh = _param_grads(x, _prev(h0, hs), da, da, wih, bih, bhh)
    return dx, dh0, dc0, dwih, dwhh, dbih, dbhh


_LSTM = _rule(_lstm_fwd, _lstm_bwd)


# ------------------------------------------------------------------------------ gru
def _gru_fwd(x, h0, wih, whh, bih, bhh, save):
    hs, h_n, saved = _gru_scan(x, h0, wih, whh, bih, bhh, save=save)
    return (_time_major(hs), h_n), (hs, saved)


def _gru_bwd(x, h0, wih, whh, bih, bhh, saved, g_out, g_hn):
    """BPTT of the GRU. With ``h_t = (1 - z) n + z h_{t-1}``,
    ``n = tanh(a_n + r hn)``, ``hn = h_{t-1} W_hn + b_hn``:
    ``da_n = dh (1 - z)(1 - n^2)``, ``da_r = da_n hn r (1 - r)``,
    ``da_z = dh (h_{t-1} - n) z (1 - z)``; input side ``[da_r, da_z, da_n]``, hidden side
    ``[da_r, da_z, da_n r]``; ``dh_{t-1} = dh z + [da_r, da_z, da_n r] W_hh^T``. The
    forward saved the factors (``coef``, ``r``, ``z``): the loop body is linear."""
    hs, (coef, r, z) = saved
    hsz = h0.shape[-1]
    whh_t = whh.T  # transposed once, outside the loop

    def step(dh, xs):
        cf, r_t, z_t, g_t = xs
        dh = dh + g_t
        da_x = jnp.concatenate([dh, dh, dh], axis=-1) * cf
        da_h = jnp.concatenate([da_x[:, : 2 * hsz], da_x[:, 2 * hsz :] * r_t], axis=-1)
        return dh * z_t + da_h @ whh_t, (da_x, da_h)

    dh0, (da_x, da_h) = jax.lax.scan(step, g_hn, (coef, r, z, g_out), reverse=True)
    dx, dwih, dwhh, dbih, dbhh = _param_grads(x, _prev(h0, hs), da_x, da_h, wih, bih, bhh)
    return dx, dh0, dwih, dwhh, dbih, dbhh


_GRU = _rule(_gru_fwd, _gru_bwd)


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

    Gradient: BPTT by hand (:func:`rnn_backward`), live through a ``jax.custom_jvp``
    whose tangent rule is its transpose, so forward mode works too (module docstring).
    PyTorch: ``torch.nn.RNN(batch_first=True)``
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
    op, _ = _RNN[nonlinearity]
    return op(x, *_params(x, h0, weight_ih, weight_hh, bias_ih, bias_hh))


def rnn_formula(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    """The plain forward of :func:`rnn` (a ``lax.scan``; differentiated by autodiff)."""
    hs, h_n = _rnn_scan(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)
    return _time_major(hs), h_n


def rnn_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, g, *, nonlinearity="tanh"):
    """Hand BPTT of :func:`rnn`: ``g = (g_outputs, g_h_n)`` ->
    ``(dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh)``."""
    _check("rnn", x, h0, None, weight_ih, weight_hh, bias_ih, bias_hh)
    return _RNN[nonlinearity][1](x, h0, weight_ih, weight_hh, bias_ih, bias_hh, g)


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
    (:func:`lstm_backward`), live through a ``jax.custom_jvp`` whose tangent rule is its
    transpose, so forward mode works too (module docstring).
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
    return _LSTM[0](x, *_params(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh))


def lstm_formula(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """The plain forward of :func:`lstm` (a ``lax.scan``; differentiated by autodiff)."""
    hs, h_n, c_n, _ = _lstm_scan(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    return _time_major(hs), (h_n, c_n)


def lstm_backward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, g):
    """Hand BPTT of :func:`lstm`: ``g = (g_outputs, (g_h_n, g_c_n))`` ->
    ``(dx, dh0, dc0, dweight_ih, dweight_hh, dbias_ih, dbias_hh)``."""
    _check("lstm", x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    return _LSTM[1](x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, g)


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

    Gradient: BPTT by hand (:func:`gru_backward`), live through a ``jax.custom_jvp`` whose
    tangent rule is its transpose, so forward mode works too (module docstring).
    PyTorch: ``torch.nn.GRU(batch_first=True)`` with ``weight_ih_l0 = weight_ih.T``.
    Cho et al. (2014).

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
    return _GRU[0](x, *_params(x, h0, weight_ih, weight_hh, bias_ih, bias_hh))


def gru_formula(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """The plain forward of :func:`gru` (a ``lax.scan``; differentiated by autodiff)."""
    hs, h_n, _ = _gru_scan(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    return _time_major(hs), h_n


def gru_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, g):
    """Hand BPTT of :func:`gru`: ``g = (g_outputs, g_h_n)`` ->
    ``(dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh)``."""
    _check("gru", x, h0, None, weight_ih, weight_hh, bias_ih, bias_hh)
    return _GRU[1](x, h0, weight_ih, weight_hh, bias_ih, bias_hh, g)


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


def _rnn_entry(nl: str) -> tuple:
    return (
        lambda *a: rnn_formula(*a, nonlinearity=nl),
        lambda *a: rnn_backward(*a[:-1], a[-1], nonlinearity=nl),  # pyright: ignore[reportCallIssue]
        lambda *a: rnn(*a, nonlinearity=nl),
        1,
        False,
    )


_ENTRIES = {
    "rnn(nonlinearity='tanh')": _rnn_entry("tanh"),
    "rnn(nonlinearity='relu')": _rnn_entry("relu"),
    "lstm": (lstm_formula, lstm_backward, lstm, 4, True),
    "gru": (gru_formula, gru_backward, gru, 3, False),
}
for _name, (_formula, _backward, _public, _gates, _cell) in _ENTRIES.items():
    register_grad(
        _name,
        forward=_formula,
        backward=_backward,
        examples=_examples(_gates, _cell),
        argnums=tuple(range(7 if _cell else 6)),
        public=_public,
    )
