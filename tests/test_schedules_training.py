"""Schedules driving ``fdl.optim`` optimizers: the rate and momentum used at each step.

A small full-batch regression is trained inside ``lax.scan``; each step's update is
compared with PyTorch's rule evaluated with the schedule's value at that step
(``step 0`` = the first update), and the loss must fall.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl
import functional_dl.schedules as S
from tests.helpers import assert_close
from tests.test_schedules_plateau import RefPlateau


def _regression():
    kx, kw = jax.random.split(jax.random.key(0))
    X = jax.random.normal(kx, (64, 4))
    y = X @ jax.random.normal(kw, (4,)) + 0.5
    return X, y


def _mse(params, X, y):
    return jnp.mean((X @ params["w"] + params["b"] - y) ** 2)


def _train(opt, steps, X, y):
    """Full-batch training; returns the loss and the update of every step."""
    params = {"w": jnp.zeros(4), "b": jnp.zeros(())}

    def step(carry, _):
        params, state = carry
        loss, grads = jax.value_and_grad(_mse)(params, X, y)
        updates, state = opt.update(grads, state, params)
        return (fdl.optim.apply_updates(params, updates), state), (loss, updates, grads)

    return jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, steps))(params)[1]


def test_sgd_with_one_cycle_lr_uses_the_schedule_each_step():
    X, y = _regression()
    sched = S.one_cycle_lr(0.2, total_steps=60)
    losses, updates, grads = _train(fdl.optim.sgd(lr=sched), 60, X, y)
    lrs = np.asarray(jax.jit(sched)(jnp.arange(60)), np.float64)
    # plain SGD: update_t = -lr_t * g_t, with lr_t the schedule at step t (0 at the first)
    assert_close(updates["w"], -lrs[:, None] * np.asarray(grads["w"], np.float64))
    assert_close(updates["b"], -lrs * np.asarray(grads["b"], np.float64))
    assert losses[-1] < 1e-3 * losses[0]


def test_sgd_momentum_follows_one_cycle_momentum():
    X, y = _regression()
    kw = dict(max_lr=0.1, total_steps=100, three_phase=True)
    lr, mom = S.one_cycle_lr(**kw), S.one_cycle_momentum(**kw)
    losses, updates, grads = _train(fdl.optim.sgd(lr=lr, momentum=mom), 100, X, y)
    # PyTorch SGD with the momentum OneCycleLR sets before step t: buf = mu_t*buf + g
    lrs = np.asarray(jax.jit(lr)(jnp.arange(100)), np.float64)
    mus = np.asarray(jax.jit(mom)(jnp.arange(100)), np.float64)
    assert mus.min() == pytest.approx(0.85) and mus[0] == pytest.approx(0.95)
    g = np.asarray(grads["w"], np.float64)
    buf, expected = g[0], []
    for t in range(100):
        buf = g[0] if t == 0 else mus[t] * buf + g[t]
        expected.append(-lrs[t] * buf)
    assert_close(updates["w"], np.asarray(expected))
    assert losses[-1] < 1e-2 * losses[0]


def test_scale_by_plateau_rescues_fdl_sgd_with_a_too_large_rate():
    # full-batch least squares; lr 1.0 diverges along the top curvature direction until
    # the plateau rule has halved it enough times
    kx, kw = jax.random.split(jax.random.key(1))
    X = jax.random.normal(kx, (64, 4))
    y = X @ jax.random.normal(kw, (4,))
    lr, kw = 1.0, dict(patience=2, factor=0.5)
    opt = optax.chain(fdl.optim.sgd(lr), S.scale_by_plateau(**kw))

    def loss(w):
        return jnp.mean((X @ w - y) ** 2)

    def step(carry, _):
        w, state = carry
        value, g = jax.value_and_grad(loss)(w)
        updates, state = opt.update(g, state, w, value=value)
        return (fdl.optim.apply_updates(w, updates), state), (value, updates, g)

    w0 = jnp.zeros(4)
    _, (losses, updates, grads) = jax.jit(lambda w: jax.lax.scan(step, (w, opt.init(w)), None, 80))(
        w0
    )
    # PyTorch: optimizer.step() with the current rate, then scheduler.step(loss)
    ref, used = RefPlateau(lr, eps=1e-8, **kw), []
    for value in np.asarray(losses, np.float64):
        used.append(ref.lr)
        ref.step(value)
    used = np.asarray(used)
    assert_close(updates, -used[:, None] * np.asarray(grads, np.float64))
    assert used[0] == lr and 0 < used[-1] <= lr / 4  # diverged first, then was cut
    assert losses.max() > 10 * losses[0] and losses[-1] < 1e-4 * losses[0]
