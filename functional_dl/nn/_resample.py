"""Layers that change the resolution of channels-last images (adaptive pooling,
upsampling, pixel shuffle), each around its :mod:`functional_dl.nn.functional` op."""

from __future__ import annotations

from typing import Any

from .._checks import check_int
from ._core import Layer, op_layer
from .functional._adaptive_pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
)
from .functional._interpolate import interpolate, interpolate_backward
from .functional._pixel_shuffle import pixel_shuffle, pixel_shuffle_backward

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Upsample", "PixelShuffle"]


def AdaptiveAvgPool2d(output_size: Any) -> Layer:
    """Adaptive average pooling to ``output_size`` (:func:`~.functional.adaptive_avg_pool2d`).

    ``AdaptiveAvgPool2d(1)`` is the global average pooling of ResNet heads. PyTorch:
    ``torch.nn.AdaptiveAvgPool2d(output_size)``.

    Example:
      >>> y, _ = AdaptiveAvgPool2d(1).apply({}, {}, jnp.ones((2, 7, 7, 16)))
      >>> y.shape
      (2, 1, 1, 16)
    """
    return op_layer(
        "adaptive_avg_pool2d", adaptive_avg_pool2d, adaptive_avg_pool2d_backward, output_size
    )


def AdaptiveMaxPool2d(output_size: Any) -> Layer:
    """Adaptive max pooling to ``output_size`` (:func:`~.functional.adaptive_max_pool2d`).

    PyTorch: ``torch.nn.AdaptiveMaxPool2d(output_size)`` (no ``return_indices``).

    Example:
      >>> y, _ = AdaptiveMaxPool2d((2, 3)).apply({}, {}, jnp.ones((1, 5, 7, 4)))
      >>> y.shape
      (1, 2, 3, 4)
    """
    return op_layer(
        "adaptive_max_pool2d", adaptive_max_pool2d, adaptive_max_pool2d_backward, output_size
    )


def Upsample(
    size: Any = None,
    *,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Layer:
    """Resize ``[N, H, W, C]`` images (:func:`~.functional.interpolate`).

    PyTorch: ``torch.nn.Upsample(size, scale_factor, mode, align_corners)``.

    Example:
      >>> y, _ = Upsample(scale_factor=2, mode="bilinear").apply({}, {}, jnp.ones((1, 4, 4, 3)))
      >>> y.shape
      (1, 8, 8, 3)
    """
    opts = {"scale_factor": scale_factor, "mode": mode, "align_corners": align_corners}
    return op_layer("upsample", interpolate, interpolate_backward, size, **opts)


def PixelShuffle(upscale_factor: int) -> Layer:
    """``[N, H, W, C r^2] -> [N, H r, W r, C]`` (:func:`~.functional.pixel_shuffle`).

    PyTorch: ``torch.nn.PixelShuffle(upscale_factor)``.

    Example:
      >>> y, _ = PixelShuffle(2).apply({}, {}, jnp.ones((1, 4, 4, 12)))
      >>> y.shape
      (1, 8, 8, 3)
    """
    check_int("upscale_factor", upscale_factor, minimum=1, fn="PixelShuffle")
    return op_layer("pixel_shuffle", pixel_shuffle, pixel_shuffle_backward, upscale_factor)
