"""Optimizers: PyTorch algorithms as optax-compatible GradientTransformations."""

__all__: list[str] = []
