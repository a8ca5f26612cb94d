"""fdl.schedules.reduce_lr_on_plateau and scale_by_plateau against PyTorch's ReduceLROnPlateau.

The reference below follows ``ReduceLROnPlateau.step(metrics)`` of PyTorch's source in
Python floats; the hand-written cases spell out the expected rates step by step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl.schedules as S
from tests.helpers import assert_close


class RefPlateau:
    """PyTorch's ReduceLROnPlateau.step(metrics) on one group, in Python floats."""

    def __init__(
        self,
        lr,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0.0,
        eps=1e-8,
    ):
        self.lr, self.mode, self.factor, self.patience = lr, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown = threshold, threshold_mode, cooldown
        self.min_lr, self.eps = min_lr, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0

    def is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics):
        current = float(metrics)
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        return self.lr


def plateau_lrs(plateau, lr, metrics):
    """``state.lr`` after each metric, the whole sequence in one ``lax.scan``."""

    def body(state, metric):
        state = plateau.update(state, metric)
        return state, state.lr

    return jax.lax.scan(body, plateau.init(lr), jnp.asarray(metrics, jnp.float32))[1]


HAND = {  # (arguments, initial lr, metrics, lr after each update: worked out by hand)
    "patience": (
        dict(patience=2, factor=0.5),
        1.0,
        [5, 4, 4, 4, 4, 4, 4, 4],
        [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25],
    ),
    "patience_not_reached": (dict(patience=3), 1.0, [1, 1, 1, 1, 1], [1, 1, 1, 1, 0.1]),
    "cooldown": (
        dict(patience=0, factor=0.5, cooldown=2),
        1.0,
        [1] * 6,
        [1, 0.5, 0.5, 0.5, 0.25, 0.25],
    ),
    "rel_threshold": (
        dict(patience=0, factor=0.5, threshold=0.1),
        1.0,
        [10, 9.5, 9.0, 8.95],
        [1, 0.5, 0.25, 0.25],
    ),
    "abs_threshold": (
        dict(patience=0, factor=0.5, threshold=0.1, threshold_mode="abs"),
        1.0,
        [10, 9.5, 9.0, 8.95],
        [1, 1, 1, 0.5],
    ),
    "min_lr": (dict(patience=0, min_lr=0.05), 1.0, [1, 1, 1, 1], [1, 0.1, 0.05, 0.05]),
    "max_mode": (
        dict(mode="max", patience=1, factor=0.5),
        1.0,
        [1, 2, 3, 3, 3, 2, 4],
        [1, 1, 1, 1, 0.5, 0.5, 0.5],
    ),
    "eps_skips": (dict(patience=0, factor=0.5, eps=1e-7), 1e-7, [1, 1, 1], [1e-7] * 3),
    "eps_zero": (dict(patience=0, factor=0.5, eps=0.0), 1e-7, [1, 1, 1], [1e-7, 5e-8, 2.5e-8]),
    "nan_is_bad": (dict(patience=1), 1.0, [1, math.nan, math.nan], [1, 1, 0.1]),
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_plateau_hand_written(name):
    kw, lr, metrics, expected = HAND[name]
    ref = RefPlateau(lr, **kw)
    np.testing.assert_allclose([ref.step(m) for m in metrics], expected, rtol=1e-12)
    got = plateau_lrs(S.reduce_lr_on_plateau(**kw), lr, metrics)
    assert_close(got, np.asarray(expected), atol=0.0)  # relative: some rates are 1e-7


PLATEAU_CONFIGS = [
    dict(),
    dict(patience=2, factor=0.5, cooldown=1),
    dict(patience=0, factor=0.7, cooldown=3, min_lr=0.02),
    dict(patience=1, threshold=1 / 32, threshold_mode="abs"),
    dict(mode="max", patience=2, factor=0.5),
    dict(mode="max", patience=1, threshold=1 / 32, threshold_mode="abs", cooldown=2),
]


def test_plateau_random_walks_match_pytorch():
    # metrics on a 1/64 grid: no comparison is within float32 rounding of its threshold
    rng = np.random.default_rng(0)
    walks = [
        np.round(64 * (2 + np.cumsum(rng.choice([-1, 0, 0, 1], 80) / 16))) / 64
        for _ in PLATEAU_CONFIGS
    ]
    plateaus = [S.reduce_lr_on_plateau(**kw) for kw in PLATEAU_CONFIGS]
    got = jax.jit(lambda ws: [plateau_lrs(p, 0.1, w) for p, w in zip(plateaus, ws, strict=True)])(
        walks
    )
    for kw, walk, lrs in zip(PLATEAU_CONFIGS, walks, got, strict=True):
        ref = RefPlateau(0.1, **kw)
        expected = [ref.step(m) for m in walk]
        assert len(set(expected)) > 2, f"too few reductions to test {kw}"
        assert_close(lrs, np.asarray(expected), err_msg=str(kw))


def test_plateau_jit_equals_eager_and_vmap():
    plateau = S.reduce_lr_on_plateau(patience=1, factor=0.5, cooldown=1)
    metrics = np.asarray([3, 2, 2, 2, 2, 1, 1, 1, 1, 1], np.float32)
    state, eager = plateau.init(0.1), []
    for m in metrics:
        state = plateau.update(state, m)
        eager.append(state)
    update = jax.jit(plateau.update)
    state, jitted = plateau.init(0.1), []
    for m in metrics:
        state = update(state, m)
        jitted.append(state)
    for a, b in zip(eager, jitted, strict=True):
        assert isinstance(b, S.PlateauState)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(plateau_lrs(plateau, 0.1, metrics), [s.lr for s in eager])
    batch = jnp.stack([metrics, metrics[::-1]])
    batched = jax.jit(jax.vmap(lambda m: plateau_lrs(plateau, 0.1, m)))(batch)
    np.testing.assert_array_equal(batched[0], [s.lr for s in eager])
    np.testing.assert_array_equal(batched[1], plateau_lrs(plateau, 0.1, metrics[::-1]))


def test_plateau_state_is_scalar_arrays():
    state = S.reduce_lr_on_plateau(mode="max").init(0.1)
    assert state.lr.dtype == jnp.float32 and state.best == -np.inf
    assert state.num_bad_epochs.dtype == state.cooldown_counter.dtype == jnp.int32
    assert all(jnp.ndim(x) == 0 for x in state)


def test_scale_by_plateau_chained_with_an_optax_optimizer():
    lr, kw = 0.1, dict(patience=1, factor=0.5, cooldown=1)
    tx = optax.chain(optax.sgd(lr), S.scale_by_plateau(**kw))
    params = {"w": jnp.ones(3), "b": jnp.ones((), jnp.bfloat16)}
    grads = {"w": jnp.asarray([1.0, -2.0, 0.5]), "b": jnp.ones((), jnp.bfloat16)}
    state = tx.init(params)
    update = jax.jit(tx.update)
    ref = RefPlateau(lr, min_lr=0.0, eps=1e-8 * lr, **kw)
    for metric in [3, 2, 2, 2, 2, 2, 1, 1, 1, 1]:
        used_lr = ref.lr  # PyTorch: optimizer.step() with the current rate, then step(metric)
        updates, state = update(grads, state, params, value=metric)
        ref.step(metric)
        assert updates["b"].dtype == jnp.bfloat16
        assert_close(updates["w"], -used_lr * grads["w"])
        assert_close(state[1].plateau.lr, ref.lr / lr)
    assert ref.lr < lr / 2  # the run did reduce
    # without `value` (the per-epoch protocol) the update only applies the current scale
    updates, same = update(grads, state, params)
    assert_close(updates["w"], -ref.lr * grads["w"])
    assert same == state


def test_step_plateau_per_epoch_matches_pytorch_in_any_opt_state():
    """step_plateau feeds every scale_by_plateau found in a state (chain, masked): the
    rates used epoch by epoch are PyTorch's ReduceLROnPlateau.step(metric) per epoch."""
    lr, kw = 0.1, dict(patience=1, factor=0.5, cooldown=1)
    params = {"w": jnp.ones(3), "frozen": jnp.ones(2)}
    tx = optax.chain(
        optax.sgd(lr),
        optax.masked(S.scale_by_plateau(**kw), {"w": True, "frozen": False}),
    )
    grads = {"w": jnp.asarray([1.0, -2.0, 0.5]), "frozen": jnp.ones(2)}
    state = tx.init(params)
    ref = RefPlateau(lr, eps=1e-8 * lr, **kw)
    step_plateau = jax.jit(S.step_plateau)
    for metric in [3, 2, 2, 2, 2, 2, 1, 1, 1, 1]:
        for _ in range(3):  # three updates per epoch, all at the epoch's rate
            updates, state = tx.update(grads, state, params)
            assert_close(updates["w"], -ref.lr * grads["w"])
            assert_close(updates["frozen"], -lr * grads["frozen"])
        state = step_plateau(state, metric)
        ref.step(metric)
        (plateau,) = S.plateau_states(state)
        assert_close(plateau.plateau.lr, ref.lr / lr)
    assert ref.lr < lr / 2  # the run did reduce
    with pytest.raises(ValueError, match="no scale_by_plateau state"):
        S.step_plateau(optax.sgd(lr).init(params), 1.0)
    assert S.plateau_states(optax.sgd(lr).init(params)) == []
