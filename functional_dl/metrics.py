"""Classification metrics and running means, as pure jit-able functions.

Every metric maps ``(outputs, targets)`` to a float32 scalar, so it can be passed in the
``metrics={"name": fn}`` dict of :func:`functional_dl.train.fit`; :class:`RunningMean`
accumulates (weighted) values inside a jitted loop.

    acc = fdl.metrics.accuracy(logits, labels)
    mean = fdl.metrics.RunningMean.init()
    mean = mean.update(loss, weight=batch_size)
    mean.result()
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._checks import check_int

__all__ = [
    "accuracy",
    "top_k_accuracy",
    "token_accuracy",
    "sequence_accuracy",
    "RunningMean",
]


def _check_targets(outputs: ArrayLike, targets: ArrayLike, fn: str) -> None:
    """``targets`` must have the shape of ``outputs`` without its class axis."""
    out_shape, tgt_shape = jnp.shape(outputs), jnp.shape(targets)
    if len(out_shape) == 0 or out_shape[:-1] != tgt_shape:
        raise ValueError(
            f"{fn}: targets must have the shape of outputs without the class axis, got "
            f"outputs.shape={out_shape} and targets.shape={tgt_shape}"
        )


def _hits(outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    return jnp.argmax(outputs, axis=-1) == jnp.asarray(targets)


def _token_mask(
    targets: ArrayLike, mask: ArrayLike | None, ignore_index: int | None, fn: str
) -> jax.Array:
    """Boolean ``[...]``: the tokens that count (``mask`` and ``targets != ignore_index``)."""
    targets = jnp.asarray(targets)
    keep = jnp.ones(targets.shape, bool)
    if mask is not None:
        if jnp.shape(mask) != targets.shape:
            raise ValueError(
                f"{fn}: mask must have the shape of targets {targets.shape}, "
                f"got mask.shape={jnp.shape(mask)}"
            )
        keep = jnp.asarray(mask, bool)
    if ignore_index is not None:
        check_int("ignore_index", ignore_index, fn=fn)
        keep = keep & (targets != ignore_index)
    return keep


def accuracy(outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Fraction of arg-max predictions equal to the integer targets.

    .. math:: \\mathrm{acc} = \\frac{1}{N}\\sum_i [\\arg\\max_c \\mathrm{outputs}_{ic} = t_i]

    Args:
        outputs: logits or probabilities ``[..., num_classes]``.
        targets: integer classes ``[...]`` (the shape of ``outputs`` without its last axis).

    Returns:
        float32 scalar in ``[0, 1]`` (the mean over every position of ``[...]``).

    torchmetrics: ``torchmetrics.functional.accuracy(outputs, targets, task="multiclass",
    num_classes=C, average="micro")``; PyTorch: ``(outputs.argmax(-1) == t).float().mean()``.

    Example:
        >>> accuracy(jnp.array([[0.1, 2.0], [3.0, 0.0]]), jnp.array([1, 1]))
        Array(0.5, dtype=float32)
    """
    _check_targets(outputs, targets, "accuracy")
    return jnp.mean(_hits(outputs, targets).astype(jnp.float32))


