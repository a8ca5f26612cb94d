"""Adafactor, Rprop, ASGD, Muon, param_groups, accumulate and ema/swa against
independent references: PyTorch's algorithms (torch/optim/_adafactor.py, rprop.py,
asgd.py, _muon.py) ported to NumPy here (float64, 50 steps), optax where the rule is the
same, closed forms for the averages."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl
from tests.helpers import assert_close

STEPS = 50
SHAPES = [(3, 4), (2, 3, 5), (5,), ()]
MATRICES = [(3, 4), (6, 2)]


def _data(shapes, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in shapes]
    grads = [rng.normal(size=(steps,) + s) for s in shapes]
    return params, grads


def _trajectory(opt, params, grads):
    def body(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        p = fdl.optim.apply_updates(p, u)
        return (p, s), p

    (_, state), traj = jax.lax.scan(body, (params, opt.init(params)), grads)
    return traj, state


def run_jax(opts, params, grads):
    """Float64 trajectories (and final states) of several optimizers, one compilation."""
    with jax.enable_x64(True):
        p = [jnp.asarray(x, jnp.float64) for x in params]
        g = [jnp.asarray(x, jnp.float64) for x in grads]
        return jax.device_get(jax.jit(lambda p, g: [_trajectory(o, p, g) for o in opts])(p, g))


def run_numpy(step, params, grads, **hp):
    out, states = [], []
    for p0, gs in zip(params, grads, strict=True):
        p, st, traj = p0.copy(), {}, []
        for t in range(1, len(gs) + 1):
            p = step(t, p, gs[t - 1].copy(), st, **hp)
            traj.append(p)
        out.append(np.stack(traj))
        states.append(st)
    return out, states


def _lr(h, t):
    """The learning rate PyTorch holds at the t-th step (t from 1): schedule(t - 1)."""
    return float(h(t - 1)) if callable(h) else h


def _sched(s):
    return 0.02 * 0.97**s


# --- PyTorch's algorithms, ported from torch/optim ---------------------------------------
def ref_adafactor(
    t, p, g, st, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0,
    maximize=False,
):  # fmt: skip
    lr = _lr(lr, t)
    g = -g if maximize else g
    eps1 = np.finfo(p.dtype).eps if eps[0] is None else eps[0]
    w = t**beta2_decay
    rho = min(lr, 1 / t**0.5)
    alpha = max(eps[1], np.linalg.norm(p) / max(p.size, 1) ** 0.5) * rho
    if weight_decay:
        p = p * (1 - lr * weight_decay)
    if g.ndim > 1:
        r, c = st.get("r", 0.0), st.get("c", 0.0)
        st["r"] = r + w * ((g * g).mean(-1, keepdims=True) - r)
        st["c"] = c + w * ((g * g).mean(-2, keepdims=True) - c)
        var = st["r"] @ st["c"] / np.maximum(st["r"].mean(-2, keepdims=True), eps1)
    else:
        v = st.get("v", 0.0)
        st["v"] = v + w * (g * g - v)
        var = st["v"]
    u = g / np.sqrt(np.maximum(var, eps1 * eps1))
    denom = max(1.0, np.linalg.norm(u) / (max(u.size, 1) ** 0.5 * d))
    return p - alpha / denom * u


def ref_rprop(t, p, g, st, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), maximize=False):
    g = -g if maximize else g
    if t == 1:
        st["prev"] = np.zeros_like(p)
        st["size"] = np.full_like(p, _lr(lr, 1))
    sign = np.sign(g * st["prev"])
    factor = np.where(sign > 0, etas[1], np.where(sign < 0, etas[0], 1.0))
    st["size"] = np.clip(st["size"] * factor, *step_sizes)
    g = np.where(factor == etas[0], 0.0, g)
    st["prev"] = g
    return p - st["size"] * np.sign(g)


def ref_asgd(
    t, p, g, st, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False
):
    g = -g if maximize else g
    if t == 1:
        st.update(eta=_lr(lr, 1), mu=1.0, ax=np.zeros_like(p))
    if weight_decay:
        g = g + weight_decay * p
    p = p * (1 - lambd * st["eta"]) - st["eta"] * g
    st["ax"] = p.copy() if st["mu"] == 1 else st["ax"] + (p - st["ax"]) * st["mu"]
    cur = _lr(lr, t)  # the group's lr during this step
    st["eta"] = cur / (1 + lambd * cur * t) ** alpha
    st["mu"] = 1 / max(1, t - t0)
    return p


def _newton_schulz(x, coeffs, steps, eps):
    a, b, c = coeffs
    y = x.T if x.shape[0] > x.shape[1] else x
    y = y / max(np.linalg.norm(y), eps)
    for _ in range(steps):
        gram = y @ y.T
        y = a * y + (b * gram + c * gram @ gram) @ y
    return y.T if x.shape[0] > x.shape[1] else y


def ref_muon(
    t, p, g, st, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
    ns_coefficients=(3.4445, -4.775, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None,
):  # fmt: skip
    """torch.optim.Muon on PyTorch's [out, in] layout: our [in, out] leaf transposed."""
    lr = _lr(lr, t)
    w, grad = p.T, g.T
    buf = st.get("buf", np.zeros_like(w))
    buf = buf + (1 - momentum) * (grad - buf)
    st["buf"] = buf
    upd = grad + momentum * (buf - grad) if nesterov else buf
    upd = _newton_schulz(upd, ns_coefficients, ns_steps, eps)
    A, B = w.shape
    if adjust_lr_fn in (None, "original"):
        ratio = math.sqrt(max(1, A / B))
    else:
        ratio = 0.2 * math.sqrt(max(A, B))
    w = w * (1 - lr * weight_decay) - lr * ratio * upd
    return w.T


