"""benchmarks/molecule_chains.py end to end on an untrained energy, tiny: the rows and their keys."""

from __future__ import annotations

import json
import random

import pytest
import torch
from rdkit import Chem

from benchmarks.molecule_chains import SCORES, main
from structebm.chem.features import ChemistryFeatures
from structebm.chem.vocab import get_vocabulary
from structebm.data.molecules import load_smiles, standard_split
from structebm.energies.graph import RelationalGraphEnergy


def _first_test_molecules(n: int) -> list[str]:
    smiles = load_smiles("qm9")
    return [smiles[row] for row in standard_split("qm9")["test"][:n]]


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
        assert set(SCORES) <= set(row)
        assert abs(sum(row["atom_types"].values()) - 1.0) < 1e-9
    # chains from the test molecules start at the reference molecules themselves
    assert rows[4]["energy"] == rows[0]["energy"] and rows[4]["fcd"] == rows[0]["fcd"]
    # the 6 reference molecules are distinct QM9 test molecules: all valid as drawn, all unique
    reference = random.Random(0).sample(_first_test_molecules(40), 6)
    assert len(set(reference)) == 6
    for row in (rows[0], rows[4]):
        assert row["validity_wo_correction"] == 1.0 and row["uniqueness"] == 1.0
    # the reference-set statistics are those of the first 40 test molecules, counted here with RDKit
    mols = [Chem.MolFromSmiles(s) for s in _first_test_molecules(40)]
    statistics = rows[0]["statistics_of_reference_set"]
    assert statistics["atoms_per_molecule"] == pytest.approx(sum(m.GetNumAtoms() for m in mols) / 40)
    assert statistics["rings_per_molecule"] == pytest.approx(sum(m.GetRingInfo().NumRings() for m in mols) / 40)
    carbons = sum(a.GetSymbol() == "C" for m in mols for a in m.GetAtoms()) / sum(m.GetNumAtoms() for m in mols)
    assert statistics["atom_types"]["C"] == pytest.approx(carbons)
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
