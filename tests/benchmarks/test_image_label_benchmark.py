"""benchmarks/image_label.py: each flag lands on its config key of the recipe, and a tiny run
(3 steps of both models on 256 training images, a narrow ConvNet) reports every figure.

The tiny run checks the benchmark's own scores of our model against the recipe's
``ImageLabelReport``, computed by other code on the same trained energy: the accuracies are the
same fraction of the same 10,000 test images, the ECEs agree to float rounding, and the two
temperatures minimise the same validation NLL (one from the logits, one from ``log p``, which
differ by a constant per image) to the L-BFGS tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import _recipe_runs, image_label
from structebm.cli import build_cli
from structebm.data.mnist import MNIST_FILES
from structebm.data._files import fetch_file
from structebm.energies.cnn import ConvNet
from structebm.energies.image_label import ClassifierEnergy

SOURCE = "model.objective.init_args.terms.1.init_args.objective.init_args.source.init_args.num_train"


@pytest.fixture(scope="module")
def mnist_available():
    try:
        for split in ("train", "test"):
            for remote in MNIST_FILES[split]:
                fetch_file(remote, None)
    except Exception as error:  # noqa: BLE001 - any failure to resolve the files means no data here
        pytest.fail(f"MNIST is needed by the image-label benchmark test (set STRUCTEBM_DATA): {error}")


def built(args, configs, seed, workdir):
    """The CLI of one model, built (not trained) from the benchmark's arguments; and the skipped keys."""
    arguments, skipped = image_label.fit_arguments(configs, image_label.model_keys(args, configs, seed, workdir))
    return build_cli(arguments, run=False), skipped


def test_without_flags_the_recipe_runs_as_it_is(tmp_path):
    args = image_label.parse_args(["--out", str(tmp_path / "r.json")])
    arguments, skipped = image_label.fit_arguments(
        image_label.OURS, image_label.model_keys(args, image_label.OURS, args.seed, tmp_path)
    )
    assert arguments == [
        "--config", str(image_label.RECIPES / "base.yaml"), "--seed_everything=0",
        f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.enable_progress_bar=true", f"--{_recipe_runs.TIMER}",
    ]
    assert not skipped


def test_num_train_reaches_the_data_and_the_replay_buffer_only():
    ours = image_label.num_train_keys(image_label.merged_config(image_label.OURS), 300)
    assert ours == ["data.init_args.num_train=300", f"{SOURCE}=300"]
    baseline = image_label.num_train_keys(image_label.merged_config(image_label.BASELINE), 300)
    assert baseline == ["data.init_args.num_train=300"]


def test_each_flag_lands_on_its_config_key(tmp_path, mnist_available):
    args = image_label.parse_args([
        "--out", str(tmp_path / "r.json"), "--epochs", "3", "--max-steps", "7", "--num-train", "300", "--seed", "4",
        "--override", "data.init_args.batch_size=16",
        "--override", "model.objective.init_args.terms.1.init_args.weight=0.25",
        "--override", "model.energy.init_args.classifier.init_args.widths.0=8", "--no-progress",
    ])
    cli, skipped = built(args, image_label.OURS, 4, tmp_path)
    config = cli.config
    assert not skipped and config["seed_everything"] == 4
    assert config["trainer.max_epochs"] == 3 and config["model.lr_scheduler.init_args.T_max"] == 3
    assert config["trainer.max_steps"] == 7 and config["trainer.enable_progress_bar"] is False
    assert config["data.init_args.num_train"] == 300 and config["data.init_args.batch_size"] == 16
    assert config["model.energy.init_args.classifier.init_args.widths"] == [8, 64, 128]
    classify, generate = config["model.objective.init_args.terms"]
    assert generate.init_args.weight == 0.25 and classify.init_args.weight == 1.0
    source = generate.init_args.objective.init_args.source.init_args
    assert source.num_train == 300 and source.gaussian_fraction == 0.7  # the rest stays the recipe's
    assert generate.init_args.objective.init_args.num_steps == 10
    assert cli.model.objective.terms["generate"].weight == 0.25
    scheduler = cli.model.scheduler_factory(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0))
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.T_max == 3
    # The class Gaussians are fitted on the data module's 300 training images.
    cli.datamodule.setup("fit")
    data = cli.datamodule.train_set
    buffer = cli.model.objective.terms["generate"].objective.source
    for k in range(10):
        images = data.images[data.labels == k].flatten(1).float() * (2 / 255) - 1
        torch.testing.assert_close(buffer.class_mean[k], images.mean(dim=0), atol=1e-5, rtol=0)

    baseline, skipped = built(args, image_label.BASELINE, 5, tmp_path)
    config = baseline.config
    assert skipped == {"model.objective.init_args.terms.1.init_args.weight=0.25"}
    assert config["seed_everything"] == 5 and config["trainer.max_steps"] == 7 and config["trainer.max_epochs"] == 3
    assert config["data.init_args.num_train"] == 300 and config["data.init_args.batch_size"] == 16
    assert [term.init_args.name for term in config["model.objective.init_args.terms"]] == ["classify"]
    names = [type(callback).__name__ for callback in baseline.trainer.callbacks]
    assert "Timer" in names and "ImageLabelReport" not in names


