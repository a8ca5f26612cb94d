"""Hand-derived gradients: a registry, the rule that makes them live, and a checker.

Every activation, loss and ``nn.functional`` op registers an entry here next to its
forward formula::

    register(
        "elu",
        forward=_elu_formula,               # plain formula, differentiated by jax
        backward=_elu_backward,             # (x, g) -> dL/dx, derived by hand
        examples=lambda: [(np.linspace(-5, 5, 41),)],
        fd_examples=lambda: [(smooth_points,)],   # no kinks: finite differences
        public=elu,                         # the public function: its gradient IS the rule
        reference=lambda x, g: ...,         # optional outside reference (jax.nn, optax)
    )

:func:`hand_rule` turns a ``(forward, backward)`` pair into a ``jax.custom_jvp``
function whose tangent is the transpose of the hand vjp (linear in the tangents), so
``jax.grad`` (by transposition), ``jax.jvp``, ``jax.jacfwd`` and ``jax.hessian`` all use
the hand-derived rule.

:func:`check` compares, in float64, on every example:

(a) the gradient of the public function with the registered backward (they must
    agree to rounding, ``1e-10`` of the largest element: the rule is live);
(b) the backward with ``jax.vjp`` of the plain ``forward`` (``|hand − auto| <=
    rtol·|auto| + atol`` elementwise, ``rtol = 1e-10`` and ``atol = 1e-12`` by default);
(c) on ``fd_examples`` (smooth points), the directional derivative ``<hand, v>`` along
    two random unit directions ``v`` with a Richardson-extrapolated central difference
    of ``s(t) = <f(x + t·v), g>`` (steps ``1e-3`` and ``5e-4``, error ``O(h⁴)``); the
    error relative to ``max(|fd|, 1e-3·‖hand‖)`` must be ``<= 1e-6`` (the floor only
    guards a direction nearly orthogonal to the gradient; no term grows with the
    size of the inputs);
(d) on ``fd_examples``, the backward with ``reference`` (an outside gradient: optax,
    ``jax.nn``, a closed form), ``|hand − ref| <= 1e-8·max|ref|`` elementwise, where one
    is registered (outside libraries choose other conventions at kinks).

The hand gradients must also be finite. ``python -m functional_dl gradcheck`` prints a
table over ``registry()`` (``--markdown`` writes it as Markdown, see GRADIENTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "GradEntry",
    "CheckResult",
    "register",
    "registry",
    "hand_rule",
    "hand_rule_with_residuals",
    "check",
    "check_all",
]

AUTODIFF_RTOL = 1e-10  # (b) default rtol of hand vs jax.vjp of the formula
PUBLIC_RTOL = 1e-10  # (a) public gradient vs hand rule, relative to the largest element
FD_RTOL = 1e-6  # (c) finite differences, relative to |fd| + ||hand||
REFERENCE_RTOL = 1e-8  # (d) outside reference, relative to the largest element
FD_STEP = 1e-3  # Richardson: steps h and h/2 along a unit direction


class GradEntry(NamedTuple):
    """One registered hand-derived gradient.

    Attributes:
      name: unique name, e.g. ``"gelu(approximate='tanh')"``.
      forward: the plain forward formula ``f(*args) -> array`` (no custom rule).
      backward: the hand-derived vjp ``backward(*args, g) -> grads``; one array
        when ``argnums`` has one element, else a tuple aligned with ``argnums``.
      examples: callable returning a list of argument tuples (NumPy arrays / scalars)
        on which the hand-derived and autodiff gradients must agree; include edge
        values (0, kinks, +-20, +-1e4).
      argnums: positions of the differentiable arguments.
      fd_examples: callable returning the argument tuples for the finite-difference
        comparison (default: ``examples``). Leave kinks and extremes out of these.
      rtol, atol: tolerance of the autodiff comparison (float64).
      public: the public function with the same positional arguments as ``forward``
        (hyperparameters bound); its gradient must be the registered rule.
      reference: optional outside reference ``reference(*args, g) -> grads`` (the
        shape of ``backward``'s result), e.g. the gradient of an optax or ``jax.nn``
        function or a closed form.
      reference_name: what ``reference`` is, for the table (e.g. ``"optax"``).
    """

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    examples: Callable[[], Sequence[tuple]]
    argnums: tuple[int, ...] = (0,)
    fd_examples: Callable[[], Sequence[tuple]] | None = None
    rtol: float = AUTODIFF_RTOL
    atol: float = 1e-12
    public: Callable[..., Any] | None = None
    reference: Callable[..., Any] | None = None
    reference_name: str = ""


class CheckResult(NamedTuple):
    """Outcome of :func:`check`: largest errors over all examples and leaves.

    ``max_rel_public`` and ``max_rel_reference`` are ``nan`` when the entry has no
    public function / no reference. ``rule`` is how the public function carries its
    rule: ``"custom_jvp"``, ``"custom_vjp"``, both joined by ``+``, or ``"-"``.
    """

    name: str
    max_abs_autodiff: float  # max |hand - jax.vjp|
    max_rel_autodiff: float  # max |hand - jax.vjp| / (|jax.vjp| + atol)
    max_abs_fd: float  # max |<hand, v> - finite difference|
    max_rel_fd: float  # the same / max(|finite difference|, 1e-3·||hand||)
    finite: bool  # hand-derived gradients have no NaN/inf
    passed: bool
    max_rel_public: float = math.nan  # max |public grad - hand| / max |hand|
    max_rel_reference: float = math.nan  # max |hand - reference| / max |reference|
    reference_name: str = ""
    rule: str = "-"
    failures: tuple[str, ...] = ()  # which legs failed: "public", "autodiff", "fd", ...


_REGISTRY: dict[str, GradEntry] = {}


def register(
    name: str,
    *,
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    examples: Callable[[], Sequence[tuple]],
    argnums: Sequence[int] = (0,),
    fd_examples: Callable[[], Sequence[tuple]] | None = None,
    rtol: float = AUTODIFF_RTOL,
    atol: float = 1e-12,
    public: Callable[..., Any] | None = None,
    reference: Callable[..., Any] | None = None,
    reference_name: str = "",
) -> GradEntry:
    """Register a hand-derived vjp under ``name`` and return the entry.

    Registering the same name twice raises ``ValueError`` (names are unique).
    """
    if name in _REGISTRY:
        raise ValueError(f"register: name {name!r} is already registered")
    if reference is not None and not reference_name:
        reference_name = "closed form"
    entry = GradEntry(
        name,
        forward,
        backward,
        examples,
        tuple(argnums),
        fd_examples,
        rtol,
        atol,
        public,
        reference,
        reference_name,
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


def _is_float(a: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(a), jnp.inexact)


def hand_rule(
    forward: Callable[..., Any], backward: Callable[..., Any], argnums: Sequence[int] = (0,)
) -> Callable[..., Any]:
    """``forward`` as a ``jax.custom_jvp`` function whose derivative is ``backward``.

    ``backward(*args, g)`` is the hand-derived vjp (linear in ``g``); the tangent rule
    is its transpose, ``t ↦ Σ_i J_i t_i``, computed by ``jax.linear_transpose`` and
    linear in the tangents. Reverse mode transposes it back into ``backward``'s own
    operations; forward mode, ``jax.jacfwd`` and ``jax.hessian`` work (higher orders
    differentiate the rule). Floating arguments outside ``argnums`` are differentiated
    by ``jax.jvp`` of ``forward``; integer arguments have no tangent. All arguments are
    positional arrays (bind hyperparameters before).

    Example:
        >>> f = hand_rule(lambda x: x**3, lambda x, g: 3 * x**2 * g)
        >>> float(jax.grad(f)(2.0)), float(jax.jacfwd(f)(2.0)), float(jax.hessian(f)(2.0))
        (12.0, 12.0, 12.0)
    """
    argnums = tuple(argnums)
    f = jax.custom_jvp(forward)

    @f.defjvp
    def _jvp(primals, tangents):
        y = forward(*primals)

        def vjp(g):
            out = _as_tuple(backward(*primals, g), len(argnums))
            return tuple(
                jnp.asarray(o, jnp.result_type(primals[i])) if _is_float(primals[i]) else o
                for o, i in zip(out, argnums, strict=True)
            )

        diff = [i for i in argnums if _is_float(primals[i])]
        ty = None
        if diff:
            cts = tuple(
                jnp.asarray(tangents[i], jnp.result_type(primals[i]))
                if _is_float(primals[i])
                else jnp.zeros(jnp.shape(primals[i]), jnp.result_type(float))
                for i in argnums
            )
            (ty,) = jax.linear_transpose(vjp, y)(cts)
        others = [i for i in range(len(primals)) if i not in argnums and _is_float(primals[i])]
        if others:

            def of_others(*o):
                full = list(primals)
                for i, oi in zip(others, o, strict=True):
                    full[i] = oi
                return forward(*full)

            _, t2 = jax.jvp(
                of_others,
                tuple(primals[i] for i in others),
                tuple(jnp.asarray(tangents[i], jnp.result_type(primals[i])) for i in others),
            )
            ty = t2 if ty is None else jax.tree_util.tree_map(jnp.add, ty, t2)
        if ty is None:
            ty = jax.tree_util.tree_map(jnp.zeros_like, y)
        return y, ty

    return f


def hand_rule_with_residuals(
    fwd: Callable[..., tuple[Any, Any]],
    bwd: Callable[[Any, Any], Any],
    primal: Callable[..., Any] | None = None,
) -> Callable[..., Any]:
    """A ``jax.custom_jvp`` function from a forward that saves residuals and a hand vjp.

    ``fwd(*args) -> (y, residuals)`` runs the forward once and keeps what the backward
    needs; ``bwd(residuals, g) -> grads`` (one per argument, ``None`` for a ``None``
    argument) is the hand-derived vjp, linear in ``g``. The tangent rule is
    ``jax.linear_transpose`` of ``bwd(residuals, ·)``, so reverse mode transposes it back
    into ``bwd``'s own operations (a reverse ``lax.scan`` stays a reverse scan) over the
    residuals of the single forward; forward mode, ``jacfwd`` and ``hessian`` work. Use
    it where the backward needs intermediate values of the forward (recurrences);
    :func:`hand_rule` recomputes them. ``primal(*args)`` (default: ``fwd(*args)[0]``) is
    what runs when nothing is differentiated, e.g. the forward without its residuals.
    Every argument is differentiated.

    Example:
        >>> fwd = lambda x: (jnp.exp(x), jnp.exp(x))
        >>> f = hand_rule_with_residuals(fwd, lambda e, g: (e * g,))
        >>> float(jax.grad(f)(0.0)), float(jax.jacfwd(f)(0.0)), float(jax.hessian(f)(0.0))
        (1.0, 1.0, 1.0)
    """

    f = jax.custom_jvp(primal or (lambda *args: fwd(*args)[0]))

    @f.defjvp
    def _jvp(primals, tangents):
        y, res = fwd(*primals)
        (ty,) = jax.linear_transpose(lambda g: tuple(bwd(res, g)), y)(tuple(tangents))
        return y, ty

    return f


def _to64(tree: Any) -> Any:
    def conv(a):
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.floating):
            return jnp.asarray(a, jnp.float64)
        return jnp.asarray(a)

    return jax.tree_util.tree_map(conv, tree)


def _leaves(tree: Any) -> list[np.ndarray]:
    return [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(tree)]


def _rule_kind(fn: Callable[..., Any], args: tuple) -> str:
    """Which custom-derivative primitives the jaxpr of ``fn(*args)`` holds."""
    try:
        text = str(jax.make_jaxpr(fn)(*args))
    except Exception:  # noqa: BLE001 - only for the table
        return "?"
    kinds = [k for k in ("custom_jvp", "custom_vjp") if k + "_call" in text]
    return "+".join(kinds) or "autodiff"


class _Example(NamedTuple):
    args: tuple
    g: Any
    auto: list[np.ndarray]  # jax.vjp of the plain formula
    public: list[np.ndarray] | None  # jax.vjp of the public function
    reference: list[np.ndarray] | None
    fd: list[tuple[tuple, float]]  # (direction v, finite-difference derivative)


_EVIDENCE: dict[tuple[int, int], tuple[GradEntry, list[_Example], str]] = {}


def _example(entry: GradEntry, args: tuple, rng: np.random.Generator, fd: bool) -> _Example:
    def f_of(fn, diff):
        full = list(args)
        for i, d in zip(entry.argnums, diff, strict=True):
            full[i] = d
        return fn(*full)

    primals = tuple(args[i] for i in entry.argnums)
    y, vjp_fn = jax.vjp(lambda *d: f_of(entry.forward, d), *primals)
    g = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(np.shape(a))), y)
    auto = _leaves(vjp_fn(g))
    public = reference = None
    if entry.public is not None:
        public_fn = entry.public
        _, pub_vjp = jax.vjp(lambda *d: f_of(public_fn, d), *primals)
        public = _leaves(pub_vjp(g))
    if entry.reference is not None and fd:
        reference = _leaves(_as_tuple(entry.reference(*args, g), len(primals)))
    fds = []
    if fd:

        @jax.jit
        def s(t, v):
            out = f_of(entry.forward, tuple(p + t * vi for p, vi in zip(primals, v, strict=True)))
            pairs = zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(g), strict=True)
            return sum(jnp.sum(o * gi) for o, gi in pairs)

        for _ in range(2):
            v = tuple(jnp.asarray(rng.standard_normal(np.shape(p))) for p in primals)
            norm = math.sqrt(sum(float(jnp.sum(vi * vi)) for vi in v)) or 1.0
            v = tuple(vi / norm for vi in v)
            h = FD_STEP
            d1 = (float(s(h, v)) - float(s(-h, v))) / (2 * h)
            d2 = (float(s(h / 2, v)) - float(s(-h / 2, v))) / h
            fds.append((v, (4 * d2 - d1) / 3))
    return _Example(args, g, auto, public, reference, fds)


def _evidence(entry: GradEntry, seed: int) -> tuple[list[_Example], str]:
    key = (id(entry), seed)
    cached = _EVIDENCE.get(key)
    if cached is not None and cached[0] is entry:
        return cached[1], cached[2]
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        examples = [tuple(_to64(tuple(a))) for a in entry.examples()]
        fd_inputs = [tuple(_to64(tuple(a))) for a in (entry.fd_examples or entry.examples)()]
        rows = [_example(entry, a, rng, fd=False) for a in examples]
        rows += [_example(entry, a, rng, fd=True) for a in fd_inputs]
        rule = "-"
        if entry.public is not None and rows:
            rule = _rule_kind(entry.public, rows[0].args)
    _EVIDENCE[key] = (entry, rows, rule)
    return rows, rule


def _rel_max(err: np.ndarray, ref: np.ndarray) -> float:
    if not err.size:
        return 0.0
    return float(np.max(err)) / max(float(np.max(np.abs(ref))), 1e-300)


def _leg(pairs: list[tuple[np.ndarray, np.ndarray]], rtol: float) -> tuple[float, bool]:
    """``(max relative error, all within rtol)`` over ``(value, ref)`` leaves, each error
    relative to the largest element of its ``ref`` leaf."""
    rel, ok = 0.0, True
    for value, ref in pairs:
        err = np.abs(value - ref)
        rel = max(rel, _rel_max(err, ref))
        ok = ok and bool(np.all(err <= rtol * float(np.max(np.abs(ref), initial=0.0)) + 1e-300))
    return rel, ok


def check(name: str, *, seed: int = 0, backward: Callable[..., Any] | None = None) -> CheckResult:
    """Check entry ``name``'s hand-derived vjp (see the module docstring for the legs).

    Args:
      name: a key of :func:`registry`.
      seed: seeds the random cotangents and finite-difference directions.
      backward: check this vjp instead of the registered one (same signature); the
        references (public gradient, autodiff, finite differences) are computed once
        per entry and seed and reused.

    Returns:
      a :class:`CheckResult` with the largest errors over all examples;
      ``passed`` is True when every leg holds and the hand gradients are finite.

    Example:
      >>> result = check("tanh")
      >>> result.passed, result.max_rel_public <= 1e-10, result.max_rel_fd < 1e-6
      (True, True, True)
    """
    entries = registry()
    if name not in entries:
        raise ValueError(f"check: unknown name={name!r}; see functional_dl.grads.registry()")
    entry = entries[name]
    backward = entry.backward if backward is None else backward
    rows, rule = _evidence(entry, seed)
    n = len(entry.argnums)
    abs_ad = rel_ad = abs_fd = rel_fd = 0.0
    rel_pub = rel_ref = math.nan if not rows else 0.0
    finite = True
    failed: set[str] = set()
    with jax.enable_x64(True):
        for ex in rows:
            hand = _as_tuple(backward(*ex.args, ex.g), n)
            hand_l = _leaves(hand)
            if len(hand_l) != len(ex.auto):
                raise ValueError(f"check: {name}: backward returned {len(hand_l)} leaves")
            ok_finite = all(bool(np.all(np.isfinite(h))) for h in hand_l)
            finite = finite and ok_finite
            for h, a in zip(hand_l, ex.auto, strict=True):
                err = np.abs(h - a)
                if err.size:
                    abs_ad = max(abs_ad, float(np.max(err)))
                    rel_ad = max(rel_ad, float(np.max(err / (np.abs(a) + entry.atol))))
                if not np.all(err <= entry.rtol * np.abs(a) + entry.atol):
                    failed.add("autodiff")
            if ex.public is None:
                rel_pub = math.nan
            else:  # relative to the hand rule's largest element
                rel, ok = _leg(
                    [(p, h) for p, h in zip(ex.public, hand_l, strict=True)], PUBLIC_RTOL
                )
                rel_pub = max(rel_pub, rel)  # (stays NaN once an example had no public)
                if not ok:
                    failed.add("public")
            if ex.reference is None:
                if entry.reference is None:
                    rel_ref = math.nan
            else:  # relative to the outside reference's largest element
                pairs = [(h, r) for h, r in zip(hand_l, ex.reference, strict=True)]
                rel, ok = _leg(pairs, REFERENCE_RTOL)
                rel_ref = max(rel_ref, rel)
                if not ok:
                    failed.add("reference")
            for v, fd_val in ex.fd:
                dir_val = sum(
                    float(jnp.sum(jnp.asarray(hi) * vi)) for hi, vi in zip(hand, v, strict=True)
                )
                norm = math.sqrt(sum(float(np.sum(h * h)) for h in hand_l))
                err = abs(dir_val - fd_val)
                abs_fd = max(abs_fd, err)
                rel = err / max(abs(fd_val), 1e-3 * norm, 1e-300)
                rel_fd = max(rel_fd, rel)
                if not rel <= FD_RTOL:
                    failed.add("fd")
    if not finite:
        failed.add("finite")
    return CheckResult(
        name=name,
        max_abs_autodiff=abs_ad,
        max_rel_autodiff=rel_ad,
        max_abs_fd=abs_fd,
        max_rel_fd=rel_fd,
        finite=finite,
        passed=not failed,
        max_rel_public=rel_pub,
        max_rel_reference=rel_ref,
        reference_name=entry.reference_name if entry.reference is not None else "",
        rule=rule,
        failures=tuple(sorted(failed)),
    )


def check_all(*, seed: int = 0) -> list[CheckResult]:
    """:func:`check` every registered entry, in registration order."""
    return [check(name, seed=seed) for name in registry()]