CASES = [
    ("adafactor", {}, SHAPES),
    ("adafactor", dict(lr=0.5, weight_decay=0.1, d=0.5, beta2_decay=-0.5), SHAPES),
    ("adafactor", dict(lr=_sched, eps=(1e-3, 1e-2), maximize=True), SHAPES),
    ("rprop", {}, SHAPES),
    ("rprop", dict(lr=0.1, etas=(0.3, 1.5), step_sizes=(0.05, 0.2), maximize=True), SHAPES),
    ("rprop", dict(lr=_sched), SHAPES),
    ("asgd", {}, SHAPES),
    ("asgd", dict(lr=0.05, lambd=0.02, alpha=0.6, t0=10.0, weight_decay=0.05), SHAPES),
    ("asgd", dict(lr=_sched, lambd=0.5, t0=3.0, maximize=True), SHAPES),
    ("muon", {}, MATRICES),
    ("muon", dict(lr=0.05, nesterov=False, weight_decay=0.0, momentum=0.8), MATRICES),
    ("muon", dict(lr=_sched, adjust_lr_fn="match_rms_adamw", ns_steps=3), MATRICES),
    ("muon", dict(ns_coefficients=(2.0, -1.5, 0.5), eps=1e-3, adjust_lr_fn="original"), MATRICES),
]
REFS = {"adafactor": ref_adafactor, "rprop": ref_rprop, "asgd": ref_asgd, "muon": ref_muon}
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


@pytest.fixture(scope="module")
def float64_runs():
    out = {}
    for shapes in (SHAPES, MATRICES):
        idx = [i for i, c in enumerate(CASES) if c[2] is shapes]
        params, grads = _data(shapes)
        opts = [getattr(fdl.optim, CASES[i][0])(**CASES[i][1]) for i in idx]
        for i, res in zip(idx, run_jax(opts, params, grads), strict=True):
            out[i] = (params, grads, res)
    return out


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_matches_pytorch_algorithm_float64(index, float64_runs):
    name, hp, _ = CASES[index]
    params, grads, (traj, state) = float64_runs[index]
    expected, ref_states = run_numpy(REFS[name], params, grads, **hp)
    for got, want in zip(traj, expected, strict=True):
        assert_close(got, want, rtol=1e-9, atol=1e-11, err_msg=f"{name} {hp}")
    if name == "asgd":
        avg = fdl.optim.averaged_params(state)
        assert_close(avg, [st["ax"] for st in ref_states], rtol=1e-9, atol=1e-11)


def test_muon_matches_optax_contrib_muon():
    """Without Nesterov the bias correction of optax only rescales the momentum, which the
    Newton–Schulz normalisation removes: the same updates (to eps and float32 rounding)."""
    params, grads = _data(MATRICES, steps=20, seed=1)
    params = [jnp.asarray(p, jnp.float32) for p in params]
    grads = [jnp.asarray(g, jnp.float32) for g in grads]
    ours = fdl.optim.muon(0.02, weight_decay=0.1, nesterov=False, eps=1e-12)
    ref = optax.contrib.muon(0.02, beta=0.95, eps=1e-12, weight_decay=0.1, nesterov=False)
    a, b = jax.jit(lambda p, g: [_trajectory(o, p, g)[0] for o in (ours, ref)])(params, grads)
    assert_close(a, b, rtol=2e-4, atol=2e-5)


