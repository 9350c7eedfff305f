"""Out-of-distribution image sets: the blur's kernel, the inversion and the noise."""

from __future__ import annotations

import math

import pytest
import torch

from structebm.data.shifted_images import gaussian_blur, shifted_image_sets


def test_blur_keeps_constant_images_and_spreads_a_point_by_sigma():
    constant = torch.full((2, 1, 12, 12), 0.3, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(constant, 1.5), constant)
    point = torch.zeros(1, 1, 31, 31, dtype=torch.float64)
    point[0, 0, 15, 15] = 1.0
    blurred = gaussian_blur(point, 1.5)[0, 0]
    assert blurred.sum().item() == pytest.approx(1.0)
    offsets = torch.arange(31, dtype=torch.float64) - 15
    row_variance = (blurred.sum(dim=1) * offsets**2).sum().item()
    # the kernel is cut at radius 5 = round(3 sigma): its variance is just under sigma^2
    kernel = torch.exp(-torch.arange(-5, 6, dtype=torch.float64) ** 2 / (2 * 1.5**2))
    expected = ((kernel / kernel.sum()) * torch.arange(-5, 6, dtype=torch.float64) ** 2).sum().item()
    assert row_variance == pytest.approx(expected) and expected == pytest.approx(1.5**2, rel=0.01)


def test_sets_are_made_from_unseen_images():
    images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sets = shifted_image_sets(images, 4, seed=0)
    torch.testing.assert_close(sets["inverted"], -images[4:8])
    torch.testing.assert_close(sets["blurred"], gaussian_blur(images[4:8], 1.5))
    noise = sets["uniform_noise"]
    assert noise.shape == (4, 1, 8, 8) and noise.min() >= -1 and noise.max() <= 1
    # mean of 256 uniform pixels on [-1, 1]: standard deviation sqrt(1/3 / 256)
    assert abs(noise.mean().item()) < 4 * math.sqrt(1 / 3 / noise.numel())
    assert not torch.equal(noise, shifted_image_sets(images, 4, seed=1)["uniform_noise"])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="N >= 2n"):
        shifted_image_sets(torch.zeros(5, 1, 4, 4), 3, seed=0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        gaussian_blur(torch.zeros(1, 1, 4, 4), 0.0)
