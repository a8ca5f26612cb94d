"""optax's "Getting started" (an MLP trained with a hand-written loop), with functional_dl.

The loop is optax's: ``value_and_grad`` of the loss, ``optimizer.update``, apply the
updates; the layers, the loss and the optimizer (an ``optax.GradientTransformation``
following PyTorch's AdamW) come from functional_dl. The data are two interleaved moons.

    python examples/optax_mlp.py            # full run
    python examples/optax_mlp.py --small    # what the tests run
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

import functional_dl as fdl
from functional_dl import nn


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny run (tests)")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    steps = args.steps or (150 if args.small else 1000)

    x, y = fdl.data.make_moons(jax.random.key(0), 512, noise=0.1)
    x_test, y_test = fdl.data.make_moons(jax.random.key(1), 256, noise=0.1)

    model = nn.Sequential(nn.Linear(32), nn.ReLU(), nn.Linear(32), nn.ReLU(), nn.Linear(2))
    params, model_state = model.init(jax.random.key(2), x.shape)
    optimizer = optax.chain(fdl.optim.clip_grad_norm(1.0), fdl.optim.adamw(1e-2))
    opt_state = optimizer.init(params)

    def loss_fn(params, x, y):
        logits, _ = model.apply(params, model_state, x)
        return fdl.losses.cross_entropy(logits, y)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for i in range(steps):
        params, opt_state, loss = step(params, opt_state, x, y)
        if i % max(steps // 5, 1) == 0:
            print(f"step {i:4d}  loss {float(loss):.4f}")

    logits, _ = model.apply(params, model_state, x_test)
    accuracy = float(jnp.mean(logits.argmax(-1) == y_test))
    print(f"test accuracy after {steps} steps: {accuracy:.1%}")
    return accuracy


if __name__ == "__main__":
    main()
