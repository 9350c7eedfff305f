"""Linear decay of the learning rate over the training budget, as a Lightning callback.

At optimiser step ``t`` of a budget of ``T`` steps every parameter group's learning rate is

.. math::
    \\eta_t = \\eta_0 \\bigl(1 - (1 - f) \\min(t / T, 1)\\bigr),

from the optimiser's own rate ``η_0`` down to ``f · η_0`` at the end (``f = final_fraction``).
``T`` is the trainer's estimate of the optimiser steps of ``fit``
(``trainer.estimated_stepping_batches``: ``max_steps`` when set, else the epochs' batches), so a
budget given in steps or in epochs both end at ``f · η_0``. The rate is recomputed from the
global step before every batch and the starting rates are kept in checkpoints, so a resumed run
continues on the same schedule.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl

__all__ = ["LinearLRDecay"]


class LinearLRDecay(pl.Callback):
    """Decay every learning rate linearly to ``final_fraction`` of its start over ``fit``'s steps.

    Args:
        final_fraction: the rate at the last step as a fraction of the optimiser's, in ``[0, 1]``.
    """

    def __init__(self, final_fraction: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= final_fraction <= 1.0:
            raise ValueError(f"LinearLRDecay: final_fraction must lie in [0, 1], got {final_fraction!r}")
        self.final_fraction = final_fraction
        self._start_rates: list[list[float]] = []
        self._total_steps = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = trainer.estimated_stepping_batches
        if not math.isfinite(total) or total < 1:
            raise ValueError(
                f"LinearLRDecay: the training budget must be finite (set trainer.max_steps or max_epochs), got {total}"
            )
        self._total_steps = float(total)
        if not self._start_rates:  # a resumed run keeps the rates restored from its checkpoint
            self._start_rates = [[group["lr"] for group in opt.param_groups] for opt in trainer.optimizers]

    def state_dict(self) -> dict[str, Any]:
        return {"start_rates": self._start_rates}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._start_rates = [list(rates) for rates in state_dict["start_rates"]]

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        progress = min(trainer.global_step / self._total_steps, 1.0)
        factor = 1.0 - (1.0 - self.final_fraction) * progress
        for optimizer, rates in zip(trainer.optimizers, self._start_rates):
            for group, rate in zip(optimizer.param_groups, rates):
                group["lr"] = rate * factor
