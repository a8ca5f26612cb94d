"""Recurrent layers :func:`RNN`, :func:`LSTM`, :func:`GRU`: stacked, optionally
bidirectional, with dropout between layers (PyTorch's ``batch_first=True`` modules).

Parameters carry PyTorch's names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``, ``..._reverse`` for the backward direction), each weight transposed
(``[in, G H]`` here, ``[G H, in]`` in PyTorch). The hidden state goes in and out through
``state``: ``apply`` starts from ``state["h_0"]`` (and ``state["c_0"]``) when present,
zeros otherwise, and returns ``h_n``/``c_n`` ``[num_layers * D, N, H]`` in the new state
(to continue a sequence, pass ``{"h_0": state["h_n"], ...}``). ``backward`` chains the
ops' hand-derived BPTT through the layers, directions and dropout masks.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_int, check_probability
from . import init as initializers
from ._core import Layer, constructor
from .functional._dropout import dropout, dropout_backward
from .functional._recurrent import gru, gru_backward, lstm, lstm_backward, rnn, rnn_backward

__all__ = ["RNN", "LSTM", "GRU"]

_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _names(layer: int, direction: int) -> tuple[str, str, str, str]:
    sfx = f"l{layer}" + ("_reverse" if direction else "")
    return (f"weight_ih_{sfx}", f"weight_hh_{sfx}", f"bias_ih_{sfx}", f"bias_hh_{sfx}")


def _recurrent(
    kind: str,
    hidden_size: int,
    num_layers: int,
    bias: bool,
    bidirectional: bool,
    dropout_rate: float,
    nonlinearity: str,
    dtype: Any,
) -> Layer:
    fn = kind
    check_int("hidden_size", hidden_size, minimum=1, fn=fn)
    check_int("num_layers", num_layers, minimum=1, fn=fn)
    check_choice("bias", bias, (True, False), fn=fn)
    check_choice("bidirectional", bidirectional, (True, False), fn=fn)
    check_probability("dropout", dropout_rate, fn=fn)
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"), fn=fn)
    h, g, d = hidden_size, _GATES[kind], 2 if bidirectional else 1
    cell = kind == "LSTM"
    state_keys = ("h", "c") if cell else ("h",)

    def init(key, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{fn}: input_shape must be [N, L, I] (batch first), got "
                f"input_shape={tuple(input_shape)}"
            )
        n, _, size_in = input_shape
        bound = 1.0 / math.sqrt(h)
        params = {}
        keys = iter(jax.random.split(key, num_layers * d * 4))
        for layer in range(num_layers):
            fan = size_in if layer == 0 else d * h
            for direction in range(d):
                wih, whh, bih, bhh = _names(layer, direction)
                shapes = {wih: (fan, g * h), whh: (h, g * h)}
                if bias:
                    shapes.update({bih: (g * h,), bhh: (g * h,)})
                for name in (wih, whh, bih, bhh):
                    k = next(keys)
                    if name in shapes:
                        params[name] = initializers.uniform(
                            k, shapes[name], dtype, a=-bound, b=bound
                        )
        state = {f"{s}_n": jnp.zeros((num_layers * d, n, h), dtype) for s in state_keys}
        return params, state

    def _initial(state, x):
        out = {}
        for s in state_keys:
            given = state.get(f"{s}_0")
            want = (num_layers * d, x.shape[0], h)
            if given is not None and tuple(np.shape(given)) != want:
                raise ValueError(
                    f"{fn}: state['{s}_0'] must have shape [num_layers * D, N, H] = {want}, "
                    f"got {s}_0.shape={tuple(np.shape(given))}"
                )
            out[s] = None if given is None else jnp.asarray(given)
        return out

    def _dropout_keys(key, train):
        active = train and dropout_rate > 0 and num_layers > 1
        if active and key is None:
            raise ValueError(
                f"{fn}: apply needs a key when train=True with dropout={dropout_rate}, got key=None"
            )
        return list(jax.random.split(key, num_layers - 1)) if active else [None] * num_layers

    def _cell(params, layer, direction, xin, s0):
        names = _names(layer, direction)
        wih, whh = params[names[0]], params[names[1]]
        bih, bhh = params.get(names[2]), params.get(names[3])
        idx = layer * d + direction
        h0 = None if s0["h"] is None else s0["h"][idx]
        if kind == "LSTM":
            c0 = None if s0["c"] is None else s0["c"][idx]
            out, (h_n, c_n) = lstm(xin, h0, c0, wih, whh, bih, bhh)
            return out, {"h": h_n, "c": c_n}
        if kind == "GRU":
            out, h_n = gru(xin, h0, wih, whh, bih, bhh)
        else:
            out, h_n = rnn(xin, h0, wih, whh, bih, bhh, nonlinearity=nonlinearity)
        return out, {"h": h_n}

    def _run(params, state, x, key, train):
        """Forward pass; also returns each layer's input for the backward pass."""
        s0 = _initial(state, x)
        keys = _dropout_keys(key, train)
        finals: dict[str, list] = {s: [] for s in state_keys}
        inputs, inp = [], x
        for layer in range(num_layers):
            inputs.append(inp)
            outs = []
            for direction in range(d):
                xin = inp if direction == 0 else jnp.flip(inp, axis=1)
                out, fin = _cell(params, layer, direction, xin, s0)
                outs.append(out if direction == 0 else jnp.flip(out, axis=1))
                for s in state_keys:
                    finals[s].append(fin[s])
            inp = outs[0] if d == 1 else jnp.concatenate(outs, axis=-1)
            if layer < num_layers - 1 and keys[layer] is not None:
                inputs.append(inp)  # the dropout's input
                inp = dropout(keys[layer], inp, dropout_rate, train=True)
        new_state = {f"{s}_n": jnp.stack(finals[s]) for s in state_keys}
        new_state.update({k: v for k, v in state.items() if k.endswith("_0")})
        return inp, new_state, inputs, s0, keys

    def apply(params, state, x, *, key=None, train=False):
        y, new_state, _, _, _ = _run(params, state, x, key, train)
        return y, new_state

    def backward(params, state, x, gy, *, key=None, train=False):
        _, _, inputs, s0, keys = _run(params, state, x, key, train)
        grads = {}
        for layer in reversed(range(num_layers)):
            if layer < num_layers - 1 and keys[layer] is not None:
                gy = dropout_backward(keys[layer], inputs.pop(), dropout_rate, gy, train=True)
            inp = inputs.pop()
            dx = jnp.zeros_like(inp)
            for direction in range(d):
                names = _names(layer, direction)
                gd = gy[..., direction * h : (direction + 1) * h]
                xin = inp if direction == 0 else jnp.flip(inp, axis=1)
                gd = gd if direction == 0 else jnp.flip(gd, axis=1)
                idx = layer * d + direction
                wih, whh = params[names[0]], params[names[1]]
                bih, bhh = params.get(names[2]), params.get(names[3])
                zeros = jnp.zeros((x.shape[0], h), gd.dtype)
                h0 = zeros if s0["h"] is None else s0["h"][idx]
                res: Any
                if kind == "LSTM":
                    c0 = zeros if s0["c"] is None else s0["c"][idx]
                    res = lstm_backward(xin, h0, c0, wih, whh, bih, bhh, (gd, (zeros, zeros)))
                    res = res[:1] + res[3:]
                elif kind == "GRU":
                    res = gru_backward(xin, h0, wih, whh, bih, bhh, (gd, zeros))
                    res = res[:1] + res[2:]
                else:
                    res = rnn_backward(
                        xin, h0, wih, whh, bih, bhh, (gd, zeros), nonlinearity=nonlinearity
                    )
                    res = res[:1] + res[2:]
                dxi, dwih, dwhh, dbih, dbhh = res
                dx = dx + (dxi if direction == 0 else jnp.flip(dxi, axis=1))
                for name, gr in zip(names, (dwih, dwhh, dbih, dbhh), strict=True):
                    if name in params:
                        grads[name] = gr
            gy = dx
        return {k: grads[k] for k in params}, gy

    return Layer(init, apply, kind.lower(), backward)


