"""Hand-derived gradients: a registry and a checker.

Every activation, loss and ``nn.functional`` op registers an entry here next to its
forward formula::

    register(
        "elu",
        forward=_elu_formula,               # plain formula, differentiated by jax
        backward=_elu_backward,             # (x, g) -> dL/dx, derived by hand
        examples=lambda: [(np.linspace(-5, 5, 41),)],
    )

``check(name)`` compares, on every example input, the hand-derived vector-Jacobian
product with ``jax.vjp`` of the forward formula, and the directional derivative
``<grad, v>`` with a central finite difference of ``sum(f(x) * g)`` along a random
direction ``v``. Checks run in float64 so the finite differences are meaningful.

``python -m functional_dl gradcheck`` prints a table over ``registry()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GradEntry", "CheckResult", "register", "registry", "check", "check_all"]


class GradEntry(NamedTuple):
    """One registered hand-derived gradient.

    Attributes:
      name: unique name, e.g. ``"gelu(approximate='tanh')"``.
      forward: the plain forward formula ``f(*args) -> array`` (no custom vjp).
      backward: the hand-derived vjp ``backward(*args, g) -> grads``; one array
        when ``argnums`` has one element, else a tuple aligned with ``argnums``.
      examples: callable returning a list of argument tuples (NumPy arrays / scalars)
        on which the hand-derived and autodiff gradients must agree; include edge
        values (0, kinks, +-20, +-1e4).
      argnums: positions of the differentiable arguments.
      fd_examples: callable returning the argument tuples for the finite-difference
        comparison (default: ``examples``). Leave kinks out of these.
      rtol, atol: tolerance of the comparisons (float64).
      public: the public function with the same positional arguments as ``forward``
        (hyperparameters bound); its gradient must be the registered rule.
    """

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    examples: Callable[[], Sequence[tuple]]
    argnums: tuple[int, ...] = (0,)
    fd_examples: Callable[[], Sequence[tuple]] | None = None
    rtol: float = 1e-6
    atol: float = 1e-8
    public: Callable[..., Any] | None = None


class CheckResult(NamedTuple):
    """Outcome of :func:`check`: largest errors over all examples and leaves."""

    name: str
    max_abs_autodiff: float  # max |hand - jax.vjp|
    max_rel_autodiff: float  # max |hand - jax.vjp| / max(|jax.vjp|, tiny)
    max_abs_fd: float  # max |<hand, v> - finite difference|
    max_rel_fd: float  # the same, relative to |finite difference| + atol
    finite: bool  # hand-derived gradients have no NaN/inf
    passed: bool


_REGISTRY: dict[str, GradEntry] = {}


def register(
    name: str,
    *,
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    examples: Callable[[], Sequence[tuple]],
    argnums: Sequence[int] = (0,),
    fd_examples: Callable[[], Sequence[tuple]] | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    public: Callable[..., Any] | None = None,
) -> GradEntry:
    """Register a hand-derived vjp under ``name`` and return the entry.

    Registering the same name twice raises ``ValueError`` (names are unique).
    """
    if name in _REGISTRY:
        raise ValueError(f"register: name {name!r} is already registered")
    entry = GradEntry(
        name, forward, backward, examples, tuple(argnums), fd_examples, rtol, atol, public
    )
    _REGISTRY[name] = entry
    return entry


def registry() -> dict[str, GradEntry]:
    """All registered entries, ``{name: GradEntry}``, in registration order.

    Modules register their entries when they are imported; this module imports none of
    them (it is the bottom layer). Import what you want to check first:
    ``import functional_dl`` registers every entry of the package.

    Example:
        >>> entry = registry()["tanh"]
        >>> entry.name, entry.argnums
        ('tanh', (0,))
    """
    return dict(_REGISTRY)


def _as_tuple(x: Any, n: int) -> tuple:
    if n == 1 and not isinstance(x, tuple):
        return (x,)
    if not isinstance(x, tuple) or len(x) != n:
        raise ValueError(f"backward must return {n} gradient(s), got {type(x).__name__}")
    return x


def _to64(tree: Any) -> Any:
    def conv(a):
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.floating):
            return jnp.asarray(a, jnp.float64)
        return jnp.asarray(a)

    return jax.tree_util.tree_map(conv, tree)


def _max_rel(err: np.ndarray, ref: np.ndarray, atol: float) -> float:
    return float(np.max(err / (np.abs(ref) + atol))) if err.size else 0.0


def _check_one(
    entry: GradEntry, args: tuple, rng: np.random.Generator, fd: bool
) -> tuple[float, float, float, float, bool, bool]:
    args = _to64(args)
    n = len(entry.argnums)

    def f_of(*diff):
        full = list(args)
        for i, d in zip(entry.argnums, diff, strict=True):
            full[i] = d
        return entry.forward(*full)

    primals = tuple(args[i] for i in entry.argnums)
    y, vjp_fn = jax.vjp(f_of, *primals)
    g = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(np.shape(a))), y)
    auto = vjp_fn(g)
    hand = _as_tuple(entry.backward(*args, g), n)
    hand_l = [np.asarray(h, np.float64) for h in jax.tree_util.tree_leaves(hand)]
    auto_l = [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(auto)]
    finite = all(np.all(np.isfinite(h)) for h in hand_l)
    pairs = list(zip(hand_l, auto_l, strict=True))
    abs_ad = max((float(np.max(np.abs(h - a), initial=0.0)) for h, a in pairs), default=0.0)
    rel_ad = max((_max_rel(np.abs(h - a), a, entry.atol) for h, a in pairs), default=0.0)
    ok = finite and all(np.allclose(h, a, rtol=entry.rtol, atol=entry.atol) for h, a in pairs)
    abs_fd = rel_fd = 0.0
    if fd:
        # directional derivative of s(x) = <f(x), g> along a random unit direction v
        v = tuple(jnp.asarray(rng.standard_normal(np.shape(p))) for p in primals)
        norm = math.sqrt(sum(float(jnp.sum(vi * vi)) for vi in v)) or 1.0
        v = tuple(vi / norm for vi in v)
        scale = max(1.0, max(float(jnp.max(jnp.abs(p))) if np.size(p) else 0.0 for p in primals))
        h = 1e-6 * scale

        def s(t):
            out = f_of(*(p + t * vi for p, vi in zip(primals, v, strict=True)))
            leaves = zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(g), strict=True)
            return sum(float(jnp.sum(o * gi)) for o, gi in leaves)

        fd_val = (s(h) - s(-h)) / (2 * h)
        dir_val = sum(float(jnp.sum(jnp.asarray(hi) * vi)) for hi, vi in zip(hand, v, strict=True))
        abs_fd = abs(dir_val - fd_val)
        fd_atol = max(entry.atol, 1e-7 * scale)
        rel_fd = abs_fd / (abs(fd_val) + fd_atol)
        ok = ok and abs_fd <= max(1e-5, entry.rtol) * abs(fd_val) + 1e3 * fd_atol
    return abs_ad, rel_ad, abs_fd, rel_fd, finite, ok


def check(name: str, *, seed: int = 0) -> CheckResult:
    """Compare entry ``name``'s hand-derived vjp with ``jax.vjp`` and finite differences.

    Args:
      name: a key of :func:`registry`.
      seed: seeds the random cotangents and finite-difference directions.

    Returns:
      a :class:`CheckResult` with the largest errors over all examples.

    Example:
      >>> result = check("tanh")
      >>> result.passed, result.max_rel_autodiff < 1e-6
      (True, True)
    """
    entries = registry()
    if name not in entries:
        raise ValueError(f"check: unknown name={name!r}; see functional_dl.grads.registry()")
    entry = entries[name]
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        rows = [_check_one(entry, tuple(a), rng, fd=False) for a in entry.examples()]
        fd_inputs = (entry.fd_examples or entry.examples)()
        rows += [_check_one(entry, tuple(a), rng, fd=True) for a in fd_inputs]
    cols = list(zip(*rows, strict=True)) if rows else [[0.0]] * 4 + [[True], [True]]
    return CheckResult(
        name=name,
        max_abs_autodiff=max(cols[0]),
        max_rel_autodiff=max(cols[1]),
        max_abs_fd=max(cols[2]),
        max_rel_fd=max(cols[3]),
        finite=all(cols[4]),
        passed=all(cols[5]),
    )


def check_all(*, seed: int = 0) -> list[CheckResult]:
    """:func:`check` every registered entry, in registration order."""
    return [check(name, seed=seed) for name in registry()]
