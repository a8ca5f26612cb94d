"""``with_master_weights``: bfloat16 parameters learn with a float32 master copy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import functional_dl as fdl

RNG = np.random.default_rng(0)
X = jnp.asarray(RNG.standard_normal((256, 8)), jnp.float32)
W_TRUE = jnp.asarray(RNG.standard_normal(8) * 3.0, jnp.float32)
Y = X @ W_TRUE + 0.5 * jnp.asarray(RNG.standard_normal(256), jnp.float32)


def _loss(params):
    pred = (X.astype(params["w"].dtype) @ params["w"]).astype(jnp.float32) + params["b"]
    return jnp.mean((pred - Y) ** 2)


def _train(optimizer, dtype, steps=1000):
    params = {"w": jnp.ones(8, dtype), "b": jnp.zeros((), dtype)}

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            grads = jax.grad(_loss)(params)
            updates, state = optimizer.update(grads, state, params)
            return (fdl.optim.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, steps)
        return params

    params = run(params)
    assert all(p.dtype == dtype for p in jax.tree.leaves(params))
    return float(_loss(params))


@pytest.mark.parametrize("name", ["adam", "adamw", "lion"])
def test_bf16_parameters_learn_with_master_weights(name):
    make = getattr(fdl.optim, name)
    # the default lr (lion: a sign step of 3e-3) is below half a bf16 step above 1
    lr, steps = (1e-3, 1000) if name != "lion" else (3e-3, 2000)
    fp32 = _train(make(lr), jnp.float32, steps)
    stuck = _train(make(lr), jnp.bfloat16, steps)
    mastered = _train(fdl.optim.with_master_weights(make(lr)), jnp.bfloat16, steps)
    assert stuck > 1.5 * fp32, (stuck, fp32)  # the failure this option exists for
    assert mastered <= 1.05 * fp32, (mastered, fp32)


def test_float32_parameters_get_the_plain_update_bit_for_bit():
    params = {"w": jnp.linspace(-1, 1, 6, dtype=jnp.float32), "n": jnp.arange(3)}
    grads = {"w": jnp.cos(params["w"]), "n": jnp.zeros(3, jnp.int32)}
    inner = optax.adam(1e-2)
    opt = fdl.optim.with_master_weights(inner)
    state = opt.init(params)
    assert state.master == {"w": None, "n": None}
    ours, _ = opt.update(grads, state, params)
    ref, _ = inner.update(grads, inner.init(params), params)
    np.testing.assert_array_equal(ours["w"], ref["w"])


def test_the_parameter_is_the_rounded_master_copy():
    params = {"w": jnp.asarray([1.0, -3.0, 0.01], jnp.bfloat16)}
    opt = fdl.optim.with_master_weights(fdl.optim.adam(3e-3))
    state = opt.init(params)
    for i in range(20):
        grads = {"w": jnp.asarray([1.0, -2.0, 0.5 + i], jnp.bfloat16)}
        updates, state = opt.update(grads, state, params)
        params = fdl.optim.apply_updates(params, updates)
        np.testing.assert_array_equal(params["w"], state.master["w"].astype(jnp.bfloat16))
    # the master copy follows the Adam recursion (float64 NumPy here)
    m = v = np.zeros(3)
    w = np.array([1.0, -3.0, 0.01], np.float64).astype(jnp.bfloat16).astype(np.float64)
    for i in range(20):
        g = np.asarray(np.array([1.0, -2.0, 0.5 + i]).astype(jnp.bfloat16), np.float64)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        t = i + 1
        w = w - 3e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(np.asarray(state.master["w"]), w, rtol=2e-6)


def test_in_a_train_state_and_checkpoint(tmp_path):
    model = fdl.nn.Sequential(fdl.nn.Linear(4))
    opt = fdl.optim.with_master_weights(fdl.optim.adamw(1e-3))
    state = fdl.train.create_train_state(jax.random.key(0), model, opt, (2, 3))
    state = state.replace(params=jax.tree.map(lambda p: p.astype(jnp.bfloat16), state.params))
    state = state.replace(opt_state=opt.init(state.params))
    path = fdl.train.save_checkpoint(tmp_path / "s.safetensors", state)
    back = fdl.train.restore_checkpoint(path, state)
    np.testing.assert_array_equal(
        jax.tree.leaves(back.opt_state.master)[0],
        jax.tree.leaves(state.opt_state.master)[0],
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "adam"}, "optimizer must be an optax.GradientTransformation"),
        ({"dtype": jnp.int32}, "dtype must be a floating dtype"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"optimizer": fdl.optim.adam(1e-3), **kwargs}
    with pytest.raises((TypeError, ValueError), match=match):
        fdl.optim.with_master_weights(args.pop("optimizer"), **args)
    opt = fdl.optim.with_master_weights(fdl.optim.adam(1e-3))
    with pytest.raises(ValueError, match="needs params"):
        opt.update({"w": jnp.ones(2)}, opt.init({"w": jnp.ones(2)}))
