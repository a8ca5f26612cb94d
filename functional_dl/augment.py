"""Image augmentations (torchvision v2 semantics) as pure, batched functions."""

__all__: list[str] = []
