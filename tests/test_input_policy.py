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
    "softshrink(lambd=-1)": (lambda v: fdl.activations.softshrink(_X, lambd=v), -1.0, 0.4),
}


@pytest.mark.parametrize("name", sorted(TRACED_INVALID))
def test_invalid_traced_hyperparameters_give_nan(name):
    fn, bad, good = TRACED_INVALID[name]
    jitted = jax.jit(fn)
    assert np.isnan(np.asarray(jitted(jnp.float32(bad)))).all(), name
    # a valid traced value equals the eager call with the Python float
    np.testing.assert_allclose(jitted(jnp.float32(good)), fn(good), rtol=1e-6)


A = fdl.augment
_IMG = jnp.linspace(0.0, 1.0, 2 * 8 * 8 * 3, dtype=jnp.float32).reshape(2, 8, 8, 3)
TRACED_P = {
    "random_grayscale": lambda p: A.random_grayscale(KEY, _IMG, p=p),
    "random_erasing": lambda p: A.random_erasing(KEY, _IMG, p=p),
    "random_horizontal_flip": lambda p: A.random_horizontal_flip(KEY, _IMG, p=p),
    "random_vertical_flip": lambda p: A.random_vertical_flip(KEY, _IMG, p=p),
    "random_invert": lambda p: A.random_invert(KEY, _IMG, p=p),
    "random_perspective": lambda p: A.random_perspective(KEY, _IMG, p=p),
    "random_apply": lambda p: A.random_apply(KEY, _IMG, lambda k, x: 1.0 - x, p=p),
}


@pytest.mark.parametrize("name", sorted(TRACED_P))
@pytest.mark.parametrize("bad", [1.5, -0.5, float("nan")])
def test_invalid_traced_application_probability_gives_nan_images(name, bad):
    """A traced ``p`` outside [0, 1] gives NaN images: not "never" (u < NaN is False)
    and not "always" (u < 1.5)."""
    fn = jax.jit(TRACED_P[name])
    assert np.isnan(np.asarray(fn(jnp.float32(bad)))).all(), name
    for good in (0.0, 1.0):  # valid traced values equal the eager call
        np.testing.assert_allclose(fn(jnp.float32(good)), TRACED_P[name](good), atol=1e-6)


@pytest.mark.parametrize("op", ["layer_norm", "rms_norm"])
def test_norm_eps_is_traceable(op):
    x = jnp.asarray(RNG.standard_normal((3, 8)), jnp.float32)
    fn = getattr(F, op)
    np.testing.assert_allclose(
        jax.jit(lambda e: fn(x, eps=e))(jnp.float32(1e-3)), fn(x, eps=1e-3), rtol=1e-6
    )


def _opt_update(make):
    """One jitted update of the optimizer ``make(v)`` from a traced hyperparameter ``v``."""

    @jax.jit
    def update(v):
        opt = make(v)
        params = {"w": jnp.array([1.0, -2.0])}
        state = opt.init(params)
        grads = {"w": jnp.array([0.5, 0.25])}
        for _ in range(2):  # a second step reaches the moments and momentum buffers
            u, state = opt.update(grads, state, params)
        return u["w"]

    return update


O = fdl.optim
TRACED_OPTIM = {
    "sgd(momentum=-0.5)": (lambda v: O.sgd(0.1, momentum=v), -0.5, 0.9),
    "sgd(weight_decay=-1)": (lambda v: O.sgd(0.1, weight_decay=v), -1.0, 0.1),
    "sgd(dampening=-1)": (lambda v: O.sgd(0.1, momentum=0.9, dampening=v), -1.0, 0.1),
    "adam(betas[0]=1.5)": (lambda v: O.adam(0.1, betas=(v, 0.999)), 1.5, 0.9),
    "adam(betas[1]=-0.1)": (lambda v: O.adam(0.1, betas=(0.9, v)), -0.1, 0.99),
    "adam(eps=-1)": (lambda v: O.adam(0.1, eps=v), -1.0, 1e-3),
    "adamw(weight_decay=-1)": (lambda v: O.adamw(0.1, weight_decay=v), -1.0, 0.01),
    "rmsprop(alpha=1.5)": (lambda v: O.rmsprop(0.1, alpha=v), 1.5, 0.9),
    "rmsprop(momentum=-1)": (lambda v: O.rmsprop(0.1, momentum=v), -1.0, 0.5),
    "lion(betas[0]=2)": (lambda v: O.lion(0.1, betas=(v, 0.99)), 2.0, 0.9),
    "adagrad(eps=-1)": (lambda v: O.adagrad(0.1, eps=v), -1.0, 1e-3),
    "clip_grad_norm(max_norm=-1)": (lambda v: O.clip_grad_norm(v), -1.0, 0.1),
    "clip_grad_value(clip_value=-1)": (lambda v: O.clip_grad_value(v), -1.0, 0.1),
}


