"""Small models and trainers shared by the trainer tests."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from structebm.data.loaders import EpochShuffleSampler
from structebm.energies.mlp import MLPEnergy
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.samplers.chains import ReplayBuffer
from structebm.samplers.langevin import langevin
from structebm.spaces import ContinuousSpace
from structebm.training.module import EBMModule


def gaussian_data(n: int = 256, dim: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator) * 0.5 + 1.0


def loader(x: torch.Tensor, batch_size: int = 64, seed: int = 0, *extra: torch.Tensor) -> DataLoader:
    dataset = TensorDataset(x, *extra)
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochShuffleSampler(len(dataset), seed), drop_last=True)


def pcd_module(seed: int = 0, dim: int = 2) -> EBMModule:
    torch.manual_seed(seed)
    objective = ContrastiveDivergence(
        sampler_factory=langevin,
        sampler_options={"step_size": 0.01},
        source=ReplayBuffer(ContinuousSpace((dim,), low=-5.0, high=5.0), capacity=256, reinit_prob=0.05),
        num_steps=5,
        generator_seed=seed,
        energy_magnitude_weight=0.1,
    )
    return EBMModule(MLPEnergy(dim, hidden=(16, 16)), objective)


def quiet_trainer(**kwargs: Any) -> pl.Trainer:
    defaults: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        deterministic=True,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


@pytest.fixture
def data() -> torch.Tensor:
    return gaussian_data()
