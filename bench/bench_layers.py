"""Forward + backward time of the layer ops and of whole train steps, against flax.

Cases (float32, ``jit``; ``--quick``: tiny sizes):
  * conv2d, batch_norm (training), layer_norm: ``x -> (f(x), vjp(g))`` w.r.t. the input
    and the parameters, against the ``flax.linen`` module with the same definition.
  * conv_transpose2d (stride 2, a decoder's upsampling), conv1d: against ``flax.linen``
    ``ConvTranspose`` / 1-D ``Conv``; interpolate (bilinear, x2) against
    ``jax.image.resize(..., 'linear', antialias=False)``.
  * lstm (L=128, N=64, H=256; quick: tiny): our hand BPTT against a ``lax.scan`` of flax's
    ``OptimizedLSTMCell``, and against ``jax.grad`` of our own plain forward scan.
  * MLP and CNN train steps: loss, gradients (``jax.value_and_grad``) and an Adam update
    (``optax.adam`` for both, so only the layers differ), against the same architecture
    written with ``flax.linen``; with the achieved GFLOP/s of both sides (an analytic
    count, ``bench/_flops.py``) as a share of the measured matmul peak (facts).
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
from _flops import cnn_flops, mlp_flops

import functional_dl as fdl
from functional_dl.nn.functional._recurrent import lstm_formula

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


def _model_case(name, ours: fdl.nn.Layer, flax_model: fnn.Module, x, y, flops: float):
    """A train-step case; ``flops``: its analytic count (``bench/_flops.py``)."""
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
        "flax.linen",
        flops,
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
            mlp_flops(mlp_n, [784, hidden, hidden, 10]),
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
            cnn_flops(cnn_n, cnn_hw, width),
        )

    def conv_transpose():
        return _op_case(
            "conv_transpose2d 3x3 stride 2 (decoder upsampling)",
            lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
            fnn.ConvTranspose(c, (3, 3), strides=(2, 2), padding="SAME"),
            arr(max(n // 4, 1), hw, hw, 2 * c),
            (arr(3, 3, 2 * c, c) * 0.1, arr(c) * 0.1),
        )

    def conv1d():
        length = 16 if quick else 1024
        return _op_case(
            "conv1d k=3 (padding=1)",
            lambda x, w, b: F.conv1d(x, w, b, padding=1),
            fnn.Conv(2 * c, (3,), padding=1),
            arr(n, length, c),
            (arr(3, c, 2 * c) * 0.1, arr(2 * c) * 0.1),
        )

    def interpolate():
        x = arr(n, hw, hw, c)

        def ours(x):
            return F.interpolate(x, (2 * hw, 2 * hw), mode="bilinear")

        def ref(x):
            return jax.image.resize(x, (n, 2 * hw, 2 * hw, c), "linear", antialias=False)

        g = jnp.ones((n, 2 * hw, 2 * hw, c))
        return (
            "interpolate bilinear x2",
            _fwd_bwd(ours),
            ((x,), g),
            _fwd_bwd(ref),
            ((x,), g),
            "jax.image.resize",
        )

    seq, batch, hid = (8, 4, 16) if quick else (128, 64, 256)

    def _lstm_args():
        bound = 1 / np.sqrt(hid)
        ws = [arr(hid, 4 * hid), arr(hid, 4 * hid), arr(4 * hid), arr(4 * hid)]
        ws = [jnp.clip(w * bound, -bound, bound) for w in ws]
        x, h0 = arr(batch, seq, hid), jnp.zeros((batch, hid))
        return x, h0, ws

    def lstm_flax():
        x, h0, ws = _lstm_args()
        cell = fnn.OptimizedLSTMCell(hid)
        params = cell.init(KEY, (h0, h0), x[:, 0])

        def ref(x, params):
            def step(carry, xt):
                return cell.apply(params, carry, xt)

            _, ys = jax.lax.scan(step, (h0, h0), jnp.swapaxes(x, 0, 1))
            return jnp.swapaxes(ys, 0, 1)

        def ours(x, h0, c0, *ws):
            return F.lstm(x, h0, c0, *ws)[0]

        g = jnp.ones((batch, seq, hid))
        return (
            f"lstm fwd+bwd (L={seq}, N={batch}, H={hid}): hand BPTT",
            _fwd_bwd(ours),
            ((x, h0, h0, *ws), g),
            _fwd_bwd(ref),
            ((x, params), g),
        )

    def lstm_autodiff():
        x, h0, ws = _lstm_args()

        def ours(x, h0, c0, *ws):
            return F.lstm(x, h0, c0, *ws)[0]

        def plain(x, h0, c0, *ws):
            return lstm_formula(x, h0, c0, *ws)[0]

        g = jnp.ones((batch, seq, hid))
        args = ((x, h0, h0, *ws), g)
        return (
            f"lstm fwd+bwd (L={seq}, N={batch}, H={hid}): hand BPTT vs autodiff of our scan",
            _fwd_bwd(ours),
            args,
            _fwd_bwd(plain),
            args,
            "jax.grad of the plain scan",
        )

    named = {
        "conv_transpose2d": conv_transpose,
        "conv1d": conv1d,
        "interpolate": interpolate,
        "lstm_flax": lstm_flax,
        "lstm_autodiff": lstm_autodiff,
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
        name, ours, our_args, ref, ref_args, *extra = case()
        control = case()[3]  # built again: its own jit, compiled again
        calls = {"ours": (ours, our_args), H.REF: (ref, ref_args), H.CONTROL: (control, ref_args)}
        timings = H.interleave(
            {k: partial(fn, *args) for k, (fn, args) in calls.items()},
            rounds=repeats or (3 if quick else 20),
            warmup=2,
        )
        rows += H.time_rows(name, timings, extra[0] if extra else "flax.linen")
        if len(extra) > 1:  # a train step: its achieved GFLOP/s, both sides
            who = (("ours", "ours"), (H.REF, extra[0]))
            rows += H.gflops_facts(name, extra[1], timings, H.roofline(quick), who)
    return rows


if __name__ == "__main__":
    H.main(run, __doc__)
