"""A user's SMILES files: formats, line numbers, columns, gzip, and the three ways to split."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from structebm.data.smiles_files import SmilesFileError, read_smiles_file, split_rows


def test_csv_rows_keep_their_file_lines_and_names(tmp_path: Path):
    path = tmp_path / "mols.csv"
    path.write_text('id,smiles,activity\na,CCO,1.0\n\nb,"C[N+](C)(C)C",2\nc,c1ccccc1,3\n')
    rows = read_smiles_file(path, smiles_column="smiles", name_column="id")
    assert [(r.smiles, r.line, r.name) for r in rows] == [
        ("CCO", 2, "a"), ("C[N+](C)(C)C", 4, "b"), ("c1ccccc1", 5, "c"),
    ]


def test_smi_skips_header_comments_and_blank_lines_and_reads_gzip(tmp_path: Path):
    text = "SMILES Name\n# a comment\nCCO ethanol\n\nC(=O)[O-] formate ion\nCl\n"
    path = tmp_path / "mols.smi.gz"
    path.write_bytes(gzip.compress(text.encode()))
    rows = read_smiles_file(path)
    assert [(r.smiles, r.line, r.name) for r in rows] == [
        ("CCO", 3, "ethanol"), ("C(=O)[O-]", 5, "formate ion"), ("Cl", 6, None),
    ]
    plain = tmp_path / "mols.txt"
    plain.write_text(text)
    assert read_smiles_file(plain) == rows


@pytest.mark.parametrize(
    "name, content, kwargs, message",
    [
        ("a.csv", "id,smi\n1,CCO\n", {}, r"a.csv: smiles_column 'smiles' is not a column .*\['id', 'smi'\]"),
        ("a.csv", "id,smiles\n1,CCO\n2,CC,extra\n", {}, r"a.csv, line 3: 3 fields, the header line has 2"),
        ("a.sdf", "CCO\n", {}, r"a.sdf: unknown SMILES file type '.sdf'"),
        ("a.smi", "# only a comment\n", {}, r"a.smi: the file holds no SMILES rows"),
        ("a.csv", "", {}, r"a.csv: the file is empty"),
    ],
)
def test_unreadable_files_name_the_file_and_what_is_wrong(tmp_path: Path, name, content, kwargs, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SmilesFileError, match=message):
        read_smiles_file(path, **kwargs)


def test_a_missing_file_is_named(tmp_path: Path):
    with pytest.raises(SmilesFileError, match="absent.csv: no such SMILES file"):
        read_smiles_file(tmp_path / "absent.csv")


def test_fraction_split_is_seeded_disjoint_and_of_the_rounded_size():
    train, test = split_rows(250, test_fraction=0.1, seed=3)
    assert len(test) == 25 and len(train) == 225 and not set(train) & set(test)
    assert sorted(train + test) == list(range(250))
    assert split_rows(250, test_fraction=0.1, seed=3) == (train, test)
    assert split_rows(250, test_fraction=0.1, seed=4)[1] != test


def test_row_split_and_its_errors():
    assert split_rows(5, test_rows=[4, 1, 1]) == ([0, 2, 3], [1, 4])
    with pytest.raises(SmilesFileError, match=r"mols.csv: test rows \[5\] are outside 0..4"):
        split_rows(5, test_rows=[5], source="mols.csv")
    with pytest.raises(SmilesFileError, match="exactly one of"):
        split_rows(5, test_rows=[1], test_fraction=0.5)
    with pytest.raises(SmilesFileError, match="strictly between 0 and 1"):
        split_rows(5, test_fraction=1.0)
    with pytest.raises(SmilesFileError, match="leaves 5 training and 0 test rows"):
        split_rows(5, test_fraction=0.01)
