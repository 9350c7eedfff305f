"""End-of-training report for image–label energies: accuracy, calibration and class-conditional samples.

For an energy with ``label_energies(x) -> [B, K]`` (:class:`~structebm.energies.image_label.ClassifierEnergy`
and friends) the label posterior is exact,

.. math::
    p(y \\mid x) = \\operatorname{softmax}_y(-E(x, \\cdot)), \\qquad \\hat y = \\arg\\min_y E(x, y),

so the report scores the test split with the accuracy of :math:`\\hat y` and the expected
calibration error (15 bins, :mod:`structebm.evaluation.calibration`). It then draws images
from every class-conditional :math:`p(x \\mid y) \\propto e^{-E(x, y)}` with Langevin chains
started from uniform noise in ``[-1, 1]`` and saves them as a PNG grid, one row per class.
``sample_self_accuracy`` is the fraction of those samples the model itself labels as the class
they were drawn for (an independent judge is used by ``benchmarks/image_label.py``).

YAML configs cannot pass image tensors, so :class:`MNISTClassGaussianReplayBuffer` (the
recipe's chain source) loads the MNIST training images itself and fits the class Gaussians of
:class:`~structebm.samplers.class_gaussian.ClassGaussianReplayBuffer` on them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from structebm.data.mnist import check_split_sizes, load_mnist, scale_images, train_split
from structebm.energies.image_label import ImageGivenLabel, LabelGivenImage
from structebm.evaluation.calibration import expected_calibration_error
from structebm.evaluation.temperature import fit_temperature
from structebm.samplers.base import run_chain
from structebm.samplers.class_gaussian import ClassGaussianReplayBuffer
from structebm.samplers.langevin import langevin
from structebm.spaces import ContinuousSpace
from structebm.training.fit_report import FitReport

__all__ = [
    "label_posteriors",
    "class_conditional_samples",
    "save_sample_grid",
    "ImageLabelReport",
    "MNISTClassGaussianReplayBuffer",
]


@torch.no_grad()
def label_posteriors(energy: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Exact ``p(y | x)`` of every image and the gold labels, from ``(x, y)`` batches.

    Shapes:
        - returns: probabilities ``[N, K]`` and labels ``[N]``, on the CPU
    """
    view = LabelGivenImage(energy)
    probabilities, labels = [], []
    for x, y in batches:
        probabilities.append(view.marginals(x).cpu())
        labels.append(y.cpu())
    if not labels:
        raise ValueError("label_posteriors: no batches to score")
    return torch.cat(probabilities), torch.cat(labels)


def log_probabilities(probabilities: Tensor) -> Tensor:
    """``log p`` with zeros clamped to the smallest positive float; ``softmax(log p / T)`` is ``p`` at ``T = 1``."""
    return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()


def class_conditional_samples(
    energy: nn.Module,
    image_shape: Sequence[int],
    num_per_class: int,
    num_steps: int,
    generator: torch.Generator,
    step_size: float = 1.0,
    noise_scale: Optional[float] = 0.01,
) -> Tensor:
    """Langevin samples of ``p(x | y)`` for every class, started from uniform noise in ``[-1, 1]``.

    The chains are clamped to ``[-1, 1]`` (the pixel range of the data).

    Shapes:
        - returns: ``[K, num_per_class, *image_shape]`` (detached, on the generator's device)
    """
    view = ImageGivenLabel(energy)
    if isinstance(num_per_class, bool) or not isinstance(num_per_class, int) or num_per_class < 1:
        raise ValueError(f"class_conditional_samples: num_per_class must be a positive integer, got {num_per_class!r}")
    num_classes = view.num_classes
    device = generator.device
    labels = torch.arange(num_classes, device=device).repeat_interleave(num_per_class)
    start = torch.rand((labels.shape[0], *image_shape), generator=generator, device=device) * 2 - 1
    sampler = langevin(view, step_size=step_size, noise_scale=noise_scale, bounds=(-1.0, 1.0))
    samples, _ = run_chain(sampler, start, num_steps, generator, c=labels)
    return samples.reshape(num_classes, num_per_class, *image_shape)


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

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
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
            "accuracy": float((probabilities.argmax(dim=1) == labels).double().mean()),
            "ece": expected_calibration_error(probabilities, labels, self.num_bins),
            "temperature": temperature,
            "ece_temperature_scaled": None if temperature is None else expected_calibration_error(
                torch.softmax(log_probabilities(probabilities) / temperature, dim=1), labels, self.num_bins
            ),
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


class MNISTClassGaussianReplayBuffer(ClassGaussianReplayBuffer):
    """A :class:`~structebm.samplers.class_gaussian.ClassGaussianReplayBuffer` over MNIST, fitted on its training split.

    The images are those of :class:`~structebm.data.mnist.MNISTDataModule`'s training set with the
    same ``num_val``, ``seed`` and ``num_train`` (:func:`~structebm.data.mnist.train_split`),
    scaled to ``[-1, 1]``; the space is ``ContinuousSpace((1, 28, 28), low=-1, high=1)`` and
    there is one class per digit.

    Args:
        gaussian_fraction: probability that a restart is drawn from the class Gaussian.
        capacity, reinit_prob, jitter: as for ``ClassGaussianReplayBuffer``.
        num_val, seed, num_train: the split, as for ``MNISTDataModule`` (give the data module's values).
        root: data root (default ``$STRUCTEBM_DATA``, else the user cache).

    Shapes:
        - storage: ``[capacity, 1, 28, 28]``; ``class_mean [10, 784]``, ``class_factor [10, 784, 784]``
    """

    def __init__(
        self, gaussian_fraction: float, capacity: int = 10_000, reinit_prob: float = 0.05, jitter: float = 1e-3,
        num_val: int = 5_000, seed: int = 0, num_train: Optional[int] = None, root: Optional[Path] = None,
    ) -> None:
        check_split_sizes(num_val, num_train, "MNISTClassGaussianReplayBuffer")
        (images, labels), _ = train_split(*load_mnist("train", root), num_val, seed, num_train)
        space = ContinuousSpace((1, 28, 28), low=-1.0, high=1.0)
        super().__init__(
            space, scale_images(images), labels, 10, gaussian_fraction,
            capacity=capacity, reinit_prob=reinit_prob, jitter=jitter,
        )
