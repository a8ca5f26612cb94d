"""Learning-rate schedules: PyTorch's schedulers as pure functions of the step."""

__all__: list[str] = []
