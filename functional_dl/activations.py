"""Activation functions with PyTorch's defaults and numerics."""

__all__: list[str] = []
