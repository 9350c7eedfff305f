"""Two-dimensional toy densities: 8 Gaussians on a ring and two moons.

Both are standard test beds for density models (8 Gaussians as in FFJORD, Grathwohl et
al. 2019; two moons as in scikit-learn's ``make_moons``). Samples are drawn with an
explicit generator, so a seed fixes a data set.
"""

from __future__ import annotations

import math
from typing import Optional

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from structebm.data.loaders import EpochShuffleSampler

__all__ = ["TOY2D_NAMES", "sample_toy2d", "Toy2DDataModule"]

TOY2D_NAMES = ("8gaussians", "2moons")


def _eight_gaussians(n: int, generator: torch.Generator) -> Tensor:
    """Mixture of 8 isotropic Gaussians (std 0.5/√2 after scaling) centred on a circle of radius 4/√2."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centres = 4.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    which = torch.randint(0, 8, (n,), generator=generator)
    points = centres[which] + 0.5 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return (points / math.sqrt(2)).float()


def _two_moons(n: int, generator: torch.Generator, noise: float = 0.1) -> Tensor:
    """Two interleaving half circles with Gaussian noise, centred and scaled to about [-2, 2]²."""
    upper = torch.rand(n, generator=generator) < 0.5
    t = math.pi * torch.rand(n, generator=generator)
    x = torch.where(upper, t.cos(), 1.0 - t.cos())
    y = torch.where(upper, t.sin(), 0.5 - t.sin())
    points = torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, generator=generator)
    return (points - torch.tensor([0.5, 0.25])) * 2.0


def sample_toy2d(name: str, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw ``n`` points ``[n, 2]`` from the toy density ``name`` (one of :data:`TOY2D_NAMES`)."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    if name == "8gaussians":
        return _eight_gaussians(n, generator)
    if name == "2moons":
        return _two_moons(n, generator)
    raise ValueError(f"unknown toy density '{name}'; choose one of {', '.join(TOY2D_NAMES)}")


class Toy2DDataModule(pl.LightningDataModule):
    """Train / validation / held-out test sets drawn from a toy density with one seed.

    Args:
        name: ``"8gaussians"`` or ``"2moons"``.
        num_train, num_val, num_test: set sizes (the test set is what MMD is measured on).
        batch_size: training batch size.
        seed: fixes the three sets and the per-epoch shuffling.
    """

    def __init__(
        self,
        name: str = "8gaussians",
        num_train: int = 20_000,
        num_val: int = 2_000,
        num_test: int = 2_000,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if name not in TOY2D_NAMES:
            raise ValueError(f"unknown toy density '{name}'; choose one of {', '.join(TOY2D_NAMES)}")
        self.name = name
        self.batch_size = batch_size
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        self.train_x = sample_toy2d(name, num_train, generator)
        self.val_x = sample_toy2d(name, num_val, generator)
        self.test_x = sample_toy2d(name, num_test, generator)

    def train_dataloader(self) -> DataLoader:
        dataset = TensorDataset(self.train_x)
        sampler = EpochShuffleSampler(len(dataset), seed=self.seed)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.val_x), batch_size=1024)
