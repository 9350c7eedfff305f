"""One LightningModule that trains any energy with any objective valid for it.

The module knows nothing about what it trains: the energy is an ``nn.Module`` with the
contract of :mod:`structebm.energies.base`, the objective turns ``(energy, batch)`` into a
:class:`~structebm.objectives.base.LossOutput`. Both are passed in (dependency injection,
as in Lightning's own templates), so the same class serves every recipe and the
Lightning CLI can build it from YAML.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from structebm.energies.base import EnergyOutputError, HasLogPartition, batch_size_of, check_energy_output
from structebm.objectives.base import Objective, split_batch
from structebm.samplers.base import ChainDivergedError
from structebm.training.finite_checks import TrainingDivergedError, check_finite_gradients, check_finite_loss
from structebm.training.rng import collect_generator_states, decorrelate_across_ranks, load_generator_states

__all__ = ["EBMModule"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def _default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


class EBMModule(pl.LightningModule):
    """Trains ``energy`` by minimising ``objective(energy, batch).loss``.

    Every metric the objective returns is logged under ``train/``; the validation step
    logs the mean energy of held-out data, and the exact negative log-likelihood when
    the energy has an exact log-partition. The total parameter-gradient norm is logged as
    ``train/param_grad_norm``. A non-finite energy, loss or gradient, or a diverged
    sampler chain, stops training with
    :class:`~structebm.training.finite_checks.TrainingDivergedError`, naming the step and
    the offending metrics, chains or parameters.

    Random-number generators owned by the objective (chain sources, samplers) are saved
    in the checkpoint and restored on resume, so a resumed run continues the same chains.
    Under DDP each rank runs its own chains (and keeps its own replay buffer): ranks other
    than 0 re-seed their generators from their rank when training starts. A checkpoint
    holds rank 0's buffer and generator; on resume every rank starts from those.

    Args:
        energy: the energy ``E(x, c) -> [B]``.
        objective: how to fit it; its ``bind(energy)`` is called here, so a missing
            capability fails at construction.
        optimizer: a callable building the optimiser from parameters
            (default Adam, lr 1e-3). In YAML, ``class_path: torch.optim.Adam``.
        lr_scheduler: optional callable building a scheduler from the optimiser.
    """

    def __init__(
        self,
        energy: nn.Module,
        objective: Objective,
        optimizer: OptimizerFactory = _default_optimizer,
        lr_scheduler: Optional[SchedulerFactory] = None,
    ) -> None:
        super().__init__()
        self.energy = energy
        self.objective = objective
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        objective.bind(energy)

    def forward(self, x: Any, c: Optional[Tensor] = None) -> Tensor:
        return self.energy(x, c)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        where = f"training step {self.global_step} (epoch {self.current_epoch}, batch {batch_idx})"
        try:
            out = self.objective(self.energy, batch)
        except (EnergyOutputError, ChainDivergedError) as error:
            raise TrainingDivergedError(f"{where}: {error}") from error
        check_finite_loss(out.loss, out.metrics, where)
        x, _ = split_batch(batch)
        metrics = {f"train/{k}": v for k, v in out.metrics.items()}
        metrics["train/loss"] = out.loss.detach()
        self.log_dict(metrics, batch_size=batch_size_of(x), on_step=True, on_epoch=True)
        return out.loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, c = split_batch(batch)
        n = batch_size_of(x)
        values = check_energy_output(self.energy(x, c), n, "validation: energy of held-out data")
        metrics = {"val/energy_data": values.mean()}
        if isinstance(self.energy, HasLogPartition):
            metrics["val/nll"] = (values + self.energy.log_partition(c)).mean()
        self.log_dict(metrics, batch_size=n, on_epoch=True, prog_bar=True)

    def on_after_backward(self) -> None:
        check_finite_gradients(
            self.named_parameters(), f"training step {self.global_step} (epoch {self.current_epoch})"
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad.detach().flatten() for p in self.parameters() if p.grad is not None]
        if grads:
            self.log("train/param_grad_norm", torch.cat(grads).norm(), on_step=True, on_epoch=False)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}

    def on_train_start(self) -> None:
        decorrelate_across_ranks(self, self.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["structebm_generators"] = collect_generator_states(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("structebm_generators")
        if states is not None:
            load_generator_states(self, states)

