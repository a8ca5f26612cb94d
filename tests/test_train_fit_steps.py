"""fit by steps: max_steps, eval_every, callbacks (MetricsLogger, EarlyStopping), any
iterable of batches, running averages, mid-epoch resumption; token models
(``jax.ShapeDtypeStruct`` input specs) in create_train_state, make_train_step and fit."""

from __future__ import annotations

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl
from functional_dl import nn

KEY = jax.random.key(0)
MODEL = nn.Sequential(nn.Flatten(), nn.Linear(16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(10))
OPT = optax.adam(3e-3)


def xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@pytest.fixture(scope="module")
def data():
    x, y = fdl.data.load_digits()
    return (x[:200], y[:200]), (x[200:300], y[200:300])


def new_state(seed=1, model=MODEL, shape=(1, 8, 8, 1)):
    return fdl.train.create_train_state(jax.random.key(seed), model, OPT, shape)


def assert_same_state(a, b):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        if jax.dtypes.issubdtype(u.dtype, jax.dtypes.prng_key):
            u, v = jax.random.key_data(u), jax.random.key_data(v)
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def no_time(history):
    return {k: v for k, v in history.items() if k != "time"}


# ---------------------------------------------------------------- token models


def test_embedding_first_model_trains_with_create_train_state_step_and_fit():
    vocab, length = 11, 8
    model = nn.Sequential(nn.Embedding(vocab, 16), nn.Linear(vocab))
    spec = jax.ShapeDtypeStruct((1, length), jnp.int32)
    state = new_state(model=model, shape=spec)
    assert state.params["0_embedding"]["weight"].shape == (vocab, 16)
    # next-token prediction of a counting sequence: token t is followed by t + 1
    rng = np.random.default_rng(0)
    starts = rng.integers(0, vocab, size=(64, 1))
    tokens = (starts + np.arange(length + 1)) % vocab
    x, y = tokens[:, :-1].astype(np.int32), tokens[:, 1:].astype(np.int32)
    step = fdl.train.make_train_step(model, xent, OPT)
    state, first = step(state, (x[:16], y[:16]))
    result = fdl.train.fit(
        state, model, xent, OPT, (x, y), epochs=15, batch_size=16, progress=False
    )
    assert result.history["loss"][-1] < 0.5 * float(first["loss"])
    table = nn.summary(model, spec)
    assert "0_embedding" in table and "(1, 8, 11)" in table


def test_a_shape_tuple_for_a_token_model_names_the_spec_to_pass():
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(5))
    with pytest.raises(TypeError, match="ShapeDtypeStruct"):
        new_state(model=model, shape=(1, 3))
    with pytest.raises(TypeError, match="input_shape"):
        new_state(model=model, shape="tokens")


# ---------------------------------------------------------------- steps and records


def test_max_steps_stops_mid_epoch_and_eval_every_records_by_step(data):
    train, val = data
    seen = []
    result = fdl.train.fit(
        new_state(),
        MODEL,
        xent,
        OPT,
        train,
        batch_size=40,  # 5 steps per epoch
        max_steps=12,
        eval_every=4,
        val_data=val,
        progress=False,
        callbacks=[lambda step, metrics, state: seen.append((step, metrics, int(state.step)))],
    )
    assert int(result.state.step) == 12
    assert result.history["step"] == [4, 8, 12]
    assert len(result.history["val_loss"]) == 3
    assert [s for s, _, _ in seen] == [4, 8, 12] and [t for _, _, t in seen] == [4, 8, 12]
    assert seen[0][1]["loss"] == result.history["loss"][0]
    # the steps after the last record make a final one; epochs and max_steps together
    result = fdl.train.fit(
        new_state(),
        MODEL,
        xent,
        OPT,
        train,
        batch_size=40,
        epochs=3,
        max_steps=7,
        progress=False,
    )
    assert int(result.state.step) == 7 and len(result.history["loss"]) == 2
    result = fdl.train.fit(
        new_state(),
        MODEL,
        xent,
        OPT,
        train,
        batch_size=40,
        epochs=2,
        max_steps=100,
        progress=False,
    )
    assert int(result.state.step) == 10


def test_records_average_the_step_metrics_and_the_bar_shows_running_means(data, monkeypatch):
    train, _ = data
    batches = [(train[0][i : i + 40], train[1][i : i + 40]) for i in range(0, 200, 40)]
    step = fdl.train.make_train_step(MODEL, xent, OPT)
    state, losses = new_state(), []
    for batch in batches:
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
    postfixes = []

    class Bar:
        def __init__(self, **kwargs):
            pass

        def update(self, n):
            pass

        def set_postfix(self, values, refresh=False):
            postfixes.append({k: float(v) for k, v in values.items()})

        def close(self):
            pass

    from functional_dl.train import _loop

    monkeypatch.setattr(_loop, "_progress_bar", lambda **kw: Bar(**kw))
    result = fdl.train.fit(new_state(), MODEL, xent, OPT, batches, epochs=1, progress=True)
    np.testing.assert_allclose(result.history["loss"], [np.mean(losses)], rtol=1e-6)
    running = [np.mean(losses[: i + 1]) for i in range(5)]
    np.testing.assert_allclose([p["loss"] for p in postfixes[:5]], running, atol=1e-4)


# ---------------------------------------------------------------- any iterable of batches


