"""benchmarks/learned_molecule_probe.py end to end, tiny: trains by the ratio-matching recipe, then the rows."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from benchmarks.learned_molecule_probe import SCORES, main

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "molecule_generation"


def test_rows_for_data_and_chains_at_every_step_count(tmp_path):
    out = tmp_path / "probe.json"
    configs = [arg for name in ("base.yaml", "qm9.yaml", "ratio_matching.yaml") for arg in ("--config", str(RECIPES / name))]
    rows = main([
        "--out", str(out), "--num-chains", "6", "--at", "1", "3", "--reference-molecules", "20",
        "--save-energy", str(tmp_path / "energy.pt"), "--",
        *configs, "--trainer.max_steps", "2", "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
        "--data.init_args.max_train_molecules", "100", "--data.init_args.batch_size", "8",
    ])
    assert [(row["start"], row["step"]) for row in rows] == [("data", 0), ("noise", 0), ("noise", 1), ("noise", 3)]
    for row in rows:
        assert set(SCORES) <= set(row) and row["energy_q1"] <= row["energy_median"] <= row["energy_q3"]
    assert rows[0]["validity_wo_correction"] == 1.0  # training molecules, as drawn
    assert all(row["invalid_over_valent"] == 0.0 for row in rows[:2])  # data and valence-repaired noise
    saved = json.loads(out.read_text())
    assert saved["settings"]["global_step"] == 2 and len(saved["rows"]) == 4
    assert set(torch.load(tmp_path / "energy.pt", weights_only=True)) >= {"embedding.weight"}
