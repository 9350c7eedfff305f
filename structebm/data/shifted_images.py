"""Out-of-distribution image sets made from in-distribution images in ``[-1, 1]``.

Three sets of ``n`` images each, for telling a data set apart from what it is not:

- ``uniform_noise``: every pixel uniform in ``[-1, 1]``;
- ``blurred``: images blurred by a separable Gaussian kernel of ``sigma`` pixels,
  :math:`k_j \\propto e^{-j^2 / 2\\sigma^2}` for :math:`|j| \\le \\lfloor 3\\sigma + 1/2 \\rfloor`
  (reflect padding), which keeps the mean and removes the strokes' edges;
- ``inverted``: :math:`-x`, the same shapes with the pixel scale turned over.

The blurred and inverted sets are made from images the in-distribution scores do not see
(the ``n`` images after the first ``n``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_blur", "shifted_image_sets"]


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Blur ``[B, C, H, W]`` images with a separable Gaussian kernel (reflect padding).

    Shapes:
        - images: ``[B, C, H, W]``; returns the same shape
    """
    if images.dim() != 4:
        raise ValueError(f"gaussian_blur: images must be [B, C, H, W], got {tuple(images.shape)}")
    if not sigma > 0:
        raise ValueError(f"gaussian_blur: sigma must be positive, got {sigma}")
    radius = int(3 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-offsets**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def shifted_image_sets(images: Tensor, n: int, seed: int, sigma: float = 1.5) -> dict[str, Tensor]:
    """``uniform_noise``, ``blurred`` and ``inverted`` sets of ``n`` images each (module docstring).

    Shapes:
        - images: ``[N, C, H, W]`` in ``[-1, 1]`` with ``N >= 2n``; returns ``{name: [n, C, H, W]}``
    """
    if images.dim() != 4 or images.shape[0] < 2 * n or n < 1:
        raise ValueError(f"shifted_image_sets: need images [N >= 2n, C, H, W] and n >= 1, got {tuple(images.shape)} and n={n}")
    generator = torch.Generator().manual_seed(seed)
    others = images[n : 2 * n]
    return {
        "uniform_noise": torch.rand((n, *images.shape[1:]), generator=generator) * 2 - 1,
        "blurred": gaussian_blur(others, sigma),
        "inverted": -others,
    }
