"""Shared by the losses: input checks and dtypes, the pointwise-loss pattern, safe powers."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import grads
from .._checks import check_floating, check_same_shape, check_vector
from .._dtypes import compute_dtype
from ._reduction import check_reduction, reduce_loss

# class weights of the gradient-check examples (5 classes)
EXAMPLE_WEIGHT = np.array([0.5, 2.0, 1.0, 1.5, 0.25])


def float_inputs(fn: str, **arrays: Any) -> tuple[list, Any]:
    """Check that the named arrays are floating; return them upcast, and the output dtype.

    The output dtype is the promoted dtype of the arrays (``bfloat16`` in, ``bfloat16``
    out); they are returned in :func:`compute_dtype` of it so half precision is computed
    in float32. ``None`` passes through.
    """
    present = {k: jnp.asarray(v) for k, v in arrays.items() if v is not None}
    for name, a in present.items():
        check_floating(name, a, fn=fn)
    out = jnp.result_type(*present.values())
    cd = compute_dtype(out)
    return [None if v is None else present[k].astype(cd) for k, v in arrays.items()], out


def same_shape_inputs(fn: str, **arrays: Any) -> tuple[list, Any]:
    """:func:`float_inputs` for arrays that must all have the same shape."""
    names = list(arrays)
    for other in names[1:]:
        check_same_shape(names[0], arrays[names[0]], other, arrays[other], fn=fn)
    return float_inputs(fn, **arrays)


def pointwise_loss(
    fn: str, formula: Any, input: Any, target: Any, reduction: str, *hyperparameters: Any
) -> Any:
    """A loss of ``(input, target)`` of one shape: check the reduction and the shapes,
    apply ``formula(x, y, *hyperparameters)`` in float32 or wider, reduce, cast back."""
    check_reduction(reduction, fn=fn)
    (x, y), out = same_shape_inputs(fn, input=input, target=target)
    return reduce_loss(formula(x, y, *hyperparameters), reduction, dtype=out)


def check_broadcastable(name: str, value: Any, shape: tuple, *, fn: str) -> None:
    """Raise ``ValueError`` unless ``value`` broadcasts to ``shape`` without growing it."""
    if value is None:
        return
    vshape = tuple(np.shape(value))
    try:
        ok = np.broadcast_shapes(vshape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{fn}: {name} must broadcast to the input shape {tuple(shape)}, "
            f"got {name}.shape={vshape}"
        )


def check_class_weight(weight: Any, num_classes: int, *, fn: str, name: str = "weight") -> None:
    """Raise ``ValueError`` unless ``weight`` is ``None`` or has shape ``[num_classes]``."""
    check_vector(name, weight, num_classes, fn=fn, size_name="num_classes")


def check_class_target(input: Any, target: Any, *, fn: str) -> None:
    """Integer class targets: ``target.shape == input.shape[:-1]``, integer dtype."""
    if np.ndim(input) < 1:
        raise ValueError(f"{fn}: input must have a class axis, got input.shape=()")
    if not jnp.issubdtype(jnp.result_type(target), jnp.integer):
        raise TypeError(
            f"{fn}: target must hold integer class indices, got target.dtype="
            f"{jnp.result_type(target)}"
        )
    if tuple(np.shape(target)) != tuple(np.shape(input))[:-1]:
        raise ValueError(
            f"{fn}: target must have shape input.shape[:-1]={tuple(np.shape(input))[:-1]}, "
            f"got target.shape={tuple(np.shape(target))}"
        )


def class_target_masks(target: jnp.ndarray, num_classes: int, ignore_index: Any = None):
    """``(valid, bad, safe)`` for integer class targets.

    ``valid``: not ``ignore_index``; ``bad``: valid but outside ``[0, num_classes)``
    (those elements get a NaN loss); ``safe``: the target clipped into range for indexing.
    """
    valid = jnp.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    return valid, bad, jnp.clip(target, 0, num_classes - 1)


def class_mask(y: jax.Array, num_classes: int) -> jax.Array:
    """``[..., C]`` booleans, True at the class ``y`` of each element (``y`` is ``[...]``)."""
    return jax.nn.one_hot(y, num_classes, dtype=jnp.bool_)


def per_class(weight: Any, shape: tuple[int, ...]) -> jax.Array:
    """A per-class ``[C]`` weight (or a scalar) broadcast explicitly to ``[..., C]``."""
    return jnp.broadcast_to(weight, shape)


def poison(bad: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    """``x`` with NaN where ``bad`` (an out-of-range class target), in value and gradient.

    ``x·(NaN if bad else 1)``: a plain ``where(bad, nan, x)`` would give those elements a
    zero gradient, and a training step on a batch with one bad label would go on
    silently from the other elements instead of turning the parameters into NaN.
    """
    x = jnp.asarray(x)
    return x * jnp.where(bad, jnp.nan, 1).astype(x.dtype)


def live(formula: Any, backward: Any, args: tuple, argnums: tuple[int, ...], **kw: Any) -> Any:
    """``formula(*args, **kw)`` whose derivative is the hand vjp ``backward(*args, g, **kw)``.

    A :func:`functional_dl.grads.hand_rule` built for this call: ``None`` arguments are
    bound, the keyword hyperparameters are closed over, ``argnums`` are the positions
    (in ``args``) that ``backward`` differentiates; other floating arguments are
    differentiated by autodiff of ``formula``.
    """
    present = [i for i, a in enumerate(args) if a is not None]

    def full(sub: Any) -> list:
        it = iter(sub)
        return [next(it) if a is not None else None for a in args]

    rule = grads.hand_rule(
        lambda *sub: formula(*full(sub), **kw),
        lambda *sub_g: backward(*full(sub_g[:-1]), sub_g[-1], **kw),
        tuple(present.index(i) for i in argnums),
    )
    return rule(*(args[i] for i in present))


def live_class_loss(
    formula: Any, backward: Any, x: Any, target: Any, classes: Any, reduction: str, **kw: Any
) -> jax.Array:
    """The reduced :func:`live` loss of class scores ``x [..., C]``: ``formula(x, target,
    classes, **kw)`` computed in :func:`compute_dtype` of ``x`` (with the optional per-class
    vector ``classes [C]`` cast to it), ``backward`` its hand vjp in ``x``, reduced back to
    ``x.dtype``."""
    cd = compute_dtype(x.dtype)
    v = None if classes is None else jnp.asarray(classes, cd)
    loss = live(formula, backward, (x.astype(cd), target, v), (0,), **kw)
    return reduce_loss(loss, reduction, dtype=x.dtype)


def relu_nan(z: jnp.ndarray) -> jnp.ndarray:
    """``max(z, 0)`` that keeps NaN (``jnp.where(z > 0, z, 0)`` turns NaN into 0).

    Its autodiff derivative at ``z == 0`` is 0, as PyTorch's ``relu`` and ``clamp_min``.
    """
    return jnp.where((z > 0) | jnp.isnan(z), z, 0)


def pow0(base: jnp.ndarray, exponent: Any) -> jnp.ndarray:
    """``base ** exponent`` for ``base >= 0`` with ``0 ** e = 0`` (``e > 0``), ``0 ** 0 = 1``.

    Its autodiff gradient at ``base == 0`` is 0 instead of NaN/inf (exponents < 1).
    """
    positive = (base > 0) | jnp.isnan(base)  # NaN in, NaN out
    at_zero = jnp.asarray(jnp.asarray(exponent) == 0, base.dtype)
    return jnp.where(positive, jnp.where(positive, base, 1) ** exponent, at_zero)


def dpow0(base: jnp.ndarray, exponent: Any) -> jnp.ndarray:
    """Hand derivative of :func:`pow0`: ``e·base^(e−1)`` for ``base > 0``, else 0."""
    positive = (base > 0) | jnp.isnan(base)
    return jnp.where(positive, exponent * jnp.where(positive, base, 1) ** (exponent - 1), 0)
