"""Forward + backward time of the layer ops and of whole train steps, against flax.

Cases (float32, ``jit``; ``--quick``: tiny sizes):
  * conv2d, batch_norm (training), layer_norm: ``x -> (f(x), vjp(g))`` w.r.t. the input
    and the parameters, against the ``flax.linen`` module with the same definition.
  * MLP and CNN train steps: loss, gradients (``jax.value_and_grad``) and an Adam update
    (``optax.adam`` for both, so only the layers differ), against the same architecture
    written with ``flax.linen``.
The two sides and an A/A control (the flax side built and compiled a second time) are
timed in interleaved rounds whose order rotates, so that all see the same machine load.
Reported: median milliseconds and ``ratio = ours / flax`` (lower is better).

    python bench/bench_layers.py [--quick]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import _harness as H
import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import functional_dl as fdl

F = fdl.nn.functional
KEY = jax.random.key(0)


def _fwd_bwd(f: Callable) -> Callable:
    """jit of ``(args, g) -> (f(*args), vjp(g))`` over every argument."""

    def step(args, g):
        y, vjp = jax.vjp(f, *args)
        return y, vjp(g)

    return jax.jit(step)


def _op_case(
    name: str,
    ours: Callable,
    module: fnn.Module,
    x: jax.Array,
    our_params: tuple,
    mutable: list | bool = False,
):
    """``(ours_fn, ours_args, ref_fn, ref_args)`` for a single op and its flax module."""
    variables = module.init(KEY, x)
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    def ref(x, params):
        out = module.apply({"params": params, **rest}, x, mutable=mutable)
        return out[0] if mutable else out

    g = jnp.ones(jax.eval_shape(ref, x, params).shape, x.dtype)
    return name, _fwd_bwd(ours), ((x, *our_params), g), _fwd_bwd(ref), ((x, params), g)


def _ce(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _train_step(loss_fn: Callable, opt: optax.GradientTransformation) -> Callable:
    """jit of one step: ``(params, aux, opt_state, x, y) -> (params, aux, opt_state, loss)``."""

    def step(params, aux, opt_state, x, y):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, aux, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), aux, opt_state, loss

    return jax.jit(step)


class _FlaxMLP(fnn.Module):
    hidden: int

    @fnn.compact
    def __call__(self, x):
        x = fnn.relu(fnn.Dense(self.hidden)(x))
        x = fnn.relu(fnn.Dense(self.hidden)(x))
        return fnn.Dense(10)(x)


class _FlaxCNN(fnn.Module):
    width: int

    @fnn.compact
    def __call__(self, x, train: bool = True):
        for c in (self.width, 2 * self.width):
            x = fnn.Conv(c, (3, 3), padding=1)(x)
            x = fnn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
            x = fnn.max_pool(fnn.relu(x), (2, 2), (2, 2))
        return fnn.Dense(10)(x.reshape(x.shape[0], -1))


def _model_case(name, ours: fdl.nn.Layer, flax_model: fnn.Module, x, y):
    opt = optax.adam(1e-3)
    params, state = ours.init(KEY, x.shape)

    def our_loss(params, state, x, y):
        logits, state = ours.apply(params, state, x, train=True)
        return _ce(logits, y), state

    variables = flax_model.init(KEY, x)
    f_params = variables["params"]
    f_aux = {k: v for k, v in variables.items() if k != "params"}

    def flax_loss(params, aux, x, y):
        if aux:
            logits, aux = flax_model.apply({"params": params, **aux}, x, mutable=list(aux))
        else:
            logits = flax_model.apply({"params": params}, x)
        return _ce(logits, y), aux

    return (
        name,
        _train_step(our_loss, opt),
        (params, state, opt.init(params), x, y),
        _train_step(flax_loss, opt),
        (f_params, f_aux, opt.init(f_params), x, y),
    )


def _cases(quick: bool, only: str | None) -> list[Callable]:
    """Builders (no arguments) of the cases whose name contains ``only``."""
    r = np.random.default_rng(0)

    def arr(*shape):
        return jnp.asarray(r.standard_normal(shape), jnp.float32)

    n, hw, c = (4, 8, 4) if quick else (32, 32, 32)
    rows, d = (8, 16) if quick else (8192, 512)
    mlp_n, hidden = (8, 16) if quick else (256, 512)
    cnn_n, cnn_hw, width = (4, 8, 4) if quick else (64, 28, 16)
    ones, zeros = jnp.ones(c), jnp.zeros(c)

    def conv():
        return _op_case(
            "conv2d 3x3 (padding=1)",
            lambda x, w, b: F.conv2d(x, w, b, padding=1),
            fnn.Conv(2 * c, (3, 3), padding=1),
            arr(n, hw, hw, c),
            (arr(3, 3, c, 2 * c) * 0.1, arr(2 * c) * 0.1),
        )

    def batch_norm():
        return _op_case(
            "batch_norm (training)",
            lambda x, w, b: F.batch_norm(x, zeros, ones, w, b, training=True)[0],
            fnn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5),
            arr(n, hw, hw, c),
            (ones, zeros),
            mutable=["batch_stats"],
        )

    def layer_norm():
        return _op_case(
            "layer_norm",
            lambda x, w, b: F.layer_norm(x, w, b),
            fnn.LayerNorm(epsilon=1e-5),
            arr(rows, d),
            (jnp.ones(d), jnp.zeros(d)),
        )

    def mlp():
        nn = fdl.nn
        model = nn.Sequential(
            nn.Linear(hidden), nn.ReLU(), nn.Linear(hidden), nn.ReLU(), nn.Linear(10)
        )
        return _model_case(
            f"MLP train step (784-{hidden}-{hidden}-10)",
            model,
            _FlaxMLP(hidden),
            arr(mlp_n, 784),
            jnp.arange(mlp_n) % 10,
        )

    def cnn():
        nn, layers = fdl.nn, []
        for ch in (width, 2 * width):
            layers += [nn.Conv2d(ch, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2d(2)]
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(10))
        return _model_case(
            f"CNN train step (conv-bn-relu-pool x2, {cnn_hw}x{cnn_hw})",
            model,
            _FlaxCNN(width),
            arr(cnn_n, cnn_hw, cnn_hw, 1),
            jnp.arange(cnn_n) % 10,
        )

    named = {
        "conv2d": conv,
        "batch_norm": batch_norm,
        "layer_norm": layer_norm,
        "MLP": mlp,
        "CNN": cnn,
    }
    return [build for name, build in named.items() if only is None or only in name]


def run(quick: bool = False, *, repeats: int | None = None, only: str | None = None) -> list[dict]:
    """Time every case; return rows ``name, value, unit, reference, ref_value, ratio``
    (and the A/A control of the flax side against its own second compile).

    ``repeats`` overrides the number of interleaved rounds (20 after 2 warm-up calls;
    quick: 3); ``only`` keeps the cases whose name contains it.
    """
    rows = []
    for case in _cases(quick, only):
        name, ours, our_args, ref, ref_args = case()
        _, _, _, control, _ = case()  # built again: its own jit, compiled again
        calls = {"ours": (ours, our_args), H.REF: (ref, ref_args), H.CONTROL: (control, ref_args)}
        timings = H.interleave(
            {k: partial(fn, *args) for k, (fn, args) in calls.items()},
            rounds=repeats or (3 if quick else 20),
            warmup=2,
        )
        rows += H.time_rows(name, timings, "flax.linen")
    return rows


if __name__ == "__main__":
    H.main(run, __doc__)
