"""PyTorch's ``param_groups`` as a pure transform: ``param_groups`` and ``configurable``.

A leaf's path is its keys/indices joined by ``/`` (``{'blocks': [{'w': ...}]}`` gives
``'blocks/0/w'``), matched against regular expressions with ``re.fullmatch``. Groups
given as overrides (``{'lr': ..., 'weight_decay': 0.0}``) rebuild ``default``'s
constructor with those arguments changed; ``configurable`` is what lets an optimizer
remember its constructor and arguments.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax

__all__ = ["param_groups", "path_str", "configurable"]


def path_str(path: Any) -> str:
    """A key path of ``jax.tree_util.tree_flatten_with_path`` as ``'a/0/b'``."""
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:  # pragma: no cover - unknown key type
            parts.append(str(k))
    return "/".join(parts)


class _Configured(optax.GradientTransformation):
    """A ``GradientTransformation`` that remembers the constructor call that built it."""

    constructor: Callable[..., Any]
    arguments: dict[str, Any]


def configurable(constructor: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an optimizer constructor so that its result remembers how it was built.

    The wrapped constructor has the same signature and docstring; its result is still an
    ``optax.GradientTransformation`` (usable anywhere) carrying ``.constructor`` and
    ``.arguments``, which ``param_groups`` uses to apply per-group overrides.

    Args:
        constructor: a function returning an ``optax.GradientTransformation``.

    Returns:
        The wrapped constructor.

    Example:
        >>> import functional_dl as fdl
        >>> opt = fdl.optim.adamw(1e-3)
        >>> opt.arguments["lr"], opt.arguments["weight_decay"]
        (0.001, 0.01)
    """
    sig = inspect.signature(constructor)

    @functools.wraps(constructor)
    def build(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        tx = constructor(*args, **kwargs)
        out = _Configured(tx.init, tx.update)
        out.constructor = build
        out.arguments = dict(bound.arguments)
        return out

    return build


def _labels_fn(patterns: list[str]) -> Callable[[Any], Any]:
    compiled = [re.compile(p) for p in patterns]

    def labels(params: Any) -> Any:
        def label(path: Any, _leaf: Any) -> str:
            name = path_str(path)
            hits = [i for i, c in enumerate(compiled) if c.fullmatch(name)]
            if len(hits) > 1:
                raise ValueError(
                    f"param_groups: parameter {name!r} matches more than one group: "
                    f"{[patterns[i] for i in hits]}"
                )
            return str(hits[0]) if hits else "default"

        return jax.tree_util.tree_map_with_path(label, params)

    return labels


def param_groups(
    groups: Mapping[str, Any], default: optax.GradientTransformation
) -> optax.GradientTransformation:
    """Different optimizers or hyperparameters for different parameters, chosen by path.

    Each leaf's path (keys/indices joined by ``/``) is matched with ``re.fullmatch``
    against every pattern of ``groups``: the leaf of the one matching pattern is updated by
    that group's optimizer; a leaf matching none by ``default``; a leaf matching two raises
    ``ValueError`` naming it (at ``init``). A group is an ``optax.GradientTransformation``,
    or a dict of overrides of ``default``'s constructor arguments (``{'lr': 1e-4,
    'weight_decay': 0.0}``; schedules allowed), which needs ``default`` built by an
    ``fdl.optim`` constructor. Each group keeps its own state and step count.

    PyTorch: ``torch.optim.AdamW([{'params': decay}, {'params': no_decay,
    'weight_decay': 0.0}], lr=...)``; optax: ``optax.partition`` (this builds one).

    Args:
        groups: ordered mapping ``regex -> optimizer | dict of overrides``.
        default: the optimizer of the remaining leaves.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.param_groups({r".*/b": {"lr": 0.0}}, fdl.optim.sgd(0.5))
        >>> p = {"lin": {"w": jnp.ones(1), "b": jnp.ones(1)}}
        >>> u, _ = opt.update(p, opt.init(p), p)
        >>> float(u["lin"]["w"][0]), float(u["lin"]["b"][0])
        (-0.5, -0.0)
    """
    fn = "param_groups"
    if not isinstance(groups, Mapping):
        raise TypeError(f"{fn}: groups must be a mapping regex -> optimizer, got groups={groups!r}")
    if not isinstance(default, optax.GradientTransformation):
        raise TypeError(f"{fn}: default must be an optax.GradientTransformation, got {default!r}")
    transforms: dict[Any, Any] = {"default": default}
    patterns = []
    for i, (pattern, group) in enumerate(groups.items()):
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ValueError(f"{fn}: invalid regex in groups: {pattern!r} ({exc})") from exc
        patterns.append(pattern)
        if isinstance(group, optax.GradientTransformation):
            transforms[str(i)] = group
        elif isinstance(group, Mapping):
            if not isinstance(default, _Configured):
                raise TypeError(
                    f"{fn}: the overrides of group {pattern!r} need default built by an "
                    f"fdl.optim constructor, got default={default!r}"
                )
            unknown = set(group) - set(default.arguments)
            if unknown:
                raise ValueError(
                    f"{fn}: group {pattern!r} overrides unknown arguments {sorted(unknown)} "
                    f"of {default.constructor.__name__}"
                )
            transforms[str(i)] = default.constructor(**{**default.arguments, **group})
        else:
            raise TypeError(
                f"{fn}: group {pattern!r} must be an optimizer or a dict of overrides, "
                f"got {group!r}"
            )
    return optax.multi_transform(transforms, _labels_fn(patterns))