@constructor(
    ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias"), inferred=("input_size",)
)
def RNN(
    hidden_size: int,
    *,
    num_layers: int = 1,
    nonlinearity: str = "tanh",
    bias: bool = True,
    bidirectional: bool = False,
    dropout: float = 0.0,
    dtype: Any = jnp.float32,
) -> Layer:
    """Elman RNN layer(s) on batch-first ``[N, L, I]`` sequences (:func:`~.functional.rnn`).

    ``apply`` returns ``y = outputs [N, L, D H]`` (forward direction first) and the state
    ``{"h_n": [num_layers * D, N, H]}``; an initial ``state["h_0"]`` is used when given.
    Every parameter starts ``U(-1/sqrt(H), 1/sqrt(H))`` (PyTorch). ``dropout`` applies
    to the outputs of every layer but the last, in training (needs ``key``).
    PyTorch: ``torch.nn.RNN(I, hidden_size, num_layers, nonlinearity, bias,
    batch_first=True, dropout, bidirectional)``.

    Example:
      >>> layer = RNN(8, num_layers=2, bidirectional=True)
      >>> params, state = layer.init(jax.random.key(0), (3, 5, 4))
      >>> y, state = layer.apply(params, state, jnp.ones((3, 5, 4)))
      >>> y.shape, state["h_n"].shape, params["weight_ih_l1_reverse"].shape
      ((3, 5, 16), (4, 3, 8), (16, 8))
    """
    return _recurrent(
        "RNN", hidden_size, num_layers, bias, bidirectional, dropout, nonlinearity, dtype
    )


