"""Training loop pieces: TrainState, jitted train step, evaluate, fit."""

__all__: list[str] = []
