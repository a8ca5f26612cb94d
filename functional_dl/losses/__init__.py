"""Loss functions with PyTorch semantics and hand-derived gradients."""

__all__: list[str] = []
