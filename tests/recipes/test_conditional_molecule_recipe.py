"""The conditional molecule recipes: the configs build a conditional energy and a condition-keeping
replay buffer from the data's properties, and the QED recipe runs end to end, tiny (300 QM9 molecules,
4 PCD steps, 2 targets), through the ``structebm`` command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from structebm.chem.conditional_generation import ConditionalMoleculeGeneration
from structebm.chem.properties import compute_properties
from structebm.cli import build_cli

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "molecule_generation"


def configs(name: str) -> list[str]:
    return ["--config", str(RECIPES / "base.yaml"), "--config", str(RECIPES / "qm9.yaml"),
            "--config", str(RECIPES / f"conditional_{name}.yaml")]


@pytest.mark.parametrize("name", ["qed", "logp"])
def test_the_recipe_builds_a_conditional_model_from_the_data(name):
    cli = build_cli(configs(name), run=False)
    assert cli.datamodule.properties == [name] and cli.datamodule.dataset_name == "qm9"
    assert cli.model.energy.condition_dim == 1 and cli.model.objective.source.condition_dim == 1
    tasks = [getattr(callback, "task", None) for callback in cli.trainer.callbacks]
    assert any(isinstance(task, ConditionalMoleculeGeneration) for task in tasks)


def test_the_qed_recipe_trains_and_reports_the_property_error(tmp_path):
    cli = build_cli(["fit", *configs("qed"),
                     "--trainer.max_steps=4",
                     "--data.init_args.batch_size=32",
                     "--data.init_args.max_train_molecules=300",
                     "--data.init_args.max_test_molecules=20",
                     f"--data.init_args.property_cache_dir={tmp_path / 'cache'}",
                     "--model.objective.init_args.num_steps=3",
                     f"--trainer.default_root_dir={tmp_path}",
                     f"--trainer.logger.init_args.save_dir={tmp_path}",
                     f"--trainer.callbacks.init_args.output_dir={tmp_path}",
                     "--trainer.callbacks.init_args.task.init_args.num_targets=2",
                     "--trainer.callbacks.init_args.task.init_args.samples_per_target=4",
                     "--trainer.callbacks.init_args.task.init_args.num_steps=10"])
    assert cli.trainer.global_step == 4
    report = json.loads((tmp_path / "molecule_report.json").read_text())
    assert report["properties"] == ["qed"] and report["num_targets"] == 2
    train_qed = compute_properties(cli.datamodule.train_smiles[:300], ["qed"])[:, 0]  # the 300 in use
    assert report["property_scaling"]["qed"]["mean"] == pytest.approx(float(train_qed.mean()), abs=1e-9)
    assert 0 <= report["num_scored"] <= 8
    if report["num_scored"]:
        assert 0.0 <= report["mae"]["qed"] <= 1.0  # QED lies in [0, 1]
    else:
        assert math.isnan(report["mae"]["qed"])
    assert 0.0 <= report["validity_wo_correction"] <= 1.0 and math.isfinite(report["train_seconds"])
    written = cli.model.objective.source.filled
    assert written.any() and torch.isfinite(cli.model.objective.source.stored_condition[written]).all()
