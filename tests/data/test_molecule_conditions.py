"""Properties as conditions: a user's numeric column and RDKit properties yielded with each graph,
normalised by the training split, aligned with their molecules; clear errors for bad names and for
an energy whose condition does not match the data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from structebm.chem.convert import canonical_smiles, dense_to_smiles
from structebm.chem.properties import compute_properties
from structebm.data import molecule_conditions
from structebm.data.molecule_datamodule import MoleculeDataModule
from structebm.data.smiles_files import SmilesFileError, read_smiles_file

MOLECULES = ["CCO", "CC(=O)O", "c1ccsc1", "CCCl", "OCCO", "CCN", "CC(C)O", "C1CCOC1", "CC#N", "OC(=O)CO",
             "CCOC", "NCCO", "CC(N)=O", "c1ccoc1", "CCS", "OCC(O)CO", "CC=O", "C1CC1", "CN(C)C", "ClCCl"]


def _csv(path: Path) -> Path:
    rows = [f"{s},{0.5 * i - 3:.2f},m{i}\n" for i, s in enumerate(MOLECULES)]
    path.write_text("smiles,activity,name\n" + "".join(rows))
    return path


def _activity(smiles: str) -> float:
    return 0.5 * MOLECULES.index(smiles) - 3


def test_batches_pair_each_graph_with_its_normalised_properties(tmp_path):
    path = _csv(tmp_path / "mols.csv")
    data = MoleculeDataModule(str(path), batch_size=6, test_rows=[0, 7, 13], properties=["logp"],
                              property_columns=["activity"], property_cache_dir=str(tmp_path / "cache"))
    data.setup("fit")
    assert data.condition_names == ["logp", "activity"] and data.condition_dim == 2
    train_smiles = [s for i, s in enumerate(MOLECULES) if i not in (0, 7, 13)]
    raw = torch.stack([compute_properties(train_smiles, ["logp"])[:, 0],
                       torch.tensor([_activity(s) for s in train_smiles], dtype=torch.float64)], dim=1)
    assert torch.allclose(data.train_properties, raw)
    assert torch.allclose(data.property_scaling.mean, raw.mean(0)) and torch.allclose(data.property_scaling.std, raw.std(0))
    expected_test = [_activity(MOLECULES[i]) for i in (0, 7, 13)]
    assert data.test_properties[:, 1].tolist() == pytest.approx(expected_test)
    seen = 0
    for graphs, c in data.train_dataloader():
        assert c.shape == (graphs.batch_size, 2) and c.dtype == torch.float32
        values = data.property_scaling.denormalise(c)
        for smiles, row in zip(dense_to_smiles(graphs, data.vocabulary), values):  # alignment, molecule by molecule
            original = next(s for s in train_smiles if canonical_smiles(s) == smiles)
            assert float(row[1]) == pytest.approx(_activity(original), abs=1e-5)
            assert float(row[0]) == pytest.approx(float(compute_properties([original], ["logp"])[0, 0]), abs=1e-5)
            seen += 1
    assert seen == 12  # 17 training molecules, batches of 6, the last partial batch dropped


def test_named_data_set_aligns_properties_with_the_graphs_file_rows(monkeypatch, tmp_path):
    """QM9's training graphs skip the test rows; each graph's condition is that of its own file row (the
    property here is the file row of the SMILES itself, so the check needs no RDKit pass), and only the
    molecules in use are computed."""
    from structebm.data.molecules import load_smiles, standard_split

    smiles = load_smiles("qm9")
    row_of = {}
    for row, text in enumerate(smiles):
        row_of.setdefault(text, row)
    calls = []

    def file_rows(chosen, names, cache_dir):
        calls.append(len(chosen))
        return torch.tensor([float(row_of[text]) for text in chosen], dtype=torch.float64)[:, None].repeat(1, len(names))

    monkeypatch.setattr(molecule_conditions, "cached_properties", file_rows)
    data = MoleculeDataModule("qm9", batch_size=16, max_train_molecules=200, max_test_molecules=50,
                              properties=["qed"], property_cache_dir=str(tmp_path))
    data.setup("fit")
    assert calls == [200, 50]
    rows = data.train_graphs.dataset.rows[:200].double()
    assert torch.equal(data.train_properties[:, 0], rows)
    assert (data.train_properties[:, 0].diff() > 0).all() and data.train_properties[-1, 0] > 199  # test rows skipped
    split = standard_split("qm9")
    assert data.test_properties[:, 0].tolist() == [float(r) for r in split["test"][:50]]
    graphs, c = next(iter(data.train_dataloader()))
    first = data.property_scaling.denormalise(c)[:, 0].round().long()
    decoded = dense_to_smiles(graphs, data.vocabulary)
    assert decoded == [canonical_smiles(smiles[int(row)]) for row in first]


def test_unknown_property_names_and_misplaced_columns_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown molecular properties \['activity'\].*property_columns"):
        MoleculeDataModule("qm9", properties=["qed", "activity"])
    with pytest.raises(ValueError, match=r"\['property_columns'\] apply to a SMILES file"):
        MoleculeDataModule("qm9", property_columns=["activity"])
    path = _csv(tmp_path / "mols.csv")
    with pytest.raises(SmilesFileError, match="property column 'potency' is not a column"):
        MoleculeDataModule(str(path), property_columns=["potency"]).setup("fit")
    with pytest.raises(ValueError, match="both in properties and in property_columns"):
        MoleculeDataModule(str(path), properties=["qed"], property_columns=["qed"])


def test_a_non_numeric_property_cell_is_named_by_line(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("smiles,activity\nCCO,1.5\nCCN,n/a\n")
    with pytest.raises(SmilesFileError, match=r"line 3: property column 'activity' holds 'n/a', not a number"):
        read_smiles_file(path, property_columns=["activity"])
    assert [row.values for row in read_smiles_file(path, property_columns=[])] == [(), ()]
    with pytest.raises(SmilesFileError, match="need a .csv"):
        (tmp_path / "mols.smi").write_text("CCO\n")
        read_smiles_file(tmp_path / "mols.smi", property_columns=["activity"])


class _Conditional(nn.Module):
    def __init__(self, condition_dim):
        super().__init__()
        self.num_node_types, self.condition_dim = 8, condition_dim


def test_model_check_names_a_missing_or_mismatched_condition(tmp_path):
    unconditional = MoleculeDataModule("qm9")
    with pytest.raises(ValueError, match=r"conditional \(condition_dim=1\) but the data give no condition; set data.init_args.properties"):
        unconditional.check_model(_Conditional(1))
    unconditional.check_model(_Conditional(None))
    conditional = MoleculeDataModule("qm9", properties=["qed", "logp"])
    with pytest.raises(ValueError, match=r"2 condition column\(s\) \['qed', 'logp'\] but the energy has condition_dim=None"):
        conditional.check_model(_Conditional(None))
    with pytest.raises(ValueError, match="condition_dim: 2"):
        conditional.check_model(_Conditional(1))
    conditional.check_model(_Conditional(2))
    settings = MoleculeDataModule.model_settings(dataset="qm9", properties=["qed", "logp"])
    assert settings["energy.init_args.condition_dim"] == 2
    assert settings["objective.init_args.source.init_args.condition_dim"] == 2
    assert "energy.init_args.condition_dim" not in MoleculeDataModule.model_settings(dataset="qm9")
    with pytest.raises(RuntimeError, match="needs properties or property_columns"):
        unconditional.test_properties
