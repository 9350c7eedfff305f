"""benchmarks/molecule_chains.py end to end on an untrained energy, tiny: the rows and their keys."""

from __future__ import annotations

import json

import torch

from benchmarks.molecule_chains import SCORES, main
from structebm.chem.features import ChemistryFeatures
from structebm.chem.vocab import get_vocabulary
from structebm.energies.graph import RelationalGraphEnergy


def test_chains_from_each_start_are_scored_at_every_checkpoint(tmp_path):
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(len(get_vocabulary("qm9")), 3, hidden=8, num_layers=1, features=ChemistryFeatures("qm9"))
    torch.save(energy.state_dict(), tmp_path / "energy.pt")
    out = tmp_path / "chains.json"
    rows = main([
        "--energy", str(tmp_path / "energy.pt"), "--out", str(out), "--hidden", "8", "--num-layers", "1",
        "--starts", "prior", "test", "--num-chains", "6", "--steps", "4", "--every", "2", "--max-test-molecules", "40",
    ])
    assert [(row["start"], row["step"]) for row in rows] == [
        ("reference", 0), ("prior", 0), ("prior", 2), ("prior", 4), ("test", 0), ("test", 2), ("test", 4),
    ]
    for row in rows:
        assert set(SCORES) <= set(row) and 0.0 <= row["validity_wo_correction"] <= 1.0
        assert abs(sum(row["atom_types"].values()) - 1.0) < 1e-9
    # chains from the test molecules start at the reference molecules themselves
    assert rows[4]["energy"] == rows[0]["energy"] and rows[4]["fcd"] == rows[0]["fcd"]
    assert "statistics_of_reference_set" in rows[0]
    saved = json.loads(out.read_text())
    assert len(saved["rows"]) == 7 and out.with_suffix(".md").exists()


def test_a_training_reference_scores_against_training_molecules(tmp_path):
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(len(get_vocabulary("qm9")), 3, hidden=8, num_layers=1, features=ChemistryFeatures("qm9"))
    torch.save(energy.state_dict(), tmp_path / "energy.pt")
    common = ["--energy", str(tmp_path / "energy.pt"), "--hidden", "8", "--num-layers", "1", "--starts", "test",
              "--num-chains", "6", "--steps", "2", "--every", "2", "--max-test-molecules", "40"]
    on_test = main([*common, "--out", str(tmp_path / "test.json")])
    on_train = main([*common, "--out", str(tmp_path / "train.json"), "--reference-split", "train"])
    # the chains are the same; only the molecules they are scored against change
    assert [row["energy"] for row in on_train[1:]] == [row["energy"] for row in on_test[1:]]
    assert on_train[1]["fcd"] != on_test[1]["fcd"]
    # the reference row now samples training molecules, not the test molecules the chains start from
    assert on_train[0]["energy"] != on_train[1]["energy"]
