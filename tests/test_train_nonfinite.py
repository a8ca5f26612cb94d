"""``fit`` and ``make_train_step`` facing a NaN/inf loss or gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl

MODEL = fdl.nn.Sequential(fdl.nn.Linear(8), fdl.nn.ReLU(), fdl.nn.Linear(3))
OPT = fdl.optim.sgd(0.1)
RNG = np.random.default_rng(0)
X = RNG.standard_normal((64, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 64)


def _state():
    return fdl.train.create_train_state(jax.random.key(0), MODEL, OPT, (1, 5))


def _nan_loss_grad(outputs, targets):
    """A finite loss (0) whose gradient is NaN: d sqrt(|u|)/du at u = 0."""
    return jnp.mean(jnp.sqrt(jnp.abs(outputs - jax.lax.stop_gradient(outputs))))


def test_a_nan_input_stops_fit_naming_the_step_epoch_and_batch():
    x = X.copy()
    x[5, 2] = np.nan  # one NaN "pixel"
    with pytest.raises(
        FloatingPointError, match=r"loss became nan at step \d+ \(epoch 1, batch \d+\)"
    ):
        fdl.train.fit(
            _state(),
            MODEL,
            fdl.losses.cross_entropy,
            OPT,
            (x, Y),
            epochs=2,
            batch_size=16,
            progress=False,
        )


def test_a_nonfinite_gradient_with_a_finite_loss_stops_fit():
    with pytest.raises(
        FloatingPointError, match=r"gradient norm became nan at step 1 \(epoch 1, batch 1\)"
    ):
        fdl.train.fit(
            _state(), MODEL, _nan_loss_grad, OPT, (X, Y), epochs=1, batch_size=16, progress=False
        )


def test_skip_leaves_the_state_unchanged_for_bad_steps_and_goes_on():
    x = X.copy()
    x[5, 2] = np.nan
    perm_free = dict(epochs=1, batch_size=16, progress=False, on_nonfinite="skip")
    with pytest.warns(RuntimeWarning, match=r"loss became nan at step \d+ .*update was skipped"):
        out = fdl.train.fit(_state(), MODEL, fdl.losses.cross_entropy, OPT, (x, Y), **perm_free)
    assert int(out.state.step) == 4
    leaves = jax.tree.leaves(out.state.params)
    assert all(np.isfinite(np.asarray(a)).all() for a in leaves)
    assert np.isfinite(out.history["loss"]).all()  # the mean of the good steps
    # the good steps did train: the parameters moved
    start = jax.tree.leaves(_state().params)
    assert any(not np.array_equal(a, b) for a, b in zip(leaves, start, strict=True))


def test_make_train_step_grad_norm_and_skip_nonfinite():
    step = fdl.train.make_train_step(MODEL, fdl.losses.cross_entropy, OPT, grad_norm=True)
    state = _state()

    def loss(p):
        return fdl.losses.cross_entropy(MODEL.apply(p, state.model_state, X[:16])[0], Y[:16])

    grads = jax.grad(loss)(state.params)
    expected = np.sqrt(
        sum(float(jnp.sum(g.astype(jnp.float64) ** 2)) for g in jax.tree.leaves(grads))
    )
    _, metrics = step(_state(), (X[:16], Y[:16]))
    np.testing.assert_allclose(float(metrics["grad_norm"]), expected, rtol=1e-5)

    skip = fdl.train.make_train_step(MODEL, _nan_loss_grad, OPT, skip_nonfinite=True)
    before = jax.tree.map(np.asarray, _state().params)
    after, metrics = skip(_state(), (X[:16], Y[:16]))
    assert int(after.step) == 1 and "grad_norm" not in metrics
    for a, b in zip(jax.tree.leaves(after.params), jax.tree.leaves(before), strict=True):
        np.testing.assert_array_equal(a, b)


def test_on_nonfinite_must_be_a_known_choice():
    with pytest.raises(ValueError, match="on_nonfinite"):
        fdl.train.fit(
            _state(),
            MODEL,
            fdl.losses.cross_entropy,
            OPT,
            (X, Y),
            epochs=1,
            batch_size=16,
            progress=False,
            on_nonfinite="ignore",
        )
