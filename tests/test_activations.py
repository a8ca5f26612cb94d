"""Activations against NumPy/SciPy re-implementations of PyTorch's documented formulas.

The references below are written from PyTorch's documentation and backward kernels
(``aten/src/ATen/native/cpu/Activation.cpp``), in float64 NumPy, independently of the
library: values, derivatives with PyTorch's convention at every kink, ``jax.nn`` where
the definition is the same, finite differences, eager = jit = vmap, dtypes, extremes
and bad input.
"""

from __future__ import annotations

import doctest
import importlib
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp

import functional_dl as fdl
from functional_dl import grads
from tests.helpers import FLOAT_DTYPES, assert_close, assert_eager_jit_vmap, assert_finite

A = fdl.activations
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
K = 0.044715  # GELU tanh-approximation constant
C = math.sqrt(2 / math.pi)

# ------------------------------------------------------------- NumPy references


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def np_elu_grad(x, alpha=1.0):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def np_softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


def np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(C * (x + K * x**3)))


def np_gelu_tanh_grad(x):  # PyTorch's GeluBackward (tanh) kernel
    t = np.tanh(C * (x + K * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * K * x * x)


def np_mish_grad(x):  # PyTorch's mish_backward kernel
    tsp = np.tanh(np.logaddexp(0, x))
    return tsp + x * sp.expit(x) * (1 - tsp * tsp)


# name: (ours, reference value, reference derivative incl. PyTorch's kink convention)
ELEMENTWISE = {
    "sigmoid": (A.sigmoid, sp.expit, lambda x: sp.expit(x) * sp.expit(-x)),
    "tanh": (A.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "relu": (A.relu, lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
    "relu6": (A.relu6, lambda x: np.clip(x, 0, 6), lambda x: ((x > 0) & (x < 6)) * 1.0),
    "leaky_relu": (
        A.leaky_relu,
        lambda x: np.where(x > 0, x, 0.01 * x),
        lambda x: np.where(x > 0, 1.0, 0.01),
    ),
    "leaky_relu(negative_slope=0.2)": (
        partial(A.leaky_relu, negative_slope=0.2),
        lambda x: np.where(x > 0, x, 0.2 * x),
        lambda x: np.where(x > 0, 1.0, 0.2),
    ),
    "elu": (A.elu, np_elu, np_elu_grad),
    "elu(alpha=0.5)": (
        partial(A.elu, alpha=0.5),
        partial(np_elu, alpha=0.5),
        partial(np_elu_grad, alpha=0.5),
    ),
    "selu": (
        A.selu,
        lambda x: SELU_SCALE * np_elu(x, SELU_ALPHA),
        lambda x: SELU_SCALE * np_elu_grad(x, SELU_ALPHA),
    ),
    "celu": (
        A.celu,
        lambda x: np.maximum(0, x) + np.minimum(0, np.expm1(np.minimum(x, 0))),
        lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
    ),
    "celu(alpha=2.0)": (
        partial(A.celu, alpha=2.0),
        lambda x: np.maximum(0, x) + np.minimum(0, 2 * np.expm1(np.minimum(x, 0) / 2)),
        lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / 2)),
    ),
    "gelu": (
        A.gelu,
        lambda x: 0.5 * x * (1 + sp.erf(x / math.sqrt(2))),
        lambda x: (
            0.5 * (1 + sp.erf(x / math.sqrt(2)))
            + x * np.exp(-0.5 * np.minimum(x * x, 1e300)) / math.sqrt(2 * math.pi)
        ),
    ),
    "gelu(approximate='tanh')": (
        partial(A.gelu, approximate="tanh"),
        np_gelu_tanh,
        np_gelu_tanh_grad,
    ),
    "silu": (A.silu, lambda x: x * sp.expit(x), lambda x: sp.expit(x) * (1 + x * sp.expit(-x))),
    "mish": (A.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), np_mish_grad),
    "softplus": (A.softplus, np_softplus, lambda x: np.where(x > 20, 1.0, sp.expit(x))),
    "softplus(beta=2.0, threshold=5.0)": (
        partial(A.softplus, beta=2.0, threshold=5.0),
        partial(np_softplus, beta=2.0, threshold=5.0),
        lambda x: np.where(2 * x > 5, 1.0, sp.expit(2 * x)),
    ),
    "softsign": (A.softsign, lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
    "hardtanh": (A.hardtanh, lambda x: np.clip(x, -1, 1), lambda x: ((x > -1) & (x < 1)) * 1.0),
    "hardtanh(min_val=-2.0, max_val=3.0)": (
        partial(A.hardtanh, min_val=-2.0, max_val=3.0),
        lambda x: np.clip(x, -2, 3),
        lambda x: ((x > -2) & (x < 3)) * 1.0,
    ),
    "hardsigmoid": (
        A.hardsigmoid,
        lambda x: np.clip(x + 3, 0, 6) / 6,
        lambda x: np.where((x > -3) & (x < 3), 1 / 6, 0.0),
    ),
    "hardswish": (
        A.hardswish,
        lambda x: x * np.clip(x + 3, 0, 6) / 6,
        lambda x: np.where(x <= -3, 0.0, np.where(x < 3, x / 3 + 0.5, 1.0)),
    ),
    "log_sigmoid": (A.log_sigmoid, lambda x: -np.logaddexp(0, -x), lambda x: sp.expit(-x)),
}
NAMES = list(ELEMENTWISE)

# the grid: smooth points, every kink, 0, +-20 and +-1e4 (all exactly representable).
# Every elementwise input has these 93 elements, so the tests share compilations.
KINKS = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.5, 3.0, 6.0, 20.0]
GRID = np.concatenate([np.linspace(-10, 10, 81), KINKS, [-20.0, 1e4, -1e4]])
SMOOTH = np.linspace(-7.5, 7.7, 93)  # >= 0.039 away from every kink (for differences)
H = 1e-5  # step of the central differences (float64): accurate to ~1e-10


