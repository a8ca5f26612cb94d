"""fdl.train: TrainState, the jitted step, evaluate, fit (plateau, early stopping,
checkpoints, resumption, NaN handling) and the history plot."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl
from functional_dl import models
from functional_dl.nn import Layer, Sequential
from tests.helpers import TraceCounter, assert_close
from tests.test_schedules_plateau import RefPlateau

# ---------------------------------------------------------------- tiny reference models


def Dense(n: int) -> Layer:
    def init(key, shape):
        w = jax.random.normal(key, (shape[-1], n)) / np.sqrt(shape[-1])
        return {"w": w, "b": jnp.zeros(n)}, {}

    def apply(p, s, x, *, key=None, train=False):
        y = x @ p["w"]
        return y + jnp.broadcast_to(p["b"], y.shape), s

    return Layer(init, apply, "dense")


def Stateless(fn, name: str) -> Layer:
    return Layer(
        lambda key, shape: ({}, {}), lambda p, s, x, *, key=None, train=False: (fn(x), s), name
    )


def DropHalf() -> Layer:
    """Dropout(0.5) written out, so the test depends on the step's key handling."""

    def apply(p, s, x, *, key=None, train=False):
        if not train:
            return x, s
        keep = jax.random.bernoulli(key, 0.5, x.shape)
        return jnp.where(keep, 2.0 * x, 0.0), s

    return Layer(lambda key, shape: ({}, {}), apply, "dropout")


def RunningMean() -> Layer:
    """Keeps a running mean of its input in ``state`` (like BatchNorm's statistics)."""

    def apply(p, s, x, *, key=None, train=False):
        if train:
            s = {"mean": 0.9 * s["mean"] + 0.1 * x.mean(0)}
        return x, s

    return Layer(lambda key, shape: ({}, {"mean": jnp.zeros(shape[-1])}), apply, "running")


def xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


FLAT = Stateless(lambda x: x.reshape(x.shape[0], -1), "flatten")
MLP = Sequential(
    FLAT, Dense(32), Stateless(jax.nn.relu, "relu"), RunningMean(), DropHalf(), Dense(10)
)
ADAM = optax.adam(3e-3)
METRICS = {"accuracy": fdl.train.accuracy}


@pytest.fixture(scope="module")
def digits():
    x, y = fdl.data.load_digits()
    train, val, test = fdl.data.random_split(jax.random.key(0), (x, y), [0.7, 0.15, 0.15])
    return {"train": train, "val": val, "test": test, "small": (x[:200], y[:200])}


def new_state(model=MLP, optimizer=ADAM, seed=1):
    return fdl.train.create_train_state(jax.random.key(seed), model, optimizer, (1, 8, 8, 1))


# ---------------------------------------------------------------- state and step


def test_train_state_is_a_pytree():
    state = new_state()
    assert int(state.step) == 0 and state.step.dtype == jnp.int32
    leaves = jax.tree_util.tree_leaves(state)
    assert (
        len(leaves)
        == len(jax.tree_util.tree_leaves(state.params))
        + len(jax.tree_util.tree_leaves(state.opt_state))
        + 3
    )  # model_state mean, step, key
    doubled = jax.tree_util.tree_map(lambda a: a, state)
    assert isinstance(doubled, fdl.train.TrainState)
    assert int(state.replace(step=state.step + 5).step) == 5
    with pytest.raises(TypeError, match="model must be a Layer"):
        fdl.train.create_train_state(jax.random.key(0), "mlp", ADAM, (1, 4))
    with pytest.raises(TypeError, match="optimizer"):
        fdl.train.create_train_state(jax.random.key(0), MLP, None, (1, 4))


DETERMINISTIC = Sequential(FLAT, Dense(16), Stateless(jnp.tanh, "tanh"), Dense(10))
NO_STATE = {"0_flatten": {}, "1_dense": {}, "2_tanh": {}, "3_dense": {}}


def forward(params, x):
    return DETERMINISTIC.apply(params, NO_STATE, x)[0]


