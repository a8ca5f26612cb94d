"""fdl.schedules against step-by-step re-implementations of PyTorch's schedulers.

The references below follow PyTorch's ``torch.optim.lr_scheduler`` source: the
constructor performs one ``step()`` (epoch 0) and each ``step()`` applies the
*chainable* (recursive) ``get_lr`` to the group's current ``lr``, in Python floats.
``schedule(k)`` must equal ``get_last_lr()`` after ``k`` steps.

Precision: the references are float64; the schedules are compared in float64
(``jax.enable_x64``) at ``rtol=1e-6`` for every step, and in float32 at the float32
tolerance of ``tests/helpers.py`` (a float32 rate has ~6e-8 resolution, and
``gamma**k`` accumulates the rounding of ``gamma``, so 1e-6 is not a float32 contract).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl.schedules as S
from tests.helpers import TraceCounter, assert_close, assert_eager_jit_vmap, tol

RTOL64 = dict(rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------------------
# PyTorch's schedulers, step by step (reference)
# --------------------------------------------------------------------------------------
class RefScheduler:
    """LRScheduler's protocol on one param group (a dict): init performs step()."""

    def __init__(self, group):
        self.group = group
        group.setdefault("initial_lr", group["lr"])
        self.base_lr = group["initial_lr"]
        self.last_epoch = -1
        self.step()

    def step(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            lr = self.get_lr()
        else:  # SequentialLR restarts a scheduler with step(0): closed form if it has one
            self.last_epoch = epoch
            lr = self.closed_form() if hasattr(self, "closed_form") else self.get_lr()
        self.group["lr"] = lr


class RefStepLR(RefScheduler):
    def __init__(self, group, step_size, gamma=0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(group)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.group["lr"]
        return self.group["lr"] * self.gamma


class RefMultiStepLR(RefScheduler):
    def __init__(self, group, milestones, gamma=0.1):
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(group)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self.group["lr"]
        return self.group["lr"] * self.gamma ** self.milestones[self.last_epoch]


class RefExponentialLR(RefScheduler):
    def __init__(self, group, gamma):
        self.gamma = gamma
        super().__init__(group)

    def get_lr(self):
        return self.group["lr"] if self.last_epoch == 0 else self.group["lr"] * self.gamma

    def closed_form(self):
        return self.base_lr * self.gamma**self.last_epoch


class RefLinearLR(RefScheduler):
    def __init__(self, group, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.s, self.e, self.T = start_factor, end_factor, total_iters
        super().__init__(group)

    def get_lr(self):
        lr, k = self.group["lr"], self.last_epoch
        if k == 0:
            return lr * self.s
        if k > self.T:
            return lr
        return lr * (1.0 + (self.e - self.s) / (self.T * self.s + (k - 1) * (self.e - self.s)))

    def closed_form(self):
        return self.base_lr * (self.s + (self.e - self.s) * min(self.T, self.last_epoch) / self.T)


class RefCosineAnnealingLR(RefScheduler):
    def __init__(self, group, T_max, eta_min=0.0):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(group)

    def get_lr(self):
        lr, k, T, eta = self.group["lr"], self.last_epoch, self.T_max, self.eta_min
        if k == 0:
            return lr
        if (k - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lr - eta) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * k / T)) / (1 + math.cos(math.pi * (k - 1) / T)) * (
            lr - eta
        ) + eta

    def closed_form(self):
        return (
            self.eta_min
            + (self.base_lr - self.eta_min)
            * (1 + math.cos(math.pi * self.last_epoch / self.T_max))
            / 2
        )


class RefWarmRestarts(RefScheduler):
    def __init__(self, group, T_0, T_mult=1, eta_min=0.0):
        self.T_0, self.T_i, self.T_mult, self.eta_min, self.T_cur = T_0, T_0, T_mult, eta_min, -1
        super().__init__(group)

    def get_lr(self):
        return (
            self.eta_min
            + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        )

    def step(self, epoch=None):
        assert epoch is None
        if self.last_epoch < 0:  # the constructor's step: epoch 0
            self.T_i, self.T_cur = self.T_0, 0
        else:
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        self.last_epoch += 1
        self.group["lr"] = self.get_lr()


class RefOneCycleLR(RefScheduler):
    def __init__(
        self,
        group,
        max_lr,
        total_steps,
        pct_start=0.3,
        anneal_strategy="cos",
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        base_momentum=0.85,
        max_momentum=0.95,
    ):
        T = self.total_steps = total_steps

        def ph(end, lr0, lr1, m0, m1):
            return dict(end_step=end, start_lr=lr0, end_lr=lr1, start_momentum=m0, end_momentum=m1)

        up = ph(float(pct_start * T) - 1, "initial_lr", "max_lr", "max_m", "base_m")
        if three_phase:
            self.phases = [
                up,
                ph(float(2 * pct_start * T) - 2, "max_lr", "initial_lr", "base_m", "max_m"),
                ph(T - 1, "initial_lr", "min_lr", "max_m", "max_m"),
            ]
        else:
            self.phases = [up, ph(T - 1, "max_lr", "min_lr", "base_m", "max_m")]
        self.anneal = self._cos if anneal_strategy == "cos" else self._linear
        group.update(
            initial_lr=max_lr / div_factor,
            max_lr=max_lr,
            momentum=max_momentum,
            max_m=max_momentum,
            base_m=base_momentum,
        )
        group["min_lr"] = group["initial_lr"] / final_div_factor
        super().__init__(group)

    @staticmethod
    def _cos(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    @staticmethod
    def _linear(start, end, pct):
        return (end - start) * pct + start

    def get_lr(self):
        g, k = self.group, self.last_epoch
        if k > self.total_steps:
            raise ValueError(f"Tried to step {k} times; total steps is {self.total_steps}")
        start = 0.0
        for i, p in enumerate(self.phases):
            if k <= p["end_step"] or i == len(self.phases) - 1:
                pct = (k - start) / (p["end_step"] - start)
                g["momentum"] = self.anneal(g[p["start_momentum"]], g[p["end_momentum"]], pct)
                return self.anneal(g[p["start_lr"]], g[p["end_lr"]], pct)
            start = p["end_step"]


class RefSequentialLR:
    def __init__(self, group, schedulers, milestones):
        self.schedulers, self.milestones = schedulers, milestones
        group["lr"] = group["initial_lr"]  # reset, undo the others' initial steps
        for s in schedulers:
            s.last_epoch -= 1
        schedulers[0].step()
        self.last_epoch = 0

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self.milestones, self.last_epoch)
        if idx > 0 and self.milestones[idx - 1] == self.last_epoch:
            self.schedulers[idx].step(0)
        else:
            self.schedulers[idx].step()


def torch_run(make, steps, lr=0.1, key="lr"):
    """``group[key]`` after 0, 1, ..., ``steps`` calls of ``scheduler.step()``."""
    group = {"lr": lr}
    sched = make(group)
    out = [group[key]]
    for _ in range(steps):
        sched.step()
        out.append(group[key])
    return np.asarray(out)


def make_sequential(group):
    warm = RefLinearLR(group, start_factor=0.1, total_iters=4)
    cos = RefCosineAnnealingLR(group, T_max=6, eta_min=0.01)
    decay = RefExponentialLR(group, gamma=0.8)
    return RefSequentialLR(group, [warm, cos, decay], milestones=[4, 13])


# --------------------------------------------------------------------------------------
# Cases: (ours, reference maker, steps, base lr of the reference group, group key)
# --------------------------------------------------------------------------------------
def _oc(**kw):
    lr_kw = {k: v for k, v in kw.items() if not k.endswith("_momentum")}
    return S.one_cycle_lr(0.1, **lr_kw), (lambda g: RefOneCycleLR(g, 0.1, **kw))


def _om(**kw):
    return S.one_cycle_momentum(0.1, **kw), (lambda g: RefOneCycleLR(g, 0.1, **kw))


ONE_CYCLE_KW = {
    "cos": dict(total_steps=100),
    "linear": dict(total_steps=100, anneal_strategy="linear"),
    "frac_boundary": dict(total_steps=10, pct_start=0.25),  # phase end 1.5
    "round_down": dict(total_steps=100, pct_start=0.29),  # 0.29*100-1 = 27.999999999999996
    "three_phase": dict(total_steps=50, three_phase=True, pct_start=0.35),
    "three_linear": dict(
        total_steps=31,
        three_phase=True,
        anneal_strategy="linear",
        div_factor=10.0,
        final_div_factor=100.0,
    ),
    "short": dict(total_steps=2, pct_start=0.3),  # phase 1 ends at -0.4: never reached
    "one_step": dict(total_steps=1),
    "momentum_custom": dict(total_steps=40, base_momentum=0.8, max_momentum=0.99),
}

CASES = {
    "step_lr": (S.step_lr(0.1, 3, gamma=0.5), lambda g: RefStepLR(g, 3, 0.5), 20),
    "step_lr_default_gamma": (S.step_lr(0.1, 1), lambda g: RefStepLR(g, 1), 8),
    "multi_step_lr": (
        S.multi_step_lr(0.1, [2, 5, 9], 0.3),
        lambda g: RefMultiStepLR(g, [2, 5, 9], 0.3),
        15,
    ),
    "multi_step_lr_at_0": (S.multi_step_lr(0.1, [0, 4]), lambda g: RefMultiStepLR(g, [0, 4]), 8),
    "exponential_lr": (S.exponential_lr(0.1, 0.95), lambda g: RefExponentialLR(g, 0.95), 60),
    "linear_lr_default": (S.linear_lr(0.1), lambda g: RefLinearLR(g), 10),
    "linear_lr_to_zero": (S.linear_lr(0.1, 1.0, 0.0, 7), lambda g: RefLinearLR(g, 1.0, 0.0, 7), 12),
    "linear_lr_zero_iters": (
        S.linear_lr(0.1, 0.5, 1.0, 0),
        lambda g: RefLinearLR(g, 0.5, 1.0, 0),
        5,
    ),
    "cosine": (S.cosine_annealing_lr(0.1, 10), lambda g: RefCosineAnnealingLR(g, 10), 65),
    "cosine_eta_min": (
        S.cosine_annealing_lr(0.1, 7, eta_min=1e-3),
        lambda g: RefCosineAnnealingLR(g, 7, 1e-3),
        60,
    ),
    "cosine_T1": (S.cosine_annealing_lr(0.1, 1), lambda g: RefCosineAnnealingLR(g, 1), 6),
    "cosine_eta_above_base": (
        S.cosine_annealing_lr(0.1, 5, eta_min=0.3),
        lambda g: RefCosineAnnealingLR(g, 5, 0.3),
        25,
    ),
    "warm_restarts": (
        S.cosine_annealing_warm_restarts(0.1, 5),
        lambda g: RefWarmRestarts(g, 5),
        23,
    ),
    "warm_restarts_mult2": (
        S.cosine_annealing_warm_restarts(0.1, 3, 2, eta_min=1e-3),
        lambda g: RefWarmRestarts(g, 3, 2, 1e-3),
        100,
    ),
    "warm_restarts_mult3": (
        S.cosine_annealing_warm_restarts(0.1, 1, 3),
        lambda g: RefWarmRestarts(g, 1, 3),
        45,
    ),
    "sequential_lr": (
        S.sequential_lr(
            [
                S.linear_lr(0.1, 0.1, total_iters=4),
                S.cosine_annealing_lr(0.1, 6, 0.01),
                S.exponential_lr(0.1, 0.8),
            ],
            [4, 13],
        ),
        make_sequential,
        25,
    ),
}
for _name, _kw in ONE_CYCLE_KW.items():
    _ours, _ref = _oc(**_kw)
    CASES[f"one_cycle_{_name}"] = (_ours, _ref, _kw["total_steps"])
    _ours, _ref = _om(**_kw)
    CASES[f"one_cycle_momentum_{_name}"] = (_ours, _ref, _kw["total_steps"], 0.1, "momentum")


def _case(name):
    ours, make, steps, *rest = CASES[name]
    lr, key = rest if rest else (0.1, "lr")
    return ours, torch_run(make, steps, lr, key)


@pytest.fixture(scope="module")
def evaluated():
    """Every case, ours and PyTorch's: ours in one jitted call per precision (one compile)."""
    cases = {name: _case(name) for name in CASES}

    def all_schedules(steps):
        return {name: cases[name][0](k) for name, k in steps.items()}

    out = {}
    for x64 in (False, True):
        with jax.enable_x64(x64):
            steps = {name: jnp.arange(len(ref)) for name, (_, ref) in cases.items()}
            out[x64] = jax.jit(all_schedules)(steps)
    return {name: (out[False][name], out[True][name], ref) for name, (_, ref) in cases.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pytorch(evaluated, name):
    got32, got64, expected = evaluated[name]
    assert got64.dtype == jnp.float64 and got64.shape == expected.shape
    np.testing.assert_allclose(np.asarray(got64), expected, **RTOL64)
    assert got32.dtype == jnp.float32
    assert_close(got32, expected, rtol=tol(np.float32)["rtol"], atol=1e-12)


def test_traced_step_eager_jit_vmap():
    sched, expected = _case("warm_restarts")
    k = len(expected) - 2
    assert_eager_jit_vmap(sched, jnp.asarray(k, jnp.int32))
    assert_close(jax.jit(sched)(jnp.asarray(k)), expected[k])


def test_jit_compiles_once_for_every_step():
    counter = TraceCounter(S.one_cycle_lr(0.1, total_steps=50))
    jitted = jax.jit(counter)
    for k in range(0, 60, 7):
        jitted(jnp.asarray(k, jnp.int32))
    assert counter.count == 1


def test_step_array_any_shape():
    sched = jax.jit(S.cosine_annealing_lr(1.0, 4))
    steps = jnp.arange(12)
    assert sched(steps.reshape(3, 4)).shape == (3, 4)
    assert_close(sched(steps.reshape(3, 4)), sched(steps).reshape(3, 4))


# --------------------------------------------------------------------------------------
# Past the end of the one cycle, and outside references
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [ONE_CYCLE_KW["cos"], ONE_CYCLE_KW["three_linear"]])
def test_one_cycle_clamps_past_total_steps(kw):
    T = kw["total_steps"]
    with pytest.raises(ValueError, match="Tried to step"):  # PyTorch raises there
        torch_run(lambda g: RefOneCycleLR(g, 0.1, **kw), T + 1)
    steps = jnp.arange(T + 1, T + 20)
    min_lr = 0.1 / kw.get("div_factor", 25.0) / kw.get("final_div_factor", 1e4)
    assert_close(jax.jit(S.one_cycle_lr(0.1, **kw))(steps), np.full(19, min_lr))
    assert_close(jax.jit(S.one_cycle_momentum(0.1, **kw))(steps), np.full(19, 0.95))


def test_one_cycle_linear_extrapolates_like_pytorch_at_total_steps():
    # PyTorch accepts step T, one past the last phase: linear goes below min_lr
    sched, expected = _case("one_cycle_linear")
    assert expected[-1] < 0 and expected[-2] == pytest.approx(4e-7)
    assert_close(jax.jit(sched)(100), expected[-1], **tol(np.float32))


def test_cosine_cycles_past_T_max():
    sched = jax.jit(S.cosine_annealing_lr(0.1, 10))
    with jax.enable_x64(True):
        k = jnp.arange(0, 200)
        np.testing.assert_allclose(sched(k), sched(k + 20), **RTOL64)  # period 2 T_max
        np.testing.assert_allclose(sched(k)[::10], np.tile([0.1, 0.0], 10), **RTOL64)


def test_warmup_cosine_matches_formula_and_optax():
    W, C, hi, lo = 5, 20, 0.1, 1e-3
    k = np.arange(40)
    progress = np.clip(k - W, 0, C) / C
    formula = np.where(k < W, hi * k / W, lo + (hi - lo) * (1 + np.cos(np.pi * progress)) / 2)
    ref = optax.warmup_cosine_decay_schedule(0.0, hi, W, W + C, end_value=lo)
    with jax.enable_x64(True):
        got = jax.jit(S.warmup_cosine(hi, lo, W, C))(jnp.arange(40))
        np.testing.assert_allclose(got, formula, **RTOL64)
        np.testing.assert_allclose(got, jax.jit(ref)(jnp.arange(40)), **RTOL64)
    no_warmup = jax.jit(S.warmup_cosine(hi, lo, 0, C))(jnp.arange(C + 1))
    assert_close(no_warmup, formula[W : W + C + 1])


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (S.step_lr(0.1, 4, 0.5), optax.exponential_decay(0.1, 4, 0.5, staircase=True)),
        (
            S.multi_step_lr(0.1, [3, 7], 0.2),
            optax.piecewise_constant_schedule(0.1, {3: 0.2, 7: 0.2}),
        ),
        (S.exponential_lr(0.1, 0.9), optax.exponential_decay(0.1, 1, 0.9)),
        (S.linear_lr(0.1, 0.25, 1.0, 6), optax.linear_schedule(0.025, 0.1, 6)),
        (
            S.join_schedules([S.linear_lr(0.1, 0.5, 1.0, 3), S.exponential_lr(0.1, 0.5)], [3]),
            optax.join_schedules(
                [optax.linear_schedule(0.05, 0.1, 3), optax.exponential_decay(0.1, 1, 0.5)], [3]
            ),
        ),
    ],
    ids=["step", "multi_step", "exponential", "linear", "join"],
)
def test_agrees_with_optax(ours, theirs):
    k = jnp.arange(20)
    assert_close(jax.jit(ours)(k), jax.jit(jax.vmap(theirs))(k))


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------
_dummy = S.exponential_lr(0.1, 0.9)
BAD = [
    (lambda: S.cosine_annealing_lr(0.1, T_max=0), ValueError, "T_max"),
    (lambda: S.cosine_annealing_lr(0.1, T_max=-3), ValueError, "T_max"),
    (lambda: S.cosine_annealing_lr(0.1, T_max=2.5), TypeError, "T_max"),
    (lambda: S.one_cycle_lr(0.1, total_steps=0), ValueError, "total_steps"),
    (lambda: S.one_cycle_momentum(0.1, total_steps=-1), ValueError, "total_steps"),
    (lambda: S.one_cycle_lr(0.1, 100, pct_start=0.0), ValueError, "pct_start"),
    (lambda: S.one_cycle_lr(0.1, 100, pct_start=1.0), ValueError, "pct_start"),
    (lambda: S.one_cycle_lr(0.1, 100, pct_start=1.5), ValueError, "pct_start"),
    (lambda: S.one_cycle_lr(0.1, 10, pct_start=0.1), ValueError, "pct_start"),  # 0-length
    (lambda: S.one_cycle_lr(0.1, 5, pct_start=0.6, three_phase=True), ValueError, "pct_start"),
    (lambda: S.one_cycle_lr(0.1, 100, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda: S.one_cycle_momentum(0.1, 100, anneal_strategy="Cos"), ValueError, "anneal_strategy"),
    (lambda: S.one_cycle_lr(0.1, 100, div_factor=0.0), ValueError, "div_factor"),
    (lambda: S.multi_step_lr(0.1, [5, 3]), ValueError, "milestones"),
    (lambda: S.multi_step_lr(0.1, [2, 2]), ValueError, "milestones"),
    (lambda: S.multi_step_lr(0.1, [-1, 2]), ValueError, "milestones"),
    (lambda: S.step_lr(0.1, step_size=0), ValueError, "step_size"),
    (lambda: S.step_lr(0.1, 2, gamma=-0.5), ValueError, "gamma"),
    (lambda: S.linear_lr(0.1, start_factor=0.0), ValueError, "start_factor"),
    (lambda: S.linear_lr(0.1, end_factor=1.5), ValueError, "end_factor"),
    (lambda: S.cosine_annealing_warm_restarts(0.1, T_0=0), ValueError, "T_0"),
    (lambda: S.cosine_annealing_warm_restarts(0.1, 5, T_mult=0), ValueError, "T_mult"),
    (lambda: S.warmup_cosine(0.1, 0.0, 5, cosine_steps=0), ValueError, "cosine_steps"),
    (lambda: S.sequential_lr([_dummy, _dummy], [3, 5]), ValueError, "milestones"),
    (lambda: S.sequential_lr([_dummy, _dummy, _dummy], [5, 5]), ValueError, "milestones"),
    (lambda: S.sequential_lr([], []), ValueError, "schedules"),
    (lambda: S.sequential_lr([_dummy, 0.1], [3]), TypeError, "schedules"),
    (lambda: S.reduce_lr_on_plateau(mode="avg"), ValueError, "mode"),
    (lambda: S.reduce_lr_on_plateau(threshold_mode="relative"), ValueError, "threshold_mode"),
    (lambda: S.reduce_lr_on_plateau(factor=1.0), ValueError, "factor"),
    (lambda: S.reduce_lr_on_plateau(patience=-1), ValueError, "patience"),
    (lambda: S.reduce_lr_on_plateau(cooldown=1.5), TypeError, "cooldown"),
    (lambda: S.scale_by_plateau(min_scale=-1.0), ValueError, "min_lr"),
    (lambda: _dummy(1.5), TypeError, "step"),
    (
        lambda: S.reduce_lr_on_plateau().update(S.reduce_lr_on_plateau().init(0.1), jnp.ones(2)),
        ValueError,
        "metric",
    ),
]


@pytest.mark.parametrize("call,exc,arg", BAD, ids=[f"{i}_{a}" for i, (_, _, a) in enumerate(BAD)])
def test_bad_input_names_the_argument(call, exc, arg):
    with pytest.raises(exc, match=arg):
        call()
