"""update_bn and with_averaged_params: BatchNorm statistics recomputed as the equal-weight
average of the batch statistics (torch.optim.swa_utils.update_bn), averaged weights
swapped into a TrainState."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl
from tests.helpers import assert_close


def test_update_bn_is_the_average_of_batch_statistics():
    model = fdl.nn.Sequential(
        fdl.nn.Linear(4), fdl.nn.BatchNorm(momentum=0.3), fdl.nn.ReLU(), fdl.nn.Linear(3),
        fdl.nn.BatchNorm(),
    )  # fmt: skip
    params, state = model.init(jax.random.key(0), (1, 5))
    x = np.asarray(jax.random.normal(jax.random.key(1), (24, 5)), np.float64) * 3 + 1
    batches = [(x[i : i + 8], None) for i in range(0, 24, 8)]
    new = fdl.train.update_bn(model, params, state, batches)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    names = list(p)
    means1, vars1, means2, vars2 = [], [], [], []
    for xb, _ in batches:
        h = xb @ p[names[0]]["weight"] + p[names[0]]["bias"]
        means1.append(h.mean(0))
        vars1.append(h.var(0, ddof=1))
        hn = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5) * p[names[1]]["weight"] + p[names[1]][
            "bias"
        ]
        h2 = np.maximum(hn, 0) @ p[names[3]]["weight"] + p[names[3]]["bias"]
        means2.append(h2.mean(0))
        vars2.append(h2.var(0, ddof=1))
    assert_close(new[names[1]]["running_mean"], np.mean(means1, 0), rtol=1e-4, atol=1e-5)
    assert_close(new[names[1]]["running_var"], np.mean(vars1, 0), rtol=1e-4, atol=1e-5)
    assert_close(new[names[4]]["running_mean"], np.mean(means2, 0), rtol=1e-4, atol=1e-5)
    assert_close(new[names[4]]["running_var"], np.mean(vars2, 0), rtol=1e-4, atol=1e-5)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    with pytest.raises(ValueError, match="empty"):
        fdl.train.update_bn(model, params, state, [])


def test_with_averaged_params_swaps_the_ema_in():
    model = fdl.nn.Sequential(fdl.nn.Linear(4), fdl.nn.BatchNorm(), fdl.nn.Linear(1))
    opt = optax.chain(fdl.optim.adam(1e-2), fdl.optim.ema(0.9))
    state = fdl.train.create_train_state(jax.random.key(0), model, opt, (1, 3))
    x = jax.random.normal(jax.random.key(1), (16, 3))
    y = jnp.sum(x, axis=1, keepdims=True)
    step = fdl.train.make_train_step(model, fdl.losses.mse_loss, opt)
    for _ in range(5):
        state, _ = step(state, (x, y))
    avg = fdl.train.with_averaged_params(state, model, [(x, y)])
    assert_close(avg.params, fdl.optim.averaged_params(state.opt_state))
    assert int(avg.step) == int(state.step)
    names = list(avg.model_state)
    h = x @ avg.params[names[0]]["weight"] + avg.params[names[0]]["bias"][None, :]
    assert_close(avg.model_state[names[1]]["running_mean"], jnp.mean(h, 0), rtol=1e-4, atol=1e-5)
