"""Properties shared by every loss: public gradient = hand-derived gradient on the
registered examples, eager = jit = vmap, dtypes, the reduction argument."""

import ast
import functools
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import functional_dl.losses as L
from functional_dl import grads
from functional_dl.losses._common import EXAMPLE_WEIGHT
from functional_dl.losses._multiclass import _ALPHA
from tests.helpers import FLOAT_DTYPES, assert_close, assert_eager_jit_vmap, assert_finite, tol


def np_reduce(loss, reduction, denominator=None):
    """The reduction of PyTorch's losses, in NumPy (shared by the loss test files)."""
    loss = np.asarray(loss, np.float64)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (loss.size if denominator is None else denominator)


def check_grads_x64(fn, *args):
    """Reverse-mode gradient of ``fn`` against finite differences, in float64 (jitted:
    one compilation instead of one per primitive)."""
    with jax.enable_x64(True):
        args = tuple(np.asarray(a, np.float64) for a in args)
        check_grads(jax.jit(fn), args, order=1, modes=["rev"])


# ------------------------------------------------------------------------------------
# Every registered loss gradient, as a call of the public function with the same options.
_none = dict(reduction="none")
PUBLIC = {
    "mse_loss": functools.partial(L.mse_loss, **_none),
    "l1_loss": functools.partial(L.l1_loss, **_none),
    "smooth_l1_loss(beta=1.0)": functools.partial(L.smooth_l1_loss, beta=1.0, **_none),
    "smooth_l1_loss(beta=0.0)": functools.partial(L.smooth_l1_loss, beta=0.0, **_none),
    "huber_loss(delta=1.0)": functools.partial(L.huber_loss, delta=1.0, **_none),
    "binary_cross_entropy": functools.partial(L.binary_cross_entropy, **_none),
    "binary_cross_entropy_with_logits": functools.partial(
        L.binary_cross_entropy_with_logits, **_none
    ),
    "binary_cross_entropy_with_logits(pos_weight)": lambda x, y, pw: (
        L.binary_cross_entropy_with_logits(x, y, pos_weight=pw, **_none)
    ),
    "hinge_loss": functools.partial(L.hinge_loss, **_none),
    "sigmoid_focal_loss(alpha=0.25, gamma=2.0)": functools.partial(
        L.sigmoid_focal_loss, alpha=0.25, gamma=2.0, **_none
    ),
    "sigmoid_focal_loss(alpha=-1.0, gamma=0.5)": functools.partial(
        L.sigmoid_focal_loss, alpha=-1.0, gamma=0.5, **_none
    ),
    "sigmoid_focal_loss(alpha=0.75, gamma=0.0)": functools.partial(
        L.sigmoid_focal_loss, alpha=0.75, gamma=0.0, **_none
    ),
    "cross_entropy": L.cross_entropy,
    "cross_entropy(weight, ignore_index=1, label_smoothing=0.1)": lambda x, y: L.cross_entropy(
        x, y, EXAMPLE_WEIGHT, ignore_index=1, label_smoothing=0.1
    ),
    "cross_entropy(probability targets, weight, label_smoothing=0.2, reduction='none')": (
        lambda x, t: L.cross_entropy(x, t, EXAMPLE_WEIGHT, label_smoothing=0.2, **_none)
    ),
    "nll_loss(weight, ignore_index=1)": lambda x, y: L.nll_loss(
        x, y, EXAMPLE_WEIGHT, ignore_index=1
    ),
    "multi_margin_loss(p=1, margin=1.0)": functools.partial(
        L.multi_margin_loss, p=1, margin=1.0, **_none
    ),
    "multi_margin_loss(p=2, margin=0.5, weight)": functools.partial(
        L.multi_margin_loss, p=2, margin=0.5, weight=EXAMPLE_WEIGHT, **_none
    ),
    "softmax_focal_loss(gamma=2.0)": functools.partial(L.softmax_focal_loss, gamma=2.0, **_none),
    "softmax_focal_loss(gamma=0.5, alpha)": functools.partial(
        L.softmax_focal_loss, gamma=0.5, alpha=_ALPHA, **_none
    ),
    "kl_div(log_target=False)": functools.partial(L.kl_div, log_target=False, **_none),
    "kl_div(log_target=True)": functools.partial(L.kl_div, log_target=True, **_none),
    "gan_discriminator_loss": functools.partial(L.gan_discriminator_loss, **_none),
    "gan_generator_loss(non_saturating=True)": functools.partial(
        L.gan_generator_loss, non_saturating=True, **_none
    ),
    "gan_generator_loss(non_saturating=False)": functools.partial(
        L.gan_generator_loss, non_saturating=False, **_none
    ),
    "cosine_embedding_loss(margin=0.1)": lambda a, b, y: L.cosine_embedding_loss(
        a, b, y, margin=0.1, **_none
    ),
    "triplet_margin_loss(p=2.0, swap=False)": functools.partial(
        L.triplet_margin_loss, p=2.0, swap=False, **_none
    ),
    "triplet_margin_loss(p=1.0, swap=True, margin=0.5)": functools.partial(
        L.triplet_margin_loss, p=1.0, swap=True, margin=0.5, **_none
    ),
    "triplet_margin_loss(p=3.0, eps=0.0)": functools.partial(
        L.triplet_margin_loss, p=3.0, eps=0.0, **_none
    ),
    "margin_ranking_loss(margin=0.5)": lambda a, b, y: L.margin_ranking_loss(
        a, b, y, margin=0.5, **_none
    ),
    "dice_loss(smooth=1.0)": functools.partial(L.dice_loss, smooth=1.0, **_none),
}
# the losses added with CTC register their public call with their entry
WAVE2 = (
    "ctc_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multilabel_margin_loss",
    "triplet_margin_with_distance_loss",
)
PUBLIC.update(
    {n: e.public for n, e in grads.registry().items() if n.split("(")[0] in WAVE2 and e.public}
)

