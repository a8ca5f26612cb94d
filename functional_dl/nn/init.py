"""Parameter initializers with PyTorch's gain and fan conventions."""

__all__: list[str] = []