def well_conditioned(name, x):
    """Where float32 can match the float64 reference to float32 tolerance.

    PyTorch's tanh-GELU derivative cancels in float32 for x < -4 (``1 + tanh -> 0``:
    absolute error ~1e-6 on values below 1e-5); float64 checks the whole grid.
    """
    return x >= -4 if name == "gelu(approximate='tanh')" else np.ones(np.shape(x), bool)


def _grad(f, x):
    """Elementwise derivative of an elementwise function, by reverse mode."""
    return jax.grad(lambda v: jnp.sum(f(v)))(x)


def _check_directional_fd(f, x, *, seed=0):
    """vjp, jvp and a central difference of ``f`` agree along a random direction (float64).

    ``<vjp(g), v> == <g, jvp(v)> == <g, (f(x + H v) - f(x - H v)) / 2H>``.
    """
    rng = np.random.default_rng(seed)
    v = jnp.asarray(rng.standard_normal(np.shape(x)))
    y, vjp = jax.vjp(f, x)
    g = jnp.asarray(rng.standard_normal(y.shape))
    rev = jnp.vdot(vjp(g)[0], v)
    fwd = jnp.vdot(g, jax.jvp(f, (x,), (v,))[1])
    fd = jnp.vdot(g, (f(x + H * v) - f(x - H * v)) / (2 * H))
    assert_close(fwd, rev)
    assert_close(rev, fd, dtype=jnp.float32)


# --------------------------------------------------------------- elementwise


@pytest.mark.parametrize("name", NAMES)
def test_values_and_derivatives_match_pytorch_reference(name):
    f, ref, dref = ELEMENTWISE[name]
    x32 = jnp.asarray(GRID, jnp.float32)
    assert_close(f(x32), ref(GRID), dtype=jnp.float32, err_msg=name)
    ok = well_conditioned(name, GRID)
    assert_close(np.asarray(_grad(f, x32))[ok], dref(GRID)[ok], dtype=jnp.float32, err_msg=name)
    with jax.enable_x64(True):
        x64 = jnp.asarray(GRID, jnp.float64)
        assert_close(f(x64), ref(GRID), err_msg=name)
        assert_close(_grad(f, x64), dref(GRID), err_msg=name)


