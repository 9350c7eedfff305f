"""Common ground of the end-of-training reports: timing ``fit``, finding the energy, publishing figures.

A report is a Lightning callback that evaluates the trained energy when ``fit`` ends
(:class:`~structebm.training.tagging_report.TaggingReport`,
:class:`~structebm.training.image_label_report.ImageLabelReport`,
:class:`~structebm.training.toy2d_report.Toy2DReport`,
:class:`~structebm.training.molecule_report.MoleculeGenerationReport`). They share:

- when ``fit`` ends, the evaluation (:meth:`FitReport.report_fit`) on the global-zero process
  only, so under DDP one process samples, scores and writes;
- ``train_seconds``: wall time from ``on_fit_start`` to the start of the evaluation;
- the energy under evaluation, ``pl_module.energy``, with an error naming the report if absent;
- publishing: chosen scalars go to every logger at the current global step and the whole
  report is written as JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import lightning.pytorch as pl
from torch import nn

__all__ = ["FitReport", "write_json"]


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` (parent folders created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


class FitReport(pl.Callback):
    """Base class of the end-of-``fit`` reports.

    Attributes:
        report: the figures of the last evaluation (``None`` before ``fit`` ends).
    """

    def __init__(self) -> None:
        super().__init__()
        self.report: Optional[dict[str, Any]] = None
        self._fit_started: Optional[float] = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_started = time.perf_counter()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.report_fit(trainer, pl_module)

    def report_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Evaluate the trained ``pl_module`` and publish the report (called on the global-zero process)."""
        raise NotImplementedError

    def train_seconds(self) -> Optional[float]:
        """Seconds since ``fit`` started (``None`` if this callback did not see it start)."""
        return None if self._fit_started is None else time.perf_counter() - self._fit_started

    def energy_of(self, pl_module: pl.LightningModule, purpose: str) -> nn.Module:
        """The module's ``energy``; ``purpose`` says what the report needs it for (error message)."""
        energy = getattr(pl_module, "energy", None)
        if energy is None:
            raise ValueError(f"{type(self).__name__}: {type(pl_module).__name__} has no .energy to {purpose}")
        return energy

    def publish(self, trainer: pl.Trainer, report: dict[str, Any], path: Path, logged: Mapping[str, float]) -> None:
        """Keep ``report``, log the scalars ``logged`` to every logger and write the report to ``path``."""
        self.report = report
        for logger in trainer.loggers:
            logger.log_metrics(dict(logged), step=trainer.global_step)
        write_json(path, report)