def test_muon_rejects_non_matrix_leaves_naming_them():
    opt = fdl.optim.muon()
    with pytest.raises(ValueError, match="'blocks/1/b'"):
        opt.init({"blocks": [{"w": jnp.zeros((2, 2))}, {"b": jnp.zeros(3)}]})


def test_orthogonalize_gives_near_orthogonal_factor():
    x = jax.random.normal(jax.random.key(0), (32, 16))
    o = fdl.optim.orthogonalize(x, ns_steps=10)
    s = jnp.linalg.svd(o, compute_uv=False)
    assert float(s.min()) > 0.6 and float(s.max()) < 1.25
    u, _, vt = jnp.linalg.svd(x, full_matrices=False)
    assert float(jnp.sum(o * (u @ vt)) / jnp.sum((u @ vt) ** 2)) > 0.8


# --- convergence ----------------------------------------------------------------------
def rosenbrock(p):
    return (1 - p["x"]) ** 2 + 100 * (p["y"] - p["x"] ** 2) ** 2


def _run(opt, f, p0, steps):
    def body(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(f)(p), s, p)
        return (fdl.optim.apply_updates(p, u), s), None

    return jax.lax.scan(body, (p0, opt.init(p0)), None, length=steps)[0][0]


def test_converge_on_rosenbrock():
    p0 = {"x": jnp.float32(-1.2), "y": jnp.float32(1.0)}
    opts = {
        "adafactor": fdl.optim.adafactor(optax.cosine_decay_schedule(0.05, 3000), eps=(None, 1.0)),
        "rprop": fdl.optim.rprop(1e-3),
        "asgd": fdl.optim.asgd(2e-3, lambd=0.0),
    }
    out = jax.jit(lambda: {k: rosenbrock(_run(o, rosenbrock, p0, 3000)) for k, o in opts.items()})()
    for k, v in out.items():
        assert float(v) < 1e-2, f"{k}: Rosenbrock loss {float(v)} (start 24.2)"


def _mlp_problem():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (128, 8))
    y = jnp.sin(x @ jax.random.normal(k2, (8, 1)))
    p = {
        "l1": {"w": 0.5 * jax.random.normal(k3, (8, 32)), "b": jnp.zeros(32)},
        "l2": {"w": 0.1 * jax.random.normal(k1, (32, 1)), "b": jnp.zeros(1)},
    }

    def loss(p):
        h = jnp.tanh(x @ p["l1"]["w"] + p["l1"]["b"][None, :])
        return jnp.mean((h @ p["l2"]["w"] + p["l2"]["b"][None, :] - y) ** 2)

    return p, loss


def test_converge_on_small_mlp():
    p0, loss = _mlp_problem()
    adamw = fdl.optim.adamw(1e-2, weight_decay=0.0)
    opts = {
        "adafactor": fdl.optim.adafactor(0.05),
        "rprop": fdl.optim.rprop(1e-3),
        "asgd": fdl.optim.asgd(0.2),
        "muon": fdl.optim.param_groups({r".*/w": fdl.optim.muon(0.02, weight_decay=0.0)}, adamw),
    }
    start = float(loss(p0))
    out = jax.jit(lambda: {k: loss(_run(o, loss, p0, 500)) for k, o in opts.items()})()
    for k, v in out.items():
        assert float(v) < 0.1 * start, f"{k}: MLP loss {float(v)} (start {start})"


