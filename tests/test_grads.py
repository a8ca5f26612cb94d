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