def test_bad_flags_are_named(tmp_path, capsys):
    out = str(tmp_path / "r.json")
    for argv, named in (
        (["--out", str(tmp_path / "r.txt")], "--out must end in .json"),
        (["--out", out, "--max-steps", "0"], "--max-steps must be a positive integer"),
        (["--out", out, "--override", "trainer.max_steps"], "--override takes KEY=VALUE"),
    ):
        with pytest.raises(SystemExit):
            image_label.parse_args(argv)
        assert named in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"no model's config has the list entry of .*terms\.5\.init_args\.weight=0\.1"):
        image_label.main(["--out", out, "--override", "model.objective.init_args.terms.5.init_args.weight=0.1"])
    with pytest.raises(ValueError, match="data.init_args is not a list"):
        image_label.fit_arguments(image_label.OURS, ["data.init_args.0=1"])


def test_ood_scores_follow_the_temperature() -> None:
    torch.manual_seed(0)
    energy = ClassifierEnergy(ConvNet(in_channels=1, out_features=10, widths=[4, 4, 4]), 10)
    images = torch.rand(5, 1, 28, 28) * 2 - 1
    logits = energy.logits(images).detach()
    scores = image_label.ood_scores(energy, images, temperature=0.5)
    torch.testing.assert_close(scores["energy"], torch.logsumexp(2 * logits, dim=1))
    torch.testing.assert_close(scores["max_prob"], torch.softmax(2 * logits, dim=1).max(dim=1).values)


def test_a_tiny_run_reports_every_figure(tmp_path, mnist_available):
    out = tmp_path / "r.json"
    result = image_label.main([
        "--out", str(out), "--max-steps", "3", "--num-train", "256", "--sample-steps", "2",
        "--samples-per-class", "2", "--num-ood", "50", "--no-progress",
        "--override", "model.energy.init_args.classifier.init_args.widths=[8,8,8]",
        "--override", "trainer.callbacks.0.init_args.num_per_class=2",
        "--override", "trainer.callbacks.0.init_args.langevin_steps=2",
    ])
    assert json.loads(out.read_text()).keys() == result.keys()
    assert result["train_steps"] == result["baseline_train_steps"] == 3
    assert result["train_seconds"] > 0 and result["baseline_train_seconds"] > 0
    for prefix in ("", "baseline_"):
        for key in ("ood_auroc", "ood_auroc_temperature_scaled"):
            table = result[prefix + key]
            assert set(table) == {"uniform_noise", "blurred_mnist", "inverted_mnist", "sklearn_digits"}
            assert all(set(row) == {"energy", "max_prob"} for row in table.values())
    assert result["conditional_sample_accuracy"] in {i / 20 for i in range(21)}  # 2 samples of 10 classes
    report = result["report"]
    assert report["num_test"] == 10_000
    assert result["accuracy"] == pytest.approx(report["accuracy"], abs=1e-12)
    assert result["ece"] == pytest.approx(report["ece"], abs=1e-5)
    assert result["temperature"] == pytest.approx(report["temperature"], rel=1e-3)
    assert "generate" in result["command"] and "generate" not in result["baseline_command"]
    assert "classifier.yaml" in result["baseline_command"] and "--seed_everything=1" in result["baseline_command"]
    assert (tmp_path / "r_samples.png").read_bytes()[:4] == b"\x89PNG"
    assert "baseline (NLL)" in out.with_suffix(".md").read_text()
    assert Path(result["settings"]["out"]) == out
