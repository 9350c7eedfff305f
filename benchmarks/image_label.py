"""MNIST image–label compatibility: the recipe's JEM-style energy against a plain classifier.

Both models are trained by the same code path as ``structebm fit``
(:func:`structebm.cli.build_cli`), each from the recipe's own YAML:

- **ours** — ``recipes/image_label/base.yaml``: a :class:`~structebm.energies.cnn.ConvNet` read
  as :class:`~structebm.energies.image_label.ClassifierEnergy`, trained by the exact NLL of the
  label given the image plus 0.05 × persistent contrastive divergence of the image given the
  label (Langevin chains, per-class replay buffer whose restarts come 70 % from a Gaussian fitted
  to each class's training images); seeded by ``--seed``;
- **baseline** — ``base.yaml`` + ``classifier.yaml``: the same network, data batches, optimiser,
  schedule and trainer, trained by the exact NLL alone (cross-entropy), i.e. a plain classifier;
  seeded by ``--seed`` + 1.

Flags only override config keys: ``--epochs`` → ``trainer.max_epochs`` and the cosine
schedule's ``model.lr_scheduler.init_args.T_max``; ``--max-steps`` → ``trainer.max_steps``;
``--num-train`` → ``data.init_args.num_train`` and the ``num_train`` of every class in the model
that takes one (the replay buffer fits its class Gaussians on the data module's training split);
``--seed`` → ``seed_everything``; ``--override KEY=VALUE`` → any other key, as for
``structebm fit``, applied to both models. The command line of ``structebm fit`` cannot reach into
a list (the objective's ``terms``); a key with an entry number in it, such as
``model.objective.init_args.terms.1.init_args.weight`` (the generative term's weight), is applied
to the list as the configs give it and the whole list is passed on, for each model whose list has
that entry. Without flags both trainings run the recipe as it is.

Reported on the MNIST test set: ``accuracy``, ``ece`` (15 bins) and ``confidence`` (mean of
:math:`\\max_y p(y \\mid x)`; above the accuracy means over-confident) of each model as trained,
and ``ece_temperature_scaled`` after temperature scaling (one scalar ``temperature`` fitted on the
5,000 validation images held out of the training file; :mod:`structebm.evaluation.temperature`);
``conditional_sample_accuracy``: the fraction of our class-conditional Langevin samples
(``--samples-per-class`` chains per class from uniform noise, ``--sample-steps`` transitions)
that the independently trained baseline labels as the class they were drawn for; and
``ood_auroc`` (:mod:`structebm.evaluation.ood`) of telling MNIST test images from four other sets
(``--num-ood`` images each) by two scores, higher meaning more MNIST-like:

- ``energy``: :math:`-E(x) = \\log \\sum_y e^{f(x)[y]}`; ``max_prob``: :math:`\\max_y p(y \\mid x)`;
- sets: ``uniform_noise`` (pixels uniform in ``[-1, 1]``), ``blurred_mnist`` (Gaussian blur,
  sigma 1.5 pixels), ``inverted_mnist`` (:math:`-x`) from :mod:`structebm.data.shifted_images`,
  and ``sklearn_digits`` (the 8×8 UCI digits of scikit-learn, scaled to ``[-1, 1]`` and
  up-sampled bilinearly to 28×28).

``ood_auroc_temperature_scaled`` gives the same scores for the temperature-scaled model
(logits :math:`f(x) / T`), i.e. the OOD figures of the model whose ``ece_temperature_scaled`` is
reported. The samples and the OOD sets are drawn with ``--seed``. ``train_seconds`` is the wall
time of our training (Lightning's :class:`~lightning.pytorch.callbacks.Timer`, from the start to
the end of the training loop), ``baseline_train_seconds`` the baseline's; ``run_seconds`` that of
the whole benchmark (both trainings and every evaluation). ``report`` keeps the recipe's own
end-of-fit report (:class:`~structebm.training.image_label_report.ImageLabelReport`), whose
sample grid is copied beside the JSON file as ``<name>_samples.png``; ``command`` and
``baseline_command`` are the two ``structebm`` command lines.

Run: ``python benchmarks/image_label.py --out results/image_label.json --threads 1`` (also writes
``.md``); ``--max-steps`` and ``--num-train`` make quick runs.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from sklearn.datasets import load_digits
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table  # noqa: E402
from _recipe_runs import callback_of, fit_arguments, merged_config  # noqa: E402

from structebm.cli import build_cli  # noqa: E402
from structebm.data.mnist import MNISTDataModule, load_mnist, scale_images  # noqa: E402
from structebm.data.shifted_images import shifted_image_sets  # noqa: E402
from structebm.energies.image_label import ClassifierEnergy, LabelGivenImage  # noqa: E402
from structebm.evaluation.calibration import expected_calibration_error  # noqa: E402
from structebm.evaluation.ood import auroc_table, logit_scores  # noqa: E402
from structebm.evaluation.temperature import fit_temperature  # noqa: E402
from structebm.samplers.class_conditional import class_conditional_samples  # noqa: E402
from structebm.training.image_label_report import ImageLabelReport  # noqa: E402

K = 10
IMAGE = (1, 28, 28)
RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "image_label"
OURS = (RECIPES / "base.yaml",)
BASELINE = (RECIPES / "base.yaml", RECIPES / "classifier.yaml")


def num_train_keys(config: dict[str, Any], num_train: int) -> list[str]:
    """``KEY=num_train`` for the data module and for every class under ``model`` whose constructor takes
    ``num_train`` (a part fitted on the training split, which must see the same images)."""

    def classes(node: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            if isinstance(node.get("class_path"), str):
                yield path, node["class_path"]
            for key, value in node.items():
                yield from classes(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from classes(value, f"{path}.{index}")

    keys = [f"data.init_args.num_train={num_train}"]
    for path, class_path in classes(config.get("model", {}), "model"):
        module, _, name = class_path.rpartition(".")
        if "num_train" in inspect.signature(getattr(importlib.import_module(module), name)).parameters:
            keys.append(f"{path}.init_args.num_train={num_train}")
    return keys


def model_keys(args: argparse.Namespace, configs: Sequence[Path], seed: int, workdir: Path) -> list[str]:
    """The config keys that ``args`` set for the model of ``configs``, trained with ``seed``."""
    keys = [
        f"seed_everything={seed}",
        f"trainer.default_root_dir={workdir}",
        f"trainer.logger.init_args.save_dir={workdir}",
        f"trainer.enable_progress_bar={str(args.progress).lower()}",
    ]
    if args.epochs is not None:
        keys += [f"trainer.max_epochs={args.epochs}", f"model.lr_scheduler.init_args.T_max={args.epochs}"]
    if args.max_steps is not None:
        keys.append(f"trainer.max_steps={args.max_steps}")
    if args.num_train is not None:
        keys += num_train_keys(merged_config(configs), args.num_train)
    return [*keys, *args.override]


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


def train(arguments: list[str]) -> tuple[Any, float]:
    """``structebm fit`` with ``arguments``; the trained CLI and the seconds of its training loop."""
    cli = build_cli(["fit", *arguments])
    energy = cli.model.energy
    if not isinstance(energy, ClassifierEnergy) or not isinstance(cli.datamodule, MNISTDataModule):
        raise TypeError(
            "image_label: the configs must give a ClassifierEnergy and an MNISTDataModule, got "
            f"{type(energy).__name__} and {type(cli.datamodule).__name__}"
        )
    return cli, callback_of(cli, Timer).time_elapsed("train")


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    begin = time.perf_counter()
    torch.set_num_threads(args.threads)
    command, skipped_ours = fit_arguments(OURS, model_keys(args, OURS, args.seed, workdir))
    baseline_command, skipped_baseline = fit_arguments(BASELINE, model_keys(args, BASELINE, args.seed + 1, workdir))
    unused = skipped_ours & skipped_baseline
    if unused:
        raise ValueError(f"image_label: no model's config has the list entry of {sorted(unused)}")
    cli, train_seconds = train(command)
    baseline_cli, baseline_seconds = train(baseline_command)
    ours, baseline = cli.model.energy.eval(), baseline_cli.model.energy.eval()

    raw_images, test_labels = load_mnist("test")
    test_images = scale_images(raw_images)
    scores = test_scores(ours, test_images, test_labels, validation_temperature(ours, cli.datamodule))
    baseline_scores = test_scores(
        baseline, test_images, test_labels, validation_temperature(baseline, baseline_cli.datamodule)
    )

    generator = torch.Generator().manual_seed(args.seed)
    samples = class_conditional_samples(ours, IMAGE, args.samples_per_class, args.sample_steps, generator)
    with torch.no_grad():
        judged = LabelGivenImage(baseline).argmax(samples.flatten(0, 1)).reshape(samples.shape[:2])
    sample_accuracy = float((judged == torch.arange(K)[:, None]).double().mean())

    sets = ood_sets(test_images, args.num_ood, args.seed)
    in_distribution = test_images[: args.num_ood]
    report = callback_of(cli, ImageLabelReport, required=False)
    if report is not None and report.report is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report.report["sample_grid"], args.out.with_name(f"{args.out.stem}_samples.png"))
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
        "train_steps": cli.trainer.global_step,
        "baseline_train_steps": baseline_cli.trainer.global_step,
        "run_seconds": time.perf_counter() - begin,
        "report": None if report is None else report.report,
        "command": shlex.join(["structebm", "fit", *command]),
        "baseline_command": shlex.join(["structebm", "fit", *baseline_command]),
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
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
        + f"Ours: `{result['command']}`\n\nBaseline: `{result['baseline_command']}`\n\n"
        + f"_{details}_\n"
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write (a .md table is written next to it)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="trainer.max_epochs and the cosine schedule's T_max (default: the recipe's, 6)")
    parser.add_argument("--max-steps", type=int, default=None, help="trainer.max_steps of both trainings")
    parser.add_argument("--num-train", type=int, default=None,
                        help="training images: data.init_args.num_train and the replay buffer's (default: all 55,000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed_everything of ours (the baseline: seed + 1), the samples and the OOD sets")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="any further config key of both models, as for structebm fit (repeatable); an entry of "
                             "a list by its number, e.g. model.objective.init_args.terms.1.init_args.weight=0.02")
    parser.add_argument("--sample-steps", type=int, default=200, help="transitions of each conditional sampling chain")
    parser.add_argument("--samples-per-class", type=int, default=20)
    parser.add_argument("--num-ood", type=int, default=1000, help="images per set in the OOD comparison")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars (for logs)")
    args = parser.parse_args(argv)
    if args.out.suffix != ".json":
        parser.error(f"--out must end in .json, got {args.out}")
    for flag, value in (("--epochs", args.epochs), ("--max-steps", args.max_steps), ("--num-train", args.num_train)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be a positive integer, got {value}")
    if args.sample_steps < 1 or args.samples_per_class < 1 or args.threads < 1:
        parser.error("--sample-steps, --samples-per-class and --threads must be positive")
    if not 1 <= args.num_ood <= 1797:
        parser.error(f"--num-ood must lie in [1, 1797] (the size of the sklearn digits set), got {args.num_ood}")
    for item in args.override:
        if "=" not in item or not item.partition("=")[0]:
            parser.error(f"--override takes KEY=VALUE, got {item!r}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="image_label_") as folder:
        result = run(args, Path(folder))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(json.dumps({k: v for k, v in result.items() if k not in ("settings", "environment", "report")}, indent=2))
    return result


if __name__ == "__main__":
    main()