LOSS_ENTRIES = [n for n in grads.registry() if n.split("(")[0] in L.__all__]


def test_every_loss_has_a_registered_hand_gradient():
    assert {n.split("(")[0] for n in LOSS_ENTRIES} == set(L.__all__)
    assert set(PUBLIC) == set(LOSS_ENTRIES)


@pytest.mark.parametrize("name", LOSS_ENTRIES)
def test_public_value_and_gradient_equal_registered_formula_and_hand_backward(name):
    """On the registered edge examples (±1e4, −inf logits, kinks, zero vectors), in
    float64: the public value equals the plain formula and its gradient (custom vjp or
    autodiff) equals the hand-derived backward, and is finite."""
    entry = grads.registry()[name]
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for example in entry.examples():
            args = [jnp.asarray(a) for a in example]

            def public(*diff, args=args):
                full = list(args)
                for i, d in zip(entry.argnums, diff, strict=True):
                    full[i] = d
                return PUBLIC[name](*full)

            out, vjp = jax.vjp(public, *[args[i] for i in entry.argnums])
            assert out.dtype == jnp.float64
            assert_close(out, entry.forward(*args))
            g = jnp.asarray(rng.normal(size=out.shape))
            got = vjp(g)
            hand = entry.backward(*args, g)
            hand = hand if isinstance(hand, tuple) else (hand,)
            assert_finite(got, name)
            assert_close(got, hand, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------
# One representative call per public loss (float32 data).
_rng = np.random.default_rng(1)
X = _rng.normal(size=(4, 5)).astype(np.float32)
Y = _rng.normal(size=(4, 5)).astype(np.float32)
Z = _rng.normal(size=(4, 5)).astype(np.float32)
P = _rng.uniform(0.05, 0.95, size=(4, 5)).astype(np.float32)
B = _rng.integers(0, 2, size=(4, 5)).astype(np.float32)
PM = 2 * B - 1
I = np.array([0, 3, 1, 4])
T = _rng.dirichlet(np.ones(5), size=4).astype(np.float32)
LOGQ = np.log(_rng.dirichlet(np.ones(5), size=4)).astype(np.float32)
W = np.array([0.5, 2.0, 1.0, 1.5, 0.25], np.float32)

CASES = {
    "mse_loss": (L.mse_loss, (X, Y)),
    "l1_loss": (L.l1_loss, (X, Y)),
    "smooth_l1_loss": (functools.partial(L.smooth_l1_loss, beta=0.5), (X, Y)),
    "huber_loss": (functools.partial(L.huber_loss, delta=0.5), (X, Y)),
    "binary_cross_entropy": (lambda p, y, **kw: L.binary_cross_entropy(p, y, W, **kw), (P, B)),
    "binary_cross_entropy_with_logits": (
        lambda x, y, **kw: L.binary_cross_entropy_with_logits(x, y, W, pos_weight=W[::-1], **kw),
        (X, B),
    ),
    "hinge_loss": (L.hinge_loss, (X, PM)),
    "sigmoid_focal_loss": (L.sigmoid_focal_loss, (X, B)),
    "cross_entropy": (
        lambda x, y, **kw: L.cross_entropy(x, y, W, ignore_index=1, label_smoothing=0.1, **kw),
        (X, I),
    ),
    "nll_loss": (lambda x, y, **kw: L.nll_loss(x, y, W, **kw), (LOGQ, I)),
    "multi_margin_loss": (functools.partial(L.multi_margin_loss, p=2), (X, I)),
    "softmax_focal_loss": (L.softmax_focal_loss, (X, I)),
    "kl_div": (L.kl_div, (LOGQ, T)),
    "gan_discriminator_loss": (L.gan_discriminator_loss, (X, Y)),
    "gan_generator_loss": (L.gan_generator_loss, (X,)),
    "cosine_embedding_loss": (L.cosine_embedding_loss, (X, Y, PM[:, 0])),
    "triplet_margin_loss": (L.triplet_margin_loss, (X, Y, Z)),
    "margin_ranking_loss": (L.margin_ranking_loss, (X, Y, PM)),
    "dice_loss": (L.dice_loss, (P.reshape(2, 2, 5), B.reshape(2, 2, 5))),
    # one label per target here, so that PyTorch's 'mean' (per target length) is sum / N
    "ctc_loss": (
        lambda lp, y, **kw: L.ctc_loss(lp, y, np.array([5, 4]), np.array([1, 1]), **kw),
        (np.log(T.reshape(2, 2, 5)[:, [0, 1, 0, 1, 0]]), np.array([[2], [3]])),
    ),
    "poisson_nll_loss": (L.poisson_nll_loss, (X, P * 3)),
    "gaussian_nll_loss": (L.gaussian_nll_loss, (X, Y, P)),
    "hinge_embedding_loss": (L.hinge_embedding_loss, (X, PM)),
    "soft_margin_loss": (L.soft_margin_loss, (X, PM)),
    "multilabel_soft_margin_loss": (L.multilabel_soft_margin_loss, (X, B)),
    "multilabel_margin_loss": (L.multilabel_margin_loss, (X, np.array([[1, 3, -1, 0, 0]] * 4))),
    "triplet_margin_with_distance_loss": (L.triplet_margin_with_distance_loss, (X, Y, Z)),
}


def test_cases_cover_every_loss():
    assert set(CASES) == set(L.__all__)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_jit_vmap(name):
    fn, args = CASES[name]
    assert fn(*args).dtype == jnp.float32
    assert_eager_jit_vmap(fn, *args)


def _cast(args, dtype):
    return tuple(a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a for a in args)


@pytest.mark.parametrize(
    "dtype", [d for d in FLOAT_DTYPES if d != jnp.float32], ids=lambda d: np.dtype(d).name
)
@pytest.mark.parametrize("name", sorted(CASES))
def test_dtype_preserved_and_half_precision_accurate(name, dtype):
    """Half-precision inputs give half-precision outputs and gradients, as accurate as
    float32 arithmetic on the same (rounded) inputs."""
    fn, args = CASES[name]
    low = _cast(args, dtype)
    out = fn(*low)
    assert out.dtype == dtype
    reference = fn(*_cast(_cast(args, dtype), np.float32))
    assert_close(out, reference, dtype=dtype)
    grad = jax.grad(lambda a: fn(a, *low[1:]))(low[0])
    assert grad.dtype == dtype
    assert_finite(grad, name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_reduction_none_sum_mean_agree(name):
    fn, args = CASES[name]
    per_element = np.asarray(fn(*args, reduction="none"), np.float64)
    assert_close(fn(*args, reduction="sum"), per_element.sum(), **tol(np.float32))
    if name not in ("cross_entropy", "nll_loss"):  # weighted means: see their own tests
        mean = per_element.sum() / per_element.size
        if name == "gan_discriminator_loss":  # the real and fake terms have equal sizes here
            mean = per_element.mean()
        assert_close(fn(*args, reduction="mean"), mean)


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_reduction_raises(name):
    fn, args = CASES[name]
    with pytest.raises(ValueError, match=r"reduction must be one of .*got reduction='avg'"):
        fn(*args, reduction="avg")
    if name != "kl_div":
        with pytest.raises(ValueError, match="reduction"):
            fn(*args, reduction="batchmean")


@pytest.mark.parametrize("name", sorted(CASES))
def test_integer_input_raises_type_error(name):
    fn, args = CASES[name]
    with pytest.raises(TypeError, match="must be a floating array|dtype"):
        fn(np.ones(args[0].shape, np.int32), *args[1:])


@pytest.mark.parametrize("name", L.__all__)
def test_docstring_example_runs(name):
    """The ``Example::`` doctest of every docstring runs, and gives a finite scalar."""
    doc = getattr(L, name).__doc__
    assert "Example::" in doc, name
    block = textwrap.dedent(doc.split("Example::", 1)[1]).strip().splitlines()
    source = "\n".join(line[4:] for line in block if line[:4] in (">>> ", "... "))
    tree = ast.parse(source)
    *setup, last = tree.body
    namespace = {"jnp": jnp, "jax": jax, **{n: getattr(L, n) for n in L.__all__}}
    exec(compile(ast.Module(setup, type_ignores=[]), name, "exec"), namespace)
    value = eval(compile(ast.Expression(last.value), name, "eval"), namespace)
    assert value.shape == () and np.isfinite(value)
