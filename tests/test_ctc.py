"""ctc_loss against NumPy references written here (brute force over every alignment,
and the alpha recursion), optax.ctc_loss, autodiff of the plain recursion and finite
differences; PyTorch's edge cases (zero_infinity, empty inputs, padding, 'mean')."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import functional_dl as fdl
from tests.helpers import assert_close

ctc_loss = fdl.losses.ctc_loss


# ------------------------------------------------------------------ NumPy references
def np_ctc_brute(lp: np.ndarray, target: list[int], blank: int = 0) -> float:
    """−log Σ over all C^T label paths that collapse (merge repeats, drop blanks) to target."""
    t_len, c = lp.shape
    total = -np.inf
    for path in itertools.product(range(c), repeat=t_len):
        merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if [k for k in merged if k != blank] == list(target):
            total = np.logaddexp(total, sum(lp[t, k] for t, k in enumerate(path)))
    return -total


def np_ctc_alpha(lp: np.ndarray, target: list[int], blank: int = 0) -> float:
    """The textbook alpha recursion (Graves et al. 2006, eq. 6-8) in log space."""
    t_len = lp.shape[0]
    if t_len == 0:
        return 0.0 if len(target) == 0 else np.inf
    ext = [blank]
    for k in target:
        ext += [k, blank]
    n = len(ext)
    alpha = np.full(n, -np.inf)
    alpha[0] = lp[0, ext[0]]
    if n > 1:
        alpha[1] = lp[0, ext[1]]
    for t in range(1, t_len):
        new = np.full(n, -np.inf)
        for s in range(n):
            acc = alpha[s]
            if s >= 1:
                acc = np.logaddexp(acc, alpha[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                acc = np.logaddexp(acc, alpha[s - 2])
            new[s] = acc + lp[t, ext[s]]
        alpha = new
    end = alpha[-1] if n == 1 else np.logaddexp(alpha[-1], alpha[-2])
    return -end


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _batch(seed=0, n=4, t=20, c=6, s=6):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, t, c)) * 2
    targets = rng.integers(1, c, size=(n, s))
    targets[0, 1] = targets[0, 0]  # a repeated label
    targets[1, :3] = targets[1, 0]  # three in a row
    input_lengths = np.array([t, t - 3, t // 2, t][:n])
    target_lengths = np.array([s, s - 2, 3, 0][:n])
    return logits, targets, input_lengths, target_lengths


def _paddings(input_lengths, target_lengths, t, s):
    lpad = (np.arange(t)[None] >= np.asarray(input_lengths)[:, None]).astype(np.float32)
    tpad = (np.arange(s)[None] >= np.asarray(target_lengths)[:, None]).astype(np.float32)
    return lpad, tpad


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    "target,t_len,blank",
    [([1, 2], 4, 0), ([1, 1], 4, 0), ([2], 3, 0), ([], 3, 0), ([0, 0], 5, 2), ([1, 2, 1], 5, 0)],
)
def test_brute_force_over_all_alignments(target, t_len, blank):
    rng = np.random.default_rng(len(target) + t_len)
    lp = _log_softmax(rng.normal(size=(t_len, 3)))
    expected = np_ctc_brute(lp, target, blank)
    s = max(len(target), 1)
    padded = np.array([list(target) + [blank + 1 if blank < 2 else 1] * (s - len(target))])
    with jax.enable_x64(True):
        got = ctc_loss(
            jnp.asarray(lp[None]),
            padded,
            np.array([t_len]),
            np.array([len(target)]),
            blank=blank,
            reduction="none",
        )
        assert got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got)[0], expected, rtol=1e-12)
    np.testing.assert_allclose(np_ctc_alpha(lp, target, blank), expected, rtol=1e-12)


def test_alpha_recursion_reference_large_batch():
    logits, targets, il, tl = _batch(1, n=4, t=40, c=7, s=10)
    lp = _log_softmax(logits)
    expected = [np_ctc_alpha(lp[i, : il[i]], list(targets[i, : tl[i]])) for i in range(4)]
    got = ctc_loss(jnp.asarray(lp, jnp.float32), targets, il, tl, reduction="none")
    assert got.dtype == jnp.float32
    assert_close(got, np.array(expected), rtol=2e-5)


def test_matches_optax_values_and_logit_gradients():
    logits, targets, il, tl = _batch(2)
    n, t, c = logits.shape
    lpad, tpad = _paddings(il, tl, t, targets.shape[1])
    x = jnp.asarray(logits, jnp.float32)

    def ours(x):
        return ctc_loss(fdl.activations.log_softmax(x), targets, il, tl, reduction="none")

    def ref(x):
        return optax.ctc_loss(x, lpad, targets, tpad)

    g = jnp.asarray(np.random.default_rng(3).uniform(0.5, 2, n), jnp.float32)

    @jax.jit
    def both(x, g):
        (a, vjp_a), (b, vjp_b) = jax.vjp(ours, x), jax.vjp(ref, x)
        return a, b, vjp_a(g)[0], vjp_b(g)[0]

    value, ref_value, ours_grad, ref_grad = both(x, g)
    assert_close(value, ref_value, rtol=1e-5, atol=1e-4)
    assert_close(ours_grad, ref_grad, rtol=1e-4, atol=1e-5)


def test_padding_past_target_lengths_is_ignored():
    logits, targets, il, tl = _batch(3)
    lp = jnp.asarray(_log_softmax(logits), jnp.float32)
    garbage = targets.copy()
    for i in range(len(tl)):
        garbage[i, tl[i] :] = [-1, 99, 0, 5, 2, 1][: targets.shape[1] - tl[i]]
    a = ctc_loss(lp, targets, il, tl, reduction="none")
    b = ctc_loss(lp, garbage, il, tl, reduction="none")
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # frames past input_lengths are ignored too (and get zero gradient)
    lp2 = lp.at[2, il[2] :].set(jnp.nan)
    assert_close(ctc_loss(lp2, targets, il, tl, reduction="none"), a)
    g = jax.grad(lambda v: ctc_loss(v, targets, il, tl, reduction="sum"))(lp2)
    assert np.all(np.asarray(g[2, il[2] :]) == 0)


def test_reductions_mean_divides_by_target_length():
    logits, targets, il, tl = _batch(4)
    lp = jnp.asarray(_log_softmax(logits), jnp.float32)
    per = np.asarray(ctc_loss(lp, targets, il, tl, reduction="none"), np.float64)
    assert_close(ctc_loss(lp, targets, il, tl, reduction="sum"), per.sum())
    # PyTorch: (loss / target_lengths.clamp_min(1)).mean(); sample 3 has an empty target
    assert_close(ctc_loss(lp, targets, il, tl), np.mean(per / np.maximum(tl, 1)))


# ------------------------------------------------------------------------ gradients
def test_gradient_three_ways_float64():
    entry = fdl.grads.registry()["ctc_loss"]
    logits, targets, il, tl = _batch(5, t=6, s=3)
    with jax.enable_x64(True):
        lp = jnp.asarray(_log_softmax(logits))
        g = jnp.asarray(np.random.default_rng(0).normal(size=4))
        ours = jax.vjp(lambda v: ctc_loss(v, targets, il, tl, reduction="none"), lp)[1](g)[0]
        plain = jax.vjp(lambda v: entry.forward(v, targets, il, tl), lp)[1](g)[0]
        hand = entry.backward(lp, targets, il, tl, g)
        np.testing.assert_allclose(ours, plain, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(hand, plain, rtol=1e-9, atol=1e-12)
        # finite differences, reverse and forward mode (the rule is a custom JVP)
        check_grads(
            lambda v: ctc_loss(v, targets, il, tl, reduction="sum"),
            (lp,),
            order=1,
            modes=("fwd", "rev"),
            atol=1e-6,
            rtol=1e-6,
        )


def test_gradient_is_minus_occupancy_and_pytorch_convention():
    """∂loss/∂lp = −γ; PyTorch's exp(lp) − γ is our gradient w.r.t. the logits."""
    logits, targets, il, tl = _batch(6)
    x = jnp.asarray(logits, jnp.float32)
    lp = fdl.activations.log_softmax(x)
    d_lp = jax.grad(lambda v: ctc_loss(v, targets, il, tl, reduction="sum"))(lp)
    occ = -np.asarray(d_lp)
    used = np.arange(x.shape[1])[None, :, None] < il[:, None, None]
    # the occupancy is a posterior over classes at every used frame, 0 elsewhere
    assert_close(occ.sum(-1), used[..., 0].astype(float), atol=1e-5)
    assert np.all(occ >= -1e-6)
    torch_style = np.where(used, np.exp(np.asarray(lp)) - occ, 0.0)
    d_x = jax.grad(
        lambda v: ctc_loss(fdl.activations.log_softmax(v), targets, il, tl, reduction="sum")
    )(x)
    assert_close(d_x, torch_style, atol=1e-5)


