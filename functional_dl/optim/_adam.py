"""Adam, AdamW, NAdam, RAdam and Adamax: PyTorch's algorithms as optax transformations.

Every constructor validates its hyperparameters and chains
``maximize? → L2 (coupled) | direction → decay (decoupled) → scale_by_lr``.
``betas[0]`` (and ``betas[1]``) may be schedules ``step -> beta``, so
``fdl.schedules.one_cycle_momentum`` can cycle Adam's beta1 as PyTorch's ``OneCycleLR``
does with ``cycle_momentum=True``.
"""

from __future__ import annotations

from typing import Any

import optax

from ._adam_moments import scale_by_adam, scale_by_adamax, scale_by_nadam, scale_by_radam
from ._base import ScalarOrSchedule, validate
from ._transforms import chain_optimizer

__all__ = ["adam", "adamw", "nadam", "radam", "adamax"]


def adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    .. math::
        g_t \\leftarrow g_t + \\lambda\\theta_{t-1}, \\quad
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,

        \\theta_t = \\theta_{t-1} - \\gamma \\frac{m_t/(1-\\beta_1^t)}
                    {\\sqrt{\\hat v_t}/\\sqrt{1-\\beta_2^t} + \\epsilon}

    ``v̂ = max(v̂_{t-1}, v_t)`` with ``amsgrad``, else ``v_t``. ``weight_decay`` is the
    coupled L2 penalty (use ``adamw`` for decoupled decay). ``betas[0]`` may be a schedule,
    e.g. ``fdl.schedules.one_cycle_momentum(...)`` next to ``lr=one_cycle_lr(...)`` (PyTorch's
    ``OneCycleLR`` cycling beta1); the bias correction then uses the current beta1.

    Equivalent: ``torch.optim.Adam(params, lr, betas, eps, weight_decay, amsgrad,
    maximize=maximize)``; ``optax.adam(lr, b1, b2, eps)`` for ``weight_decay=0``,
    ``amsgrad=False`` (``optax.amsgrad`` keeps the max of the bias-corrected moment).

    Args:
        lr: learning rate ``>= 0`` or schedule ``step -> lr``.
        betas: ``(beta1, beta2)``, each in ``[0, 1)`` or a schedule.
        eps: ``>= 0``, added outside the root.
        weight_decay: L2 penalty ``>= 0``.
        amsgrad: AMSGrad variant.
        maximize: ascend the objective.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.adam(1e-2)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, state = opt.update({"w": jnp.ones(2)}, opt.init(params), params)
        >>> fdl.optim.apply_updates(params, updates)["w"]
        Array([0.99, 0.99], dtype=float32)
    """
    lr, betas, eps, weight_decay = validate(
        "adam", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )
    direction = scale_by_adam(*betas, eps, amsgrad=amsgrad, state_dtype=state_dtype)
    return chain_optimizer(direction, lr, weight_decay, maximize=maximize)


def adamw(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    mask: Any = None,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019), ``torch.optim.AdamW``.

    .. math::
        \\theta \\leftarrow \\theta (1 - \\gamma\\lambda), \\quad
        \\theta_t = \\theta - \\gamma \\frac{m_t/(1-\\beta_1^t)}
                    {\\sqrt{\\hat v_t}/\\sqrt{1-\\beta_2^t} + \\epsilon}

    with Adam's moments of the raw gradient (no L2 term in ``g``). With a schedule, the
    decay uses the same ``lr_t`` as the step.

    Equivalent: ``torch.optim.AdamW`` (default ``weight_decay=1e-2``);
    ``optax.adamw(lr, b1, b2, eps, weight_decay=weight_decay, mask=mask)`` (whose default
    decay is 1e-4). PyTorch has no ``mask``: it decays every parameter of the group.

    Args:
        lr: learning rate ``>= 0`` or schedule.
        betas: ``(beta1, beta2)``, each in ``[0, 1)`` or a schedule.
        eps: ``>= 0``.
        weight_decay: ``λ >= 0``.
        amsgrad: AMSGrad variant.
        mask: leaves to decay: a pytree of bools like the params (or a prefix), or a
            callable ``params -> pytree of bools``; ``None`` decays everything. Typical:
            ``lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`` (no decay on biases/norms).
        maximize: ascend the objective.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation`` (its ``update`` needs ``params``).

    Example:
        >>> import jax, jax.numpy as jnp, functional_dl as fdl
        >>> matrices = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
        >>> opt = fdl.optim.adamw(1e-2, weight_decay=0.1, mask=matrices)
        >>> params = {"w": jnp.ones((1, 2)), "b": jnp.ones(2)}
        >>> grads = jax.tree.map(jnp.ones_like, params)
        >>> new = fdl.optim.apply_updates(params, opt.update(grads, opt.init(params), params)[0])
        >>> new["w"], new["b"]  # 1 - lr·(1 + wd) for the matrix, 1 - lr for the bias
        (Array([[0.989, 0.989]], dtype=float32), Array([0.99, 0.99], dtype=float32))
    """
    lr, betas, eps, weight_decay = validate(
        "adamw", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )
    direction = scale_by_adam(*betas, eps, amsgrad=amsgrad, state_dtype=state_dtype)
    return chain_optimizer(
        direction, lr, weight_decay, decoupled=True, mask=mask, maximize=maximize
    )


