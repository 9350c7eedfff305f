"""ClassGaussianReplayBuffer on toy images: restarts follow their class's Gaussian, stored
states are reused, bad arguments are named."""

from __future__ import annotations

import pytest
import torch

from structebm.samplers.class_gaussian import ClassGaussianReplayBuffer
from structebm.spaces import ContinuousSpace

K = 10
IMAGE = (1, 28, 28)


def toy_images(per_class: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of class ``k``: a bright square at row ``2k`` on a dark background, plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(K).repeat_interleave(per_class)
    images = torch.full((labels.shape[0], *IMAGE), -1.0)
    for row, k in enumerate(labels.tolist()):
        images[row, 0, 2 * k : 2 * k + 4, 10:14] = 1.0
    images += 0.05 * torch.randn(images.shape, generator=generator)
    return images.clamp(-1.0, 1.0), labels


def buffer(gaussian_fraction: float, reinit_prob: float = 1.0) -> ClassGaussianReplayBuffer:
    images, labels = toy_images()
    space = ContinuousSpace(IMAGE, low=-1.0, high=1.0)
    return ClassGaussianReplayBuffer(space, images, labels, K, gaussian_fraction, capacity=100, reinit_prob=reinit_prob)


def test_gaussian_restarts_follow_their_class() -> None:
    source = buffer(gaussian_fraction=1.0)
    labels = torch.arange(K).repeat(4)
    x0, index = source.initial(labels.shape[0], labels, torch.Generator().manual_seed(1))
    assert x0.shape == (labels.shape[0], *IMAGE)
    assert torch.equal(index // source.slots_per_group, labels)
    assert x0.min() >= -1.0 and x0.max() <= 1.0
    # each start is brightest in its class's square: the class mean dominates the draw
    for row, k in enumerate(labels.tolist()):
        inside = x0[row, 0, 2 * k : 2 * k + 4, 10:14].mean()
        assert inside > x0[row].mean() + 0.5


def test_uniform_restarts_without_gaussian_fraction() -> None:
    source = buffer(gaussian_fraction=0.0)
    labels = torch.arange(K).repeat(8)
    x0, _ = source.initial(labels.shape[0], labels, torch.Generator().manual_seed(2))
    # uniform noise in [-1, 1]: mean near 0, no class structure
    assert abs(float(x0.mean())) < 0.05


def test_stored_states_are_reused_without_restarts() -> None:
    source = buffer(gaussian_fraction=1.0, reinit_prob=0.0)
    labels = torch.arange(K)
    generator = torch.Generator().manual_seed(3)
    x0, index = source.initial(K, labels, generator)
    source.push(torch.zeros_like(x0), index, labels)
    again, index_again = source.initial(K, labels, generator)
    written = source.filled[index_again]
    assert torch.equal(again[written], torch.zeros_like(again[written]))


def test_buffer_rejects_a_bad_fraction_and_tiny_classes() -> None:
    images, labels = toy_images()
    space = ContinuousSpace(IMAGE, low=-1.0, high=1.0)
    with pytest.raises(ValueError, match="gaussian_fraction"):
        ClassGaussianReplayBuffer(space, images, labels, K, 1.5)
    with pytest.raises(ValueError, match="class 9"):
        ClassGaussianReplayBuffer(space, images[labels < 9], labels[labels < 9], K, 0.5)
