"""Data-loading helpers shared by the DataModules.

:class:`EpochShuffleSampler` draws each epoch's order from ``(seed, epoch)`` alone, so a
run resumed from a checkpoint sees exactly the batches an uninterrupted run would
(Lightning calls ``set_epoch`` on it at the start of every epoch; under DDP it wraps it
in a distributed sampler that splits the same order across ranks).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochShuffleSampler"]


class EpochShuffleSampler(Sampler[int]):
    """A random permutation of ``range(num_items)`` that depends only on seed and epoch."""

    def __init__(self, num_items: int, seed: int = 0) -> None:
        if num_items <= 0:
            raise ValueError(f"EpochShuffleSampler needs at least one item, got num_items={num_items}")
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_items, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_items
