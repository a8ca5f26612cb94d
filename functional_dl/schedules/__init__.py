"""Learning-rate schedules: PyTorch's schedulers as pure functions of the step.

Every constructor returns ``schedule(step) -> lr``, a pure function of an integer
step count (an array of any shape; jit-able with a traced step) such that
``schedule(k)`` equals PyTorch's ``get_last_lr()`` after ``k`` calls of
``scheduler.step()``; pass it as ``lr=`` of any ``fdl.optim`` optimizer.
``reduce_lr_on_plateau`` is a state machine (``init``/``update``),
``scale_by_plateau`` the optax transform built on it (its state lives in the optimizer
state) and ``step_plateau(opt_state, metric)`` feeds it a metric once per epoch.

Values are computed in JAX's default float dtype: float32 (within a few ulp, below
3e-7 relative, of PyTorch's float64 values for the cosine, linear and one-cycle forms,
also next to a zero minimum; powers ``gamma**k`` carry the rounding of ``gamma``, up to
about ``k·3e-8``) or float64 with x64 enabled.
"""

from ._combine import join_schedules as join_schedules
from ._combine import sequential_lr as sequential_lr
from ._common import Schedule as Schedule
from ._cosine import cosine_annealing_lr as cosine_annealing_lr
from ._cosine import cosine_annealing_warm_restarts as cosine_annealing_warm_restarts
from ._cosine import warmup_cosine as warmup_cosine
from ._cyclic import cyclic_lr as cyclic_lr
from ._cyclic import cyclic_momentum as cyclic_momentum
from ._decay import exponential_lr as exponential_lr
from ._decay import linear_lr as linear_lr
from ._decay import multi_step_lr as multi_step_lr
from ._decay import step_lr as step_lr
from ._lambda import constant_lr as constant_lr
from ._lambda import lambda_lr as lambda_lr
from ._lambda import multiplicative_lr as multiplicative_lr
from ._lambda import polynomial_lr as polynomial_lr
from ._one_cycle import one_cycle_lr as one_cycle_lr
from ._one_cycle import one_cycle_momentum as one_cycle_momentum
from ._plateau import PlateauConfig as PlateauConfig
from ._plateau import PlateauState as PlateauState
from ._plateau import ReduceLROnPlateau as ReduceLROnPlateau
from ._plateau import ScaleByPlateauState as ScaleByPlateauState
from ._plateau import plateau_states as plateau_states
from ._plateau import reduce_lr_on_plateau as reduce_lr_on_plateau
from ._plateau import scale_by_plateau as scale_by_plateau
from ._plateau import step_plateau as step_plateau

__all__ = [
    "step_lr",
    "multi_step_lr",
    "exponential_lr",
    "linear_lr",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts",
    "one_cycle_lr",
    "one_cycle_momentum",
    "warmup_cosine",
    "constant_lr",
    "polynomial_lr",
    "lambda_lr",
    "multiplicative_lr",
    "cyclic_lr",
    "cyclic_momentum",
    "sequential_lr",
    "join_schedules",
    "reduce_lr_on_plateau",
    "scale_by_plateau",
    "step_plateau",
    "plateau_states",
    "PlateauConfig",
    "PlateauState",
    "ReduceLROnPlateau",
    "ScaleByPlateauState",
]
