"""End-of-training generation report: a thin callback around a task from the domain layer.

The callback times ``fit``, hands the trained energy and the data module to its ``task`` and
publishes what comes back (JSON file, logged scalars, a printed summary). The task does the
work and lives with its domain, e.g. :class:`structebm.chem.generation.MoleculeGeneration`
(sample molecules from noise with each sampler variant and score them). In a config::

    callbacks:
      - class_path: structebm.training.molecule_report.MoleculeGenerationReport
        init_args:
          task:
            class_path: structebm.chem.generation.MoleculeGeneration
            init_args: {num_samples: 1000, num_steps: 400, connected_noise: true}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

import lightning.pytorch as pl
import torch
from torch import nn

from structebm.training.fit_report import FitReport

__all__ = ["GenerationTask", "MoleculeGenerationReport"]


@runtime_checkable
class GenerationTask(Protocol):
    """What a generation report runs when ``fit`` ends."""

    def evaluate(
        self, energy: nn.Module, datamodule: Any, out_dir: Path, device: torch.device, progress: bool = False
    ) -> dict[str, Any]:
        """Sample from ``energy``, score against ``datamodule``'s data, write pictures to ``out_dir``;
        ``progress``: show a progress bar while sampling."""
        ...

    def logged(self, report: dict[str, Any]) -> dict[str, float]:
        """The scalars of ``report`` to send to the loggers."""
        ...

    def summary(self, report: dict[str, Any]) -> str:
        """A few printable lines about ``report``."""
        ...


class MoleculeGenerationReport(FitReport):
    """At the end of ``fit``, run ``task`` on the trained energy and publish its report.

    Sampling shows a progress bar when the trainer shows one (``trainer.enable_progress_bar``).

    Args:
        task: the generation task (:class:`GenerationTask`).
        output_dir: where ``molecule_report.json`` and the task's pictures go (default: the trainer's log dir).

    Attributes:
        report: ``{"train_seconds", **task report}`` after ``fit``.
    """

    def __init__(self, task: GenerationTask, output_dir: Optional[str] = None) -> None:
        super().__init__()
        if not isinstance(task, GenerationTask):
            raise TypeError(f"MoleculeGenerationReport: task must have evaluate, logged and summary, got {type(task).__name__}")
        self.task = task
        self.output_dir = output_dir

    def report_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        energy = self.energy_of(pl_module, "sample from")
        out_dir = Path(self.output_dir or trainer.log_dir or ".")
        progress = trainer.progress_bar_callback is not None  # sampling shows progress when training did
        report = {
            "train_seconds": train_seconds,
            **self.task.evaluate(energy, trainer.datamodule, out_dir, pl_module.device, progress=progress),
        }
        self.publish(trainer, report, out_dir / "molecule_report.json", self.task.logged(report))
        print(self.summary())

    def summary(self) -> str:
        """The task's summary of the last report."""
        if self.report is None:
            return "MoleculeGenerationReport: no report yet"
        return self.task.summary(self.report)
