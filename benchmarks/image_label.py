"""MNIST image–label compatibility: a JEM-style energy against a plain classifier.

Both models are the same :class:`~structebm.energies.cnn.ConvNet` read as
:class:`~structebm.energies.image_label.ClassifierEnergy`, trained with
:class:`~structebm.training.module.EBMModule` for the same number of steps:

- **ours** — :class:`~structebm.objectives.combined.Combined`: exact NLL of the label given the
  image plus persistent contrastive divergence of the image given the label (Langevin chains,
  per-class replay buffer), as in ``recipes/image_label/base.yaml``, the latter weighted by
  ``--generate-weight``. With ``--gaussian-restarts f`` a fraction ``f`` of the restarted chains
  start from a Gaussian fitted to the training images of their class instead of uniform noise
  (:class:`~structebm.samplers.class_gaussian.ClassGaussianReplayBuffer`);
- **baseline** — exact NLL only (cross-entropy), i.e. a plain classifier.

Reported on the MNIST test set: ``accuracy``, ``ece`` (15 bins) and ``confidence`` (mean of
:math:`\\max_y p(y \\mid x)`; above the accuracy means over-confident) of each model as trained,
and ``ece_temperature_scaled`` after temperature scaling (one scalar ``temperature`` fitted on the
5,000 validation images held out of the training file; :mod:`structebm.evaluation.temperature`);
``conditional_sample_accuracy``: the fraction of our class-conditional Langevin samples
(chains from uniform noise) that the independently trained baseline labels as the class they
were drawn for; and ``ood_auroc`` (:mod:`structebm.evaluation.ood`) of telling MNIST test
images from four other sets by two scores, higher meaning more MNIST-like:

- ``energy``: :math:`-E(x) = \\log \\sum_y e^{f(x)[y]}`; ``max_prob``: :math:`\\max_y p(y \\mid x)`;
- sets: ``uniform_noise`` (pixels uniform in ``[-1, 1]``), ``blurred_mnist`` (Gaussian blur,
  sigma 1.5 pixels), ``inverted_mnist`` (:math:`-x`) from :mod:`structebm.data.shifted_images`,
  and ``sklearn_digits`` (the 8×8 UCI digits
  of scikit-learn, scaled to ``[-1, 1]`` and up-sampled bilinearly to 28×28).

``ood_auroc_temperature_scaled`` gives the same scores for the temperature-scaled model
(logits :math:`f(x) / T`), i.e. the OOD figures of the model whose ``ece_temperature_scaled`` is
reported.

Both trainings see the same training batches (optionally translated by up to ``--max-shift``
pixels, :class:`~structebm.data.mnist.MNISTDataModule`'s ``max_shift``; off by default) and use Adam with
a cosine decay of the learning rate over ``--epochs`` (default 6, stepped per epoch). ``train_seconds`` is the wall time of our ``Trainer.fit``; ``run_seconds`` that of
the whole benchmark (both trainings and every evaluation).

Run: ``python benchmarks/image_label.py --out results/image_label.json`` (also writes ``.md``);
``--max-steps`` and ``--num-train`` make quick runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table  # noqa: E402

from structebm.data.mnist import MNISTDataModule, load_mnist, scale_images  # noqa: E402
from structebm.data.shifted_images import shifted_image_sets  # noqa: E402
from structebm.energies.cnn import ConvNet  # noqa: E402
from structebm.energies.image_label import ClassifierEnergy, ImageGivenLabel, LabelGivenImage  # noqa: E402
from structebm.evaluation.calibration import expected_calibration_error  # noqa: E402
from structebm.evaluation.ood import auroc_table, logit_scores  # noqa: E402
from structebm.evaluation.temperature import fit_temperature  # noqa: E402
from structebm.objectives.base import Objective  # noqa: E402
from structebm.objectives.combined import Combined, ObjectiveTerm  # noqa: E402
from structebm.objectives.contrastive import ContrastiveDivergence  # noqa: E402
from structebm.objectives.exact_nll import ExactNLL  # noqa: E402
from structebm.samplers.chains import ReplayBuffer  # noqa: E402
from structebm.samplers.class_gaussian import ClassGaussianReplayBuffer  # noqa: E402
from structebm.samplers.langevin import langevin  # noqa: E402
from structebm.spaces import ContinuousSpace  # noqa: E402
from structebm.samplers.class_conditional import class_conditional_samples  # noqa: E402
from structebm.training.module import EBMModule  # noqa: E402

K = 10
IMAGE = (1, 28, 28)


def make_energy(seed: int, widths: Sequence[int]) -> ClassifierEnergy:
    torch.manual_seed(seed)
    return ClassifierEnergy(ConvNet(in_channels=1, out_features=K, widths=widths), K)


def jem_objective(args: argparse.Namespace, data: MNISTDataModule) -> Combined:
    """``classify`` (exact NLL of ``y`` given ``x``) plus ``generate`` (PCD of ``x`` given ``y``, weight ``--generate-weight``)."""
    space = ContinuousSpace(IMAGE, low=-1.0, high=1.0)
    if args.gaussian_restarts > 0:
        data.setup("fit")
        train_set = data.train_set
        buffer: ReplayBuffer = ClassGaussianReplayBuffer(
            space, scale_images(train_set.images), train_set.labels, K, args.gaussian_restarts,
            capacity=10_000, reinit_prob=args.reinit_prob,
        )
    else:
        buffer = ReplayBuffer(space, capacity=10_000, reinit_prob=args.reinit_prob, num_classes=K)
    contrastive = ContrastiveDivergence(
        langevin, buffer, num_steps=args.langevin_steps, generator_seed=args.seed,
        sampler_options={"step_size": args.step_size, "noise_scale": args.noise_scale, "bounds": (-1.0, 1.0)},
        energy_magnitude_weight=args.energy_magnitude_weight,
    )
    return Combined([
        ObjectiveTerm("classify", ExactNLL(), view=LabelGivenImage, batch_order=[1, 0]),
        ObjectiveTerm("generate", contrastive, view=ImageGivenLabel, weight=args.generate_weight),
    ])


def train(energy: nn.Module, objective: Objective, data: MNISTDataModule, args: argparse.Namespace) -> float:
    """Fit and return the wall time of ``Trainer.fit`` in seconds."""
    module = EBMModule(
        energy, objective, optimizer=lambda params: torch.optim.Adam(params, lr=args.lr),
        # cosine decay of the learning rate to zero over the epochs (stepped once per epoch)
        lr_scheduler=lambda optimizer: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs),
    )
    trainer = pl.Trainer(
        max_epochs=args.epochs, max_steps=args.max_steps, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, gradient_clip_val=10.0,
    )
    begin = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return time.perf_counter() - begin


def sklearn_digits(n: int) -> Tensor:
    """The first ``n`` scikit-learn 8×8 digits (values 0..16) in ``[-1, 1]``, up-sampled to 28×28."""
    digits = torch.as_tensor(load_digits().images[:n], dtype=torch.float32)
    scaled = digits.unsqueeze(1) / 8.0 - 1.0
    return F.interpolate(scaled, size=IMAGE[1:], mode="bilinear", align_corners=False)


def ood_sets(test_images: Tensor, n: int, seed: int) -> dict[str, Tensor]:
    """Four out-of-distribution sets of ``n`` images each (``sklearn_digits``: at most 1,797)."""
    shifted = shifted_image_sets(test_images, n, seed, sigma=1.5)
    return {
        "uniform_noise": shifted["uniform_noise"],
        "blurred_mnist": shifted["blurred"],
        "inverted_mnist": shifted["inverted"],
        "sklearn_digits": sklearn_digits(n),
    }


def ood_scores(energy: ClassifierEnergy, images: Tensor, temperature: float = 1.0) -> dict[str, Tensor]:
    """Both OOD scores of the model with logits ``f(x) / temperature``."""
    return logit_scores(all_logits(energy, images), temperature)


def ood_auroc(
    energy: ClassifierEnergy, in_distribution: Tensor, sets: dict[str, Tensor], temperature: float = 1.0
) -> dict[str, dict[str, float]]:
    inside = ood_scores(energy, in_distribution, temperature)
    return auroc_table(inside, {name: ood_scores(energy, images, temperature) for name, images in sets.items()})


@torch.no_grad()
def all_logits(energy: ClassifierEnergy, images: Tensor) -> Tensor:
    """Logits ``[N, K]`` of ``images``, in chunks of 1,000."""
    return torch.cat([energy.logits(chunk) for chunk in images.split(1000)])


def test_scores(energy: ClassifierEnergy, images: Tensor, labels: Tensor, temperature: float) -> dict[str, float]:
    """Accuracy, ECE (15 bins) and mean confidence ``max_y p(y | x)`` on ``images``, as trained and
    after temperature scaling with ``temperature`` (fitted on the validation split)."""
    logits = all_logits(energy, images)
    probabilities, scaled = torch.softmax(logits, dim=1), torch.softmax(logits / temperature, dim=1)
    return {
        "accuracy": float((logits.argmax(dim=1) == labels).double().mean()),
        "ece": expected_calibration_error(probabilities, labels, num_bins=15),
        "confidence": float(probabilities.max(dim=1).values.double().mean()),
        "temperature": temperature,
        "ece_temperature_scaled": expected_calibration_error(scaled, labels, num_bins=15),
        "confidence_temperature_scaled": float(scaled.max(dim=1).values.double().mean()),
    }


def validation_temperature(energy: ClassifierEnergy, data: MNISTDataModule) -> float:
    """Temperature scaling (:func:`~structebm.evaluation.temperature.fit_temperature`) on the validation split."""
    data.setup("fit")
    if data.val_set is None or len(data.val_set) == 0:
        return 1.0
    return fit_temperature(all_logits(energy, scale_images(data.val_set.images)), data.val_set.labels)


def run(args: argparse.Namespace) -> dict[str, Any]:
    begin = time.perf_counter()
    torch.set_num_threads(args.threads)
    data_for: Callable[[str], MNISTDataModule] = lambda state: MNISTDataModule(
        batch_size=args.batch_size, state=state, num_train=args.num_train, seed=args.seed,
        num_val=args.num_val, max_shift=args.max_shift,
    )
    ours, baseline = make_energy(args.seed, args.widths), make_energy(args.seed + 1, args.widths)
    data = data_for("image")
    train_seconds = train(ours, jem_objective(args, data), data, args)
    baseline_seconds = train(LabelGivenImage(baseline), ExactNLL(), data_for("label"), args)
    ours.eval()
    baseline.eval()

    raw_images, test_labels = load_mnist("test")
    test_images = scale_images(raw_images)
    scores = test_scores(ours, test_images, test_labels, validation_temperature(ours, data))
    baseline_scores = test_scores(baseline, test_images, test_labels, validation_temperature(baseline, data))

    generator = torch.Generator().manual_seed(args.seed)
    samples = class_conditional_samples(ours, IMAGE, args.samples_per_class, args.sample_steps, generator)
    with torch.no_grad():
        judged = LabelGivenImage(baseline).argmax(samples.flatten(0, 1)).reshape(samples.shape[:2])
    sample_accuracy = float((judged == torch.arange(K)[:, None]).double().mean())

    sets = ood_sets(test_images, args.num_ood, args.seed)
    in_distribution = test_images[: args.num_ood]
    return {
        **scores,
        "conditional_sample_accuracy": sample_accuracy,
        "ood_auroc": ood_auroc(ours, in_distribution, sets),
        "ood_auroc_temperature_scaled": ood_auroc(ours, in_distribution, sets, scores["temperature"]),
        **{f"baseline_{key}": value for key, value in baseline_scores.items()},
        "baseline_ood_auroc": ood_auroc(baseline, in_distribution, sets),
        "baseline_ood_auroc_temperature_scaled": ood_auroc(
            baseline, in_distribution, sets, baseline_scores["temperature"]
        ),
        "train_seconds": train_seconds,
        "baseline_train_seconds": baseline_seconds,
        "run_seconds": time.perf_counter() - begin,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "environment": environment(),
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [
        {"model": "ours (NLL + PCD)", "accuracy": result["accuracy"], "ece": result["ece"],
         "confidence": result["confidence"], "temperature": result["temperature"],
         "ece_temperature_scaled": result["ece_temperature_scaled"],
         "train_seconds": result["train_seconds"],
         **{f"auroc {s}/{k}": v for s, d in result["ood_auroc"].items() for k, v in d.items()}},
        {"model": "baseline (NLL)", "accuracy": result["baseline_accuracy"], "ece": result["baseline_ece"],
         "confidence": result["baseline_confidence"], "temperature": result["baseline_temperature"],
         "ece_temperature_scaled": result["baseline_ece_temperature_scaled"],
         "train_seconds": result["baseline_train_seconds"],
         **{f"auroc {s}/{k}": v for s, d in result["baseline_ood_auroc"].items() for k, v in d.items()}},
    ]
    details = ", ".join(f"{k}={v}" for k, v in {**result["settings"], **result["environment"]}.items())
    return (
        "# MNIST image–label compatibility\n\n" + markdown_table(rows)
        + f"\nconditional_sample_accuracy (ours, judged by the baseline): {result['conditional_sample_accuracy']:.3f}\n\n"
        + f"_{details}_\n"
    )


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON file to write (a .md table is written next to it)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop both trainings after this many steps")
    parser.add_argument("--num-train", type=int, default=None, help="cap on training images (default: all 55,000)")
    parser.add_argument("--num-val", type=int, default=5_000,
                        help="training-file images held out (unused here; 0 trains on all 60,000)")
    parser.add_argument("--max-shift", type=int, default=0,
                        help="translate training images by up to this many pixels (both models)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128], help="ConvNet channel widths")
    parser.add_argument("--langevin-steps", type=int, default=10, help="transitions per PCD training step")
    parser.add_argument("--step-size", type=float, default=1.0, help="Langevin step size of the training chains")
    parser.add_argument("--noise-scale", type=float, default=0.01, help="Langevin noise scale of the training chains")
    parser.add_argument("--generate-weight", type=float, default=0.05,
                        help="weight of the generative (PCD) term against the classification NLL")
    parser.add_argument("--energy-magnitude-weight", type=float, default=0.01,
                        help="weight of the squared-energy penalty of the PCD term")
    parser.add_argument("--reinit-prob", type=float, default=0.05, help="probability that a PCD chain restarts")
    parser.add_argument("--gaussian-restarts", type=float, default=0.7,
                        help="fraction of restarts drawn from a Gaussian fitted to each class's training images "
                             "(the rest from uniform noise)")
    parser.add_argument("--sample-steps", type=int, default=200, help="transitions of each conditional sampling chain")
    parser.add_argument("--samples-per-class", type=int, default=20)
    parser.add_argument("--num-ood", type=int, default=1000, help="images per set in the OOD comparison")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.out.endswith(".json"):
        parser.error(f"--out must end in .json, got {args.out}")
    if not 1 <= args.num_ood <= 1797 or 2 * args.num_ood > 10_000:
        parser.error("--num-ood must lie in [1, 1797] (the size of the sklearn digits set)")
    return args


def main(argv: Optional[list[str]] = None) -> None:
    args = parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(json.dumps({k: v for k, v in result.items() if k not in ("settings", "environment")}, indent=2))


if __name__ == "__main__":
    main()
