"""Fuzzing the public API with hypothesis: random shapes (zero-size included), dtypes and
extreme values. The only exceptions allowed are ``ValueError``/``TypeError`` whose message
names an argument (``name=value``); finite inputs give finite outputs of the input's
shape and dtype (elementwise ops) or a finite scalar (losses).

Reproducible in CI: ``derandomize=True`` (the examples depend only on the test).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functional_dl as fdl

SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FLOATS = {"float16": 60.0, "bfloat16": 1e4, "float32": 1e4}  # extreme, but not overflowing

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def arrays(draw, shape=None, dtypes=tuple(FLOATS)):
    shape = draw(shapes) if shape is None else shape
    dtype = draw(st.sampled_from(dtypes))
    bound = FLOATS.get(dtype, 100.0)
    kind = draw(st.sampled_from(["normal", "extreme", "zeros"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "normal":
        x = rng.standard_normal(shape)
    elif kind == "extreme":
        x = rng.choice([-bound, bound, -1e-30, 0.0, bound / 3], size=shape)
    else:
        x = np.zeros(shape)
    return jnp.asarray(x, dtype)


def _allowed(exc: Exception) -> bool:
    """A clear error: ValueError/TypeError naming an argument (``name=``) or a shape."""
    text = str(exc)
    return isinstance(exc, (ValueError, TypeError)) and ("=" in text or "shape" in text)


def _call(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - the point is to classify it
        assert _allowed(exc), f"{fn.__name__}: unclear {type(exc).__name__}: {exc}"
        return None


ELEMENTWISE = [
    n
    for n in fdl.activations.__all__
    if [
        p.name
        for p in inspect.signature(getattr(fdl.activations, n)).parameters.values()
        if p.default is inspect.Parameter.empty
    ]
    == ["x"]
]


@pytest.mark.parametrize("name", ELEMENTWISE)
@SETTINGS
@given(x=arrays())
def test_activations(name, x):
    out = _call(getattr(fdl.activations, name), x)
    if out is None:
        return
    assert out.dtype == x.dtype, name
    if name != "glu":
        assert out.shape == x.shape, name
    assert np.all(np.isfinite(np.asarray(out, np.float32))), f"{name}: non-finite output"


def test_activations_reject_integer_input_clearly():
    for name in ELEMENTWISE:
        _call(getattr(fdl.activations, name), jnp.arange(4))


PAIRWISE_LOSSES = [
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy_with_logits",
    "soft_margin_loss",
]


@pytest.mark.parametrize("name", PAIRWISE_LOSSES)
@SETTINGS
@given(data=st.data())
def test_losses_on_random_shapes(name, data):
    x = data.draw(arrays(dtypes=("float32", "bfloat16")))
    target = data.draw(arrays(shape=x.shape, dtypes=(str(x.dtype),)))
    if name in ("binary_cross_entropy_with_logits",):
        target = (target > 0).astype(x.dtype)
    if name == "soft_margin_loss":
        target = jnp.where(target > 0, 1.0, -1.0).astype(x.dtype)
    for reduction in ("mean", "sum", "none"):
        out = _call(getattr(fdl.losses, name), x, target, reduction=reduction)
        if out is None:
            continue
        if reduction == "mean" and x.size == 0:
            continue  # the mean of nothing: NaN, as in PyTorch
        assert np.all(np.isfinite(np.asarray(out, np.float32))), f"{name} {reduction}"


@SETTINGS
@given(
    batch=st.integers(0, 3),
    classes=st.integers(1, 5),
    dtype=st.sampled_from(["float32", "bfloat16", "float16"]),
    scale=st.sampled_from([1.0, 1e4]),
)
def test_cross_entropy_extreme_logits(batch, classes, dtype, scale):
    rng = np.random.default_rng(batch * 7 + classes)
    logits = jnp.asarray(rng.standard_normal((batch, classes)) * scale, dtype)
    if dtype == "float16":
        logits = jnp.clip(logits, -6e4, 6e4)
    labels = jnp.asarray(rng.integers(0, classes, batch))
    out = _call(fdl.losses.cross_entropy, logits, labels, reduction="sum")
    if out is not None:
        assert np.isfinite(float(out))
        g = jax.grad(lambda z: fdl.losses.cross_entropy(z, labels, reduction="sum"))(logits)
        assert np.all(np.isfinite(np.asarray(g, np.float32)))


NN_SHAPED = {
    "linear": lambda x: fdl.nn.functional.linear(x, jnp.ones((x.shape[-1], 3), x.dtype)),
    "layer_norm": lambda x: fdl.nn.functional.layer_norm(x),
    "rms_norm": lambda x: fdl.nn.functional.rms_norm(x),
    "dropout": lambda x: fdl.nn.functional.dropout(jax.random.key(0), x, 0.5),
    "softmax": lambda x: fdl.activations.softmax(x),
}


@pytest.mark.parametrize("name", sorted(NN_SHAPED))
@SETTINGS
@given(x=arrays(shape=None))
def test_nn_ops_on_random_shapes(name, x):
    if x.ndim == 0:
        x = x.reshape(1)
    out = _call(NN_SHAPED[name], x)
    if out is not None:
        assert out.dtype == x.dtype
        assert np.all(np.isfinite(np.asarray(out, np.float32))), name