def test_second_derivative_against_finite_differences():
    """The JVP rule is itself differentiable (no NaN from unreachable states)."""
    logits, targets, il, tl = _batch(10, n=2, t=5, c=3, s=2)
    targets = np.array([[1, 2], [2, 2]])
    with jax.enable_x64(True):
        x = jnp.asarray(logits)

        def f(v):
            return ctc_loss(jax.nn.log_softmax(v), targets, il, tl, reduction="sum")

        v = jnp.asarray(np.random.default_rng(1).normal(size=x.shape))
        hvp = jax.jvp(jax.grad(f), (x,), (v,))[1]
        h = 1e-5
        fd = (jax.grad(f)(x + h * v) - jax.grad(f)(x - h * v)) / (2 * h)
        assert np.all(np.isfinite(hvp))
        np.testing.assert_allclose(hvp, fd, rtol=1e-6, atol=1e-8)


# -------------------------------------------------------------------- edge cases
def test_impossible_alignment_and_zero_infinity():
    lp = jnp.log(jnp.full((2, 2, 3), 1 / 3))
    targets = np.array([[1, 1], [1, 2]])  # "11" needs 3 frames (a blank between)
    il, tl = np.array([2, 2]), np.array([2, 2])
    loss = ctc_loss(lp, targets, il, tl, reduction="none")
    assert np.isinf(loss[0]) and loss[0] > 0
    assert_close(loss[1], -np.log(1 / 9))
    grad = jax.grad(lambda v: ctc_loss(v, targets, il, tl, reduction="sum"))(lp)
    assert np.all(np.isnan(grad[0])) and np.all(np.isfinite(grad[1]))  # as PyTorch
    z = ctc_loss(lp, targets, il, tl, zero_infinity=True, reduction="none")
    assert_close(z, [0.0, -np.log(1 / 9)])
    gz = jax.grad(lambda v: ctc_loss(v, targets, il, tl, zero_infinity=True))(lp)
    assert np.all(np.asarray(gz[0]) == 0) and np.all(np.isfinite(gz))


