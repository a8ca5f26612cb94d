"""rnn / lstm / gru against a NumPy step-by-step reference; hand BPTT against autodiff of
the plain forward; the RNN/LSTM/GRU layers; an LSTM that learns the adding problem."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl
import functional_dl.nn.functional as F
from functional_dl.nn.functional import _recurrent as R
from tests.helpers import FLOAT_DTYPES, assert_close, assert_eager_jit_vmap

RNG = np.random.default_rng(0)
f32 = jnp.float32
N, L, I, H = 2, 6, 3, 4


def sig(a):
    return 1 / (1 + np.exp(-a))


def np_rnn(x, h, wih, whh, bih, bhh, act):
    outs = []
    for t in range(x.shape[1]):
        h = act(x[:, t] @ wih + bih + h @ whh + bhh)
        outs.append(h)
    return np.stack(outs, 1), h


def np_lstm(x, h, c, wih, whh, bih, bhh):
    """PyTorch's LSTM equations, one step at a time (gates i, f, g, o)."""
    outs = []
    for t in range(x.shape[1]):
        a = x[:, t] @ wih + bih + h @ whh + bhh
        i, f, g, o = np.split(a, 4, axis=-1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1), (h, c)


def np_gru(x, h, wih, whh, bih, bhh):
    """PyTorch's GRU equations, with n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    outs = []
    for t in range(x.shape[1]):
        xr, xz, xn = np.split(x[:, t] @ wih + bih, 3, axis=-1)
        hr, hz, hn = np.split(h @ whh + bhh, 3, axis=-1)
        r, z = sig(xr + hr), sig(xz + hz)
        n = np.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs, 1), h


def _args(gates, cell=False):
    a = [RNG.standard_normal((N, L, I)), 0.5 * RNG.standard_normal((N, H))]
    if cell:
        a.append(0.5 * RNG.standard_normal((N, H)))
    a += [0.5 * RNG.standard_normal((I, gates * H)), 0.5 * RNG.standard_normal((H, gates * H))]
    a += [0.3 * RNG.standard_normal(gates * H), 0.3 * RNG.standard_normal(gates * H)]
    return a


def _j(args):
    return [jnp.asarray(a, f32) for a in args]


def test_values_match_numpy_step_by_step():
    a = _args(1)
    assert_close(F.rnn(*_j(a)), np_rnn(*a, np.tanh), rtol=1e-5, atol=1e-5)
    assert_close(
        F.rnn(*_j(a), nonlinearity="relu"),
        np_rnn(*a, lambda v: np.maximum(v, 0)),
        rtol=1e-5,
        atol=1e-5,
    )
    a = _args(4, cell=True)
    assert_close(F.lstm(*_j(a)), np_lstm(*a), rtol=1e-5, atol=1e-5)
    a = _args(3)
    assert_close(F.gru(*_j(a)), np_gru(*a), rtol=1e-5, atol=1e-5)
    # no biases, zero initial state
    out, h_n = F.gru(jnp.asarray(a[0], f32), None, *_j(a[2:4]))
    zeros = np.zeros(a[1].shape)
    assert_close((out, h_n), np_gru(a[0], zeros, a[2], a[3], 0.0, 0.0), rtol=1e-5, atol=1e-5)


CASES = {
    "rnn": (F.rnn, R.rnn_formula, R.rnn_backward, 1, False),
    "lstm": (F.lstm, R.lstm_formula, R.lstm_backward, 4, True),
    "gru": (F.gru, R.gru_formula, R.gru_backward, 3, False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_bptt_equals_autodiff_of_plain_forward(name):
    public, formula, backward, gates, cell = CASES[name]
    with jax.enable_x64(True):
        args = [jnp.asarray(a) for a in _args(gates, cell)]
        y, auto_vjp = jax.vjp(formula, *args)
        g = jax.tree_util.tree_map(lambda v: jnp.asarray(RNG.standard_normal(v.shape)), y)
        auto = auto_vjp(g)
        hand = backward(*args, g)
        live = jax.vjp(public, *args)[1](g)  # the public function's gradient is the hand rule
        for a, h, v in zip(auto, hand, live, strict=True):
            np.testing.assert_allclose(np.asarray(h), np.asarray(a), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(np.asarray(v), np.asarray(h), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_mode_matches_float64_finite_differences(name):
    # jax.jvp / jacfwd / hessian work on the public ops (a custom_jvp), and agree with
    # central differences of the NumPy reference and with autodiff of the plain forward
    public, formula, _, gates, cell = CASES[name]
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        args = [jnp.asarray(a) for a in _args(gates, cell)]
        tangents = [jnp.asarray(rng.standard_normal(a.shape)) for a in args]
        _, t_pub = jax.jvp(public, args, tangents)
        _, t_auto = jax.jvp(formula, args, tangents)
        reference = {"rnn": lambda *a: np_rnn(*a, np.tanh), "lstm": np_lstm, "gru": np_gru}[name]
        eps = 1e-6
        plus = reference(*[np.asarray(a + eps * t) for a, t in zip(args, tangents, strict=True)])
        minus = reference(*[np.asarray(a - eps * t) for a, t in zip(args, tangents, strict=True)])
        fd = jax.tree_util.tree_map(lambda p, m: (p - m) / (2 * eps), plus, minus)
        for a, b, c in zip(*map(jax.tree_util.tree_leaves, (t_pub, t_auto, fd)), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-6, atol=1e-8)

        def scalar(w_hh):
            full = list(args)
            full[3 if cell else 2] = w_hh
            return sum(jnp.sum(jnp.tanh(o)) for o in jax.tree_util.tree_leaves(public(*full)))

        w = args[3 if cell else 2]
        hess = jax.hessian(scalar)(w)
        assert hess.shape == w.shape * 2 and np.all(np.isfinite(np.asarray(hess)))
        ref = jax.hessian(lambda v: scalar_plain(formula, args, cell, v))(w)
        np.testing.assert_allclose(np.asarray(hess), np.asarray(ref), rtol=1e-8, atol=1e-10)


def scalar_plain(formula, args, cell, w_hh):
    full = list(args)
    full[3 if cell else 2] = w_hh
    return sum(jnp.sum(jnp.tanh(o)) for o in jax.tree_util.tree_leaves(formula(*full)))


def test_the_hand_bptt_is_what_jax_grad_runs():
    # the ops are built by _rule(fwd, bwd): scaling the hand backward by 1.01 scales
    # jax.grad and jax.jvp of the op it builds, so the hand rule is the live one
    args = _j(_args(4, cell=True))
    op, _ = R._rule(R._lstm_fwd, R._lstm_bwd)
    bent, _ = R._rule(
        R._lstm_fwd,
        lambda *a: tuple(None if d is None else 1.01 * d for d in R._lstm_bwd(*a)),
    )

    def loss(fn):
        return lambda w: jnp.sum(fn(args[0], args[1], args[2], w, *args[4:])[0] ** 2)

    g_pub, g_op, g_bent = (jax.grad(loss(f))(args[3]) for f in (F.lstm, op, bent))
    np.testing.assert_array_equal(np.asarray(g_pub), np.asarray(g_op))
    np.testing.assert_allclose(np.asarray(g_bent), 1.01 * np.asarray(g_op), rtol=1e-5)
    t = jnp.ones_like(args[3])
    t_op = jax.jvp(loss(op), (args[3],), (t,))[1]
    t_bent = jax.jvp(loss(bent), (args[3],), (t,))[1]
    np.testing.assert_allclose(float(t_bent), 1.01 * float(t_op), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_jit_vmap_dtypes(name):
    public, _, _, gates, cell = CASES[name]
    args = _j(_args(gates, cell))
    assert_eager_jit_vmap(public, *args)
    ref = public(*args)
    for dt in FLOAT_DTYPES[1:]:
        y = public(args[0].astype(dt), *args[1:])
        assert jax.tree_util.tree_leaves(y)[0].dtype == dt
        assert_close(jax.tree_util.tree_map(lambda v: v.astype(f32), y), ref, rtol=5e-2, atol=5e-2)
    big = public(args[0] * 1e4, *args[1:])
    assert all(bool(jnp.isfinite(v).all()) for v in jax.tree_util.tree_leaves(big))
    nan = public(args[0].at[0, 0, 0].set(jnp.nan), *args[1:])
    assert bool(jnp.isnan(jax.tree_util.tree_leaves(nan)[0][0]).all())


def test_bad_arguments_name_the_argument():
    x, wih, whh = jnp.ones((2, 5, 3)), jnp.ones((3, 16)), jnp.ones((4, 16))
    with pytest.raises(
        ValueError, match=r"h0 must have shape \[N, H\] = \(2, 4\).*h0.shape=\(3, 4\)"
    ):
        F.lstm(x, jnp.ones((3, 4)), None, wih, whh)
    with pytest.raises(ValueError, match=r"weight_ih must have shape \[I, 4\*H\]"):
        F.lstm(x, None, None, jnp.ones((2, 16)), whh)
    with pytest.raises(ValueError, match=r"weight_hh must have shape \[H, 3\*H\]"):
        F.gru(x, None, jnp.ones((3, 12)), jnp.ones((4, 16)))
    with pytest.raises(ValueError, match=r"bias_hh must have shape \(4,\)"):
        F.rnn(x, None, jnp.ones((3, 4)), jnp.ones((4, 4)), None, jnp.ones(3))
    with pytest.raises(ValueError, match=r"nonlinearity must be one of"):
        F.rnn(x, None, jnp.ones((3, 4)), jnp.ones((4, 4)), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"num_layers must be >= 1, got num_layers=0"):
        fdl.nn.LSTM(4, num_layers=0)
    layer = fdl.nn.GRU(4, num_layers=2)
    params, state = layer.init(jax.random.key(0), (2, 5, 3))
    with pytest.raises(ValueError, match=r"h_0'\] must have shape .*\(2, 2, 4\)"):
        layer.apply(params, {"h_0": jnp.zeros((1, 2, 4))}, x)
    with pytest.raises(ValueError, match=r"needs a key"):
        fdl.nn.LSTM(4, num_layers=2, dropout=0.5).apply(
            *fdl.nn.LSTM(4, num_layers=2, dropout=0.5).init(jax.random.key(0), x.shape),
            x,
            train=True,
        )
    with pytest.raises(TypeError):
        fdl.nn.LSTM(4, 2)  # PyTorch's (input_size, hidden_size) order: keyword-only here


def _np_layer(kind, params, x, num_layers, d, h0):
    """Stacked (bi)directional reference composed from the NumPy cells."""
    inp, finals = x, []
    for layer in range(num_layers):
        outs = []
        for direction in range(d):
            sfx = f"l{layer}" + ("_reverse" if direction else "")
            p = [
                np.asarray(params[f"{k}_{sfx}"], np.float64)
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
            xin = inp if direction == 0 else inp[:, ::-1]
            hs = h0[layer * d + direction]
            if kind == "LSTM":
                out, (hn, _) = np_lstm(xin, hs, np.zeros_like(hs), *p)
            elif kind == "GRU":
                out, hn = np_gru(xin, hs, *p)
            else:
                out, hn = np_rnn(xin, hs, *p, np.tanh)
            outs.append(out if direction == 0 else out[:, ::-1])
            finals.append(hn)
        inp = np.concatenate(outs, -1)
    return inp, np.stack(finals)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layers_stacked_bidirectional_match_numpy_and_backprop(kind):
    layer = getattr(fdl.nn, kind)(5, num_layers=2, bidirectional=True)
    x = RNG.standard_normal((N, L, I))
    params, state = layer.init(jax.random.key(1), x.shape)
    h = 1 / np.sqrt(5)
    assert all(float(jnp.max(jnp.abs(p))) <= h for p in params.values())  # U(-1/sqrt H, 1/sqrt H)
    assert params["weight_ih_l1_reverse"].shape == (10, 5 * {"RNN": 1, "LSTM": 4, "GRU": 3}[kind])
    h0 = 0.3 * RNG.standard_normal((4, N, 5))
    state = {**state, "h_0": jnp.asarray(h0, f32)}
    y, new = jax.jit(layer.apply)(params, state, jnp.asarray(x, f32))
    want_y, want_h = _np_layer(kind, params, x, 2, 2, h0)
    assert_close(y, want_y, rtol=1e-5, atol=1e-5)
    assert_close(new["h_n"], want_h, rtol=1e-5, atol=1e-5)
    g = jnp.asarray(RNG.standard_normal(y.shape), f32)
    auto = jax.jit(jax.grad(lambda p, x: jnp.sum(layer.apply(p, state, x)[0] * g), argnums=(0, 1)))(
        params, jnp.asarray(x, f32)
    )
    hand = jax.jit(lambda p, x: fdl.nn.backprop.backward(layer, p, state, x, g))(
        params, jnp.asarray(x, f32)
    )
    assert_close(hand, auto, rtol=1e-4, atol=1e-5)


def test_lstm_dropout_between_layers_and_state_round_trip():
    layer = fdl.nn.LSTM(4, num_layers=2, dropout=0.5)
    x = jnp.asarray(RNG.standard_normal((3, 5, 2)), f32)
    params, state = layer.init(jax.random.key(0), x.shape)
    apply = jax.jit(layer.apply, static_argnames="train")
    y_eval, _ = apply(params, state, x)
    y1, _ = apply(params, state, x, key=jax.random.key(1), train=True)
    y2, _ = apply(params, state, x, key=jax.random.key(1), train=True)
    assert_close(y1, y2)
    assert not np.allclose(np.asarray(y1), np.asarray(y_eval))
    g = jnp.ones_like(y1)
    auto = jax.jit(
        jax.grad(
            lambda p: jnp.sum(layer.apply(p, state, x, key=jax.random.key(1), train=True)[0] * g)
        )
    )(params)
    hand, _ = jax.jit(lambda p: layer.backward(p, state, x, g, key=jax.random.key(1), train=True))(
        params
    )
    assert_close(hand, auto, rtol=1e-4, atol=1e-5)
    # running the sequence in two halves with the state carried equals one pass
    full = y_eval
    first, s1 = apply(params, state, x[:, :2])
    second, _ = apply(params, {"h_0": s1["h_n"], "c_0": s1["c_n"]}, x[:, 2:])
    assert_close(jnp.concatenate([first, second], 1), full)


def test_lstm_learns_the_adding_problem():
    """Length 20: the sum of the two marked values among 20 uniform ones (Hochreiter &
    Schmidhuber, 1997). Predicting the mean gives MSE ~0.17; after 600 Adam steps
    we require < 0.01 (it reaches ~0.002; the loss leaves its plateau near step 350)."""
    length, n = 20, 256
    key = jax.random.key(0)

    def batch(k):
        kv, km = jax.random.split(k)
        vals = jax.random.uniform(kv, (n, length))
        idx = jnp.argsort(jax.random.uniform(km, (n, length)), axis=1)[:, :2]
        marks = jnp.zeros((n, length)).at[jnp.arange(n)[:, None], idx].set(1.0)
        return jnp.stack([vals, marks], -1), jnp.sum(vals * marks, 1)

    model = fdl.models.lstm_model(1, hidden_size=32)
    params, state = model.init(key, (n, length, 2))
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)

    def loss_fn(p, x, y):
        return jnp.mean((model.apply(p, state, x)[0][:, 0] - y) ** 2)

    @jax.jit
    def step(p, o, k):
        x, y = batch(k)
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, o = opt.update(g, o, p)
        return optax.apply_updates(p, u), o, loss

    for i in range(600):
        params, opt_state, _ = step(params, opt_state, jax.random.fold_in(key, i))
    x, y = batch(jax.random.key(123))
    assert float(loss_fn(params, x, y)) < 0.01