def test_lists_generators_and_samplers_of_batches_train_like_the_step_loop(data):
    train, _ = data
    batches = [(train[0][i : i + 50], train[1][i : i + 50]) for i in range(0, 200, 50)]
    step = fdl.train.make_train_step(MODEL, xent, OPT)
    expected = new_state()
    for _ in range(2):
        for batch in batches:
            expected, _ = step(expected, batch)

    from_list = fdl.train.fit(new_state(), MODEL, xent, OPT, batches, epochs=2, progress=False)
    assert_same_state(from_list.state, expected)

    def sampler(epoch):  # the user's own order, seeded by the epoch
        return iter(batches)

    from_sampler = fdl.train.fit(new_state(), MODEL, xent, OPT, sampler, epochs=2, progress=False)
    assert_same_state(from_sampler.state, expected)

    gen = (b for _ in range(2) for b in batches)  # one pass; ends after 8 batches
    from_gen = fdl.train.fit(new_state(), MODEL, xent, OPT, gen, max_steps=50, progress=False)
    assert_same_state(from_gen.state, expected)
    assert len(from_gen.history["loss"]) == 1

    with pytest.raises(ValueError, match="batch_size"):
        fdl.train.fit(new_state(), MODEL, xent, OPT, batches, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="epochs or max_steps"):
        fdl.train.fit(new_state(), MODEL, xent, OPT, batches)
    with pytest.raises(TypeError, match="callbacks"):
        fdl.train.fit(new_state(), MODEL, xent, OPT, batches, epochs=1, callbacks=[3])


# ---------------------------------------------------------------- callbacks


def test_metrics_logger_writes_every_record_as_jsonl_and_csv(data, tmp_path):
    train, val = data
    jsonl, table = tmp_path / "m.jsonl", tmp_path / "m.csv"
    result = fdl.train.fit(
        new_state(),
        MODEL,
        xent,
        OPT,
        train,
        batch_size=40,
        epochs=2,
        val_data=val,
        progress=False,
        callbacks=[fdl.train.MetricsLogger(jsonl), fdl.train.MetricsLogger(table)],
    )
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10]
    assert [r["val_loss"] for r in rows] == result.history["val_loss"]
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [5, 10]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], result.history["loss"])
    with pytest.raises(ValueError, match="format"):
        fdl.train.MetricsLogger(tmp_path / "x", format="xml")


def test_early_stopping_callback_matches_patience(data):
    train, _ = data
    kw = dict(batch_size=40, epochs=6, progress=False, monitor="loss", mode="max")
    args = (MODEL, xent, OPT, train)
    builtin = fdl.train.fit(new_state(), *args, patience=2, **kw)
    stop = fdl.train.EarlyStopping("loss", mode="max", patience=2)
    callback = fdl.train.fit(new_state(), *args, callbacks=[stop], **kw)
    assert builtin.stopped_early and callback.stopped_early
    assert no_time(builtin.history) == no_time(callback.history)
    assert len(callback.history["loss"]) == 3  # the loss falls: "max" never improves
    with pytest.raises(ValueError, match="monitor"):
        fdl.train.EarlyStopping("nope")(1, {"loss": 1.0}, None)


# ---------------------------------------------------------------- resumption


def test_step_run_resumed_mid_epoch_equals_the_uninterrupted_run(data, tmp_path):
    train, val = data
    logs = []
    stop = fdl.train.EarlyStopping("val_loss", patience=50)
    kw = dict(batch_size=40, eval_every=3, val_data=val, progress=False)
    full = fdl.train.fit(new_state(), MODEL, xent, OPT, train, max_steps=13, **kw)
    fdl.train.fit(
        new_state(),
        MODEL,
        xent,
        OPT,
        train,
        max_steps=6,
        checkpoint_dir=tmp_path,
        callbacks=[stop],
        **kw,
    )  # stops at step 6: epoch 2, batch 1
    assert fdl.train.latest_checkpoint(tmp_path).name == "step_00000006.safetensors"
    stop_again = fdl.train.EarlyStopping("val_loss", patience=50)
    rest = fdl.train.fit(
        new_state(seed=5),
        MODEL,
        xent,
        OPT,
        train,
        max_steps=13,
        checkpoint_dir=tmp_path,
        resume=True,
        callbacks=[stop_again, lambda s, m, st: logs.append(s)],
        **kw,
    )
    assert_same_state(full.state, rest.state)
    assert no_time(rest.history) == no_time(full.history)
    assert logs == [9, 12, 13]
    assert stop_again.best == min(full.history["val_loss"])  # restored, then updated


def test_iterable_run_resumed_after_a_record_continues_the_same_batches(data, tmp_path):
    train, _ = data
    batches = [(train[0][i : i + 40], train[1][i : i + 40]) for i in range(0, 200, 40)]

    def sampler(epoch):
        order = np.random.default_rng(epoch).permutation(len(batches))
        return (batches[i] for i in order)

    kw = dict(eval_every=4, progress=False)
    full = fdl.train.fit(new_state(), MODEL, xent, OPT, sampler, max_steps=12, **kw)
    fdl.train.fit(
        new_state(), MODEL, xent, OPT, sampler, max_steps=8, checkpoint_dir=tmp_path, **kw
    )
    rest = fdl.train.fit(
        new_state(seed=3),
        MODEL,
        xent,
        OPT,
        sampler,
        max_steps=12,
        checkpoint_dir=tmp_path,
        resume=True,
        **kw,
    )
    assert_same_state(full.state, rest.state)
    assert no_time(rest.history) == no_time(full.history)