def test_train_step_equals_hand_written_optax_loop(digits):
    x, y = digits["small"]
    opt = optax.adam(1e-2)
    counted = TraceCounter(xent)
    step = fdl.train.make_train_step(DETERMINISTIC, counted, opt, metrics=METRICS)
    assert fdl.train.make_train_step(DETERMINISTIC, counted, opt, metrics=METRICS) is step
    state = new_state(DETERMINISTIC, opt)
    params, opt_state = state.params, opt.init(state.params)  # reference copies

    @jax.jit
    def reference_step(params, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(lambda p: xent(forward(p, xb), yb))(params)
        acc = jnp.mean(jnp.argmax(forward(params, xb), -1) == yb)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, acc

    for i in range(3):
        xb, yb = x[i * 32 : (i + 1) * 32], y[i * 32 : (i + 1) * 32]
        params, opt_state, ref_loss, ref_acc = reference_step(params, opt_state, xb, yb)
        state, metrics = step(state, (xb, yb))
        assert_close(metrics["loss"], ref_loss)
        assert_close(metrics["accuracy"], ref_acc)
        assert_close(state.params, params)
    assert int(state.step) == 3
    assert counted.count == 1  # compiled once


SGD = optax.sgd(0.1)  # shared by the tests below: one compiled step (batches of 40)


@jax.jit
def sgd_step(params, xb, yb, lr):
    """Reference: one plain SGD step on the test model."""
    grads = jax.grad(lambda p: xent(forward(p, xb), yb))(params)
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


def test_step_donates_its_input_and_the_plateau_scale_scales_sgd(digits):
    x, y = digits["small"]
    opt = optax.chain(SGD, fdl.schedules.scale_by_plateau(factor=0.5, patience=0))
    state = fdl.train.replicate(new_state(DETERMINISTIC, opt), fdl.train.data_parallel_mesh())
    for metric in [1.0, 1.0]:  # one improvement, one bad epoch: the scale drops to 0.5
        state = state.replace(opt_state=fdl.schedules.step_plateau(state.opt_state, metric))
    expected = sgd_step(new_state(DETERMINISTIC, SGD).params, x[:40], y[:40], 0.05)
    old_leaf = state.params["1_dense"]["w"]
    scaled, _ = fdl.train.make_train_step(DETERMINISTIC, xent, opt)(state, (x[:40], y[:40]))
    assert old_leaf.is_deleted()  # donated
    assert_close(scaled.params, expected)


def test_evaluate_is_exact_over_padded_batches(digits):
    x, y = digits["test"]
    x, y = x[:37], y[:37]
    state = new_state(DETERMINISTIC)
    scores = fdl.train.evaluate(state, DETERMINISTIC, xent, (x, y), metrics=METRICS, batch_size=8)
    logits = np.asarray(forward(state.params, x), np.float64)
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    assert_close(scores["loss"], -logp[np.arange(37), y].mean(), rtol=1e-5)
    assert_close(scores["accuracy"], np.mean(logits.argmax(-1) == y), dtype=np.float32)
    assert sorted(scores) == ["accuracy", "loss"]


# ---------------------------------------------------------------- fit


def test_fit_learns_digits_to_97_percent_and_plots(tmp_path):
    """The library end to end: fdl.nn layers, fdl.optim.adam, fdl.losses.cross_entropy."""
    task = models.task("mlp")
    optimizer = fdl.optim.adam(1e-3)
    state = fdl.train.create_train_state(jax.random.key(0), task.model, optimizer, task.input_shape)
    result = fdl.train.fit(
        state,
        task.model,
        fdl.losses.cross_entropy,
        optimizer,
        task.train,
        epochs=15,
        batch_size=32,
        val_data=task.val,
        metrics=METRICS,
        progress=False,
    )
    h = result.history
    assert sorted(h) == ["accuracy", "loss", "time", "val_accuracy", "val_loss"]
    assert all(len(v) == 15 for v in h.values())
    assert h["loss"][-1] < h["loss"][0] / 5 and not result.stopped_early
    test = fdl.train.evaluate(
        result.state, task.model, fdl.losses.cross_entropy, task.test, metrics=METRICS
    )
    assert test["accuracy"] >= 0.97, test
    fig = fdl.train.plot_history(h, path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert [ax.get_title() for ax in fig.axes] == ["accuracy", "loss"]


# The training loss falls every epoch, so in mode "max" every epoch after the first is a
# bad one: with patience 0 the rate halves after every epoch from the second on.
HALVING = dict(mode="max", factor=0.5, patience=0)


def test_fit_plateau_scales_the_learning_rate_per_epoch(digits):
    x, y = digits["small"]
    opt = optax.chain(SGD, fdl.schedules.scale_by_plateau(**HALVING))
    state = new_state(DETERMINISTIC, opt)
    twin = new_state(DETERMINISTIC, opt)  # fit donates `state`; the reference starts here
    key, params = twin.key, twin.params
    result = fdl.train.fit(
        state,
        DETERMINISTIC,
        xent,
        opt,
        (x, y),
        epochs=3,
        batch_size=40,
        plateau=True,
        monitor="loss",
        progress=False,
    )
    # PyTorch: ReduceLROnPlateau(optimizer, **HALVING).step(loss) after each epoch
    ref, lrs = RefPlateau(0.1, **HALVING), []
    for loss in result.history["loss"]:
        lrs.append(ref.lr)
        ref.step(loss)
    assert lrs == [0.1, 0.1, 0.05]
    assert_close(0.1 * np.asarray(result.history["lr_scale"]), lrs, dtype=np.float32)
    # reference: plain SGD over the documented batch order, at the rates above
    for epoch, lr in enumerate(lrs):
        for xb, yb in fdl.data.batches(
            jax.random.fold_in(key, epoch), x, y, batch_size=40, drop_last=True
        ):
            params = sgd_step(params, xb, yb, lr)
    assert_close(result.state.params, params, rtol=1e-5, atol=1e-6)


def test_fit_early_stopping(digits):
    # The training loss falls every epoch, so in mode "max" only the first epoch counts as
    # an improvement: training stops after `patience` more epochs.
    result = fdl.train.fit(
        new_state(DETERMINISTIC, SGD),
        DETERMINISTIC,
        xent,
        SGD,
        digits["small"],
        epochs=10,
        batch_size=40,
        patience=2,
        monitor="loss",
        mode="max",
        progress=False,
    )
    assert result.stopped_early and len(result.history["loss"]) == 3
    assert result.history["loss"][2] < result.history["loss"][0]


def test_resume_equals_uninterrupted_run_bit_for_bit(digits, tmp_path):
    data, val = digits["small"], digits["val"]
    kw = dict(
        batch_size=40,
        val_data=val,
        metrics=METRICS,
        plateau=True,
        monitor="loss",
        progress=False,
    )
    opt = optax.chain(ADAM, fdl.schedules.scale_by_plateau(**HALVING))
    full = fdl.train.fit(new_state(optimizer=opt), MLP, xent, opt, data, epochs=3, **kw)
    first = fdl.train.fit(
        new_state(optimizer=opt), MLP, xent, opt, data, epochs=1, checkpoint_dir=tmp_path, **kw
    )
    assert fdl.train.latest_checkpoint(tmp_path).name == "step_00000005.safetensors"
    rest = fdl.train.fit(
        new_state(optimizer=opt, seed=99),
        MLP,
        xent,
        opt,
        data,
        epochs=3,
        checkpoint_dir=tmp_path,
        resume=True,
        **kw,
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(full.state), jax.tree_util.tree_leaves(rest.state), strict=True
    ):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    full.history.pop("time"), rest.history.pop("time"), first.history.pop("time")
    assert rest.history == full.history
    assert full.history["lr_scale"] == [1.0, 1.0, 0.5]  # the cut needs the restored best
    assert len(first.history["loss"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # keep_checkpoints=2
        "step_00000010.safetensors",
        "step_00000015.safetensors",
    ]


def test_plateau_run_resumed_mid_way_equals_the_uninterrupted_run(digits, tmp_path):
    """The plateau state is part of opt_state: a run stopped after a rate cut continues
    with the cut rate and the plateau's memory (best metric, counters) bit for bit."""
    opt = optax.chain(SGD, fdl.schedules.scale_by_plateau(**HALVING))
    kw = dict(batch_size=40, plateau=True, monitor="loss", progress=False)
    args = (DETERMINISTIC, xent, opt, digits["small"])
    full = fdl.train.fit(new_state(DETERMINISTIC, opt), *args, epochs=4, **kw)
    assert full.history["lr_scale"] == [1.0, 1.0, 0.5, 0.25]
    fdl.train.fit(new_state(DETERMINISTIC, opt), *args, epochs=2, checkpoint_dir=tmp_path, **kw)
    ckpt = fdl.train.latest_checkpoint(tmp_path)
    assert "plateau" not in fdl.train.checkpoint_metadata(ckpt)
    saved = fdl.train.restore_checkpoint(ckpt, new_state(DETERMINISTIC, opt))
    (plateau,) = fdl.schedules.plateau_states(saved.opt_state)
    assert float(plateau.plateau.lr) == 0.5  # cut after the second epoch, before saving
    rest = fdl.train.fit(
        new_state(DETERMINISTIC, opt, seed=7),
        *args,
        epochs=4,
        checkpoint_dir=tmp_path,
        resume=True,
        **kw,
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(full.state), jax.tree_util.tree_leaves(rest.state), strict=True
    ):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    full.history.pop("time"), rest.history.pop("time")
    assert rest.history == full.history


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    def poison_after(n):  # the n-th update turns every parameter into NaN
        def update(updates, count, params=None):
            bad = jnp.where(count + 1 == n, jnp.nan, 0.0)
            return jax.tree_util.tree_map(lambda u: u + bad, updates), count + 1

        return optax.GradientTransformation(lambda p: jnp.zeros((), jnp.int32), update)

    opt = optax.chain(optax.sgd(0.01), poison_after(12))
    with pytest.raises(
        FloatingPointError,
        match=r"nan at step 13 \(epoch 3, batch 3\).*"
        r"step_00000010\.safetensors",
    ):
        fdl.train.fit(
            new_state(DETERMINISTIC, opt),
            DETERMINISTIC,
            xent,
            opt,
            digits["small"],
            epochs=5,
            batch_size=40,
            checkpoint_dir=tmp_path,
            progress=False,
        )
    good = fdl.train.restore_checkpoint(
        fdl.train.latest_checkpoint(tmp_path), new_state(DETERMINISTIC, opt)
    )
    assert int(good.step) == 10
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree_util.tree_leaves(good.params))


def test_fit_bad_input(digits, tmp_path):
    x, y = digits["small"]
    state = new_state(DETERMINISTIC)
    args = (DETERMINISTIC, xent, ADAM)
    with pytest.raises(ValueError, match=r"same number of examples.*\[200, 199\]"):
        fdl.train.fit(state, *args, (x, y[:-1]), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="empty"):
        fdl.train.fit(state, *args, (x[:0], y[:0]), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="val_data.*same number"):
        fdl.train.fit(state, *args, (x, y), val_data=(x, y[:3]), epochs=1, batch_size=8)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir must be a directory"):
        fdl.train.fit(state, *args, (x, y), epochs=1, batch_size=8, checkpoint_dir=blocker)
    used = tmp_path / "used"
    used.mkdir()
    (used / "step_00000005.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="already holds the checkpoints of a run"):
        fdl.train.fit(state, *args, (x, y), epochs=1, batch_size=8, checkpoint_dir=used)
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        fdl.train.fit(
            state,
            *args,
            (x, y),
            epochs=1,
            batch_size=8,
            checkpoint_dir=tmp_path / "empty",
            resume=True,
        )
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        fdl.train.fit(
            state, *args, (x, y), epochs=1, batch_size=8, resume=tmp_path / "missing.safetensors"
        )
    with pytest.raises(ValueError, match="plateau=True needs a fdl.schedules.scale_by_plateau"):
        fdl.train.fit(state, *args, (x, y), epochs=1, batch_size=8, plateau=True)
    with pytest.raises(TypeError, match="plateau must be True or False"):
        plateau = fdl.schedules.reduce_lr_on_plateau()
        fdl.train.fit(state, *args, (x, y), epochs=1, batch_size=8, plateau=plateau)
    chained = optax.chain(ADAM, fdl.schedules.scale_by_plateau())
    with pytest.raises(ValueError, match="only with plateau=True"):
        fdl.train.fit(
            new_state(DETERMINISTIC, chained),
            DETERMINISTIC,
            xent,
            chained,
            (x, y),
            epochs=1,
            batch_size=8,
        )
    with pytest.raises(ValueError, match="epochs"):
        fdl.train.fit(state, *args, (x, y), epochs=0, batch_size=8)
    with pytest.raises(ValueError, match=r"monitor must be one of \['loss'\]"):
        fdl.train.fit(state, *args, (x, y), epochs=1, batch_size=8, monitor="val_loss")