# --- param_groups ---------------------------------------------------------------------
def test_param_groups_match_per_group_optimizers():
    params = {
        "enc": {"w": jnp.ones((3, 4)), "b": jnp.ones(4)},
        "norm": {"scale": jnp.ones(4)},
        "head": [{"w": jnp.ones((4, 2))}],
    }
    grads = jax.tree.map(lambda p: jnp.linspace(-1.0, 1.0, p.size).reshape(p.shape), params)
    sched = fdl.schedules.exponential_lr(0.1, gamma=0.5)
    opt = fdl.optim.param_groups(
        {
            r".*/b|norm/.*": {"weight_decay": 0.0},
            r"head/\d+/w": {"lr": sched, "betas": (0.8, 0.9)},
            r"enc/w": fdl.optim.muon(0.05),
        },
        fdl.optim.adamw(1e-2, weight_decay=0.5),
    )
    refs = {
        ("enc", "b"): fdl.optim.adamw(1e-2, weight_decay=0.0),
        ("norm", "scale"): fdl.optim.adamw(1e-2, weight_decay=0.0),
        ("head", 0, "w"): fdl.optim.adamw(sched, betas=(0.8, 0.9), weight_decay=0.5),
        ("enc", "w"): fdl.optim.muon(0.05),
    }

    def get(tree, path):
        for k in path:
            tree = tree[k]
        return tree

    @jax.jit
    def run(params, grads):
        s, ref_s = opt.init(params), {k: o.init(get(params, k)) for k, o in refs.items()}
        out = []
        for _ in range(3):
            u, s = opt.update(grads, s, params)
            ref_u = {}
            for k, o in refs.items():
                ref_u[k], ref_s[k] = o.update(get(grads, k), ref_s[k], get(params, k))
            out.append((u, ref_u))
            params = fdl.optim.apply_updates(params, u)
        return out

    for u, ref_u in run(params, grads):
        for k, r in ref_u.items():
            assert_close(get(u, k), r, err_msg=str(k))
        assert float(jnp.abs(u["enc"]["b"] - ref_u[("enc", "b")]).max()) == 0.0


def test_param_groups_two_matches_raise_naming_the_leaf():
    opt = fdl.optim.param_groups({r".*w": {"lr": 0.0}, r"enc/.*": {"lr": 1.0}}, fdl.optim.sgd(0.1))
    with pytest.raises(ValueError, match="'enc/w'"):
        opt.init({"enc": {"w": jnp.ones(2)}})


def test_param_groups_bad_groups():
    with pytest.raises(ValueError, match="nosuch"):
        fdl.optim.param_groups({"a": {"nosuch": 1.0}}, fdl.optim.sgd(0.1))
    with pytest.raises(TypeError, match="default"):
        fdl.optim.param_groups({"a": {"lr": 1.0}}, optax.sgd(0.1))
    with pytest.raises(ValueError, match="regex"):
        fdl.optim.param_groups({"(": {"lr": 1.0}}, fdl.optim.sgd(0.1))


# --- accumulate -----------------------------------------------------------------------
def test_accumulate_equals_big_batch_step_with_a_schedule_counting_updates():
    p0, _ = _mlp_problem()
    k = 4
    x = jax.random.normal(jax.random.key(1), (k * 8, 8))
    y = jnp.cos(x[:, :1])

    def loss(p, x, y):
        h = jnp.tanh(x @ p["l1"]["w"] + p["l1"]["b"][None, :])
        return jnp.mean((h @ p["l2"]["w"] + p["l2"]["b"][None, :] - y) ** 2)

    sched = fdl.schedules.step_lr(1e-2, step_size=1, gamma=0.5)
    big, acc = fdl.optim.adam(sched), fdl.optim.accumulate(fdl.optim.adam(sched), every_k=k)

    @jax.jit
    def run(p0):
        pb, sb = p0, big.init(p0)
        pa, sa = p0, acc.init(p0)
        outs = []
        for _ in range(3):
            u, sb = big.update(jax.grad(loss)(pb, x, y), sb, pb)
            pb = fdl.optim.apply_updates(pb, u)
            for i in range(k):
                sl = slice(i * 8, (i + 1) * 8)
                u, sa = acc.update(jax.grad(loss)(pa, x[sl], y[sl]), sa, pa)
                if i < k - 1:
                    outs.append(u)
                pa = fdl.optim.apply_updates(pa, u)
            outs.append((pa, pb))
        return outs

    for item in run(p0):
        if isinstance(item, tuple):
            assert_close(item[0], item[1], rtol=1e-5, atol=1e-7)
        else:
            assert all(float(jnp.abs(v).max()) == 0.0 for v in jax.tree.leaves(item))


def test_accumulate_k1_is_the_optimizer_and_bad_k_raises():
    p = {"w": jnp.arange(3.0)}
    opt, acc = fdl.optim.adam(0.1), fdl.optim.accumulate(fdl.optim.adam(0.1), 1)
    assert_close(acc.update(p, acc.init(p), p)[0], opt.update(p, opt.init(p), p)[0])
    with pytest.raises(ValueError, match="every_k"):
        fdl.optim.accumulate(opt, 0)