def top_k_accuracy(outputs: ArrayLike, targets: ArrayLike, *, k: int = 5) -> jax.Array:
    """Fraction of targets among the ``k`` highest-scoring classes.

    .. math:: \\frac{1}{N}\\sum_i
              [\\#\\{c : \\mathrm{outputs}_{ic} > \\mathrm{outputs}_{it_i}\\} < k]

    A target counts as a hit when fewer than ``k`` classes score strictly higher than it
    (ties are resolved in the target's favour).

    Args:
        outputs: logits or probabilities ``[..., num_classes]``.
        targets: integer classes ``[...]``.
        k: number of top classes that count (``1 <= k``; ``k >= num_classes`` gives 1).

    Returns:
        float32 scalar in ``[0, 1]``; ``k=1`` equals :func:`accuracy` when the maximum
        is unique.

    torchmetrics: ``torchmetrics.functional.accuracy(outputs, targets, task="multiclass",
    num_classes=C, top_k=k, average="micro")``; PyTorch: ``(outputs.topk(k).indices ==
    t[:, None]).any(-1).float().mean()``.

    Example:
        >>> logits = jnp.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
        >>> float(top_k_accuracy(logits, jnp.array([2, 2]), k=2))
        0.5
    """
    fn = "top_k_accuracy"
    check_int("k", k, minimum=1, fn=fn)
    _check_targets(outputs, targets, fn)
    outputs = jnp.asarray(outputs)
    target_score = jnp.take_along_axis(
        outputs, jnp.asarray(targets)[..., None].astype(jnp.int32), axis=-1
    )  # [..., 1]
    higher = jnp.sum(outputs > target_score, axis=-1)  # [...]
    return jnp.mean((higher < k).astype(jnp.float32))


