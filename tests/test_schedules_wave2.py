"""ConstantLR, PolynomialLR, LambdaLR, MultiplicativeLR and CyclicLR against PyTorch's
``get_lr()`` recursions (torch/optim/lr_scheduler.py) ported to float64 here: the value of
``get_last_lr()`` after each ``scheduler.step()``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl.schedules as S
from tests.helpers import assert_close

N = 40


def torch_sequence(get_lr, base_lr, n=N):
    """``get_last_lr()`` after 0..n-1 steps of a chainable scheduler ``get_lr(epoch, lr)``."""
    lrs, lr = [], base_lr
    for epoch in range(n):
        lr = get_lr(epoch, lr)
        lrs.append(lr)
    return np.array(lrs)


def torch_constant(factor, total_iters):
    def get_lr(epoch, lr):
        if epoch == 0:
            return lr * factor
        if epoch != total_iters:
            return lr
        return lr * (1.0 / factor)

    return get_lr


def torch_polynomial(total_iters, power):
    def get_lr(epoch, lr):
        if epoch == 0 or epoch > total_iters:
            return lr
        return lr * ((1.0 - epoch / total_iters) / (1.0 - (epoch - 1) / total_iters)) ** power

    return get_lr


def torch_multiplicative(lr_lambda):
    return lambda epoch, lr: lr * lr_lambda(epoch) if epoch > 0 else lr


def torch_cyclic(base_lr, max_lr, up, down, mode, gamma, momentum=None):
    """CyclicLR.get_lr (closed form in PyTorch); ``momentum=(base, max)`` gives the momentum."""
    down = up if down is None else down
    total = float(up + down)
    ratio = up / total

    def at(k):
        cycle = math.floor(1 + k / total)
        x = 1.0 + k / total - cycle
        s = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        f = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1), "exp_range": gamma**k}[mode]
        if momentum is None:
            return base_lr + (max_lr - base_lr) * s * f
        return momentum[1] - (momentum[1] - momentum[0]) * s * f

    return np.array([at(k) for k in range(N)])


CASES = [
    ("constant", S.constant_lr(0.3), torch_sequence(torch_constant(1 / 3, 5), 0.3)),
    ("constant1", S.constant_lr(0.1, 0.5, 1), torch_sequence(torch_constant(0.5, 1), 0.1)),
    ("poly", S.polynomial_lr(0.2, 10, 2.0), torch_sequence(torch_polynomial(10, 2.0), 0.2)),
    ("poly_half", S.polynomial_lr(1.0, 7, 0.5), torch_sequence(torch_polynomial(7, 0.5), 1.0)),
    (
        "multiplicative",
        S.multiplicative_lr(0.5, lambda i: 0.9 + 0.01 * jnp.sin(i)),
        torch_sequence(torch_multiplicative(lambda i: 0.9 + 0.01 * math.sin(i)), 0.5),
    ),
    (
        "lambda",
        S.lambda_lr(0.1, lambda k: 1.0 / (1.0 + k)),
        np.array([0.1 / (1.0 + k) for k in range(N)]),
    ),
]
for mode, gamma in [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.97)]:
    for up, down in [(4, None), (3, 7)]:
        CASES.append(
            (
                f"cyclic-{mode}-{up}-{down}",
                S.cyclic_lr(0.01, 0.1, up, down, mode, gamma),
                torch_cyclic(0.01, 0.1, up, down, mode, gamma),
            )
        )
        CASES.append(
            (
                f"cyclic_momentum-{mode}-{up}-{down}",
                S.cyclic_momentum(0.8, 0.9, up, down, mode, gamma),
                torch_cyclic(0.01, 0.1, up, down, mode, gamma, momentum=(0.8, 0.9)),
            )
        )


@pytest.mark.parametrize("name,sched,expected", CASES, ids=[c[0] for c in CASES])
def test_matches_pytorch_get_last_lr(name, sched, expected):
    steps = jnp.arange(N)
    got = jax.jit(sched)(steps)  # traced, vectorised
    assert_close(got, expected, rtol=2e-6, atol=1e-8, err_msg=name)
    assert_close(sched(7), expected[7], rtol=2e-6, atol=1e-8)  # eager scalar
    with jax.enable_x64(True):
        assert_close(sched(jnp.arange(N)), expected, rtol=1e-12, atol=1e-14, err_msg=name)


BAD = [
    (lambda: S.constant_lr(0.1, factor=1.5), "factor"),
    (lambda: S.constant_lr(0.1, total_iters=0), "total_iters"),
    (lambda: S.polynomial_lr(0.1, total_iters=0), "total_iters"),
    (lambda: S.polynomial_lr(0.1, power=-1.0), "power"),
    (lambda: S.cyclic_lr(0.1, 1.0, step_size_up=0), "step_size_up"),
    (lambda: S.cyclic_lr(0.1, 1.0, step_size_down=-1), "step_size_down"),
    (lambda: S.cyclic_lr(0.1, 1.0, mode="sine"), "mode"),
    (lambda: S.cyclic_lr(0.1, 1.0, gamma=0.0), "gamma"),
    (lambda: S.cyclic_momentum(-0.1), "base_momentum"),
]


@pytest.mark.parametrize("make,arg", BAD, ids=[a for _, a in BAD])
def test_bad_arguments_raise_naming_them(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_lambda_needs_callable_and_integer_steps():
    with pytest.raises(TypeError, match="lr_lambda"):
        S.lambda_lr(0.1, 0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="step"):
        S.cyclic_lr(0.1, 1.0)(jnp.float32(1.0))


def test_cyclic_momentum_drives_sgd_without_recompiling():
    import functional_dl as fdl

    opt = fdl.optim.sgd(S.cyclic_lr(0.01, 0.1, 2), momentum=S.cyclic_momentum(0.8, 0.9, 2))
    traces = []

    @jax.jit
    def step(p, s):
        traces.append(1)
        u, s = opt.update(p, s, p)
        return fdl.optim.apply_updates(p, u), s

    p = {"w": jnp.ones(2)}
    s = opt.init(p)
    for _ in range(4):
        p, s = step(p, s)
    assert len(traces) == 1 and bool(jnp.all(jnp.isfinite(p["w"])))


@pytest.mark.parametrize("mode", ["triangular", "triangular2"])
@pytest.mark.parametrize("up,down", [(5, None), (4, 7), (3, 0)])
def test_cyclic_float32_keeps_the_cycle_position_at_large_steps(mode, up, down):
    # 1 + k/T − floor(1 + k/T) in float32 loses the position in the cycle once k/T is
    # large (the ulp of 2e6 is 0.25): the rate must stay within float32 rounding of the
    # float64 formula at step 10 million
    d = up if down is None else down
    total, ratio = float(up + d), up / (up + d)
    ks = np.arange(10_000_000, 10_000_000 + 2 * (up + d) + 1)

    def at(k):
        cycle = math.floor(1 + k / total)
        x = 1.0 + k / total - cycle
        s = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        return 0.01 + 0.09 * s * (1.0 if mode == "triangular" else 0.5 ** (cycle - 1))

    got = S.cyclic_lr(0.01, 0.1, up, down, mode)(jnp.asarray(ks, jnp.int32))
    assert got.dtype == jnp.float32
    assert_close(got, np.array([at(int(k)) for k in ks]), rtol=1e-6, atol=0.0)
    mom = S.cyclic_momentum(0.8, 0.9, up, down, mode)(jnp.asarray(ks, jnp.int32))
    expected = np.array([0.9 - (at(int(k)) - 0.01) / 0.09 * 0.1 for k in ks])
    assert_close(mom, expected, rtol=1e-6, atol=0.0)