@pytest.mark.parametrize("name", sorted(TRACED_OPTIM))
def test_invalid_traced_optimizer_hyperparameters_give_nan_updates(name):
    make, bad, good = TRACED_OPTIM[name]
    update = _opt_update(make)
    assert np.isnan(np.asarray(update(jnp.float32(bad)))).all(), name
    eager = _opt_update(lambda _: make(good))(jnp.float32(0.0))  # the Python float
    np.testing.assert_allclose(update(jnp.float32(good)), eager, rtol=1e-6)


_XN = jnp.asarray(np.random.default_rng(3).standard_normal((4, 6)), jnp.float32)
TRACED_NN = {
    "layer_norm(eps=-1)": (lambda v: F.layer_norm(_XN, eps=v), -1.0, 1e-3),
    "group_norm(eps=-1)": (lambda v: F.group_norm(_XN, 2, eps=v), -1.0, 1e-3),
    "dropout(rate=1.5)": (lambda v: F.dropout(jax.random.key(0), _XN, v), 1.5, 0.25),
}


@pytest.mark.parametrize("name", sorted(TRACED_NN))
def test_invalid_traced_layer_hyperparameters_give_nan(name):
    fn, bad, good = TRACED_NN[name]
    jitted = jax.jit(fn)
    assert np.isnan(np.asarray(jitted(jnp.float32(bad)))).all(), name
    np.testing.assert_allclose(jitted(jnp.float32(good)), fn(good), rtol=1e-6, atol=1e-6)


def test_a_schedule_that_goes_negative_gives_nan_updates_not_ascent():
    opt = fdl.optim.sgd(lambda step: 0.1 - 0.2 * step)  # 0.1, then -0.1
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    u1, state = opt.update({"w": jnp.ones(2)}, state, params)
    u2, _ = opt.update({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(u1["w"], [-0.1, -0.1], rtol=1e-6)
    assert np.isnan(np.asarray(u2["w"])).all()


S = fdl.schedules
TRACED_SCHEDULES = {
    "step_lr(gamma=-1)": (lambda v: S.step_lr(0.1, 2, gamma=v)(3), -1.0, 0.5),
    "exponential_lr(gamma=-1)": (lambda v: S.exponential_lr(0.1, v)(3), -1.0, 0.9),
    "polynomial_lr(power=-1)": (lambda v: S.polynomial_lr(0.1, 10, power=v)(3), -1.0, 2.0),
}


@pytest.mark.parametrize("name", sorted(TRACED_SCHEDULES))
def test_invalid_traced_schedule_hyperparameters_give_nan(name):
    fn, bad, good = TRACED_SCHEDULES[name]
    jitted = jax.jit(fn)
    assert np.isnan(np.asarray(jitted(jnp.float32(bad)))), name
    np.testing.assert_allclose(jitted(jnp.float32(good)), fn(good), rtol=1e-6)


STATIC = {
    "conv2d(stride)": lambda v: F.conv2d(jnp.ones((1, 8, 8, 2)), jnp.ones((3, 3, 2, 2)), stride=v),
    "max_pool2d(kernel_size)": lambda v: F.max_pool2d(jnp.ones((1, 8, 8, 2)), v),
    "adaptive_avg_pool2d(output_size)": lambda v: F.adaptive_avg_pool2d(jnp.ones((1, 8, 8, 2)), v),
    "interpolate(size)": lambda v: F.interpolate(jnp.ones((1, 4, 4, 2)), v),
    "group_norm(num_groups)": lambda v: F.group_norm(jnp.ones((2, 4)), v),
    "pixel_shuffle(upscale_factor)": lambda v: F.pixel_shuffle(jnp.ones((1, 4, 4, 8)), v),
    "center_crop(size)": lambda v: fdl.augment.center_crop(jnp.ones((1, 8, 8, 3)), v),
    "accumulate(every_k)": lambda v: fdl.optim.accumulate(fdl.optim.sgd(0.1), v),
    "step_lr(step_size)": lambda v: S.step_lr(0.1, v),
    "cosine_annealing_lr(T_max)": lambda v: S.cosine_annealing_lr(0.1, v),
}


@pytest.mark.parametrize("name", sorted(STATIC))
def test_static_hyperparameters_name_themselves_when_traced(name):
    arg = name.split("(")[1].rstrip(")")
    with pytest.raises(TypeError, match=rf"{arg} is static"):
        jax.jit(STATIC[name])(jnp.asarray(2))
