"""fdl.metrics against NumPy references: accuracy, top-k, token and sequence accuracy,
and the running mean (eager = jit, inside a scan)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import metrics as M
from tests.helpers import assert_close

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 5, 7)).astype(np.float32)  # [N, T, C]
TARGETS = RNG.integers(0, 7, (6, 5))
TARGETS[:, -2:] = np.where(RNG.random((6, 2)) < 0.5, -100, TARGETS[:, -2:])  # padding
TARGETS[0] = LOGITS[0].argmax(-1)  # one sequence entirely right


def ref_top_k(logits, targets, k):
    top = np.argsort(-logits, axis=-1, kind="stable")[..., :k]
    return np.mean((top == targets[..., None]).any(-1))


def test_accuracy_and_top_k_match_numpy():
    x, t = LOGITS.reshape(-1, 7), np.abs(TARGETS.reshape(-1)) % 7
    assert_close(M.accuracy(x, t), np.mean(x.argmax(-1) == t), dtype=np.float32)
    for k in (1, 2, 3, 7, 9):
        assert_close(M.top_k_accuracy(x, t, k=k), ref_top_k(x, t, k), dtype=np.float32)
    assert_close(M.top_k_accuracy(x, t, k=1), M.accuracy(x, t), dtype=np.float32)
    assert fdl.train.accuracy is M.accuracy  # the old public name
    jitted = jax.jit(M.top_k_accuracy, static_argnames="k")
    assert_close(jitted(x, t, k=3), M.top_k_accuracy(x, t, k=3), dtype=np.float32)


def test_token_and_sequence_accuracy_match_numpy():
    hits = LOGITS.argmax(-1) == TARGETS
    keep = TARGETS != -100
    expect_tokens = hits[keep].mean()
    expect_seqs = np.mean((hits | ~keep).all(-1))
    assert_close(M.token_accuracy(LOGITS, TARGETS, ignore_index=-100), expect_tokens)
    assert_close(M.token_accuracy(LOGITS, TARGETS, mask=keep), expect_tokens)
    assert_close(M.token_accuracy(LOGITS, TARGETS), hits.mean())
    assert_close(M.sequence_accuracy(LOGITS, TARGETS, ignore_index=-100), expect_seqs)
    assert_close(M.sequence_accuracy(LOGITS, TARGETS), np.mean(hits.all(-1)))
    assert float(M.sequence_accuracy(LOGITS, TARGETS)) >= 1 / 6  # the first sequence
    assert fdl.models.sequence_accuracy is M.sequence_accuracy
    jitted = jax.jit(lambda x, t, m: M.token_accuracy(x, t, mask=m))
    assert_close(jitted(LOGITS, TARGETS, keep), expect_tokens)
    assert np.isnan(float(M.token_accuracy(LOGITS, TARGETS, mask=np.zeros_like(keep))))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: M.accuracy(LOGITS, TARGETS[:, :1]), "targets must have the shape"),
        (lambda: M.top_k_accuracy(LOGITS, TARGETS, k=0), "k"),
        (lambda: M.token_accuracy(LOGITS, TARGETS, mask=np.ones(5, bool)), "mask"),
        (lambda: M.RunningMean.init().update(jnp.ones(2)), "shape"),
        (lambda: M.RunningMean.init().update(1.0, weight=jnp.ones(2)), "weight"),
        (lambda: M.RunningMean.init({"a": 0.0}).update({"b": 1.0}), "tree structure"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_running_mean_is_a_weighted_mean_in_a_scan():
    values = RNG.standard_normal((20, 3)).astype(np.float32)
    weights = RNG.integers(1, 9, 20).astype(np.float32)

    def body(mean, vw):
        v, w = vw
        return mean.update({"x": v, "s": v.sum()}, weight=w), None

    mean, _ = jax.lax.scan(
        body, M.RunningMean.init({"x": np.zeros(3), "s": 0.0}), (values, weights)
    )
    expected = (values * weights[:, None]).sum(0) / weights.sum()
    assert_close(mean.result()["x"], expected, rtol=1e-5)
    assert_close(mean.result()["s"], expected.sum(), rtol=1e-5)
    assert_close(mean.weight, weights.sum())
    eager = M.RunningMean.init()
    for v in values[:, 0]:
        eager = eager.update(v)
    assert_close(eager.result(), values[:, 0].mean(), rtol=1e-5)
    assert np.isnan(float(M.RunningMean.init().result()))
