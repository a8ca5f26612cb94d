"""Multi-class losses against PyTorch's documented formulas (NumPy) and optax."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import log_softmax, softmax

import functional_dl as fdl
import functional_dl.losses as L
from functional_dl.losses._cross_entropy import _cross_entropy_formula
from tests.helpers import assert_close, assert_finite
from tests.test_losses_common import check_grads_x64, np_reduce

REDUCTIONS = ["none", "mean", "sum"]
C = 5
rng = np.random.default_rng(0)
X = (rng.normal(size=(2, 3, C)) * 2).astype(np.float32)  # leading axes [2, 3], classes last
Y = np.array([[0, 4, 2], [1, 1, 3]])
Y_IGN = np.array([[0, 7, 2], [1, 7, 3]])  # with ignore_index=7 below: two ignored
T = rng.dirichlet(np.ones(C), size=(2, 3)).astype(np.float32)
W = np.array([0.5, 2.0, 1.0, 1.5, 0.25], np.float32)


# ------------------------------------------------------------------- PyTorch in NumPy
def torch_cross_entropy(
    x, y, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    """aten cross_entropy_loss: nll_loss of log_softmax plus the smoothing term."""
    logp = log_softmax(np.asarray(x, np.float64), axis=-1)
    n_classes = logp.shape[-1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    if np.issubdtype(np.asarray(y).dtype, np.floating):  # class probabilities
        t = np.asarray(y, np.float64) * (1 - eps) + eps / n_classes
        return np_reduce(-(logp * t * w).sum(-1), reduction)
    ignore = y == ignore_index
    y_safe = np.where(ignore, 0, y)
    w_y = np.where(ignore, 0.0, w[y_safe])
    nll = -np.take_along_axis(logp, y_safe[..., None], -1)[..., 0] * w_y
    if eps == 0:  # PyTorch takes the plain nll_loss path
        return np_reduce(nll, reduction, w_y.sum())
    smooth = np.where(ignore, 0.0, -(logp * w).sum(-1))
    if reduction == "none":
        return (1 - eps) * nll + eps / n_classes * smooth
    if reduction == "sum":
        return (1 - eps) * nll.sum() + eps / n_classes * smooth.sum()
    total_weight = w_y.sum()
    return (1 - eps) * nll.sum() / total_weight + eps / n_classes * smooth.sum() / total_weight


def torch_nll(logp, y, weight=None, ignore_index=-100, reduction="mean"):
    w = np.ones(logp.shape[-1]) if weight is None else np.asarray(weight, np.float64)
    ignore = y == ignore_index
    y_safe = np.where(ignore, 0, y)
    w_y = np.where(ignore, 0.0, w[y_safe])
    loss = -np.take_along_axis(np.asarray(logp, np.float64), y_safe[..., None], -1)[..., 0] * w_y
    return np_reduce(loss, reduction, w_y.sum())


def torch_multi_margin(x, y, p=1, margin=1.0, weight=None, reduction="mean"):
    x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
    flat_y = np.asarray(y).reshape(-1)
    out = np.zeros(len(flat_y))
    for n, (row, target) in enumerate(zip(x, flat_y, strict=True)):
        w = 1.0 if weight is None else weight[target]
        for i in range(len(row)):
            if i != target:
                out[n] += max(0.0, margin - row[target] + row[i]) ** p * w / len(row)
    return np_reduce(out.reshape(np.shape(y)), reduction)


def softmax_focal_reference(x, t, gamma, alpha=None, reduction="mean"):
    """−Σ_c α_c t_c (1 − p_c)^γ log p_c, t one-hot for integer targets."""
    x = np.asarray(x, np.float64)
    if np.issubdtype(np.asarray(t).dtype, np.integer):
        t = np.eye(x.shape[-1])[t]
    a = 1.0 if alpha is None else np.asarray(alpha, np.float64)
    p = softmax(x, axis=-1)
    return np_reduce(-(a * t * (1 - p) ** gamma * np.log(p)).sum(-1), reduction)


# ---------------------------------------------------------------------- cross_entropy
# ignore_index: -100 (none ignored), 7 (outside the classes), 3 (a real class: Y[1, 2])
INT_OPTIONS = list(itertools.product([None, W], [-100, 7, 3], [0.0, 0.1], REDUCTIONS))


@pytest.mark.parametrize("weight,ignore_index,label_smoothing,reduction", INT_OPTIONS)
def test_cross_entropy_integer_targets_match_pytorch(
    weight, ignore_index, label_smoothing, reduction
):
    y = Y_IGN if ignore_index == 7 else Y
    kw = dict(ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)
    got = L.cross_entropy(X, y, weight, **kw)
    assert got.shape == (() if reduction != "none" else y.shape)
    assert_close(got, torch_cross_entropy(X, y, weight, **kw), rtol=2e-6)


@pytest.mark.parametrize(
    "weight,label_smoothing,reduction", list(itertools.product([None, W], [0.0, 0.2], REDUCTIONS))
)
def test_cross_entropy_probability_targets_match_pytorch(weight, label_smoothing, reduction):
    kw = dict(label_smoothing=label_smoothing, reduction=reduction)
    assert_close(
        L.cross_entropy(X, T, weight, **kw), torch_cross_entropy(X, T, weight, **kw), rtol=2e-6
    )
    # ignore_index does not apply to probability targets
    assert_close(
        L.cross_entropy(X, T, weight, ignore_index=0, **kw), L.cross_entropy(X, T, weight, **kw)
    )


def test_cross_entropy_against_optax():
    onehot = jax.nn.one_hot(Y, C)
    assert_close(
        L.cross_entropy(X, Y, reduction="none"),
        optax.losses.softmax_cross_entropy_with_integer_labels(X, Y),
        rtol=2e-6,
    )
    assert_close(
        L.cross_entropy(X, T, reduction="none"), optax.losses.softmax_cross_entropy(X, T), rtol=2e-6
    )
    for eps in (0.1, 0.3):
        want = optax.losses.softmax_cross_entropy(X, optax.losses.smooth_labels(onehot, eps))
        assert_close(L.cross_entropy(X, Y, label_smoothing=eps, reduction="none"), want, rtol=2e-6)
        want = optax.losses.softmax_cross_entropy(X, optax.losses.smooth_labels(T, eps))
        assert_close(L.cross_entropy(X, T, label_smoothing=eps, reduction="none"), want, rtol=2e-6)


GRAD_OPTIONS = [
    (None, -100, 0.0, "mean"),
    (W, 7, 0.1, "mean"),
    (W, -100, 0.3, "sum"),
    (None, 7, 0.2, "none"),
]


@pytest.mark.parametrize("weight,ignore_index,eps,reduction", GRAD_OPTIONS)
def test_cross_entropy_fused_gradient_equals_autodiff(weight, ignore_index, eps, reduction):
    """The custom-vjp gradient (logits and weight) equals jax.grad of the plain formula."""
    y = Y_IGN if ignore_index == 7 else Y
    w = jnp.ones(C) if weight is None else jnp.asarray(weight)
    g = jnp.asarray(np.random.default_rng(1).normal(size=y.shape))

    def project(fn):
        def scalar(x, w):
            out = fn(x, w)
            return jnp.sum(out * g) if reduction == "none" else out

        return jax.grad(scalar, argnums=(0, 1))

    opts = dict(ignore_index=ignore_index, reduction=reduction)
    fused = project(lambda x, w: L.cross_entropy(x, y, w, label_smoothing=eps, **opts))
    plain = project(lambda x, w: _cross_entropy_formula(x, y, w, eps=eps, **opts))
    assert_close(fused(X, w), plain(X, w))
    if reduction == "none":
        return
    # without options the gradient is (softmax − onehot) / N
    if weight is None and eps == 0.0 and ignore_index == -100:
        want = (softmax(X.astype(np.float64), -1) - np.eye(C)[Y]) / Y.size
        assert_close(fused(X, w)[0], want)


def test_cross_entropy_probability_target_gradients():
    def fused(x, t):
        return L.cross_entropy(x, t, W, label_smoothing=0.1)

    def plain(x, t):
        return _cross_entropy_formula(x, t, jnp.asarray(W), eps=0.1)

    assert_close(jax.grad(fused, argnums=(0, 1))(X, T), jax.grad(plain, argnums=(0, 1))(X, T))
    check_grads_x64(fused, X, T)
    check_grads_x64(
        lambda x, w: L.cross_entropy(x, Y_IGN, w, ignore_index=7, label_smoothing=0.1), X, W
    )


def test_cross_entropy_uses_the_fused_backward():
    assert "custom_jvp" in str(jax.make_jaxpr(L.cross_entropy)(X, Y))


def test_cross_entropy_extreme_and_minus_inf_logits_are_finite():
    x = np.array(
        [
            [1e4, -1e4, 0.0, 3.0, -2.0],
            [0.5, -np.inf, -np.inf, -np.inf, -np.inf],
            [-1e4, 1e4, 1e4, -np.inf, 0.0],
        ],
        np.float32,
    )
    y = np.array([1, 0, 2])
    for w in (None, W):
        loss = L.cross_entropy(x, y, w, reduction="none")
        assert_close(loss, torch_cross_entropy(x, y, w, reduction="none"), rtol=1e-6)
        grad = jax.grad(lambda a, w=w: L.cross_entropy(a, y, w))(x)
        assert_finite((loss, grad))
        assert_close(jnp.sum(grad, -1), np.zeros(3), atol=1e-6)  # rows of softmax − onehot
    # with smoothing a −inf logit has probability 0 in the target: infinite loss (as
    # PyTorch); the gradient stays finite
    smoothed = L.cross_entropy(x, y, label_smoothing=0.1, reduction="none")
    assert np.isposinf(smoothed[1]) and np.isfinite(smoothed[0])
    assert_finite(jax.grad(lambda a: L.cross_entropy(a, y, label_smoothing=0.1))(x))


@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
def test_ignored_rows_with_minus_inf_logits_give_finite_gradients(dtype):
    x = np.array(
        [[-np.inf, 1.0, 2.0, 0.0, 0.0], [0.5, 0.1, -1.0, 0.0, 2.0], [-np.inf] * 5], np.float32
    )  # the last row: −inf everywhere (padding)
    y = np.array([-100, 1, -100])  # the first row's clipped index points at the −inf logit
    loss, g = jax.value_and_grad(lambda a: L.cross_entropy(a, y))(x.astype(dtype))
    assert_finite((loss, g))
    assert_close(g[::2], np.zeros((2, 5)))
    y = np.array([-100, 1])
    x = x[:2]
    for eps in (0.0, 0.1):
        grads = jax.grad(
            lambda a, w, eps=eps: L.cross_entropy(a, y, w, label_smoothing=eps), argnums=(0, 1)
        )(x, W)
        assert_finite(grads)
        assert_close(grads[0][0], np.zeros(5))
    logp = log_softmax(x, -1).astype(np.float32)
    assert_finite(jax.grad(lambda a, w: L.nll_loss(a, y, w), argnums=(0, 1))(logp, W))


def test_cross_entropy_fully_ignored_batch():
    """PyTorch: the mean over no element is 0/0 = NaN; the gradient is zero."""
    y = np.full((2, 3), -100)
    assert np.isnan(L.cross_entropy(X, y))
    assert np.isnan(L.cross_entropy(X, y, W, label_smoothing=0.1))
    assert float(L.cross_entropy(X, y, reduction="sum")) == 0.0
    assert_close(L.cross_entropy(X, y, reduction="none"), np.zeros((2, 3)))
    for fn in (
        lambda a: L.cross_entropy(a, y, W, label_smoothing=0.1),
        jax.jit(lambda a: L.cross_entropy(a, y)),
    ):
        assert_close(jax.grad(fn)(X), np.zeros_like(X))


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")
@pytest.mark.parametrize("bad_target", [5, -1, 100])
def test_out_of_range_targets_give_nan_not_a_plausible_loss(bad_target):
    y = Y.copy()
    y[0, 1] = bad_target
    for w in (None, W):
        per = L.cross_entropy(X, y, w, reduction="none")
        assert np.isnan(per[0, 1]) and np.all(np.isfinite(np.delete(per.ravel(), 1)))
        assert np.isnan(L.cross_entropy(X, y, w))
        assert np.isnan(
            jax.jit(lambda a, b, w=w: L.cross_entropy(a, b, w, label_smoothing=0.1))(X, y)
        )
        assert np.isnan(L.nll_loss(X, y, w))
    assert np.isnan(L.multi_margin_loss(X, y))
    assert np.isnan(L.softmax_focal_loss(X, y))
    # the gradient has NaN in the bad element's logits too (a training step on the batch
    # turns the parameters into NaN), and finite elsewhere, fused or hand-derived
    losses = {
        "cross_entropy": lambda a: L.cross_entropy(a, y, W, label_smoothing=0.1),
        "cross_entropy jit": jax.jit(lambda a: L.cross_entropy(a, y)),
        "nll_loss": lambda a: L.nll_loss(a, y, W),
        "multi_margin_loss": lambda a: L.multi_margin_loss(a, y, p=2),
        "softmax_focal_loss": lambda a: L.softmax_focal_loss(a, y),
    }
    for name, fn in losses.items():
        g = np.asarray(jax.grad(fn)(X))
        assert np.any(np.isnan(g[0, 1])), name
        assert np.all(np.isfinite(np.delete(g.reshape(-1, C), 1, axis=0))), name
    hand_derived = [
        e
        for name, e in fdl.grads.registry().items()
        if name.startswith(("cross_entropy", "nll_loss", "multi_margin_loss", "softmax_focal_loss"))
        and "probability" not in name
    ]
    assert len(hand_derived) == 7
    for entry in hand_derived:  # (their example weights are float64: truncated here)
        g = np.ones(np.shape(entry.forward(X, y)), np.float32)
        hand = np.asarray(entry.backward(X, y, g))
        assert np.any(np.isnan(hand[0, 1])), entry.name
        assert np.all(np.isfinite(np.delete(hand.reshape(-1, C), 1, axis=0))), entry.name


def test_nll_loss_fully_ignored_batch():
    """As cross_entropy: 'mean' over no element is NaN with a zero gradient, also by the
    registered hand-derived backward."""
    y = np.full((2, 3), -100)
    assert np.isnan(L.nll_loss(X, y)) and float(L.nll_loss(X, y, reduction="sum")) == 0.0
    assert_close(jax.grad(lambda a: L.nll_loss(a, y, W))(X), np.zeros_like(X))
    from functional_dl.losses._cross_entropy import _nll_backward

    assert_close(_nll_backward(X, y, W, -100, np.float32(1.0)), np.zeros_like(X))


def test_cross_entropy_bad_input_raises():
    for eps in (1.5, -0.1):
        with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0"):
            L.cross_entropy(X, Y, label_smoothing=eps)
    with pytest.raises(ValueError, match=r"target must have shape input.shape\[:-1\]"):
        L.cross_entropy(X, Y[:, :2])
    with pytest.raises(ValueError, match=r"probability targets .* target.shape=\(2, 3\)"):
        L.cross_entropy(X, Y.astype(np.float32))
    with pytest.raises(ValueError, match=r"weight must have shape \(num_classes,\)=\(5,\)"):
        L.cross_entropy(X, Y, W[:4])
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        L.cross_entropy(X, Y, ignore_index=1.5)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        L.nll_loss(X, T)


# --------------------------------------------------------------------------- nll_loss
@pytest.mark.parametrize(
    "weight,ignore_index,reduction", list(itertools.product([None, W], [-100, 7], REDUCTIONS))
)
def test_nll_matches_pytorch_and_composes_to_cross_entropy(weight, ignore_index, reduction):
    y = Y if ignore_index == -100 else Y_IGN
    logp = log_softmax(X, -1).astype(np.float32)
    kw = dict(ignore_index=ignore_index, reduction=reduction)
    got = L.nll_loss(logp, y, weight, **kw)
    assert_close(got, torch_nll(logp, y, weight, **kw), rtol=2e-6)
    assert_close(got, L.cross_entropy(X, y, weight, **kw), rtol=2e-6)


# ------------------------------------------------------------------ multi_margin_loss
@pytest.mark.parametrize(
    "p,margin,weight,reduction", list(itertools.product([1, 2], [1.0, 0.3], [None, W], REDUCTIONS))
)
def test_multi_margin_matches_pytorch(p, margin, weight, reduction):
    kw = dict(p=p, margin=margin, weight=weight, reduction=reduction)
    assert_close(L.multi_margin_loss(X, Y, **kw), torch_multi_margin(X, Y, **kw), rtol=2e-6)


def test_multi_margin_gradient_zero_at_the_kink_and_bad_p():
    x = np.array([[0.0, 1.0, 0.0]], np.float32)  # target 1: margins exactly 0 for the others
    g = jax.grad(lambda a: L.multi_margin_loss(a, np.array([1])))(x)
    assert_close(g, np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"multi_margin_loss: p must be one of \(1, 2\), got p=3"):
        L.multi_margin_loss(X, Y, p=3)


# ----------------------------------------------------------------- softmax_focal_loss
@pytest.mark.parametrize(
    "gamma,alpha,reduction", list(itertools.product([0.0, 0.5, 2.0], [None, 0.25, W], REDUCTIONS))
)
def test_softmax_focal_matches_formula(gamma, alpha, reduction):
    for t in (Y, T):
        got = L.softmax_focal_loss(X, t, gamma=gamma, alpha=alpha, reduction=reduction)
        assert_close(got, softmax_focal_reference(X, t, gamma, alpha, reduction), rtol=2e-5)


def test_softmax_focal_with_gamma_zero_is_cross_entropy_and_finite_at_extremes():
    assert_close(L.softmax_focal_loss(X, Y, gamma=0.0), L.cross_entropy(X, Y), rtol=2e-6)
    x = np.array([[1e4, -np.inf, 0.0], [-np.inf, 50.0, -1e4]], np.float32)
    for gamma in (2.0, 0.5):
        fn = lambda a, gamma=gamma: L.softmax_focal_loss(a, np.array([0, 1]), gamma=gamma)  # noqa: E731
        assert_finite((fn(x), jax.grad(fn)(x)))
    check_grads_x64(lambda a, w: L.softmax_focal_loss(a, Y, gamma=0.5, alpha=w), X, W)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        L.softmax_focal_loss(X, Y, gamma=-2.0)
    with pytest.raises(ValueError, match="alpha must broadcast"):
        L.softmax_focal_loss(X, Y, alpha=np.ones(3))
