"""Random shifts: each image is an exact translate of its original, reproducible from (seed, step)."""

from __future__ import annotations

import pytest
import torch

from structebm.data.augment import random_shift, step_generator


def translate(image: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """Reference: out[i, j] = image[i + dy, j + dx] where that pixel exists, else fill (written as loops)."""
    out = torch.full_like(image, fill)
    _, height, width = image.shape
    for i in range(height):
        for j in range(width):
            if 0 <= i + dy < height and 0 <= j + dx < width:
                out[:, i, j] = image[:, i + dy, j + dx]
    return out


def test_every_image_is_one_of_the_allowed_translates():
    images = torch.randn(16, 2, 7, 6, generator=torch.Generator().manual_seed(0))
    shifted = random_shift(images, 2, step_generator(0, 5), fill=-1.0)
    assert shifted.shape == images.shape
    offsets_seen = set()
    for image, result in zip(images, shifted):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(result, translate(image, dy, dx, -1.0))]
        assert len(matches) == 1  # random images: exactly one offset explains the result
        offsets_seen.add(matches[0])
    assert len(offsets_seen) > 1  # offsets differ between images


def test_same_seed_and_step_give_the_same_shifts_and_zero_shift_is_identity():
    images = torch.rand(8, 1, 28, 28)
    first = random_shift(images, 2, step_generator(3, 10), fill=-1.0)
    assert torch.equal(first, random_shift(images, 2, step_generator(3, 10), fill=-1.0))
    assert not torch.equal(first, random_shift(images, 2, step_generator(3, 11), fill=-1.0))
    assert torch.equal(random_shift(images, 0, step_generator(3, 10), fill=-1.0), images)


@pytest.mark.parametrize("images, max_shift, message", [
    (torch.zeros(2, 28, 28), 1, "expected images"),
    (torch.zeros(2, 1, 28, 28), -1, "max_shift"),
    (torch.zeros(2, 1, 28, 28), 1.5, "max_shift"),
])
def test_bad_arguments_are_named(images, max_shift, message):
    with pytest.raises(ValueError, match=message):
        random_shift(images, max_shift, step_generator(0, 0), fill=-1.0)
