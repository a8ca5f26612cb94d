"""Every public differentiable op of ``nn.functional`` differentiates with its registered
hand-derived rule, in reverse and forward mode (``jax.jacfwd``, ``jax.hessian``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl  # noqa: F401  (registers every entry)
import functional_dl.nn.functional as F
from functional_dl import grads

# public names of nn.functional without a gradient (integer outputs or no array input)
NOT_DIFFERENTIABLE = {
    "sinusoidal_positional_encoding",
    "alibi_bias",
    "alibi_slopes",
    "relative_position_bucket",
}
# the blockwise attention path is a custom_vjp (memory): reverse mode only, documented
REVERSE_ONLY = ("implementation='blockwise'",)


def _entries_of(fn_name):
    return {
        name: e
        for name, e in grads.registry().items()
        if (name == fn_name or name.startswith(fn_name + "(")) and e.public is not None
    }


NN_ENTRIES = {
    name: e
    for fn in sorted(set(F.__all__) - NOT_DIFFERENTIABLE)
    for name, e in _entries_of(fn).items()
}


@pytest.mark.parametrize("fn", sorted(set(F.__all__) - NOT_DIFFERENTIABLE))
def test_every_differentiable_op_has_a_public_entry(fn):
    assert _entries_of(fn), f"{fn} has no grads.register(..., public=...) entry"


def _f64(a):
    a = np.asarray(a)
    return jnp.asarray(a, jnp.float64) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a)


def _bind(entry, args):
    def f(*diff):
        full = list(args)
        for i, d in zip(entry.argnums, diff, strict=True):
            full[i] = d
        return entry.public(*full)

    return f, tuple(args[i] for i in entry.argnums)


@pytest.mark.parametrize("name", sorted(NN_ENTRIES))
def test_public_gradient_is_the_registered_rule(name):
    entry = NN_ENTRIES[name]
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for example in entry.examples():
            args = tuple(_f64(a) for a in example)
            f, primals = _bind(entry, args)
            y, vjp = jax.vjp(f, *primals)
            g = jax.tree_util.tree_map(lambda t: jnp.asarray(rng.standard_normal(t.shape)), y)
            live = vjp(g)
            rule = entry.backward(*args, g)
            rule = rule if isinstance(rule, tuple) else (rule,)
            for a, b in zip(live, rule, strict=True):
                scale = float(jnp.max(jnp.abs(b))) if b.size else 0.0
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * max(scale, 1.0))


def _small(entry):
    """The first example; its differentiable arguments cut to a few entries where the
    shapes allow (the Hessian grows with the square of the size)."""
    return tuple(_f64(a) for a in entry.examples()[0])


@pytest.mark.parametrize("name", sorted(NN_ENTRIES))
def test_forward_mode_and_hessian(name):
    entry = NN_ENTRIES[name]
    with jax.enable_x64(True):
        args = _small(entry)
        f, primals = _bind(entry, args)
        argnums = tuple(range(len(primals)))
        if any(tag in name for tag in REVERSE_ONLY):
            with pytest.raises(TypeError, match="custom_vjp"):
                jax.jacfwd(f, argnums=argnums)(*primals)
            return
        fwd = jax.jacfwd(f, argnums=argnums)(*primals)
        rev = jax.jacrev(f, argnums=argnums)(*primals)
        leaves = jax.tree_util.tree_leaves
        for a, b in zip(leaves(fwd), leaves(rev), strict=True):  # tuple outputs: recurrent
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
        rng = np.random.default_rng(1)
        cs = [
            jnp.asarray(rng.standard_normal(o.shape)) for o in leaves(jax.eval_shape(f, *primals))
        ]

        def scalar(p0):  # Hessian in the first differentiable argument
            outs = leaves(f(p0, *primals[1:]))
            return sum(jnp.sum(jnp.sin(o) * c) for o, c in zip(outs, cs, strict=True))

        v = jnp.asarray(np.random.default_rng(2).standard_normal(primals[0].shape))
        grad = jax.grad(scalar)
        if primals[0].size <= 48:
            h = jax.hessian(scalar)(primals[0])
            assert h.shape == primals[0].shape * 2
            n = primals[0].size
            hm = np.asarray(h).reshape(n, n)
            np.testing.assert_allclose(hm, hm.T, rtol=1e-7, atol=1e-7 * max(1.0, np.abs(hm).max()))
            hv = (hm @ np.asarray(v).reshape(-1)).reshape(v.shape)
        else:  # forward-over-reverse Hessian-vector product: what jax.hessian computes
            hv = np.asarray(jax.jvp(grad, (primals[0],), (v,))[1])
        assert np.all(np.isfinite(hv))
        if any(tag in name for tag in ("max_pool", "dropout", "embedding", "linear", "conv")):
            return  # piecewise linear or bilinear: nothing more to compare
        eps = 1e-6 * max(1.0, float(jnp.max(jnp.abs(primals[0]))))
        fd = (grad(primals[0] + eps * v) - grad(primals[0] - eps * v)) / (2 * eps)
        np.testing.assert_allclose(fd, hv, atol=1e-4 * max(1.0, float(np.abs(hv).max())))
