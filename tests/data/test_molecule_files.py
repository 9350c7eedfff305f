"""A user's SMILES file as generation data: bad rows by line, the skip option's count, test molecules
outside the vocabulary, the three splits, and the data module's model settings."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from structebm.chem.convert import canonical_smiles, dense_to_smiles
from structebm.cli import apply_data_settings
from structebm.data.molecule_datamodule import MoleculeDataModule
from structebm.data.molecule_files import load_molecule_file
from structebm.data.molecules import DatasetConversionError
from structebm.data.smiles_files import split_rows

# data rows 0..9, file lines 2..11; row 3 does not parse, row 6 has 12 heavy atoms
ROWS = ["CCO", "CC(=O)[O-]", "C[N+](C)(C)C", "C1CC", "c1ccsc1", "CCCl", "CCCCCCCCCCCC", "OCCO", "CCBr", "C#N"]


def _csv(path: Path, rows=ROWS) -> Path:
    path.write_text("smiles,name\n" + "".join(f"{s},m{i}\n" for i, s in enumerate(rows)))
    return path


def test_bad_rows_are_listed_by_line_and_loading_fails_by_default(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv")
    with pytest.raises(DatasetConversionError) as caught:
        load_molecule_file(path, test_rows=[0, 9], max_atoms=10)
    assert [(e.line, e.row) for e in caught.value.errors] == [(5, 3), (8, 6)]
    message = str(caught.value)
    assert "mols.csv" in message and "line 5 (row 3): 'C1CC'" in message and "cannot parse" in message
    assert "line 8 (row 6)" in message and "12 heavy atoms" in message and "capacity of 10" in message


def test_skip_leaves_the_bad_rows_out_and_counts_them(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv")
    data = load_molecule_file(path, test_rows=[0, 9], max_atoms=10, on_error="skip")
    assert [e.line for e in data.skipped] == [5, 8] and data.summary()["num_skipped"] == 2
    assert data.train_graphs.rows.tolist() == [1, 2, 4, 5, 7, 8]
    assert data.train_smiles == [ROWS[i] for i in (1, 2, 4, 5, 7, 8)]
    decoded = dense_to_smiles(data.train_graphs.graphs(), data.vocabulary)
    assert decoded == [canonical_smiles(s) for s in data.train_smiles]
    assert data.test_smiles == ["CCO", "C#N"]


def test_an_unparsable_test_row_is_a_bad_row_too(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv")
    with pytest.raises(DatasetConversionError, match=r"(?s)mols.csv: 2 row.*line 5 \(row 3\).*line 8 \(row 6\)"):
        load_molecule_file(path, test_rows=[3, 9], max_atoms=11)  # the test row's line comes first, in line order
    data = load_molecule_file(path, test_rows=[3, 9], on_error="skip")
    assert [e.line for e in data.skipped] == [5] and data.test_smiles == ["C#N"]


def test_vocabulary_and_capacity_come_from_the_training_rows_only(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv")
    with pytest.warns(UserWarning, match=r"2 test molecule\(s\) cannot be generated .*line 8: .*12 heavy atoms"):
        data = load_molecule_file(path, test_rows=[3, 6, 8], on_error="skip")
    # Br (row 8) is only in the test split; the 12-carbon chain (row 6) too: neither shapes the vocabulary
    assert data.vocabulary.labels == ("C", "N", "O", "S", "Cl", "N+", "O-") and data.vocabulary.max_atoms == 5
    assert [e.line for e in data.test_outside_vocabulary] == [8, 10]
    assert "'Br' is not in the" in data.test_outside_vocabulary[1].reason
    assert data.test_smiles == ["CCCCCCCCCCCC", "CCBr"]  # reported, and still in the reference set
    assert data.summary()["test_outside_vocabulary_lines"] == [8, 10]


def test_a_given_vocabulary_rejects_training_atoms_outside_it(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv", ["CCO", "CCS", "CCN", "OCCO"])
    with pytest.raises(DatasetConversionError, match=r"line 3 \(row 1\): 'CCS': atom type 'S' is not in"):
        load_molecule_file(path, test_rows=[3], atom_types=["C", "N", "O"])


def test_test_file_and_fraction_splits(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv", ROWS[:3] + ROWS[4:6])
    test = tmp_path / "test.smi"
    test.write_text("smiles\nOCCO\nCCOC(=O)C\n")
    data = load_molecule_file(path, test_file=test)
    assert len(data.train_smiles) == 5 and data.test_smiles == ["OCCO", "CCOC(=O)C"]
    bad_test = tmp_path / "bad_test.smi"
    bad_test.write_text("OCCO\nC1CC\n")
    with pytest.raises(DatasetConversionError, match=r"bad_test.smi \(test file\): 1 row.*\n  line 2 \(row 1\)"):
        load_molecule_file(path, test_file=bad_test)
    skipped = load_molecule_file(path, test_file=bad_test, on_error="skip")
    assert skipped.skipped == [] and [e.line for e in skipped.skipped_test] == [2]
    assert skipped.summary()["num_skipped"] == 1 and skipped.summary()["skipped_test_lines"] == [2]
    many = _csv(tmp_path / "many.csv", ["C" * k for k in range(1, 9)] * 5)
    data = load_molecule_file(many, test_fraction=0.25, split_seed=7)
    train, test_rows = split_rows(40, test_fraction=0.25, seed=7)
    assert data.train_graphs.rows.tolist() == train and len(data.test_smiles) == 10
    with pytest.raises(ValueError, match="give one of test_file, test_rows and test_fraction"):
        load_molecule_file(many, test_file=test, test_fraction=0.5)


def test_data_module_on_a_file_batches_and_writes_its_vocabulary_into_the_model_config(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv", ["CC(=O)[O-]", "C[N+](C)(C)C", "c1ccsc1", "CCCl", "OCCO"] * 8)
    data = MoleculeDataModule(str(path), batch_size=8, test_fraction=0.25)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch.batch_size == 8 and batch.nodes.shape[1] == data.vocabulary.max_atoms == 5
    prior = data.atom_prior()
    assert prior.num_node_values == len(data.vocabulary) + 1 == 7
    settings = MoleculeDataModule.model_settings(dataset=str(path), test_fraction=0.25)
    spec = "atoms=C,O,S,Cl,N+,O-;max_atoms=5"
    assert settings["energy.init_args.num_node_types"] == 6
    assert settings["energy.init_args.features.init_args.vocabulary"] == spec
    assert settings["objective.init_args.source.init_args.dataset"] == spec
    assert torch.allclose(torch.tensor(settings["objective.init_args.source.init_args.atom_prior"]["type_probs"]),
                          prior.type_probs)


def test_apply_data_settings_sets_an_entry_of_a_dict_valued_setting(tmp_path: Path):
    from jsonargparse import Namespace

    path = _csv(tmp_path / "mols.csv", ["CCO", "CCS", "CCN", "OCCO"])
    config = Namespace()
    config["data"] = Namespace(class_path="structebm.data.molecule_datamodule.MoleculeDataModule",
                               init_args=Namespace(dataset=str(path), test_rows=[3]))
    config["model"] = Namespace(objective=Namespace(init_args=Namespace(
        sampler_options={"dataset": "qm9", "constrained": False})))
    changed = apply_data_settings(config)
    spec = "atoms=C,N,O,S;max_atoms=3"
    assert config["model.objective.init_args.sampler_options"] == {"dataset": spec, "constrained": False}
    assert changed == {"model.objective.init_args.sampler_options.dataset": ("qm9", spec)}


@pytest.mark.parametrize(
    "kwargs, message",
    [({"dataset": "qm9", "test_fraction": 0.2}, r"\['test_fraction'\] apply to a SMILES file"),
     ({"dataset": "no/such/file.csv"}, "or an existing SMILES file"),
     ({"dataset": "qm9", "on_error": "ignore"}, "on_error must be")],
)
def test_data_module_rejects_file_options_it_cannot_use(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MoleculeDataModule(**kwargs)


def test_skipping_warns_with_the_count(tmp_path: Path):
    path = _csv(tmp_path / "mols.csv")
    data = MoleculeDataModule(str(path), test_rows=[0, 9], max_atoms=10, on_error="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data.setup("fit")
    assert any("skipped 2 row(s)" in str(w.message) and "lines [5, 8]" in str(w.message) for w in caught)
    assert data.data_summary()["num_skipped"] == 2 and data.data_summary()["num_test"] == 2


def test_a_named_data_set_gives_its_name_to_every_model_setting_without_reading_files():
    settings = MoleculeDataModule.model_settings(dataset="zinc250k", batch_size=64)
    assert settings == {
        "energy.init_args.num_node_types": 17,
        "energy.init_args.features.init_args.vocabulary": "zinc250k",
        "objective.init_args.sampler_options.dataset": "zinc250k",
        "objective.init_args.source.init_args.dataset": "zinc250k",
    }


def test_model_settings_and_the_data_module_read_the_file_once_and_again_when_it_changes(tmp_path, monkeypatch):
    import structebm.data.molecule_datamodule as module

    calls = []
    real = module.load_molecule_file
    monkeypatch.setattr(module, "load_molecule_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    path = _csv(tmp_path / "mols.csv", ["CCO", "CCS", "CCN", "OCCO", "CC(=O)[O-]"])
    MoleculeDataModule.model_settings(dataset=str(path), test_rows=[3])
    data = MoleculeDataModule(str(path), test_rows=[3])
    data.setup("fit")
    assert len(calls) == 1 and data.vocabulary.labels == ("C", "N", "O", "S", "O-")
    _csv(path, ["CCO", "CCS", "CCN", "OCCO", "CC(=O)[O-]", "CCCl"])
    changed = MoleculeDataModule(str(path), test_rows=[3])
    changed.setup("fit")
    assert len(calls) == 2 and "Cl" in changed.vocabulary.labels
