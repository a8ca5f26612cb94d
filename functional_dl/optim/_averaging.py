"""Weight averaging as chain-final transforms: ``ema``, ``swa`` and ``averaged_params``.

PyTorch's ``torch.optim.swa_utils.AveragedModel`` keeps a copy of the model averaged
after each ``optimizer.step()``; here the average lives in the optimizer state (so it is
checkpointed with it) of a transform placed last in an ``optax.chain``: it sees the final
updates and the current parameters, averages ``params + updates`` and returns the updates
unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._checks import check_in_range
from ._asgd import ScaleByAsgdState
from ._base import increment, zero_count, zeros_like_moment

__all__ = ["AveragedState", "ema", "swa", "averaged_params"]


class AveragedState(NamedTuple):
    """State of ``ema``/``swa``."""

    count: jax.Array  # int32 scalar: updates averaged so far (n_averaged of AveragedModel)
    averaged: Any  # pytree like params: the averaged parameters (0 before the first update)


def _averaging(new_average) -> optax.GradientTransformation:
    def init(params):
        return AveragedState(zero_count(), zeros_like_moment(params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("ema/swa: update() needs params (they average params + updates)")
        first = state.count == 0
        n = state.count.astype(jnp.result_type(float))

        def leaf(u, p, avg):
            dt = avg.dtype
            new = jnp.asarray(p + u).astype(jnp.result_type(p)).astype(dt)
            return jnp.where(first, new, new_average(avg, new, n).astype(dt))

        averaged = jax.tree.map(leaf, updates, params, state.averaged)
        return updates, AveragedState(increment(state.count), averaged)

    return optax.GradientTransformation(init, update)


def ema(decay: float = 0.999) -> optax.GradientTransformation:
    """Exponential moving average of the parameters (``AveragedModel`` with
    ``get_ema_multi_avg_fn(decay)``).

    ``θ̄_1 = θ_1``, then ``θ̄_t = θ̄_{t-1} + (1 - decay)(θ_t - θ̄_{t-1})`` with
    ``θ_t = params + updates``. Place it last in an ``optax.chain``; the updates pass
    through unchanged and ``averaged_params(state)`` reads ``θ̄``. optax:
    ``optax.ema`` averages the updates, not the parameters.

    Args:
        decay: in ``[0, 1]``.

    Returns:
        An ``optax.GradientTransformation`` with ``AveragedState``; ``update`` needs params.

    Example:
        >>> import jax.numpy as jnp, optax, functional_dl as fdl
        >>> opt = optax.chain(fdl.optim.sgd(1.0), fdl.optim.ema(0.5))
        >>> p = {"w": jnp.zeros(1)}
        >>> s = opt.init(p)
        >>> for _ in range(2):
        ...     u, s = opt.update({"w": jnp.array([-2.0])}, s, p)
        ...     p = fdl.optim.apply_updates(p, u)
        >>> float(p["w"][0]), float(fdl.optim.averaged_params(s)["w"][0])
        (4.0, 3.0)
    """
    decay = check_in_range("decay", decay, 0.0, 1.0, fn="ema")
    return _averaging(lambda avg, new, n: avg + (1.0 - decay) * (new - avg))


def swa() -> optax.GradientTransformation:
    """Equal-weight average of the parameters after each update (``AveragedModel``'s default).

    ``θ̄_n = θ̄_{n-1} + (θ_n - θ̄_{n-1}) / n`` over the ``n`` updates seen (the first one
    copies ``θ_1``). Place it last in an ``optax.chain`` (after ``fdl.optim.sgd`` with a
    ``cosine_annealing_lr`` or constant SWA learning rate).

    Returns:
        An ``optax.GradientTransformation`` with ``AveragedState``; ``update`` needs params.

    Paper: Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
    Generalization", 2018.

    Example:
        >>> import jax.numpy as jnp, optax, functional_dl as fdl
        >>> opt = optax.chain(fdl.optim.sgd(1.0), fdl.optim.swa())
        >>> p = {"w": jnp.zeros(1)}
        >>> s = opt.init(p)
        >>> for _ in range(3):
        ...     u, s = opt.update({"w": jnp.array([-1.0])}, s, p)
        ...     p = fdl.optim.apply_updates(p, u)
        >>> float(fdl.optim.averaged_params(s)["w"][0])
        2.0
    """
    return _averaging(lambda avg, new, n: avg + (new - avg) / (n + 1.0))


def _find(state: Any, found: list) -> None:
    if isinstance(state, (AveragedState, ScaleByAsgdState)):
        found.append(state)
    elif isinstance(state, (tuple, list)):
        for s in state:
            _find(s, found)
    elif isinstance(state, dict):
        for s in state.values():
            _find(s, found)


def averaged_params(state: Any) -> Any:
    """The averaged parameters kept by ``ema``, ``swa`` or ``asgd`` in an optimizer state.

    Args:
        state: the state of ``ema``/``swa``/``asgd`` or of a chain (or any nesting of
            tuples, lists and dicts) holding exactly one of them.

    Returns:
        A pytree like the params (in their compute dtype).

    Raises:
        ValueError: if ``state`` holds none or several averages.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> t = fdl.optim.swa()
        >>> p = {"w": jnp.ones(1)}
        >>> u, s = t.update({"w": jnp.ones(1)}, t.init(p), p)
        >>> fdl.optim.averaged_params(s)
        {'w': Array([2.], dtype=float32)}
    """
    found: list = []
    _find(state, found)
    if len(found) != 1:
        raise ValueError(
            f"averaged_params: state must hold exactly one ema/swa/asgd state, found {len(found)}"
        )
    s = found[0]
    return s.averaged if isinstance(s, AveragedState) else s.ax
