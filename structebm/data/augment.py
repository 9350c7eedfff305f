"""Batch-level image augmentation that is reproducible from a seed and a step number.

:func:`random_shift` translates every image of a batch by its own integer offset
:math:`(\\delta_y, \\delta_x) \\in \\{-s, \\dots, s\\}^2`, filling the uncovered border with a
constant (the background value):

.. math::
    x'[c, i, j] = \\begin{cases} x[c, i + \\delta_y, j + \\delta_x] & \\text{inside the image} \\\\
    \\text{fill} & \\text{otherwise.} \\end{cases}

Small translations are the classic MNIST augmentation (Simard et al., ICDAR 2003). The offsets
come from a generator seeded by :func:`step_generator`, i.e. by ``(seed, step)`` only, so a run
resumed from a checkpoint draws the same offsets as an uninterrupted one.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_shift", "step_generator"]


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator determined by ``(seed, step)`` alone."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator, fill: float) -> Tensor:
    """Translate each image by its own uniform offset in ``{-max_shift..max_shift}²`` (see the module docs).

    Shapes:
        - images: ``[B, C, H, W]``; returns a new tensor of the same shape, dtype and device
    """
    if images.dim() != 4:
        raise ValueError(f"random_shift: expected images [B, C, H, W], got shape {tuple(images.shape)}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be a non-negative integer, got {max_shift!r}")
    if max_shift == 0:
        return images.clone()
    batch, _, height, width = images.shape
    offsets = torch.randint(0, 2 * max_shift + 1, (batch, 2), generator=generator).to(images.device)
    padded = torch.nn.functional.pad(images, (max_shift,) * 4, value=fill)
    rows = offsets[:, 0, None] + torch.arange(height, device=images.device)  # [B, H] rows of the padded image
    cols = offsets[:, 1, None] + torch.arange(width, device=images.device)  # [B, W]
    chains = torch.arange(batch, device=images.device)[:, None, None]
    # advanced indexing over (batch, row, col) with the channel slice kept: [B, H, W, C] -> [B, C, H, W]
    return padded.permute(0, 2, 3, 1)[chains, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
