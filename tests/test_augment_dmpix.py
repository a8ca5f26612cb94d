"""Cross-checks against dm-pix where it implements the same operation."""

from __future__ import annotations

import math

import dm_pix
import jax
import numpy as np
import pytest

import functional_dl.augment as A
from tests.helpers import assert_close

RNG = np.random.default_rng(4)
IMAGES = RNG.random((2, 12, 10, 3)).astype(np.float32)


def test_flip_grayscale_and_hsv_agree_with_dm_pix():
    np.testing.assert_array_equal(A.hflip(IMAGES), dm_pix.flip_left_right(IMAGES))
    assert_close(A.rgb_to_grayscale(IMAGES), dm_pix.rgb_to_grayscale(IMAGES, keep_dims=False))
    hsv = np.asarray(A.rgb_to_hsv(IMAGES))
    ref = np.asarray(jax.jit(dm_pix.rgb_to_hsv)(IMAGES))
    assert_close(np.cos(2 * np.pi * hsv[..., 0]), np.cos(2 * np.pi * ref[..., 0]))
    assert_close(hsv[..., 1:], ref[..., 1:])
    assert_close(A.hsv_to_rgb(ref), jax.jit(dm_pix.hsv_to_rgb)(ref))


@pytest.mark.parametrize("delta", [0.15, -0.4])
def test_adjust_hue_agrees_with_dm_pix(delta):
    assert_close(A.adjust_hue(IMAGES, delta), jax.jit(dm_pix.adjust_hue)(IMAGES, delta))


def test_rotate_bilinear_agrees_with_dm_pix_inside_the_image():
    # dm-pix samples with constant padding outside [0, size - 1]; away from the border
    # (radius 4.5 around the centre stays inside after any rotation) the two agree.
    angle = 30.0
    ours = np.asarray(A.rotate(IMAGES[0], angle, interpolation="bilinear"))
    rotate = jax.jit(lambda x: dm_pix.rotate(x, math.radians(angle), order=1, mode="constant"))
    ref = np.asarray(rotate(IMAGES[0]))
    rows, cols = np.meshgrid(np.arange(12) - 5.5, np.arange(10) - 4.5, indexing="ij")
    inside = rows**2 + cols**2 <= 4.4**2
    assert inside.sum() > 50
    assert_close(ours[inside], ref[inside])


def test_gaussian_blur_agrees_with_dm_pix_away_from_the_border():
    # dm-pix pads with zeros, we reflect: pixels k // 2 away from the border agree.
    ours = np.asarray(A.gaussian_blur_fixed(IMAGES, 5, 1.3))
    ref = np.asarray(dm_pix.gaussian_blur(IMAGES, 1.3, 5))
    assert_close(ours[:, 2:-2, 2:-2], ref[:, 2:-2, 2:-2])
