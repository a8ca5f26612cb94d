"""The gradient registry itself, and every registered hand-derived gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import grads


@pytest.fixture
def scratch_entry():
    """Register a throw-away entry and remove it afterwards."""
    names = []

    def make(name, **kw):
        grads.register(name, **kw)
        names.append(name)
        return name

    yield make
    for n in names:
        grads._REGISTRY.pop(n, None)


def _examples():
    return [(np.linspace(-3.0, 3.0, 13),)]


def test_check_passes_for_a_correct_backward(scratch_entry):
    name = scratch_entry(
        "_test_square",
        forward=lambda x: x**3,
        backward=lambda x, g: 3 * x**2 * g,
        examples=_examples,
    )
    r = grads.check(name)
    assert r.passed and r.finite
    assert r.max_abs_autodiff < 1e-12 and r.max_rel_fd < 1e-5


def test_check_fails_for_a_wrong_backward(scratch_entry):
    name = scratch_entry(
        "_test_wrong",
        forward=lambda x: x**3,
        backward=lambda x, g: 2 * x**2 * g,
        examples=_examples,
    )
    r = grads.check(name)
    assert not r.passed
    assert r.max_abs_autodiff > 1.0


def test_check_fails_when_backward_and_forward_agree_but_fd_does_not(scratch_entry):
    # autodiff is blinded on purpose (stop_gradient) and agrees with a wrong backward
    # of zero; only the finite differences see the true derivative 2x
    name = scratch_entry(
        "_test_fd",
        forward=lambda x: jax.lax.stop_gradient(x**2),
        backward=lambda x, g: jnp.zeros_like(x),
        examples=_examples,
    )
    r = grads.check(name)
    assert r.max_abs_autodiff == 0.0
    assert not r.passed and r.max_abs_fd > 0.1


def test_multiple_argnums(scratch_entry):
    name = scratch_entry(
        "_test_mul",
        forward=lambda a, b: a * b,
        backward=lambda a, b, g: (g * b, g * a),
        examples=lambda: [(np.arange(4.0), np.ones(4) * 2)],
        argnums=(0, 1),
    )
    assert grads.check(name).passed


def test_duplicate_name_raises(scratch_entry):
    name = scratch_entry(
        "_test_dup", forward=lambda x: x, backward=lambda x, g: g, examples=_examples
    )
    with pytest.raises(ValueError, match="_test_dup"):
        grads.register(name, forward=lambda x: x, backward=lambda x, g: g, examples=_examples)


def test_unknown_name_raises():
    with pytest.raises(ValueError, match="name='nope'"):
        grads.check("nope")


REGISTERED = list(fdl.grads.registry())


@pytest.mark.parametrize("name", REGISTERED)
def test_registered_gradient(name):
    r = grads.check(name)
    assert r.finite, f"{name}: hand-derived gradient has NaN/inf"
    assert r.passed, r


def test_gradcheck_cli_prints_table(capsys):
    from functional_dl.cli import main

    rc = main(["gradcheck", "--filter", "relu"])
    out = capsys.readouterr().out
    assert "vs autodiff" in out and "passed" in out
    assert rc == 0


# ----------------------------------------------------------- the checker can fail
def _scaled(backward, factor):
    def perturbed(*args):
        out = backward(*args)
        if isinstance(out, tuple):
            return tuple(None if o is None else o * factor for o in out)
        return out * factor

    return perturbed


def _bumped(backward, delta):
    def perturbed(*args):
        out = backward(*args)

        def bump(o):
            o = jnp.asarray(o)
            return o.reshape(-1).at[0].add(delta).reshape(o.shape)

        if isinstance(out, tuple):
            return (bump(out[0]),) + tuple(out[1:])
        return bump(out)

    return perturbed


@pytest.mark.parametrize("name", REGISTERED)
def test_perturbed_backward_is_caught(name):
    # every entry: scaling the hand backward by 1 + 1e-4, or adding 1e-4 to one element,
    # makes check fail (the references are computed once and reused)
    assert grads.check(name).passed
    entry = grads.registry()[name]
    backward = entry.backward
    with jax.enable_x64(True):
        largest = max(
            float(np.max(np.abs(np.asarray(leaf)), initial=0.0))
            for args in entry.examples()
            for leaf in jax.tree_util.tree_leaves(
                backward(*args, jax.tree_util.tree_map(jnp.ones_like, entry.forward(*args)))
            )
        )
    if largest > 0:  # scaling an identically zero gradient (dropout(rate=1)) changes nothing
        scaled = grads.check(name, backward=_scaled(backward, 1 + 1e-4))
        assert not scaled.passed, f"{name}: a backward scaled by 1 + 1e-4 passes: {scaled}"
    bumped = grads.check(name, backward=_bumped(backward, 1e-4))
    assert not bumped.passed, f"{name}: a backward with one element + 1e-4 passes: {bumped}"


def test_fd_leg_alone_catches_a_scaled_backward(scratch_entry):
    # no public function, autodiff blinded: only the finite differences see the error
    name = scratch_entry(
        "_test_fd_scaled",
        forward=lambda x: jnp.tanh(x),
        backward=lambda x, g: g * (1 - jnp.tanh(x) ** 2),
        examples=_examples,
    )
    scaled = grads.check(name, backward=lambda x, g: (1 + 1e-5) * g * (1 - jnp.tanh(x) ** 2))
    assert "fd" in scaled.failures and "autodiff" in scaled.failures
    assert grads.check(name).max_rel_fd < 1e-9  # Richardson: far below the 1e-6 bound


def test_public_leg_sees_a_dead_rule(scratch_entry):
    # the public function differentiates something else than the registered rule
    name = scratch_entry(
        "_test_dead_rule",
        forward=lambda x: x**3,
        backward=lambda x, g: 3 * x**2 * g,
        examples=_examples,
        public=grads.hand_rule(lambda x: x**3, lambda x, g: 3.001 * x**2 * g),
    )
    r = grads.check(name)
    assert r.failures == ("public",) and r.rule == "custom_jvp"


def test_reference_leg(scratch_entry):
    name = scratch_entry(
        "_test_reference",
        forward=jnp.tanh,
        backward=lambda x, g: g * (1 - jnp.tanh(x) ** 2),
        examples=_examples,
        reference=lambda x, g: g / np.cosh(np.asarray(x)) ** 2,
        reference_name="sech²",
    )
    r = grads.check(name)
    assert r.passed and r.reference_name == "sech²" and r.max_rel_reference < 1e-12


def test_hand_rule_forward_and_second_order():
    f = grads.hand_rule(
        lambda x, y: jnp.sum(jnp.sin(x) * y),
        lambda x, y, g: (g * jnp.cos(x) * y, g * jnp.sin(x)),
        argnums=(0, 1),
    )
    x, y = jnp.linspace(-1.0, 1.0, 5), jnp.linspace(0.5, 2.0, 5)
    np.testing.assert_allclose(jax.jacfwd(f)(x, y), np.cos(x) * y, rtol=1e-6)
    np.testing.assert_allclose(jax.hessian(f)(x, y), np.diag(-np.sin(x) * y), atol=1e-6)
    np.testing.assert_allclose(jax.grad(f, argnums=1)(x, y), np.sin(x), rtol=1e-6)


def test_gradcheck_cli_markdown(tmp_path):
    from functional_dl.cli import main

    out = tmp_path / "g.md"
    assert main(["gradcheck", "--filter", "tanh", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| tanh |" in text and "custom_jvp" in text and "jax.nn" in text
