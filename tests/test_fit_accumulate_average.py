"""fit(accumulate=k) equals big-batch training; fit(eval_averaged=True) scores the average."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl

X, Y = fdl.data.make_moons(jax.random.key(0), 64, noise=0.1)


def _model():
    return fdl.nn.Sequential(fdl.nn.Linear(16), fdl.nn.Tanh(), fdl.nn.Linear(2))


def _fit(optimizer, batch_size, **kw):
    model = _model()
    state = fdl.train.create_train_state(jax.random.key(1), model, optimizer, (1, 2))
    return fdl.train.fit(
        state, model, fdl.losses.cross_entropy, optimizer, (X, Y), epochs=2,
        batch_size=batch_size, drop_last=True, progress=False, **kw,
    )  # fmt: skip


def test_accumulate_equals_the_big_batch_run():
    # one epoch = the same 64 examples: 4 micro-batches of 16 vs one batch of 64; the order
    # of the examples within an epoch does not change the mean gradient
    opt = fdl.optim.sgd(0.5)
    small = _fit(opt, 16, accumulate=4)
    big = _fit(opt, 64)
    for a, b in zip(
        jax.tree_util.tree_leaves(small.state.params),
        jax.tree_util.tree_leaves(big.state.params),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    assert int(small.state.step) == 8 and int(big.state.step) == 2
    with pytest.raises(ValueError, match="accumulate"):
        _fit(opt, 16, accumulate=0)


def test_eval_averaged_scores_the_ema_weights():
    opt = optax.chain(fdl.optim.adam(1e-2), fdl.optim.ema(0.5))
    result = _fit(opt, 16, val_data=(X, Y), eval_averaged=True)
    averaged = fdl.train.with_averaged_params(result.state)
    scores = fdl.train.evaluate(averaged, _model(), fdl.losses.cross_entropy, (X, Y))
    assert result.history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-5)
    raw = fdl.train.evaluate(result.state, _model(), fdl.losses.cross_entropy, (X, Y))
    assert raw["loss"] != pytest.approx(scores["loss"], rel=1e-6)
    with pytest.raises(ValueError, match="eval_averaged"):
        _fit(fdl.optim.adam(1e-2), 16, val_data=(X, Y), eval_averaged=True)


def test_accumulated_state_is_jnp_tree():
    opt = fdl.optim.sgd(0.1)
    result = _fit(opt, 16, accumulate=2)
    assert isinstance(result.state.opt_state, fdl.optim.AccumulateState)
    assert jnp.asarray(result.state.opt_state.mini_step).shape == ()
