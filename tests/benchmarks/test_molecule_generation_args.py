"""benchmarks/molecule_generation.py: flags become config keys of the recipe; impossible ones are
rejected with a message naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.molecule_generation import ABLATIONS, config_args, parse_args
from structebm.cli import build_cli


def test_defaults_are_a_step_budget_and_every_ablation():
    args = parse_args(["--out", "x.json"])
    assert args.steps == 3000 and args.ablations == list(ABLATIONS) and args.num_samples == 10_000


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "0"], "--steps must be a positive int, got 0"),
        (["--num-samples", "0"], "--num-samples must be >= 1"),
        (["--ablations", "default", "default"], "--ablations names a run twice"),
        (["--save-energy", "e.pt"], "--save-energy and --load-energy need exactly one --ablations name"),
    ],
)
def test_impossible_settings_are_rejected(flags, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", *flags])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_each_ablation_builds_the_recipe_with_its_changes(ablation, tmp_path):
    args = parse_args(["--out", str(tmp_path / "x.json"), "--steps", "7", "--seed", "3", "--num-samples", "11",
                       "--ablations", ablation, "--override", "model.objective.init_args.energy_magnitude_weight=0.07"])
    cli = build_cli(config_args(args, ablation, tmp_path), run=False)
    assert cli.trainer.max_steps == 7
    assert cli.model.objective.energy_magnitude_weight == 0.07
    task = next(c for c in cli.trainer.callbacks if hasattr(c, "task")).task
    assert (task.num_samples, task.seed) == (11, 3)
    learned_only = ablation.startswith("learned_only")
    uniform = ablation.endswith("uniform_noise")
    assert (cli.model.energy.features is None) == learned_only
    assert task.connected_noise is not uniform and task.valid_noise is not uniform
    space = cli.model.objective.source.space
    assert (space.tree_noise, space.valid_noise) == (not uniform, not uniform)
    assert task.variants == (["unconstrained", "valence_aware"] if ablation == "default" else ["unconstrained"])
    assert Path(cli.trainer.default_root_dir) == tmp_path


def test_a_tiny_run_writes_suffixed_keys_the_table_and_grids(tmp_path):
    from benchmarks.molecule_generation import main

    out = tmp_path / "qm9.json"
    payload = main(["--out", str(out), "--steps", "2", "--num-samples", "12", "--sampling-steps", "2",
                    "--max-test-molecules", "50", "--ablations", "learned_only", "--no-progress"])
    run = payload["runs"]["learned_only"]
    assert payload["validity_wo_correction_learned_only"] == run["unconstrained"]["validity_wo_correction"]
    assert payload["train_steps_learned_only"] == 2 and run["violation_weights"] is None
    assert "validity_wo_correction" not in payload  # no default run, no headline
    assert "--model.energy.init_args.features=null" in run["command"]
    assert "structebm, learned_only (this run)" in out.with_suffix(".md").read_text()
    assert (tmp_path / "qm9_learned_only_unconstrained.png").read_bytes()[:4] == b"\x89PNG"
