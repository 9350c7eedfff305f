"""Class-conditional samples of an image–label energy: Langevin chains of :math:`p(x \\mid y)` per class.

For every class :math:`y` the chains target

.. math::
    p(x \\mid y) \\propto e^{-E(x, y)}, \\qquad x \\in [-1, 1]^D,

started from uniform noise in the box and clamped to it (the pixel range of the data), with
``num_per_class`` chains per class run side by side as one batch.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from structebm.energies.image_label import ImageGivenLabel
from structebm.samplers.base import run_chain
from structebm.samplers.langevin import langevin

__all__ = ["class_conditional_samples"]


def class_conditional_samples(
    energy: nn.Module,
    image_shape: Sequence[int],
    num_per_class: int,
    num_steps: int,
    generator: torch.Generator,
    step_size: float = 1.0,
    noise_scale: Optional[float] = 0.01,
) -> Tensor:
    """Langevin samples of ``p(x | y)`` for every class, started from uniform noise in ``[-1, 1]``.

    Args:
        energy: an image–label energy with ``label_energies(x) -> [B, K]`` and ``num_classes``.
        image_shape: the event shape of one image, e.g. ``(1, 28, 28)``.
        num_per_class: chains per class.
        num_steps: Langevin transitions of every chain.
        generator: the chains' only source of randomness.
        step_size, noise_scale: as for :func:`~structebm.samplers.langevin.langevin`.

    Shapes:
        - returns: ``[K, num_per_class, *image_shape]`` (detached, on the generator's device)
    """
    view = ImageGivenLabel(energy)
    if isinstance(num_per_class, bool) or not isinstance(num_per_class, int) or num_per_class < 1:
        raise ValueError(f"class_conditional_samples: num_per_class must be a positive integer, got {num_per_class!r}")
    num_classes = view.num_classes
    device = generator.device
    labels = torch.arange(num_classes, device=device).repeat_interleave(num_per_class)
    start = torch.rand((labels.shape[0], *image_shape), generator=generator, device=device) * 2 - 1
    sampler = langevin(view, step_size=step_size, noise_scale=noise_scale, bounds=(-1.0, 1.0))
    samples, _ = run_chain(sampler, start, num_steps, generator, c=labels)
    return samples.reshape(num_classes, num_per_class, *image_shape)
