"""Image augmentations (torchvision v2 semantics) as pure, batched, jit-able functions.

Images are channels-last, ``[N, H, W, C]`` or a single ``[H, W, C]``, floating in
``[0, 1]`` (uint8 images are converted to float and back, rounding). Random ops take a
``jax.random`` key first and draw every parameter per sample; deterministic ops
(``hflip``, ``rotate``, ``adjust_*``, ...) are the building blocks they call.

    aug = fdl.augment.compose(partial(fdl.augment.random_resized_crop, size=32),
                              fdl.augment.random_horizontal_flip)
    images = jax.jit(aug)(key, images)
"""

from ._affine import affine as affine
from ._affine import random_affine as random_affine
from ._affine import random_rotation as random_rotation
from ._affine import rotate as rotate
from ._blur import gaussian_blur as gaussian_blur
from ._blur import gaussian_blur_fixed as gaussian_blur_fixed
from ._color import adjust_brightness as adjust_brightness
from ._color import adjust_contrast as adjust_contrast
from ._color import adjust_saturation as adjust_saturation
from ._color import color_jitter as color_jitter
from ._color import random_grayscale as random_grayscale
from ._color import rgb_to_grayscale as rgb_to_grayscale
from ._compose import compose as compose
from ._erase import erase as erase
from ._erase import random_erasing as random_erasing
from ._geometry import center_crop as center_crop
from ._geometry import hflip as hflip
from ._geometry import random_horizontal_flip as random_horizontal_flip
from ._geometry import random_resized_crop as random_resized_crop
from ._geometry import resized_crop as resized_crop
from ._hsv import adjust_hue as adjust_hue
from ._hsv import hsv_to_rgb as hsv_to_rgb
from ._hsv import rgb_to_hsv as rgb_to_hsv
from ._mix import cutmix as cutmix
from ._mix import mixup as mixup
from ._policies import augmix as augmix
from ._policies import auto_augment as auto_augment
from ._policies import rand_augment as rand_augment
from ._policies import random_apply as random_apply
from ._policies import random_choice as random_choice
from ._policies import trivial_augment_wide as trivial_augment_wide
from ._resize import crop as crop
from ._resize import pad as pad
from ._resize import random_crop as random_crop
from ._resize import random_vertical_flip as random_vertical_flip
from ._resize import resize as resize
from ._resize import vflip as vflip
from ._tone import adjust_gamma as adjust_gamma
from ._tone import adjust_sharpness as adjust_sharpness
from ._tone import autocontrast as autocontrast
from ._tone import equalize as equalize
from ._tone import invert as invert
from ._tone import normalize as normalize
from ._tone import posterize as posterize
from ._tone import random_adjust_sharpness as random_adjust_sharpness
from ._tone import random_autocontrast as random_autocontrast
from ._tone import random_equalize as random_equalize
from ._tone import random_invert as random_invert
from ._tone import random_posterize as random_posterize
from ._tone import random_solarize as random_solarize
from ._tone import solarize as solarize
from ._warp import elastic_transform as elastic_transform
from ._warp import perspective as perspective
from ._warp import random_perspective as random_perspective

__all__ = [
    # random ops
    "random_horizontal_flip",
    "random_resized_crop",
    "color_jitter",
    "random_rotation",
    "random_affine",
    "random_grayscale",
    "gaussian_blur",
    "random_erasing",
    "mixup",
    "cutmix",
    "compose",
    # deterministic building blocks
    "hflip",
    "center_crop",
    "resized_crop",
    "rotate",
    "affine",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "rgb_to_grayscale",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "gaussian_blur_fixed",
    "erase",
    # policies (each sample draws its own ops)
    "rand_augment",
    "trivial_augment_wide",
    "auto_augment",
    "augmix",
    "random_apply",
    "random_choice",
    # resize, pad, crop, vertical flip (torchvision v2)
    "vflip",
    "crop",
    "pad",
    "resize",
    "random_vertical_flip",
    "random_crop",
    # perspective and elastic warps
    "perspective",
    "random_perspective",
    "elastic_transform",
    # tone (torchvision v2)
    "invert",
    "posterize",
    "solarize",
    "autocontrast",
    "equalize",
    "adjust_sharpness",
    "adjust_gamma",
    "normalize",
    "random_invert",
    "random_posterize",
    "random_solarize",
    "random_autocontrast",
    "random_equalize",
    "random_adjust_sharpness",
]
