"""The MNIST image–label recipe runs end to end, tiny: 512 training images, a few steps.

The run goes through the ``structebm`` command line (``build_cli``) with the recipe's YAML,
so it checks that the combined objective (exact NLL on the label view + persistent CD on the
image view, chains restarted partly from the class Gaussians of MNIST) and the cosine
learning-rate schedule are built from the config, train, and that the report writes its JSON
and PNG.
After 16 steps of the recipe's Adam (lr 1e-3) the test accuracy is about 0.63 on this
machine; chance is 0.1. Ten thousand test images put the standard error of an accuracy at
most sqrt(0.25 / 10000) = 0.005, so the bound 0.3 only fails for a model that did not learn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

from structebm.cli import build_cli
from structebm.data.mnist import MNIST_FILES, MNISTDataModule, scale_images
from structebm.data._files import fetch_file
from structebm.data.mnist_chains import MNISTClassGaussianReplayBuffer
from structebm.evaluation.calibration import expected_calibration_error
from structebm.evaluation.classification import label_posteriors, log_probabilities

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "image_label" / "base.yaml"


@pytest.fixture(scope="module")
def mnist_available():
    try:
        for split in ("train", "test"):
            for remote in MNIST_FILES[split]:
                fetch_file(remote, None)
    except Exception as error:  # noqa: BLE001 - any failure to resolve the files means no data here
        pytest.fail(f"MNIST is needed by the image-label recipe test (set STRUCTEBM_DATA): {error}")


def test_recipe_trains_and_reports(tmp_path, mnist_available):
    report_path = tmp_path / "report.json"
    config = yaml.safe_load(RECIPE.read_text())
    generate = config["model"]["objective"]["init_args"]["terms"][1]["init_args"]
    assert generate["name"] == "generate"
    generate["objective"]["init_args"]["num_steps"] = 3  # short chains keep the test fast
    generate["objective"]["init_args"]["source"]["init_args"]["num_train"] = 512  # the data module's
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(config))
    cli = build_cli([
        "fit",
        "--config", str(tiny),
        "--trainer.max_steps=16",
        "--data.init_args.num_train=512",
        "--data.init_args.batch_size=32",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.callbacks.init_args.output_path={report_path}",
        "--trainer.callbacks.init_args.num_per_class=2",
        "--trainer.callbacks.init_args.langevin_steps=3",
    ])
    report = json.loads(report_path.read_text())
    assert report["num_test"] == 10_000
    assert report["accuracy"] > 0.3, report
    assert math.isfinite(report["train_seconds"])
    # The report scores the trained energy on the test split: recompute its figures from the model.
    energy = cli.model.energy.eval()
    probabilities, labels = label_posteriors(energy, cli.datamodule.test_dataloader())
    assert report["accuracy"] == pytest.approx(float((probabilities.argmax(dim=1) == labels).double().mean()), abs=1e-9)
    assert report["ece"] == pytest.approx(expected_calibration_error(probabilities, labels), abs=1e-6)
    scaled = torch.softmax(log_probabilities(probabilities) / report["temperature"], dim=1)
    assert report["ece_temperature_scaled"] == pytest.approx(expected_calibration_error(scaled, labels), abs=1e-6)
    # The temperature minimises the validation NLL, so it is no worse there than T = 1.
    val_probabilities, val_labels = label_posteriors(energy, cli.datamodule.val_dataloader())
    nll = lambda t: F.cross_entropy(log_probabilities(val_probabilities).double() / t, val_labels).item()  # noqa: E731
    assert nll(report["temperature"]) <= nll(1.0) + 1e-9
    with Image.open(report["sample_grid"]) as grid:
        assert grid.size == (2 * 28, 10 * 28)  # one row per class, one column per sample
    metrics = cli.trainer.callback_metrics
    assert {"train/classify/nll", "train/generate/energy_gap", "train/generate/buffer/fill"} <= set(metrics)
    buffer = cli.model.objective.terms["generate"].objective.source
    assert isinstance(buffer, MNISTClassGaussianReplayBuffer) and buffer.gaussian_fraction == 0.7
    assert buffer.filled.any() and buffer.num_classes == 10
    assert cli.datamodule.max_shift == 0  # the benchmark's default
    scheduler = cli.trainer.lr_scheduler_configs[0]
    assert isinstance(scheduler.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert scheduler.scheduler.T_max == cli.trainer.max_epochs and scheduler.interval == "epoch"


def test_mnist_buffer_fits_the_data_module_training_split(mnist_available):
    data = MNISTDataModule(num_val=5_000, seed=3, num_train=300)
    data.setup("fit")
    images, labels = scale_images(data.train_set.images), data.train_set.labels
    buffer = MNISTClassGaussianReplayBuffer(0.5, capacity=20, num_val=5_000, seed=3, num_train=300)
    assert buffer.storage.shape == (20, 1, 28, 28) and buffer.num_classes == 10
    assert bool((buffer.space.low == -1.0).all()) and bool((buffer.space.high == 1.0).all())
    for k in range(10):
        assert torch.allclose(buffer.class_mean[k], images[labels == k].flatten(1).mean(dim=0), atol=1e-6)
    with pytest.raises(ValueError, match="MNISTClassGaussianReplayBuffer: num_train"):
        MNISTClassGaussianReplayBuffer(0.5, num_train=60_000)