def nadam(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """NAdam: Adam with Nesterov momentum (Dozat, 2016), as ``torch.optim.NAdam``.

    .. math::
        \\mu_t = \\beta_1(1 - \\tfrac12 0.96^{t\\psi}), \\quad
        \\theta_t = \\theta_{t-1} - \\gamma \\Big(\\frac{\\mu_{t+1} m_t}{1-\\prod_{i\\le t+1}\\mu_i}
            + \\frac{(1-\\mu_t) g_t}{1-\\prod_{i\\le t}\\mu_i}\\Big)
            \\Big/ \\Big(\\sqrt{v_t/(1-\\beta_2^t)} + \\epsilon\\Big)

    ``weight_decay`` is L2 (added to ``g``) or, with ``decoupled_weight_decay``,
    ``θ ← θ(1 - γλ)`` (NAdamW). ``optax.nadam`` is a different (Keras) variant.

    Args:
        lr: learning rate ``>= 0`` or schedule.
        betas: ``(beta1, beta2)``, each in ``[0, 1)`` or a schedule.
        eps: ``>= 0``.
        weight_decay: ``λ >= 0``.
        momentum_decay: ``ψ >= 0`` (PyTorch's default 4e-3).
        decoupled_weight_decay: AdamW-style decay.
        maximize: ascend the objective.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.nadam()
        >>> u, state = opt.update({"w": jnp.array([1.0, -2.0])}, opt.init({"w": jnp.zeros(2)}))
        >>> u["w"].round(4)  # -lr·1.056·sign(g) on the first step
        Array([-0.0021,  0.0021], dtype=float32)
    """
    lr, betas, eps, weight_decay = validate(
        "nadam", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )
    momentum_decay = validate("nadam", momentum_decay=momentum_decay)
    direction = scale_by_nadam(*betas, eps, momentum_decay=momentum_decay, state_dtype=state_dtype)
    decoupled = decoupled_weight_decay
    return chain_optimizer(direction, lr, weight_decay, decoupled=decoupled, maximize=maximize)


def radam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """RAdam: Adam with a rectified adaptive rate (Liu et al., 2020), as ``torch.optim.RAdam``.

    .. math::
        \\theta_t = \\theta_{t-1} - \\gamma\\, \\hat m_t \\cdot
        \\begin{cases} r_t \\sqrt{1-\\beta_2^t}/(\\sqrt{v_t}+\\epsilon) & \\rho_t > 5 \\\\
        1 & \\text{otherwise} \\end{cases}

    (see ``scale_by_radam`` for ``ρ_t`` and ``r_t``). ``optax.radam`` places ``eps``
    differently and switches at ``ρ_t >= 5``.

    Args:
        lr: learning rate ``>= 0`` or schedule.
        betas: ``(beta1, beta2)``, each in ``[0, 1)`` or a schedule.
        eps: ``>= 0``.
        weight_decay: ``λ >= 0``, L2 or (``decoupled_weight_decay``) AdamW-style.
        decoupled_weight_decay: AdamW-style decay.
        maximize: ascend the objective.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.radam()
        >>> u, state = opt.update({"w": jnp.array([1.0, -2.0])}, opt.init({"w": jnp.zeros(2)}))
        >>> u["w"].round(4)  # rho_t <= 5: the step is -lr·m̂ = -lr·g
        Array([-0.001,  0.002], dtype=float32)
    """
    lr, betas, eps, weight_decay = validate(
        "radam", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )
    direction = scale_by_radam(*betas, eps, state_dtype=state_dtype)
    decoupled = decoupled_weight_decay
    return chain_optimizer(direction, lr, weight_decay, decoupled=decoupled, maximize=maximize)


def adamax(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
    state_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adamax: Adam with the infinity norm (Kingma & Ba, 2015), as ``torch.optim.Adamax``.

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad
        u_t = \\max(\\beta_2 u_{t-1}, |g_t| + \\epsilon), \\quad
        \\theta_t = \\theta_{t-1} - \\frac{\\gamma}{1-\\beta_1^t} \\frac{m_t}{u_t}

    Equivalent: ``torch.optim.Adamax``; ``optax.adamax`` (same rule, without L2).

    Args:
        lr: learning rate ``>= 0`` or schedule.
        betas: ``(beta1, beta2)``, each in ``[0, 1)`` or a schedule.
        eps: ``>= 0``.
        weight_decay: L2 penalty ``>= 0``.
        maximize: ascend the objective.
        state_dtype: dtype of the moments (default: float32 for bf16/fp16 params).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, functional_dl as fdl
        >>> opt = fdl.optim.adamax()
        >>> u, state = opt.update({"w": jnp.array([1.0, -2.0])}, opt.init({"w": jnp.zeros(2)}))
        >>> u["w"].round(4)  # -lr·sign(g) on the first step
        Array([-0.002,  0.002], dtype=float32)
    """
    lr, betas, eps, weight_decay = validate(
        "adamax", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )
    direction = scale_by_adamax(*betas, eps, state_dtype=state_dtype)
    return chain_optimizer(direction, lr, weight_decay, maximize=maximize)