# derivative at the kinks: the values of PyTorch's backward kernels
KINK_GRADIENTS = [
    (A.relu, 0.0, 0.0),
    (A.leaky_relu, 0.0, 0.01),
    (partial(A.leaky_relu, negative_slope=0.2), 0.0, 0.2),
    (A.elu, 0.0, 1.0),
    (partial(A.elu, alpha=0.5), 0.0, 0.5),
    (A.celu, 0.0, 1.0),
    (partial(A.celu, alpha=2.0), 0.0, 1.0),
    (A.selu, 0.0, 1.7580993408473766),
    (A.relu6, 0.0, 0.0),
    (A.relu6, 6.0, 0.0),
    (A.hardtanh, -1.0, 0.0),
    (A.hardtanh, 1.0, 0.0),
    (partial(A.hardtanh, min_val=-2.0, max_val=3.0), -2.0, 0.0),
    (partial(A.hardtanh, min_val=-2.0, max_val=3.0), 3.0, 0.0),
    (A.hardsigmoid, -3.0, 0.0),
    (A.hardsigmoid, 3.0, 0.0),
    (A.hardswish, -3.0, 0.0),
    (A.hardswish, 3.0, 1.0),
    (A.softplus, 0.0, 0.5),
    (partial(A.prelu, weight=jnp.array([0.25])), 0.0, 0.25),
]


def test_kink_gradients_follow_pytorch():
    x = jnp.asarray([k for _, k, _ in KINK_GRADIENTS], jnp.float32)
    expected = np.array([e for _, _, e in KINK_GRADIENTS])

    def all_kinks(v):  # one derivative per (function, kink) pair
        return jnp.stack([jnp.sum(f(v[i])) for i, (f, _, _) in enumerate(KINK_GRADIENTS)])

    assert_close(_grad(all_kinks, x), expected)
    assert_close(jax.jit(partial(_grad, all_kinks))(x), expected)


JAX_NN = {  # same definition; the derivative differs only at kinks (checked above)
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "celu": jax.nn.celu,
    "gelu": partial(jax.nn.gelu, approximate=False),
    "gelu(approximate='tanh')": partial(jax.nn.gelu, approximate=True),
    "silu": jax.nn.silu,
    "mish": jax.nn.mish,
    "softsign": jax.nn.soft_sign,
    "hardtanh": jax.nn.hard_tanh,
    "hardsigmoid": jax.nn.hard_sigmoid,
    "hardswish": jax.nn.hard_swish,
    "log_sigmoid": jax.nn.log_sigmoid,
    "softplus": jax.nn.softplus,
}


def test_agrees_with_jax_nn():
    x, xs = jnp.asarray(GRID, jnp.float32), jnp.asarray(SMOOTH, jnp.float32)
    for name, ref in JAX_NN.items():
        f = ELEMENTWISE[name][0]
        assert_close(f(x), ref(x), err_msg=name)
        assert_close(_grad(f, xs), _grad(ref, xs), err_msg=name)
    assert A.swish is A.silu


def test_registry_has_every_activation():
    names = list(grads.registry())
    for public in A.__all__:
        if public != "swish":
            assert any(n == public or n.startswith(public + "(") for n in names), public
    for name in NAMES:
        assert name in names, name


@pytest.mark.parametrize("name", NAMES)
def test_finite_differences_first_and_second_order(name):
    """Reverse mode, forward mode and the second derivative against central differences."""
    f = ELEMENTWISE[name][0]
    with jax.enable_x64(True):
        x = jnp.asarray(SMOOTH)
        d1 = _grad(f, x)
        assert_close(d1, (f(x + H) - f(x - H)) / (2 * H), dtype=jnp.float32, err_msg=name)
        assert_close(jax.jvp(f, (x,), (jnp.ones_like(x),))[1], d1, err_msg=name)
        df = partial(_grad, f)
        assert_close(
            _grad(df, x), (df(x + H) - df(x - H)) / (2 * H), dtype=jnp.float32, err_msg=name
        )


@pytest.mark.parametrize("name", NAMES)
def test_eager_jit_vmap(name):
    assert_eager_jit_vmap(ELEMENTWISE[name][0], jnp.asarray(SMOOTH, jnp.float32))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_dtype_preserved_and_accurate(dtype):
    x = jnp.asarray(GRID, dtype)
    x64 = np.asarray(x, np.float64)  # the reference at the rounded inputs
    for name in NAMES:
        f, ref, dref = ELEMENTWISE[name]
        y, g = f(x), _grad(f, x)
        assert y.dtype == dtype and g.dtype == dtype, name
        assert_close(y, ref(x64), dtype=dtype, err_msg=name)
        ok = well_conditioned(name, x64)
        assert_close(np.asarray(g)[ok], dref(x64)[ok], dtype=dtype, err_msg=name)