def test_empty_input_and_empty_target():
    lp = jnp.log(jnp.full((3, 4, 3), 1 / 3))
    targets = np.array([[1], [1], [2]])
    loss = ctc_loss(lp, targets, np.array([0, 0, 4]), np.array([0, 1, 0]), reduction="none")
    # PyTorch: an empty input has likelihood 1 for an empty target, 0 otherwise;
    # an empty target over 4 frames is the all-blank path
    assert_close(loss, [0.0, np.inf, -4 * np.log(1 / 3)])


def test_bad_label_within_length_gives_nan():
    lp = jnp.log(jnp.full((2, 4, 3), 1 / 3))
    targets = np.array([[1, 0], [1, 7]])  # blank inside the target; out of range
    loss = ctc_loss(lp, targets, np.array([4, 4]), np.array([2, 2]), reduction="none")
    assert np.all(np.isnan(loss))


def test_nan_in_nan_out():
    logits, targets, il, tl = _batch(7)
    lp = jnp.asarray(_log_softmax(logits), jnp.float32).at[0, 3, 2].set(jnp.nan)
    loss = ctc_loss(lp, targets, il, tl, reduction="none")
    assert np.isnan(loss[0]) and np.all(np.isfinite(loss[1:]))
    grad = jax.grad(lambda v: ctc_loss(v, targets, il, tl, reduction="sum"))(lp)
    assert np.any(np.isnan(grad[0])) and np.all(np.isfinite(grad[1:]))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_computed_in_float32(dtype):
    logits, targets, il, tl = _batch(8)
    lp = jnp.asarray(_log_softmax(logits), dtype)
    got = ctc_loss(lp, targets, il, tl, reduction="none")
    assert got.dtype == dtype
    want = ctc_loss(lp.astype(jnp.float32), targets, il, tl, reduction="none")
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want.astype(dtype)))
    g = jax.grad(lambda v: ctc_loss(v, targets, il, tl))(lp)
    assert g.dtype == dtype and np.all(np.isfinite(np.asarray(g, np.float32)))


def test_jit_and_vmap():
    logits, targets, il, tl = _batch(9)
    lp = jnp.asarray(_log_softmax(logits), jnp.float32)
    fn = lambda a, b, c, d: ctc_loss(a, b, c, d, reduction="none")  # noqa: E731
    eager = fn(lp, targets, il, tl)
    assert_close(jax.jit(fn)(lp, targets, il, tl), eager)
    stacked = [jnp.stack([a, a[::-1]]) for a in (lp, jnp.asarray(targets), il, tl)]
    batched = jax.vmap(fn)(*stacked)
    assert_close(batched[0], eager)
    assert_close(batched[1], eager[::-1])


@pytest.mark.parametrize(
    "kwargs,exc,word",
    [
        (dict(log_probs=np.zeros((2, 3))), ValueError, "log_probs"),
        (dict(log_probs=np.zeros((2, 3, 4), np.int32)), TypeError, "log_probs"),
        (dict(targets=np.zeros((2, 2))), TypeError, "targets"),
        (dict(targets=np.zeros((3, 2), np.int32)), ValueError, "targets"),
        (dict(input_lengths=np.array([3, 4])), ValueError, "input_lengths"),
        (dict(input_lengths=np.array([3])), ValueError, "input_lengths"),
        (dict(input_lengths=np.array([3.0, 3.0])), TypeError, "input_lengths"),
        (dict(target_lengths=np.array([3, 1])), ValueError, "target_lengths"),
        (dict(blank=4), ValueError, "blank"),
        (dict(blank=1.0), TypeError, "blank"),
        (dict(zero_infinity=1), TypeError, "zero_infinity"),
        (dict(reduction="avg"), ValueError, "reduction"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, exc, word):
    args = dict(
        log_probs=np.zeros((2, 3, 4), np.float32),
        targets=np.ones((2, 2), np.int32),
        input_lengths=np.array([3, 2]),
        target_lengths=np.array([2, 1]),
    )
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        ctc_loss(**args)