# --- weight averaging ------------------------------------------------------------------
def test_ema_and_swa_match_closed_form_averages():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(10, 3)).astype(np.float32)
    decay = 0.7
    chains = [optax.chain(fdl.optim.sgd(0.1), t) for t in (fdl.optim.ema(decay), fdl.optim.swa())]

    @jax.jit
    def run(g):
        return [_trajectory(c, jnp.zeros(3), g) for c in chains]

    (traj_e, s_e), (traj_s, s_s) = run(jnp.asarray(grads))
    traj = np.asarray(traj_e, np.float64)
    n = len(traj)
    # closed forms: θ̄ = Σ w_i θ_i with w_1 = decay^(n-1), w_i = (1-decay)·decay^(n-i)
    w = np.array([(1 - decay) * decay ** (n - i) for i in range(1, n + 1)])
    w[0] = decay ** (n - 1)
    assert_close(fdl.optim.averaged_params(s_e), w @ traj, rtol=1e-5, atol=1e-6)
    assert_close(fdl.optim.averaged_params(s_s), traj.mean(0), rtol=1e-5, atol=1e-6)
    assert_close(traj_s, traj_e)  # updates pass through unchanged


def test_averaged_params_errors_and_ema_bad_decay():
    with pytest.raises(ValueError, match="exactly one"):
        fdl.optim.averaged_params(fdl.optim.sgd(0.1).init({"w": jnp.ones(1)}))
    with pytest.raises(ValueError, match="decay"):
        fdl.optim.ema(1.5)


# --- hyperparameters, retracing ----------------------------------------------------------
BAD = [
    ("adafactor", dict(lr=-1.0), "lr"),
    ("adafactor", dict(beta2_decay=0.5), "beta2_decay"),
    ("adafactor", dict(eps=(None, -1.0)), "eps"),
    ("adafactor", dict(d=0.0), "d"),
    ("adafactor", dict(weight_decay=-0.1), "weight_decay"),
    ("rprop", dict(lr=-1.0), "lr"),
    ("rprop", dict(etas=(1.5, 1.2)), "etas"),
    ("rprop", dict(step_sizes=(1.0, 0.1)), "step_sizes"),
    ("asgd", dict(lambd=-1.0), "lambd"),
    ("asgd", dict(alpha=-1.0), "alpha"),
    ("asgd", dict(weight_decay=-1.0), "weight_decay"),
    ("muon", dict(lr=-1.0), "lr"),
    ("muon", dict(momentum=-0.5), "momentum"),
    ("muon", dict(weight_decay=-0.1), "weight_decay"),
    ("muon", dict(ns_steps=100), "ns_steps"),
    ("muon", dict(ns_coefficients=(1.0, 2.0)), "ns_coefficients"),
    ("muon", dict(adjust_lr_fn="nope"), "adjust_lr_fn"),
]


@pytest.mark.parametrize("name,kwargs,arg", BAD, ids=[f"{n}-{a}" for n, _, a in BAD])
def test_bad_hyperparameters_raise_naming_the_argument(name, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        getattr(fdl.optim, name)(**kwargs)


def test_no_recompile_on_second_step():
    params = {"w": jnp.ones((4, 3)), "b": jnp.ones(3)}
    opts = [
        fdl.optim.adafactor(_sched),
        fdl.optim.rprop(),
        fdl.optim.asgd(_sched),
        fdl.optim.param_groups({"w": fdl.optim.muon(_sched)}, fdl.optim.adamw(1e-3)),
        fdl.optim.accumulate(fdl.optim.adam(_sched), 3),
        optax.chain(fdl.optim.sgd(0.1), fdl.optim.ema(0.9)),
    ]
    for opt in opts:
        traces = []

        @jax.jit
        def step(p, s, opt=opt, traces=traces):
            traces.append(1)
            u, s = opt.update(p, s, p)
            return fdl.optim.apply_updates(p, u), s

        p, s = params, opt.init(params)
        for _ in range(3):
            p, s = step(p, s)
        assert len(traces) == 1


def test_bfloat16_params_keep_their_dtype_and_float32_state():
    params = {"w": jnp.ones((4, 3), jnp.bfloat16)}
    grads = {"w": jnp.full((4, 3), 0.5, jnp.bfloat16)}
    for name in ("adafactor", "rprop", "asgd", "muon"):
        opt = getattr(fdl.optim, name)()
        state = opt.init(params)
        u, state = opt.update(grads, state, params)
        p = fdl.optim.apply_updates(params, u)
        assert p["w"].dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(p["w"]))), name
        floats = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert all(x.dtype == jnp.float32 for x in floats), name
