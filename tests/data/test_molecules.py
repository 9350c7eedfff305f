"""Molecule data sets: standard splits, row error reports, checksums, download and the graph cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import pytest
import torch

from structebm.chem.convert import canonical_smiles, dense_to_smiles
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.data._files import ChecksumError, DataFileMissingError, RemoteFile, fetch_file
from structebm.data.molecules import (
    DatasetConversionError,
    MoleculeDatasetSpec,
    collate_dense_graphs,
    encode_smiles,
    load_dense_dataset,
    load_smiles,
    load_test_indices,
    standard_split,
)

ROWS = ["CCO", "C1CC", "c1ccccc1", "CCCCCCCCCC", "CS", "O=C=O"]  # bad: lines 3, 5, 6 (after a header)


def _write(root: Path, relative: str, content: bytes) -> RemoteFile:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return RemoteFile(relative, hashlib.sha256(content).hexdigest(), url=(root / "nowhere" / relative).as_uri())


def _toy_spec(root: Path) -> MoleculeDatasetSpec:
    smiles = _write(root, "toy/toy.csv", ("smiles\n" + "\n".join(ROWS) + "\n").encode())
    split = _write(root, "toy/test.json", json.dumps({"valid_idxs": ["000", "002"]}).encode())
    return MoleculeDatasetSpec("toy", smiles, split, QM9_VOCABULARY, header_lines=1)


def test_qm9_and_zinc_standard_splits():
    qm9 = standard_split("qm9")
    assert len(qm9["test"]) == 13_082 and len(qm9["train"]) == 120_803
    assert {7278, 10763, 102219} <= set(load_test_indices("qm9"))
    zinc = standard_split("zinc250k")
    assert len(zinc["test"]) == 24_887 and len(zinc["train"]) == 224_568
    assert max(zinc["test"]) == 249_429
    assert load_smiles("zinc250k")[0] == "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1"
    assert load_smiles("qm9")[:2] == ["C", "N"]


def test_bad_rows_are_reported_with_line_numbers(tmp_path: Path):
    spec = _toy_spec(tmp_path)
    with pytest.raises(DatasetConversionError) as caught:
        load_dense_dataset(spec, "all", root=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    lines = [(e.line, e.row) for e in caught.value.errors]
    assert lines == [(3, 1), (5, 3), (6, 4)]
    message = str(caught.value)
    assert "line 3 (row 1): 'C1CC'" in message and "cannot parse" in message
    assert "10 heavy atoms" in message and "'S' is not in the 'qm9' vocabulary" in message
    with pytest.raises(ValueError, match="on_error must be"):
        encode_smiles(ROWS, QM9_VOCABULARY, on_error="ignore")


def test_skip_mode_counts_skipped_rows_and_splits(tmp_path: Path):
    spec = _toy_spec(tmp_path)
    everything = load_dense_dataset(spec, "all", "skip", root=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    assert len(everything) == 3 and len(everything.skipped) == 3
    assert everything.rows.tolist() == [0, 2, 5]
    graphs = everything.graphs()
    assert dense_to_smiles(graphs, QM9_VOCABULARY) == [canonical_smiles(ROWS[i]) for i in (0, 2, 5)]
    test = load_dense_dataset(spec, "test", "skip", root=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    train = load_dense_dataset(spec, "train", "skip", root=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    assert test.rows.tolist() == [0, 2] and train.rows.tolist() == [5]
    atoms, bonds = train[0]
    assert atoms.dtype == torch.long and torch.equal(bonds, bonds.T)
    batch = collate_dense_graphs([test[0], test[1]])
    batch.validate(len(QM9_VOCABULARY))


def test_checksum_mismatch_and_missing_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    remote = _write(tmp_path, "x/data.csv", b"smiles\nC\n")
    (tmp_path / "x/data.csv").write_bytes(b"smiles\nCC\n")
    with pytest.raises(ChecksumError, match=r"checksum mismatch for data file .*data.csv: expected sha256"):
        fetch_file(remote, tmp_path)
    monkeypatch.setenv("STRUCTEBM_OFFLINE", "1")
    missing = RemoteFile("y/absent.csv", "0" * 64, "https://example.invalid/absent.csv")
    with pytest.raises(DataFileMissingError, match=r"y/absent.csv is missing .*put absent.csv into .*y"):
        fetch_file(missing, tmp_path)


def test_download_extracts_archive_member_and_checks_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STRUCTEBM_OFFLINE", raising=False)
    content = b"CCO\nc1ccccc1\n"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("zinc.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    upstream = tmp_path / "upstream" / "zinc.txt.gz"
    upstream.parent.mkdir()
    upstream.write_bytes(archive.getvalue())
    remote = RemoteFile("z/smiles.txt.gz", hashlib.sha256(content).hexdigest(), upstream.as_uri(), "zinc.txt")
    path = fetch_file(remote, tmp_path / "root")
    assert gzip.decompress(path.read_bytes()) == content
    assert fetch_file(remote, tmp_path / "root") == path  # second call uses the local copy
    wrong = RemoteFile("z/other.txt.gz", "0" * 64, upstream.as_uri(), "zinc.txt")
    with pytest.raises(ChecksumError, match="downloaded"):
        fetch_file(wrong, tmp_path / "root")


def test_qm9_dense_cache_makes_the_second_load_fast(tmp_path: Path):
    start = time.perf_counter()
    first = load_dense_dataset("qm9", "test", cache_dir=tmp_path, progress=False)
    first_seconds = time.perf_counter() - start
    start = time.perf_counter()
    second = load_dense_dataset("qm9", "test", cache_dir=tmp_path, progress=False)
    second_seconds = time.perf_counter() - start
    assert len(first) == len(second) == 13_082 and len(list(tmp_path.glob("qm9-*.pt"))) == 1
    assert torch.equal(first.atoms, second.atoms) and torch.equal(first.rows, second.rows)
    assert second_seconds < first_seconds / 5
    smiles = load_smiles("qm9")
    rows = first.rows[:50].tolist()
    assert dense_to_smiles(first.graphs(range(50)), QM9_VOCABULARY) == [canonical_smiles(smiles[r]) for r in rows]
