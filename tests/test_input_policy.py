"""One input policy: a Python list given for an array argument is accepted everywhere and
gives the same result as the array; static hyperparameters name themselves when traced."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl

F = fdl.nn.functional
RNG = np.random.default_rng(0)


def _a(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


KEY = jax.random.key(0)
# (function, positional array arguments, keyword hyperparameters)
CASES = {
    "linear": (F.linear, (_a(2, 3), _a(3, 4), _a(4)), {}),
    "conv2d": (F.conv2d, (_a(1, 5, 5, 2), _a(3, 3, 2, 4), _a(4)), {}),
    "conv1d": (F.conv1d, (_a(1, 6, 2), _a(3, 2, 4), _a(4)), {}),
    "conv_transpose2d": (F.conv_transpose2d, (_a(1, 3, 3, 2), _a(2, 2, 2, 4), _a(4)), {}),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), (_a(1, 4, 4, 2),), {}),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), (_a(1, 4, 4, 2),), {}),
    "batch_norm": (
        F.batch_norm,
        (_a(4, 3), np.zeros(3, np.float32), np.ones(3, np.float32), _a(3), _a(3)),
        {"training": True},
    ),
    "layer_norm": (F.layer_norm, (_a(2, 3), _a(3), _a(3)), {}),
    "rms_norm": (F.rms_norm, (_a(2, 3), _a(3)), {}),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), (_a(2, 3, 4), _a(4), _a(4)), {}),
    "instance_norm": (F.instance_norm, (_a(2, 3, 3, 2), _a(2), _a(2)), {}),
    "dropout": (lambda x: F.dropout(KEY, x, 0.5), (_a(2, 3),), {}),
    "embedding": (F.embedding, (np.array([0, 2, 1]), _a(3, 2)), {}),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 2), (_a(1, 5, 5, 2),), {}),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, 2), (_a(1, 5, 5, 2),), {}),
    "interpolate": (lambda x: F.interpolate(x, (4, 4)), (_a(1, 2, 2, 1),), {}),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), (_a(1, 2, 2, 4),), {}),
    "pixel_unshuffle": (lambda x: F.pixel_unshuffle(x, 2), (_a(1, 4, 4, 1),), {}),
    "rnn": (F.rnn, (_a(1, 3, 2), _a(1, 4), _a(2, 4), _a(4, 4), _a(4), _a(4)), {}),
    "lstm": (
        F.lstm,
        (_a(1, 3, 2), _a(1, 4), _a(1, 4), _a(2, 16), _a(4, 16), _a(16), _a(16)),
        {},
    ),
    "gru": (F.gru, (_a(1, 3, 2), _a(1, 4), _a(2, 12), _a(4, 12), _a(12), _a(12)), {}),
    "scaled_dot_product_attention": (
        F.scaled_dot_product_attention,
        (_a(1, 3, 4), _a(1, 5, 4), _a(1, 5, 4)),
        {"is_causal": True},
    ),
    "rope": (F.rope, (_a(1, 3, 4),), {}),
}


def _same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("name", sorted(CASES))
def test_nn_functional_accepts_lists_for_array_arguments(name):
    fn, args, kw = CASES[name]
    _same(fn(*[a.tolist() for a in args], **kw), fn(*args, **kw))


def test_every_nn_functional_array_op_is_covered():
    """The list above names every op of nn.functional that takes array data."""
    positional_scalars = {
        "sinusoidal_positional_encoding",
        "alibi_bias",
        "alibi_slopes",
        "relative_position_bucket",
        "relative_position_bias",
        "attention_weights",
    }
    public = {n for n in F.__all__ if inspect.isfunction(getattr(F, n))}
    assert public - positional_scalars - set(CASES) == set()


AUGMENT_IMAGES = np.random.default_rng(1).uniform(size=(2, 8, 8, 3)).astype(np.float32)


def _augment_calls():
    """Every augmentation callable with ``(key?, images)`` alone."""
    out = []
    for name in fdl.augment.__all__:
        fn = getattr(fdl.augment, name)
        if not inspect.isfunction(fn):
            continue
        params = inspect.signature(fn).parameters
        required = [
            p
            for p in params.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if [p.name for p in required] in (["images"], ["key", "images"]):
            out.append(name)
    return out


@pytest.mark.parametrize("name", _augment_calls())
def test_augmentations_accept_lists_for_images(name):
    fn = getattr(fdl.augment, name)
    takes_key = "key" in inspect.signature(fn).parameters
    call = (lambda im: fn(KEY, im)) if takes_key else fn
    _same(call(AUGMENT_IMAGES.tolist()), call(AUGMENT_IMAGES))


def test_mixup_accepts_lists():
    labels = np.eye(3, dtype=np.float32)[[0, 2]]
    _same(
        fdl.augment.mixup(KEY, AUGMENT_IMAGES.tolist(), labels.tolist()),
        fdl.augment.mixup(KEY, AUGMENT_IMAGES, labels),
    )


@pytest.mark.parametrize("name", ["is_causal", "scale", "dropout_p"])
def test_attention_static_hyperparameters_name_themselves_when_traced(name):
    q = jnp.ones((1, 2, 4))
    value = {"is_causal": True, "scale": 0.5, "dropout_p": 0.1}[name]
    extra = {"key": KEY} if name == "dropout_p" else {}

    @jax.jit
    def run(v):
        return F.scaled_dot_product_attention(q, q, q, **{name: v}, **extra)

    with pytest.raises(TypeError, match=f"{name} is static"):
        run(jnp.asarray(value))


def test_attention_scale_nan_is_refused():
    q = jnp.ones((1, 2, 4))
    with pytest.raises(ValueError, match="scale must be finite, got scale=nan"):
        F.scaled_dot_product_attention(q, q, q, scale=float("nan"))


def test_uniform_init_needs_a_below_b():
    with pytest.raises(ValueError, match=r"uniform: needs a <= b, got a=1.0, b=0.0"):
        fdl.nn.init.uniform(KEY, (2, 2), a=1.0, b=0.0)
    assert fdl.nn.init.uniform(KEY, (2,), a=0.5, b=0.5).tolist() == [0.5, 0.5]


def test_rope_theta_is_static_and_says_so():
    with pytest.raises(TypeError, match="rope: theta is static"):
        jax.jit(lambda t: F.rope(jnp.ones((1, 3, 4)), theta=t))(jnp.asarray(1e4))


def _huber(d):
    return fdl.losses.huber_loss(jnp.array([1.0, 3.0]), jnp.zeros(2), delta=d)


def _smooth_l1(b):
    return fdl.losses.smooth_l1_loss(jnp.array([1.0, 3.0]), jnp.zeros(2), beta=b)


@pytest.mark.parametrize(
    "fn, good, bad, reference",
    [
        # huber: 0.5 d^2 below delta, delta (|d| - delta/2) above; mean over [1, 3]
        (_huber, 2.0, -1.0, lambda d: (0.5 * 1.0 + d * (3.0 - 0.5 * d)) / 2),
        # smooth L1: 0.5 d^2 / beta below beta, |d| - beta/2 above
        (_smooth_l1, 2.0, -1.0, lambda b: (0.5 / b + (3.0 - 0.5 * b)) / 2),
    ],
)
def test_traced_hyperparameters_work_and_invalid_ones_give_nan(fn, good, bad, reference):
    jitted = jax.jit(fn)
    np.testing.assert_allclose(jitted(jnp.float32(good)), reference(good), rtol=1e-6)
    assert np.isnan(jitted(jnp.float32(bad)))


def test_traced_negative_learning_rate_gives_nan_updates():
    @jax.jit
    def update(lr):
        opt = fdl.optim.sgd(lr)
        params = {"w": jnp.ones(2)}
        return opt.update({"w": jnp.ones(2)}, opt.init(params), params)[0]["w"]

    np.testing.assert_allclose(update(jnp.float32(0.1)), [-0.1, -0.1])
    assert np.isnan(update(jnp.float32(-0.1))).all()


_X = jnp.array([[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]])
_Y = jnp.array([0, 2])
_YB = jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
TRACED_INVALID = {
    "cross_entropy(label_smoothing=1.5)": (
        lambda v: fdl.losses.cross_entropy(_X, _Y, label_smoothing=v),
        1.5,
        0.1,
    ),
    "sigmoid_focal_loss(gamma=-1)": (
        lambda v: fdl.losses.sigmoid_focal_loss(_X, _YB, gamma=v),
        -1.0,
        2.0,
    ),
    "softmax_focal_loss(gamma=-1)": (
        lambda v: fdl.losses.softmax_focal_loss(_X, _Y, gamma=v),
        -1.0,
        2.0,
    ),
    "dice_loss(smooth=-1)": (
        lambda v: fdl.losses.dice_loss(jax.nn.sigmoid(_X), _YB, smooth=v),
        -1.0,
        1.0,
    ),
    "softplus(beta=-1)": (lambda v: fdl.activations.softplus(_X, beta=v), -1.0, 2.0),
}


@pytest.mark.parametrize("name", sorted(TRACED_INVALID))
def test_invalid_traced_hyperparameters_give_nan(name):
    fn, bad, good = TRACED_INVALID[name]
    jitted = jax.jit(fn)
    assert np.isnan(np.asarray(jitted(jnp.float32(bad)))).all(), name
    # a valid traced value equals the eager call with the Python float
    np.testing.assert_allclose(jitted(jnp.float32(good)), fn(good), rtol=1e-6)


@pytest.mark.parametrize("op", ["layer_norm", "rms_norm"])
def test_norm_eps_is_traceable(op):
    x = jnp.asarray(RNG.standard_normal((3, 8)), jnp.float32)
    fn = getattr(F, op)
    np.testing.assert_allclose(
        jax.jit(lambda e: fn(x, eps=e))(jnp.float32(1e-3)), fn(x, eps=1e-3), rtol=1e-6
    )
