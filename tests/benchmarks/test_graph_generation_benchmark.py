"""benchmarks/graph_generation.py keeps a trained energy and scores it again; graph_mmd_floor.py
summarises draws of training graphs against the test split."""

from __future__ import annotations

import json

import pytest

from benchmarks import graph_generation, graph_mmd_floor

TINY = ["--dataset", "community_small", "--sampling-steps", "3", "--reference", "train",
        "--override", "model.energy.init_args.hidden=8", "--override", "model.objective.init_args.num_steps=2"]


def test_a_saved_energy_scores_the_same_when_loaded(tmp_path):
    trained = graph_generation.main([*TINY, "--steps", "2", "--out", str(tmp_path / "a.json"), "--save-energy", str(tmp_path / "e.pt")])
    loaded = graph_generation.main([*TINY, "--out", str(tmp_path / "b.json"), "--load-energy", str(tmp_path / "e.pt")])
    for key in graph_generation.KEYS:
        assert loaded[key] == pytest.approx(trained[key], abs=1e-12)
    assert loaded["train_steps"] == 2 and loaded["train_seconds"] == trained["train_seconds"]
    assert json.loads((tmp_path / "b.json").read_text())["report"]["loaded_energy"].endswith("e.pt")
    for name in ("a.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_floor_summary_is_consistent(tmp_path):
    result = graph_mmd_floor.main(["--dataset", "community_small", "--draws", "3", "--out", str(tmp_path / "f.json")])
    for name in graph_mmd_floor.METRICS:
        row = result["floor"][name]
        assert 0 <= row["min"] <= row["mean"]
        assert row["share_at_or_below_gdss"] in (0.0, 1 / 3, 2 / 3, 1.0)
    assert result["num_test"] == 20 and result["num_train"] == 80


def test_floor_rejects_no_draws(tmp_path):
    with pytest.raises(ValueError, match="--draws"):
        graph_mmd_floor.main(["--dataset", "community_small", "--draws", "0", "--out", str(tmp_path / "f.json")])