@constructor(("input_size", "hidden_size", "num_layers", "bias"), inferred=("input_size",))
def LSTM(
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    bidirectional: bool = False,
    dropout: float = 0.0,
    dtype: Any = jnp.float32,
) -> Layer:
    """LSTM layer(s) on batch-first ``[N, L, I]`` sequences (:func:`~.functional.lstm`).

    ``apply`` returns ``y = outputs [N, L, D H]`` (forward direction first) and the state
    ``{"h_n", "c_n"}``, each ``[num_layers * D, N, H]``; initial ``state["h_0"]`` /
    ``state["c_0"]`` are used when given. Weights ``weight_ih_l{k}[_reverse] [in, 4H]``
    (gates i, f, g, o), all parameters ``U(-1/sqrt(H), 1/sqrt(H))`` (PyTorch).
    PyTorch: ``torch.nn.LSTM(I, hidden_size, num_layers, bias, batch_first=True, dropout,
    bidirectional)`` (no ``proj_size``).

    Example:
      >>> layer = LSTM(8)
      >>> params, state = layer.init(jax.random.key(0), (3, 5, 4))
      >>> y, state = layer.apply(params, state, jnp.ones((3, 5, 4)))
      >>> y.shape, state["c_n"].shape, sorted(params)[:2]
      ((3, 5, 8), (1, 3, 8), ['bias_hh_l0', 'bias_ih_l0'])
    """
    return _recurrent("LSTM", hidden_size, num_layers, bias, bidirectional, dropout, "tanh", dtype)


@constructor(("input_size", "hidden_size", "num_layers", "bias"), inferred=("input_size",))
def GRU(
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    bidirectional: bool = False,
    dropout: float = 0.0,
    dtype: Any = jnp.float32,
) -> Layer:
    """GRU layer(s) on batch-first ``[N, L, I]`` sequences (:func:`~.functional.gru`).

    As :func:`LSTM` with gates r, z, n (``[in, 3H]`` weights) and state ``{"h_n"}``.
    PyTorch: ``torch.nn.GRU(I, hidden_size, num_layers, bias, batch_first=True, dropout,
    bidirectional)``.

    Example:
      >>> params, state = GRU(6).init(jax.random.key(0), (2, 7, 3))
      >>> params["weight_hh_l0"].shape, state["h_n"].shape
      ((6, 18), (1, 2, 6))
    """
    return _recurrent("GRU", hidden_size, num_layers, bias, bidirectional, dropout, "tanh", dtype)
