"""End-of-training report for image–label energies: accuracy, calibration and class-conditional samples.

A thin callback over the layers below: the exact label posteriors and the classification
scores come from :mod:`structebm.evaluation.classification` (accuracy, 15-bin ECE, and the
ECE after temperature scaling fitted on the validation split), the class-conditional
Langevin samples from :mod:`structebm.samplers.class_conditional`; the samples are saved as a
PNG grid, one row per class. ``sample_self_accuracy`` is the fraction of those samples the
model itself labels as the class they were drawn for (an independent judge is used by
``benchmarks/image_label.py``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from structebm.energies.image_label import LabelGivenImage
from structebm.evaluation.classification import classification_scores, label_posteriors, log_probabilities
from structebm.evaluation.temperature import fit_temperature
from structebm.samplers.class_conditional import class_conditional_samples
from structebm.training.fit_report import FitReport

__all__ = ["save_sample_grid", "ImageLabelReport"]


def save_sample_grid(samples: Tensor, path: Path) -> None:
    """Save ``[rows, columns, 1, H, W]`` images in ``[-1, 1]`` as one grey-scale PNG, one row per class."""
    if samples.dim() != 5 or samples.shape[2] != 1:
        raise ValueError(f"save_sample_grid: expected [rows, columns, 1, H, W], got {tuple(samples.shape)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns, _, height, width = samples.shape
    grid = samples[:, :, 0].permute(0, 2, 1, 3).reshape(rows * height, columns * width)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, ((grid.cpu().clamp(-1, 1) + 1) / 2).numpy(), cmap="gray", vmin=0.0, vmax=1.0)


class ImageLabelReport(FitReport):
    """At the end of ``fit``: test accuracy, ECE and a grid of class-conditional samples, as JSON + PNG.

    The data module must provide ``test_dataloader()`` of ``(x, y)`` batches, or ``(y, x)`` when its
    ``state`` is ``"label"`` (as :class:`~structebm.data.mnist.MNISTDataModule` does); the trained
    module must hold the energy as ``.energy``.

    Args:
        output_path: JSON file to write; default ``<log dir>/image_label_report.json``. The sample
            grid goes next to it, with the suffix ``.png``.
        num_per_class: samples drawn per class (columns of the grid).
        langevin_steps: transitions of each sampling chain.
        step_size: Langevin step size.
        noise_scale: Langevin noise scale (``None``: :math:`\\sqrt{2\\epsilon}`).
        num_bins: confidence bins of the ECE.
        seed: seed of the sampling chains.
        log_prefix: prefix of the logged metrics.

    Attributes:
        report: ``accuracy``, ``ece``, ``temperature`` and ``ece_temperature_scaled`` (temperature
            scaling fitted on the data module's validation split; both ``None`` without one),
            ``sample_self_accuracy``, ``num_test``, ``train_seconds``, ``report_seconds`` and
            ``sample_grid`` (the PNG path).
    """

    def __init__(
        self,
        output_path: Optional[str] = None,
        num_per_class: int = 8,
        langevin_steps: int = 100,
        step_size: float = 1.0,
        noise_scale: Optional[float] = 0.01,
        num_bins: int = 15,
        seed: int = 0,
        log_prefix: str = "test",
    ) -> None:
        super().__init__()
        self.output_path = output_path
        self.num_per_class = num_per_class
        self.langevin_steps = langevin_steps
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.num_bins = num_bins
        self.seed = seed
        self.log_prefix = log_prefix

    def report_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        begin = time.perf_counter()
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "test_dataloader"):
            raise ValueError("ImageLabelReport: the trainer needs a data module with test_dataloader()")
        energy = self.energy_of(pl_module, "evaluate")
        datamodule.setup("test")
        image_first = getattr(datamodule, "state", "image") == "image"
        device = pl_module.device
        image_shapes: list[tuple[int, ...]] = []

        def image_label_batches(loader: Iterable) -> Iterable[tuple[Tensor, Tensor]]:
            for batch in loader:
                x, y = (batch[0], batch[1]) if image_first else (batch[1], batch[0])
                image_shapes.append(tuple(x.shape[1:]))
                yield x.to(device), y.to(device)

        was_training = energy.training
        energy.eval()
        try:
            probabilities, labels = label_posteriors(energy, image_label_batches(datamodule.test_dataloader()))
            temperature = self.validation_temperature(energy, datamodule, image_label_batches)
            generator = torch.Generator(device=device).manual_seed(self.seed)
            samples = class_conditional_samples(
                energy, image_shapes[0],
                self.num_per_class, self.langevin_steps, generator, self.step_size, self.noise_scale,
            )
            with torch.no_grad():
                judged = LabelGivenImage(energy).argmax(samples.flatten(0, 1)).reshape(samples.shape[:2]).cpu()
        finally:
            energy.train(was_training)
        path = Path(self.output_path) if self.output_path else Path(trainer.log_dir or ".") / "image_label_report.json"
        grid_path = path.with_suffix(".png")
        save_sample_grid(samples, grid_path)
        classes = torch.arange(samples.shape[0])[:, None]
        report = {
            **classification_scores(probabilities, labels, self.num_bins, temperature),
            "sample_self_accuracy": float((judged == classes).double().mean()),
            "num_test": int(labels.shape[0]),
            "train_seconds": train_seconds,
            "report_seconds": time.perf_counter() - begin,
            "sample_grid": str(grid_path),
        }
        logged = {f"{self.log_prefix}/{k}": report[k] for k in ("accuracy", "ece", "sample_self_accuracy")}
        self.publish(trainer, report, path, logged)

    @staticmethod
    def validation_temperature(
        energy: nn.Module, datamodule: Any, batches: Callable[[Iterable], Iterable[tuple[Tensor, Tensor]]]
    ) -> Optional[float]:
        """Temperature scaling (:func:`~structebm.evaluation.temperature.fit_temperature`) on the
        data module's validation split; ``None`` when it has none."""
        if not hasattr(datamodule, "val_dataloader"):
            return None
        datamodule.setup("validate")
        loader = datamodule.val_dataloader()
        if len(loader) == 0:
            return None
        probabilities, labels = label_posteriors(energy, batches(loader))
        return fit_temperature(log_probabilities(probabilities), labels)