@pytest.mark.parametrize("dtype", (*FLOAT_DTYPES, jnp.float64), ids=lambda d: jnp.dtype(d).name)
def test_no_nan_or_inf_at_extremes(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        big = float(jnp.finfo(dtype).max) / 4  # selu/gelu outputs stay representable
        x = jnp.asarray(np.concatenate([[big, -big], GRID[2:]]), dtype)  # 0, +-20, +-1e4
        for name in NAMES:
            f = ELEMENTWISE[name][0]
            assert_finite((f(x), _grad(f, x)), err_msg=f"{name} {jnp.dtype(dtype).name}")
        x1 = jnp.asarray(1e4, dtype)
        assert float(A.softplus(x1)) == float(x1)  # above the threshold: x itself


def test_traced_hyperparameters():
    x = jnp.asarray(SMOOTH, jnp.float32)
    assert_close(jax.jit(lambda a, v: A.elu(v, alpha=a))(0.5, x), np_elu(SMOOTH, 0.5))
    assert_close(jax.jit(lambda b, v: A.softplus(v, beta=b))(2.0, x), np_softplus(SMOOTH, 2.0))


def test_integer_input_is_promoted():
    y = A.relu(jnp.array([-2, 0, 3]))
    assert y.dtype == jnp.float32
    assert_close(y, np.array([0.0, 0.0, 3.0]))


# ------------------------------------------------------------------ softmax family


def np_softmax(x, axis, mask=None):
    x = np.asarray(x, np.float64)
    mask = np.ones(x.shape, bool) if mask is None else np.broadcast_to(mask, x.shape)
    xm = np.where(mask, x, -np.inf)
    m = np.max(xm, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.where(mask, np.exp(np.where(mask, x - m, -np.inf)), 0.0)
    s = e.sum(axis=axis, keepdims=True)
    return e / np.where(s > 0, s, 1.0)


LOGITS = np.random.default_rng(0).standard_normal((5, 7)) * 4
MASK = np.random.default_rng(1).random((5, 7)) > 0.4
MASK[0] = True
MASK[3] = False  # a fully masked row
COT = np.random.default_rng(2).standard_normal((5, 7))
FULL_ROWS = [0, 1, 2, 4]  # rows with at least one unmasked entry


@pytest.mark.parametrize("axis", [-1, 0, (0, 1)], ids=str)
def test_softmax_and_log_softmax_values(axis):
    x = jnp.asarray(LOGITS, jnp.float32)
    p = np_softmax(LOGITS, axis)
    assert_close(A.softmax(x, axis=axis), p)
    assert_close(A.softmax(x, axis=axis), jax.nn.softmax(x, axis=axis))
    assert_close(A.log_softmax(x, axis=axis), np.log(p))
    assert_close(A.log_softmax(x, axis=axis), jax.nn.log_softmax(x, axis=axis))


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
def test_softmax_gradients_match_reference(masked):
    mask = MASK if masked else None
    g = COT if mask is None else np.where(MASK, COT, 0.0)  # log_softmax ignores masked g
    p = np_softmax(LOGITS, -1, mask)
    with jax.enable_x64(True):
        x = jnp.asarray(LOGITS)

        def soft(v):
            return A.softmax(v, where=mask)

        def log_soft(v):
            return A.log_softmax(v, where=mask)

        _, vjp = jax.vjp(soft, x)
        assert_close(vjp(jnp.asarray(COT))[0], p * (COT - np.sum(COT * p, -1, keepdims=True)))
        _, vjp = jax.vjp(log_soft, x)
        assert_close(vjp(jnp.asarray(COT))[0], g - p * g.sum(-1, keepdims=True))
        _check_directional_fd(soft, x)
        _check_directional_fd(log_soft, x)


def test_masked_softmax():
    x = jnp.asarray(LOGITS, jnp.float32)
    p = np.asarray(A.softmax(x, where=MASK))
    assert_close(p, np_softmax(LOGITS, -1, MASK))
    assert np.all(p[~MASK] == 0.0)  # exactly zero probability
    assert_close(p[FULL_ROWS].sum(-1), np.ones(len(FULL_ROWS)))
    assert np.all(p[3] == 0.0)  # fully masked row: zeros
    assert_close(p[FULL_ROWS], np.asarray(jax.nn.softmax(x, where=MASK))[FULL_ROWS])
    lp = np.asarray(A.log_softmax(x, where=MASK))
    assert np.all(lp[~MASK] == np.finfo(np.float32).min)  # finite stand-in for log 0
    assert_close(lp[MASK], np.asarray(jax.nn.log_softmax(x, where=MASK))[MASK])
    assert_close(np.exp(lp), p)
    for f in (A.softmax, A.log_softmax):
        grad = jax.grad(lambda v, f=f: jnp.sum(jnp.where(MASK, f(v, where=MASK), 0.0) * COT))(x)
        grad = np.asarray(grad)
        assert_finite(grad)
        assert np.all(grad[~MASK] == 0.0) and np.all(grad[3] == 0.0)


def test_masked_softmax_broadcast_mask_equals_softmax_of_kept_entries():
    keep = np.array([True, False, True, True, False, True, True])
    p = np.asarray(A.softmax(jnp.asarray(LOGITS, jnp.float32), where=keep[None, :]))
    assert_close(p[:, keep], np_softmax(LOGITS[:, keep], -1))
    assert np.all(p[:, ~keep] == 0.0)


def test_softmax_extremes_have_no_nan():
    x = jnp.array([[1e4, -1e4, 0.0], [-jnp.inf, -jnp.inf, -jnp.inf], [0.0, -jnp.inf, 1.0]])
    for f in (A.softmax, A.log_softmax):
        y = f(x)
        grad = jax.grad(lambda v, f=f: jnp.sum(jnp.where(jnp.isfinite(f(v)), f(v), 0.0)))(x)
        assert_finite(grad)
        assert not np.any(np.isnan(np.asarray(y)))
    assert_close(A.softmax(x)[0], np.array([1.0, 0.0, 0.0]))
    assert np.all(np.asarray(A.softmax(x)[1]) == 0.0)  # all -inf row: zeros, not NaN


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_softmax_dtypes_and_transforms(dtype):
    x = jnp.asarray(LOGITS, dtype)
    x64 = np.asarray(x, np.float64)

    def soft(v, m):
        return A.softmax(v, where=m)

    def log_soft(v, m):
        return A.log_softmax(v, where=m)

    for mask in (None, MASK):
        p, lp = soft(x, mask), log_soft(x, mask)
        assert p.dtype == dtype and lp.dtype == dtype
        assert_close(p, np_softmax(x64, -1, mask), dtype=dtype)
        grad = jax.grad(lambda v, m=mask: jnp.sum(log_soft(v, m)))(x)
        assert grad.dtype == dtype
        assert_finite((lp, grad))
    assert_eager_jit_vmap(soft, x, jnp.asarray(MASK))
    assert_eager_jit_vmap(log_soft, x, jnp.asarray(MASK))


# ------------------------------------------------------------------------- glu, prelu


@pytest.mark.parametrize("axis", [-1, 0])
def test_glu(axis):
    x = np.random.default_rng(3).standard_normal((6, 8)) * 3
    a, b = np.split(x, 2, axis)
    y = A.glu(jnp.asarray(x, jnp.float32), axis=axis)
    assert_close(y, a * sp.expit(b))
    assert_close(y, jax.nn.glu(jnp.asarray(x, jnp.float32), axis=axis))
    g = np.random.default_rng(4).standard_normal(a.shape)
    with jax.enable_x64(True):
        _, vjp = jax.vjp(partial(A.glu, axis=axis), jnp.asarray(x))
        expected = np.concatenate([g * sp.expit(b), g * a * sp.expit(b) * sp.expit(-b)], axis)
        assert_close(vjp(jnp.asarray(g))[0], expected)
        _check_directional_fd(partial(A.glu, axis=axis), jnp.asarray(x))
    assert_eager_jit_vmap(partial(A.glu, axis=axis), jnp.asarray(x, jnp.float32))


def np_prelu(x, w):
    return np.where(x > 0, x, w * x)


def test_prelu():
    x = np.random.default_rng(5).standard_normal((4, 2, 3)) * 3
    x[0, 0] = 0.0  # the kink: d/dx = weight, d/dweight = 0 (as PyTorch)
    g = np.random.default_rng(6).standard_normal(x.shape)
    for weight in (np.array(0.25), np.array([0.25]), np.array([0.1, -0.3, 2.0])):
        y = A.prelu(jnp.asarray(x, jnp.float32), jnp.asarray(weight, jnp.float32))
        assert_close(y, np_prelu(x, weight))
        with jax.enable_x64(True):
            _, vjp = jax.vjp(A.prelu, jnp.asarray(x), jnp.asarray(weight))
            gx, gw = vjp(jnp.asarray(g))
            assert_close(gx, np.where(x > 0, g, weight * g))
            gw_full = np.where(x > 0, 0.0, x * g)  # summed over the broadcast axes
            expected_gw = gw_full.sum() if weight.size == 1 else gw_full.sum(axis=(0, 1))
            assert_close(gw, np.reshape(expected_gw, weight.shape))
            if weight.size > 1:  # finite differences for the general, per-channel case
                x_smooth = jnp.asarray(np.where(np.abs(x) < 0.1, 0.5, x))
                _check_directional_fd(partial(A.prelu, weight=jnp.asarray(weight)), x_smooth)
                _check_directional_fd(partial(A.prelu, x_smooth), jnp.asarray(weight))
    w = jnp.asarray([0.1, -0.3, 2.0])
    assert_eager_jit_vmap(A.prelu, jnp.asarray(x, jnp.float32), w)
    for dtype in FLOAT_DTYPES:
        assert A.prelu(jnp.asarray(x, dtype), w).dtype == dtype
    assert A.prelu(jnp.float32(-2.0), jnp.array([0.25])).shape == ()


# ---------------------------------------------------------------------- bad input

X = jnp.ones((3, 4))
BAD_INPUT = [
    (lambda: A.gelu(X, approximate="fast"), ValueError, "approximate"),
    (lambda: A.gelu(X, approximate=True), ValueError, "approximate"),
    (lambda: A.softplus(X, beta=0.0), ValueError, "beta"),
    (lambda: A.softplus(X, beta=-1.0), ValueError, "beta"),
    (lambda: A.softplus(X, threshold=float("nan")), ValueError, "threshold"),
    (lambda: A.hardtanh(X, min_val=2.0, max_val=1.0), ValueError, "min_val"),
    (lambda: A.hardtanh(X, min_val=float("nan")), ValueError, "min_val"),
    (lambda: A.leaky_relu(X, negative_slope=float("inf")), ValueError, "negative_slope"),
    (lambda: A.leaky_relu(X, negative_slope=[0.1, 0.2]), TypeError, "negative_slope"),
    (lambda: A.elu(X, alpha=float("nan")), ValueError, "alpha"),
    (lambda: A.celu(X, alpha=0.0), ValueError, "alpha"),
    (lambda: A.glu(jnp.ones((3, 5))), ValueError, "axis"),
    (lambda: A.glu(X, axis=2), ValueError, "axis"),
    (lambda: A.glu(jnp.float32(1.0)), ValueError, "x"),
    (lambda: A.softmax(X, axis=2), ValueError, "axis"),
    (lambda: A.softmax(X, axis=1.0), TypeError, "axis"),
    (lambda: A.log_softmax(X, axis=(1, -1)), ValueError, "axis"),
    (lambda: A.softmax(X, where=jnp.ones((2, 4), bool)), ValueError, "where"),
    (lambda: A.softmax(jnp.float32(1.0)), ValueError, "x"),
    (lambda: A.prelu(X, jnp.ones(3)), ValueError, "weight"),
    (lambda: A.prelu(X, jnp.ones((1, 4))), ValueError, "weight"),
    (lambda: A.relu(jnp.ones(3, jnp.complex64)), TypeError, "x.dtype"),
    (lambda: A.elu(X, 1.0), TypeError, "positional"),
]


@pytest.mark.parametrize(
    "call,exc,word", BAD_INPUT, ids=[f"{i}-{w}" for i, (_, _, w) in enumerate(BAD_INPUT)]
)
def test_bad_input_raises_naming_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


@pytest.mark.parametrize("module", ["_piecewise", "_exponential", "_smooth", "_softmax"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"functional_dl.activations.{module}")
    result = doctest.testmod(
        mod, extraglobs={"fdl": fdl, "jnp": jnp}, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0 and result.failed == 0, result