def token_accuracy(
    outputs: ArrayLike,
    targets: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> jax.Array:
    """Accuracy over the tokens of a batch of sequences, padding left out.

    .. math:: \\frac{\\sum_{n,t} m_{nt}\\,[\\arg\\max_c \\mathrm{outputs}_{ntc} = y_{nt}]}
              {\\sum_{n,t} m_{nt}}

    with ``m = mask & (targets != ignore_index)`` (every token when both are ``None``).

    Args:
        outputs: logits ``[N, T, vocab]`` (any leading shape ``[...]``).
        targets: int ``[N, T]``.
        mask: optional boolean ``[N, T]``, True for the tokens that count.
        ignore_index: optional target id that does not count (e.g. padding).

    Returns:
        float32 scalar in ``[0, 1]``; NaN when no token counts (as torchmetrics).

    torchmetrics: ``torchmetrics.functional.accuracy(outputs.reshape(-1, V),
    targets.reshape(-1), task="multiclass", num_classes=V, ignore_index=ignore_index,
    average="micro")``.

    Example:
        >>> logits = jax.nn.one_hot(jnp.array([[2, 3, 0], [2, 2, 0]]), 4)
        >>> targets = jnp.array([[2, 3, 0], [2, 3, 1]])
        >>> round(float(token_accuracy(logits, targets, ignore_index=1)), 4)
        0.8
    """
    fn = "token_accuracy"
    _check_targets(outputs, targets, fn)
    keep = _token_mask(targets, mask, ignore_index, fn).astype(jnp.float32)
    hits = _hits(outputs, targets).astype(jnp.float32)
    return jnp.sum(hits * keep) / jnp.sum(keep)


def sequence_accuracy(
    outputs: ArrayLike,
    targets: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> jax.Array:
    """Fraction of sequences whose every (counted) token is predicted.

    .. math:: \\frac{1}{N}\\sum_n \\prod_t \\big([\\arg\\max_c \\mathrm{outputs}_{ntc}
              = y_{nt}] \\lor \\lnot m_{nt}\\big)

    with ``m`` as in :func:`token_accuracy`: tokens left out by ``mask`` or
    ``ignore_index`` always count as right.

    Args:
        outputs: logits ``[N, T, vocab]``.
        targets: int ``[N, T]``.
        mask: optional boolean ``[N, T]``, True for the tokens that count.
        ignore_index: optional target id that does not count (e.g. padding).

    Returns:
        float32 scalar in ``[0, 1]``.

    torchmetrics: no single call; ``(preds == targets).all(-1).float().mean()`` in
    PyTorch (exact-match accuracy).

    Example:
        >>> logits = jax.nn.one_hot(jnp.array([[2, 3, 0], [2, 2, 0]]), 4)
        >>> float(sequence_accuracy(logits, jnp.array([[2, 3, 0], [2, 3, 0]])))
        0.5
    """
    fn = "sequence_accuracy"
    _check_targets(outputs, targets, fn)
    if jnp.ndim(targets) < 1:
        raise ValueError(f"{fn}: targets must be [N, T] sequences, got shape {jnp.shape(targets)}")
    keep = _token_mask(targets, mask, ignore_index, fn)
    right = _hits(outputs, targets) | ~keep
    return jnp.mean(jnp.all(right, axis=-1).astype(jnp.float32))


class RunningMean(NamedTuple):
    """A (weighted) running mean as a pure state: ``init``, ``update``, ``result``.

    .. math:: \\mathrm{result} = \\frac{\\sum_i w_i\\,v_i}{\\sum_i w_i}

    Fields::

        total   # pytree of float32 arrays: sum of weight * value, leaf by leaf
        weight  # float32 scalar: sum of the weights

    The state is a pytree of arrays: it can be carried through ``jax.lax.scan``/
    ``fori_loop``, returned from a jitted step, or saved in a checkpoint. Values may be
    any pytree of arrays (a dict of metrics, say) with the structure and shapes given to
    :meth:`init`.

    torchmetrics: ``torchmetrics.aggregation.MeanMetric`` (``update(value, weight)``,
    ``compute()``); Keras: ``keras.metrics.Mean``.

    Example:
        >>> mean = RunningMean.init()
        >>> for loss, n in [(2.0, 1), (1.0, 3)]:
        ...     mean = mean.update(loss, weight=n)
        >>> float(mean.result())
        1.25
        >>> step = jax.jit(lambda m, v: m.update(v))
        >>> m = step(RunningMean.init({"a": jnp.zeros(2)}), {"a": jnp.array([1.0, 3.0])})
        >>> m.result()["a"].tolist()
        [1.0, 3.0]
    """

    total: Any
    weight: jax.Array

    @staticmethod
    def init(like: Any = 0.0) -> RunningMean:
        """An empty mean for values shaped like ``like`` (a scalar by default).

        Args:
            like: a pytree of arrays or scalars giving the structure and shapes of the
                values (only the shapes are read).

        Returns:
            ``RunningMean(total=zeros like ``like``, weight=0)``.
        """
        total = jax.tree_util.tree_map(lambda x: jnp.zeros(jnp.shape(x), jnp.float32), like)
        return RunningMean(total, jnp.zeros((), jnp.float32))

    def update(self, value: Any, weight: ArrayLike = 1.0) -> RunningMean:
        """Add ``value`` with ``weight`` (e.g. a batch mean weighted by the batch size).

        Args:
            value: a pytree with the structure and leaf shapes of the state.
            weight: a non-negative scalar.

        Returns:
            The new state (``self`` is unchanged).
        """
        if jnp.ndim(weight) != 0:
            raise ValueError(
                f"RunningMean.update: weight must be a scalar, got shape {jnp.shape(weight)}"
            )
        w = jnp.asarray(weight, jnp.float32)

        def add(total: jax.Array, v: ArrayLike) -> jax.Array:
            if jnp.shape(v) != total.shape:
                raise ValueError(
                    f"RunningMean.update: value must have the shape given to init "
                    f"{total.shape}, got {jnp.shape(v)}"
                )
            return total + w * jnp.asarray(v, jnp.float32)

        try:
            total = jax.tree_util.tree_map(add, self.total, value)
        except ValueError as exc:
            if "RunningMean" in str(exc):
                raise
            raise ValueError(
                f"RunningMean.update: value must have the tree structure given to init "
                f"({jax.tree_util.tree_structure(self.total)}), got "
                f"{jax.tree_util.tree_structure(value)}"
            ) from exc
        return RunningMean(total, self.weight + w)

    def result(self) -> Any:
        """The weighted mean, leaf by leaf (NaN before any update, as torchmetrics)."""
        return jax.tree_util.tree_map(lambda t: t / self.weight, self.total)
