"""fdl.optim against independent references: PyTorch's documented algorithms written here
in NumPy (float64, 50 steps of random gradients) and optax where the rule is the same
(float32, 100 steps)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl
import functional_dl.schedules as S
from tests.helpers import assert_close, tol

SHAPES = [(3, 4), (5,)]
STEPS = 50


def _data(steps, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [rng.normal(size=(steps,) + s).astype(dtype) for s in SHAPES]
    return params, grads


def trajectory(opt, params, grads):
    """Parameters after each step (stacked) under ``opt`` fed ``grads[t]`` (traceable)."""

    def body(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        p = fdl.optim.apply_updates(p, u)
        return (p, s), p

    return jax.lax.scan(body, (params, opt.init(params)), grads)[1]


def run_all(opts, params, grads):
    """Trajectories of several optimizers from one compilation (compiles dominate here)."""
    as_jnp = lambda tree: jax.tree.map(jnp.asarray, tree)  # noqa: E731
    fn = jax.jit(lambda p, g: [trajectory(o, p, g) for o in opts])
    return jax.device_get(fn(as_jnp(params), as_jnp(grads)))


def run_numpy(step, params, grads, **hp):
    """Trajectory of the NumPy reference ``step(t, p, g, state, **hp) -> p`` (t from 1)."""
    out = []
    for p0, gs in zip(params, grads, strict=True):
        p, state, traj = p0.copy(), {}, []
        for t in range(1, len(gs) + 1):
            p = step(t, p, gs[t - 1].copy(), state, **hp)
            traj.append(p)
        out.append(np.stack(traj))
    return out


def _hp(h, t):
    """A hyperparameter at 1-based step t (schedules take the 0-based step)."""
    return float(h(t - 1)) if callable(h) else h


# --- PyTorch's algorithms, transcribed from the torch.optim documentation -------------
# ``maximize`` negates the gradient first, as the implementations of torch.optim do.
def ref_sgd(
    t, p, g, st, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
):
    lr, mu = _hp(lr, t), _hp(momentum, t)
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if callable(momentum) or momentum:
        st["b"] = g if t == 1 else mu * st["b"] + (1 - dampening) * g
        g = g + mu * st["b"] if nesterov else st["b"]
    return p - lr * g


def ref_adam(
    t,
    p,
    g,
    st,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    lr, b1, b2 = _hp(lr, t), _hp(betas[0], t), _hp(betas[1], t)
    g = -g if maximize else g
    if decoupled:
        p = p - lr * weight_decay * p
    elif weight_decay:
        g = g + weight_decay * p
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    m_hat = st["m"] / (1 - b1**t)
    if amsgrad:
        st["vmax"] = np.maximum(st.get("vmax", 0.0), st["v"])
        v_hat = st["vmax"] / (1 - b2**t)
    else:
        v_hat = st["v"] / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_adamw(t, p, g, st, weight_decay=1e-2, **hp):
    return ref_adam(t, p, g, st, weight_decay=weight_decay, decoupled=True, **hp)


def ref_rmsprop(
    t,
    p,
    g,
    st,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    st["v"] = alpha * st.get("v", 0.0) + (1 - alpha) * g * g
    v = st["v"]
    if centered:
        st["g_ave"] = alpha * st.get("g_ave", 0.0) + (1 - alpha) * g
        v = v - st["g_ave"] ** 2
    if momentum > 0:
        st["b"] = momentum * st.get("b", 0.0) + g / (np.sqrt(v) + eps)
        return p - _hp(lr, t) * st["b"]
    return p - _hp(lr, t) * g / (np.sqrt(v) + eps)


def ref_adagrad(
    t,
    p,
    g,
    st,
    lr=1e-2,
    lr_decay=0.0,
    weight_decay=0.0,
    initial_accumulator_value=0.0,
    eps=1e-10,
    maximize=False,
):
    g = -g if maximize else g
    clr = _hp(lr, t) / (1 + (t - 1) * lr_decay)
    if weight_decay:
        g = g + weight_decay * p
    st["sum"] = st.get("sum", initial_accumulator_value) + g * g
    return p - clr * g / (np.sqrt(st["sum"]) + eps)


def ref_adadelta(t, p, g, st, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    st["v"] = rho * st.get("v", 0.0) + (1 - rho) * g * g
    dx = np.sqrt(st.get("u", 0.0) + eps) / np.sqrt(st["v"] + eps) * g
    st["u"] = rho * st.get("u", 0.0) + (1 - rho) * dx * dx
    return p - _hp(lr, t) * dx


def ref_adamax(
    t, p, g, st, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False
):
    b1, b2 = betas
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["u"] = np.maximum(b2 * st.get("u", 0.0), np.abs(g) + eps)
    return p - _hp(lr, t) * st["m"] / ((1 - b1**t) * st["u"])


def ref_nadam(
    t,
    p,
    g,
    st,
    lr=2e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay=False,
    maximize=False,
):
    lr, b1, b2 = _hp(lr, t), _hp(betas[0], t), betas[1]
    g = -g if maximize else g
    if weight_decay and decoupled_weight_decay:
        p = p - lr * weight_decay * p
    elif weight_decay:
        g = g + weight_decay * p
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    st["prod"] = st.get("prod", 1.0) * mu
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    m_hat = mu_next * st["m"] / (1 - st["prod"] * mu_next) + (1 - mu) * g / (1 - st["prod"])
    v_hat = st["v"] / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_radam(
    t,
    p,
    g,
    st,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
):
    b1, b2 = betas
    lr = _hp(lr, t)
    g = -g if maximize else g
    if weight_decay and decoupled_weight_decay:
        p = p - lr * weight_decay * p
    elif weight_decay:
        g = g + weight_decay * p
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    m_hat = st["m"] / (1 - b1**t)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho_t > 5:
        l_t = np.sqrt(1 - b2**t) / (np.sqrt(st["v"]) + eps)
        r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - lr * m_hat * r_t * l_t
    return p - lr * m_hat


def ref_lion(t, p, g, st, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):
    """Lion, Algorithm 2 of Chen et al. (2023)."""
    b1, b2 = betas
    lr = _hp(lr, t)
    g = -g if maximize else g
    m = st.get("m", 0.0)
    c = b1 * m + (1 - b1) * g
    p = p - lr * (np.sign(c) + weight_decay * p)
    st["m"] = b2 * m + (1 - b2) * g
    return p


def cyc(lo, hi, period=7):
    """A momentum-like schedule (triangle wave), jit-able and NumPy-evaluable."""
    return lambda s: lo + (hi - lo) * abs((s % period) * (2.0 / (period - 1)) - 1)


def lr_sched(base):
    return lambda s: base * 0.97**s


CASES = [
    ("sgd", ref_sgd, dict(lr=0.1)),
    ("sgd", ref_sgd, dict(lr=0.1, momentum=0.9)),
    ("sgd", ref_sgd, dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("sgd", ref_sgd, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd", ref_sgd, dict(lr=0.1, weight_decay=0.1)),
    ("sgd", ref_sgd, dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True, maximize=True)),
    ("sgd", ref_sgd, dict(lr=0.1, momentum=0.5, dampening=0.1, weight_decay=0.1, maximize=True)),
    ("sgd", ref_sgd, dict(lr=lr_sched(0.1), momentum=cyc(0.85, 0.95))),
    ("sgd", ref_sgd, dict(lr=0.05, momentum=cyc(0.8, 0.95), nesterov=True, dampening=0.0)),
    ("adam", ref_adam, dict()),
    ("adam", ref_adam, dict(lr=1e-2, amsgrad=True)),
    ("adam", ref_adam, dict(lr=1e-2, weight_decay=0.1)),
    (
        "adam",
        ref_adam,
        dict(lr=1e-2, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1, amsgrad=True, maximize=True),
    ),
    ("adam", ref_adam, dict(lr=lr_sched(1e-2), betas=(cyc(0.85, 0.95), 0.99))),
    (
        "adam",
        ref_adam,
        dict(
            lr=S.one_cycle_lr(1e-2, total_steps=STEPS),
            betas=(S.one_cycle_momentum(1e-2, total_steps=STEPS), 0.999),
        ),
    ),
    ("adamw", ref_adamw, dict()),
    ("adamw", ref_adamw, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("adamw", ref_adamw, dict(lr=lr_sched(1e-2), betas=(cyc(0.85, 0.95), 0.999), maximize=True)),
    ("rmsprop", ref_rmsprop, dict()),
    ("rmsprop", ref_rmsprop, dict(centered=True)),
    ("rmsprop", ref_rmsprop, dict(momentum=0.9)),
    ("rmsprop", ref_rmsprop, dict(lr=1e-3, centered=True, momentum=0.9, weight_decay=0.1)),
    ("rmsprop", ref_rmsprop, dict(alpha=0.9, eps=1e-3, maximize=True)),
    ("adagrad", ref_adagrad, dict()),
    ("adagrad", ref_adagrad, dict(lr=0.1, lr_decay=0.05)),
    ("adagrad", ref_adagrad, dict(initial_accumulator_value=0.1, weight_decay=0.1)),
    ("adagrad", ref_adagrad, dict(lr=lr_sched(0.1), lr_decay=0.01, eps=1e-3, maximize=True)),
    ("adadelta", ref_adadelta, dict()),
    ("adadelta", ref_adadelta, dict(lr=0.5, rho=0.5, weight_decay=0.1, maximize=True)),
    ("adamax", ref_adamax, dict()),
    ("adamax", ref_adamax, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("nadam", ref_nadam, dict()),
    ("nadam", ref_nadam, dict(weight_decay=0.1, momentum_decay=0.01)),
    ("nadam", ref_nadam, dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("nadam", ref_nadam, dict(lr=lr_sched(1e-2), betas=(cyc(0.85, 0.95), 0.999))),
    ("radam", ref_radam, dict()),
    ("radam", ref_radam, dict(betas=(0.8, 0.99), weight_decay=0.1)),
    (
        "radam",
        ref_radam,
        dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
    ),
    ("lion", ref_lion, dict()),
    ("lion", ref_lion, dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1, maximize=True)),
]


def _case_id(case):
    name, _, hp = case
    show = lambda v: "sched" if callable(v) else v  # noqa: E731
    parts = [
        f"{k}={tuple(map(show, v)) if isinstance(v, tuple) else show(v)}" for k, v in hp.items()
    ]
    return f"{name}({','.join(parts)})"


@pytest.fixture(scope="module")
def float64_runs():
    params, grads = _data(STEPS, seed=0)
    with jax.enable_x64(True):
        return run_all([getattr(fdl.optim, name)(**hp) for name, _, hp in CASES], params, grads)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[_case_id(c) for c in CASES])
def test_matches_pytorch_algorithm_float64(index, float64_runs):
    name, ref, hp = CASES[index]
    params, grads = _data(STEPS, seed=0)
    ours = float64_runs[index]
    assert all(o.dtype == np.float64 for o in ours)
    with jax.enable_x64(True):  # schedules evaluated in the same precision as ours
        expected = run_numpy(ref, params, grads, **hp)
    assert_close(ours, expected, **tol(np.float64))


FLOAT32_NAMES = [
    "sgd",
    "adam",
    "adamw",
    "rmsprop",
    "adagrad",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "lion",
]


def _defaults(name):
    return dict(lr=0.05) if name == "sgd" else {}


@pytest.fixture(scope="module")
def float32_runs():
    params, grads = _data(STEPS, seed=7, dtype=np.float32)
    opts = [getattr(fdl.optim, name)(**_defaults(name)) for name in FLOAT32_NAMES]
    return run_all(opts, params, grads)


@pytest.mark.parametrize("index", range(len(FLOAT32_NAMES)), ids=FLOAT32_NAMES)
def test_matches_pytorch_algorithm_float32(index, float32_runs):
    """float32 parameters and moments against the float64 reference, defaults."""
    name = FLOAT32_NAMES[index]
    params, grads = _data(STEPS, seed=7)
    expected = run_numpy(globals()[f"ref_{name}"], params, grads, **_defaults(name))
    ours = float32_runs[index]
    assert all(o.dtype == np.float32 for o in ours)
    assert_close(ours, expected, **tol(np.float32))


# --- optax where the rule is the same (100 steps, float32) ---------------------------------
OPTAX_CASES = [
    ("adam", lambda: fdl.optim.adam(1e-2), lambda: optax.adam(1e-2)),
    (
        "adam-betas",
        lambda: fdl.optim.adam(3e-3, betas=(0.8, 0.99), eps=1e-6),
        lambda: optax.adam(3e-3, b1=0.8, b2=0.99, eps=1e-6),
    ),
    (
        "adam-schedule",
        lambda: fdl.optim.adam(optax.cosine_decay_schedule(1e-2, 100)),
        lambda: optax.adam(optax.cosine_decay_schedule(1e-2, 100)),
    ),
    (
        "adamw",
        lambda: fdl.optim.adamw(1e-2, weight_decay=0.1),
        lambda: optax.adamw(1e-2, weight_decay=0.1),
    ),
    (
        "adamw-mask",
        lambda: fdl.optim.adamw(1e-2, weight_decay=0.1, mask=[True, False]),
        lambda: optax.adamw(1e-2, weight_decay=0.1, mask=[True, False]),
    ),
    ("sgd", lambda: fdl.optim.sgd(0.05), lambda: optax.sgd(0.05)),
    (
        "sgd-momentum",
        lambda: fdl.optim.sgd(0.05, momentum=0.9),
        lambda: optax.sgd(0.05, momentum=0.9),
    ),
    (
        "sgd-nesterov",
        lambda: fdl.optim.sgd(0.05, momentum=0.9, nesterov=True),
        lambda: optax.sgd(0.05, momentum=0.9, nesterov=True),
    ),
    (
        "rmsprop",
        lambda: fdl.optim.rmsprop(1e-3, alpha=0.9),
        lambda: optax.rmsprop(1e-3, decay=0.9, eps_in_sqrt=False),
    ),
    (
        "rmsprop-centered-momentum",
        lambda: fdl.optim.rmsprop(1e-3, alpha=0.9, centered=True, momentum=0.9),
        lambda: optax.rmsprop(1e-3, decay=0.9, eps_in_sqrt=False, centered=True, momentum=0.9),
    ),
    (
        "adagrad",
        lambda: fdl.optim.adagrad(0.1, initial_accumulator_value=0.1, eps=0.0),
        lambda: optax.adagrad(0.1, initial_accumulator_value=0.1, eps=0.0),
    ),
    ("adamax", lambda: fdl.optim.adamax(), lambda: optax.adamax(2e-3)),
    ("adadelta", lambda: fdl.optim.adadelta(), lambda: optax.adadelta(1.0)),
    (
        "lion",
        lambda: fdl.optim.lion(1e-3, weight_decay=0.1),
        lambda: optax.lion(1e-3, weight_decay=0.1),
    ),
]


@pytest.fixture(scope="module")
def optax_runs():
    params, grads = _data(100, seed=3, dtype=np.float32)
    return run_all([make() for _, a, b in OPTAX_CASES for make in (a, b)], params, grads)


@pytest.mark.parametrize("index", range(len(OPTAX_CASES)), ids=[c[0] for c in OPTAX_CASES])
def test_matches_optax_100_steps(index, optax_runs):
    ours, theirs = optax_runs[2 * index], optax_runs[2 * index + 1]
    assert_close(ours, theirs, **tol(np.float32))


CLIP_TREE = {
    "a": np.random.default_rng(0).normal(size=(4, 5)) * 3,
    "b": np.random.default_rng(1).normal(size=(7,)),
}
MAX_NORMS = (0.5, 1.0, 100.0)


@pytest.fixture(scope="module")
def clip_results():
    """Everything the clipping tests look at, from one compilation."""

    @jax.jit
    def go(tree):
        empty = optax.EmptyState()
        return {
            "ours": [fdl.optim.clip_grad_norm(m).update(tree, empty)[0] for m in MAX_NORMS],
            "optax": [optax.clip_by_global_norm(m).update(tree, empty)[0] for m in MAX_NORMS],
            "inf": fdl.optim.clip_grad_norm(3.5, norm_type=np.inf).update(tree, empty)[0],
            "norms": {p: fdl.optim.global_norm(tree, norm_type=p) for p in (1.0, 2.0, 3.0, np.inf)},
            "optax_norm": optax.tree.norm(tree),
            "value": fdl.optim.clip_grad_value(0.5).update(tree, empty)[0],
            "optax_value": optax.clip(0.5).update(tree, empty)[0],
        }

    return jax.device_get(go(jax.tree.map(jnp.asarray, CLIP_TREE)))


def test_clip_grad_norm_matches_pytorch_formula_and_optax(clip_results):
    total = np.sqrt(sum((x**2).sum() for x in CLIP_TREE.values()))
    for i, max_norm in enumerate(MAX_NORMS):
        coef = min(max_norm / (total + 1e-6), 1.0)  # torch.nn.utils.clip_grad_norm_
        assert_close(clip_results["ours"][i], {k: v * coef for k, v in CLIP_TREE.items()})
        assert_close(clip_results["ours"][i], clip_results["optax"][i])


def test_global_norm_p_and_inf(clip_results):
    flat = np.abs(np.concatenate([x.ravel() for x in CLIP_TREE.values()]))
    for p, value in clip_results["norms"].items():
        expected = flat.max() if np.isinf(p) else (flat**p).sum() ** (1 / p)
        assert_close(value, expected, err_msg=f"norm_type={p}")
    assert_close(clip_results["norms"][2.0], clip_results["optax_norm"])
    coef = 3.5 / (flat.max() + 1e-6)
    assert_close(clip_results["inf"], {k: v * coef for k, v in CLIP_TREE.items()})


def test_clip_grad_value_matches_optax(clip_results):
    assert_close(clip_results["value"], clip_results["optax_value"])
    assert_close(clip_results["value"], {k: np.clip(v, -0.5, 0.5) for k, v in CLIP_TREE.items()})
