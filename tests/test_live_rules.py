"""The hand-derived rules are the live gradients of the public activations and losses.

Walks the public API of ``fdl.activations`` and ``fdl.losses``: every public
differentiable function has registered entries naming it as ``public``, its gradient
equals the registered backward (values compared, float64), ``jax.jacfwd`` and
``jax.hessian`` work on it and agree with autodiff of the plain formula, and a NaN
input gives a NaN output.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import grads

MODULES = {"activations": fdl.activations, "losses": fdl.losses}
NOT_DIFFERENTIABLE: set[str] = set()  # every public function of both areas is


def _public_names():
    return [
        (area, name)
        for area, module in MODULES.items()
        for name in module.__all__
        if callable(getattr(module, name)) and name not in NOT_DIFFERENTIABLE
    ]


def _entries_of(name):
    return [e for n, e in grads.registry().items() if n.split("(")[0] == name]


LIVE = [
    n
    for n, e in grads.registry().items()
    if n.split("(")[0] in set(fdl.activations.__all__) | set(fdl.losses.__all__)
]


@pytest.mark.parametrize(("area", "name"), _public_names())
def test_every_public_function_registers_its_live_rule(area, name):
    entries = _entries_of(name)
    if name == "swish":  # an alias of silu
        entries = _entries_of("silu")
    assert entries, f"{area}.{name} has no registered hand-derived gradient"
    assert all(e.public is not None for e in entries), f"{name}: an entry names no public"


@pytest.mark.parametrize("name", LIVE)
def test_public_gradient_is_the_registered_rule(name):
    r = grads.check(name)
    assert r.max_rel_public <= 1e-10, r
    assert "public" not in r.failures, r
    assert r.rule == "custom_jvp", f"{name}: public function carries {r.rule}"


def _point(entry):
    points = entry.fd_examples() if entry.fd_examples else []
    points = points or entry.examples()  # an entry may have no smooth points (straight-through)
    return tuple(np.asarray(a) for a in points[0])


@pytest.mark.parametrize("name", LIVE)
def test_forward_mode_and_hessian(name):
    entry = grads.registry()[name]
    args = _point(entry)
    i = entry.argnums[0]
    with jax.enable_x64(True):
        args = tuple(jnp.asarray(a, jnp.float64) if a.dtype.kind == "f" else a for a in args)

        def of(fn):
            def f(x):
                full = list(args)
                full[i] = x
                return jnp.sum(fn(*full) * cot)

            return f

        cot = jnp.asarray(np.random.default_rng(0).standard_normal(np.shape(entry.forward(*args))))
        public, plain = of(entry.public), of(entry.forward)
        x = args[i]
        fwd = jax.jacfwd(public)(x)
        np.testing.assert_allclose(fwd, jax.grad(plain)(x), rtol=1e-9, atol=1e-12)
        hess = jax.hessian(public)(x)
        ref = jax.hessian(plain)(x)
        assert np.all(np.isfinite(hess))
        np.testing.assert_allclose(hess, ref, rtol=1e-7, atol=1e-9 * np.max(np.abs(ref)) + 1e-12)
        _, tangent = jax.jvp(public, (x,), (jnp.ones_like(x),))
        np.testing.assert_allclose(tangent, jnp.sum(fwd), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", LIVE)
def test_nan_in_nan_out(name):
    # every differentiable argument in turn: one NaN element gives a NaN output
    entry = grads.registry()[name]
    args = _point(entry)
    for i in entry.argnums:
        bad = list(args)
        a = np.array(bad[i], np.float32)
        a[0] = np.nan  # a whole row: some element of it is unmasked (softmax where=)
        bad[i] = a
        out = entry.public(*(np.asarray(b, np.float32) if b.dtype.kind == "f" else b for b in bad))
        assert np.any(np.isnan(np.asarray(out))), f"{name}: NaN in argument {i}, out {out}"


def _nan_at(a, index=0):
    a = np.array(a, np.float32)
    a.flat[index] = np.nan
    return a


@pytest.mark.parametrize("which", [0, 1, 2])
def test_margin_losses_propagate_nan_with_every_reduction(which):
    # issue: hinge, margin ranking, triplet and cosine embedding returned 0.0 / 2.0
    rng = np.random.default_rng(0)
    x1, x2, x3 = (rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3))
    y = np.array([1.0, -1.0, 1.0, -1.0], np.float32)
    for reduction in ("mean", "sum"):
        L = fdl.losses
        if which < 2:
            args = [x1, np.sign(x2)]
            args[which] = _nan_at(args[which])
            assert np.isnan(L.hinge_loss(*args, reduction=reduction))
        trip = [x1, x2, x3]
        trip[which] = _nan_at(trip[which])
        assert np.isnan(L.triplet_margin_loss(*trip, reduction=reduction))
        cos = [x1, x2, y]
        cos[which] = _nan_at(cos[which], 1)  # row 1 has target −1 (the clamped branch)
        assert np.isnan(L.cosine_embedding_loss(*cos, reduction=reduction))
        rank = [x1[:, 0], x2[:, 0], y]
        rank[which] = _nan_at(rank[which])
        assert np.isnan(L.margin_ranking_loss(*rank, reduction=reduction))
