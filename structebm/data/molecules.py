"""QM9 and ZINC250k as SMILES lists, standard splits and cached dense-graph datasets.

Files, sources and checksums are described in ``datasets/qm9.md`` and
``datasets/zinc250k.md``. The standard split (GraphNVP / MoFlow / GDSS / DIG) takes the
entries of ``valid_idx_*.json`` as **0-based row positions** of the SMILES file (the GDSS
convention) for the test set; every other row is training data.

Encoding a whole set to dense graphs (:func:`encode_smiles`) reports every row that cannot be
represented, by its line number in the file: a SMILES RDKit cannot parse, more atoms than the
vocabulary's capacity, or an atom type outside the vocabulary. With ``on_error="raise"``
(default) the load fails with the full list; with ``on_error="skip"`` those rows are left out
and listed in :attr:`EncodedMolecules.skipped` (nothing is dropped silently). The encoded set
is cached as a ``.pt`` file keyed by the SMILES file's checksum.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Literal, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from rdkit import Chem, RDLogger
from torch import Tensor
from torch.utils.data import Dataset

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.convert import ConversionError, encode_mol_arrays
from structebm.chem.dense import DenseMolGraph
from structebm.chem.vocab import QM9_VOCABULARY, ZINC250K_VOCABULARY, AtomVocabulary
from structebm.data._files import RemoteFile, cache_root, fetch_file

__all__ = [
    "MoleculeDatasetSpec",
    "MOLECULE_DATASETS",
    "RowError",
    "DatasetConversionError",
    "EncodedMolecules",
    "load_smiles",
    "load_test_indices",
    "standard_split",
    "encode_smiles",
    "DenseMoleculeDataset",
    "collate_dense_graphs",
    "load_dense_dataset",
    "training_atom_prior",
]

OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class MoleculeDatasetSpec:
    """A molecule data set: its SMILES file, its split file and its atom vocabulary.

    Args:
        name: short name.
        smiles_file: one SMILES per line (``.csv`` with a one-line header, or ``.txt[.gz]``).
        test_index_file: JSON holding the 0-based test rows (a list, or ``{"valid_idxs": [...]}``).
        vocabulary: the atom vocabulary used for dense graphs.
        header_lines: number of header lines before the first SMILES.
    """

    name: str
    smiles_file: RemoteFile
    test_index_file: RemoteFile
    vocabulary: AtomVocabulary
    header_lines: int = 0


_GDSS = "https://raw.githubusercontent.com/harryjo97/GDSS/master/data/"
MOLECULE_DATASETS: Dict[str, MoleculeDatasetSpec] = {
    "qm9": MoleculeDatasetSpec(
        "qm9",
        RemoteFile(
            "qm9/qm9_smiles.csv",
            "80c060e299a44112b89be3fc6d95145dfeda97aa3eab1e2662aafdfbb00f7929",
            "https://raw.githubusercontent.com/aspuru-guzik-group/selfies/v2.0.0/tests/test_sets/qm9.csv",
        ),
        RemoteFile(
            "qm9/valid_idx_qm9.json",
            "889fd232a33d8a2c00f057c807b119e72abd5baa48f6fab93e8d8b7a79340f4d",
            _GDSS + "valid_idx_qm9.json",
        ),
        QM9_VOCABULARY,
        header_lines=1,
    ),
    "zinc250k": MoleculeDatasetSpec(
        "zinc250k",
        RemoteFile(
            "zinc250k/zinc250k_smiles.txt.gz",
            "df0aa677c770f15c9943684d6600cba8e7076c67be6a090c12f24da3aaa55b70",
            "https://raw.githubusercontent.com/wenhao-gao/mol_opt/main/data/zinc.txt.gz",
            archive_member="zinc.txt",
        ),
        RemoteFile(
            "zinc250k/valid_idx_zinc250k.json",
            "cf1af3a8588c947493ff0a2b60178db6726e9a4dbb445235b149cd3bbe6831df",
            _GDSS + "valid_idx_zinc250k.json",
        ),
        ZINC250K_VOCABULARY,
    ),
}


def _spec(dataset: str | MoleculeDatasetSpec) -> MoleculeDatasetSpec:
    if isinstance(dataset, MoleculeDatasetSpec):
        return dataset
    try:
        return MOLECULE_DATASETS[dataset.lower()]
    except KeyError:
        raise ValueError(f"unknown molecule data set {dataset!r}; expected one of {sorted(MOLECULE_DATASETS)}") from None


def load_smiles(dataset: str | MoleculeDatasetSpec, root: Optional[Path] = None) -> List[str]:
    """All SMILES of a data set in file order (row ``i`` is line ``i + header_lines + 1``)."""
    spec = _spec(dataset)
    path = fetch_file(spec.smiles_file, root)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        lines = handle.read().split("\n")
    rows = [line.strip() for line in lines[spec.header_lines :]]
    while rows and rows[-1] == "":
        rows.pop()
    return rows


def load_test_indices(dataset: str | MoleculeDatasetSpec, root: Optional[Path] = None) -> List[int]:
    """0-based test rows of the standard split (GDSS convention), sorted."""
    spec = _spec(dataset)
    with open(fetch_file(spec.test_index_file, root)) as handle:
        raw = json.load(handle)
    entries = raw["valid_idxs"] if isinstance(raw, dict) else raw
    return sorted(int(entry) for entry in entries)


def standard_split(dataset: str | MoleculeDatasetSpec, root: Optional[Path] = None) -> Dict[str, List[int]]:
    """``{"train": rows, "test": rows}`` of the standard split, each sorted."""
    smiles = load_smiles(dataset, root)
    test = load_test_indices(dataset, root)
    if test and (test[0] < 0 or test[-1] >= len(smiles)):
        raise ValueError(f"{_spec(dataset).name}: test index out of range 0..{len(smiles) - 1}")
    test_set = set(test)
    return {"train": [i for i in range(len(smiles)) if i not in test_set], "test": test}


class RowError(NamedTuple):
    """One row that could not be encoded: 1-based ``line`` in the file, 0-based ``row``."""

    line: int
    row: int
    smiles: str
    reason: str


class DatasetConversionError(ValueError):
    """Rows of a data set could not be encoded; ``errors`` lists all of them."""

    def __init__(self, name: str, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        shown = "\n".join(f"  line {e.line} (row {e.row}): {e.smiles!r}: {e.reason}" for e in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(
            f"{name}: {len(self.errors)} row(s) cannot be encoded (pass on_error='skip' to leave them out):\n"
            f"{shown}{more}"
        )


@dataclass
class EncodedMolecules:
    """Compact dense encoding of a data set.

    Shapes:
        - atoms: ``[M, N]`` int8
        - bonds_upper: ``[M, N (N - 1) / 2]`` int8, the strict upper triangle of ``bonds``
        - rows: ``[M]`` long, the 0-based file row of every kept molecule
    """

    atoms: Tensor
    bonds_upper: Tensor
    rows: Tensor
    skipped: List[RowError]


def encode_smiles(
    smiles: Sequence[str],
    vocabulary: AtomVocabulary,
    on_error: OnError = "raise",
    header_lines: int = 0,
    name: str = "molecules",
    progress: bool = True,
) -> EncodedMolecules:
    """Encode SMILES rows to dense graphs (see the module docstring for ``on_error``)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"encode_smiles: on_error must be 'raise' or 'skip', got {on_error!r}")
    n = vocabulary.max_atoms
    upper = np.triu_indices(n, k=1)
    atoms = np.zeros((len(smiles), n), dtype=np.int8)
    bonds_upper = np.zeros((len(smiles), upper[0].size), dtype=np.int8)
    kept, errors = [], []
    iterator = _progress(smiles, f"encoding {name}", progress)
    RDLogger.DisableLog("rdApp.*")
    try:
        for row, text in enumerate(iterator):
            mol = Chem.MolFromSmiles(text) if text else None
            try:
                if mol is None:
                    raise ConversionError("RDKit cannot parse this SMILES")
                atom_row, bond_matrix = encode_mol_arrays(mol, vocabulary)
            except ConversionError as error:
                errors.append(RowError(row + header_lines + 1, row, text, str(error)))
                continue
            atoms[len(kept)] = atom_row
            bonds_upper[len(kept)] = bond_matrix[upper]
            kept.append(row)
    finally:
        RDLogger.EnableLog("rdApp.*")
    if errors and on_error == "raise":
        raise DatasetConversionError(name, errors)
    count = len(kept)
    return EncodedMolecules(
        torch.from_numpy(atoms[:count].copy()),
        torch.from_numpy(bonds_upper[:count].copy()),
        torch.tensor(kept, dtype=torch.long),
        errors,
    )


def _progress(items: Sequence, description: str, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with lightning
        return items
    return tqdm(items, desc=description, file=sys.stderr, mininterval=1.0)


class DenseMoleculeDataset(Dataset):
    """Dense molecular graphs; item ``i`` is ``(atoms [N], bonds [N, N])`` long tensors.

    Use :func:`collate_dense_graphs` as the DataLoader ``collate_fn`` to get a
    :class:`DenseMolGraph` batch.
    """

    def __init__(self, encoded: EncodedMolecules, vocabulary: AtomVocabulary, select: Optional[Tensor] = None) -> None:
        self.vocabulary = vocabulary
        self.atoms = encoded.atoms if select is None else encoded.atoms[select]
        self.bonds_upper = encoded.bonds_upper if select is None else encoded.bonds_upper[select]
        self.rows = encoded.rows if select is None else encoded.rows[select]
        self.skipped = encoded.skipped
        self._upper = torch.triu_indices(vocabulary.max_atoms, vocabulary.max_atoms, offset=1)

    def __len__(self) -> int:
        return self.atoms.shape[0]

    def __getitem__(self, index: int) -> Tuple[Tensor, Tensor]:
        n = self.vocabulary.max_atoms
        bonds = torch.zeros(n, n, dtype=torch.long)
        bonds[self._upper[0], self._upper[1]] = self.bonds_upper[index].long()
        return self.atoms[index].long(), bonds + bonds.T

    def graphs(self, indices: Optional[Sequence[int]] = None) -> DenseMolGraph:
        """Several items (default: all) as one :class:`DenseMolGraph`."""
        chosen = range(len(self)) if indices is None else indices
        return collate_dense_graphs([self[i] for i in chosen])


def collate_dense_graphs(items: Sequence[Tuple[Tensor, Tensor]]) -> DenseMolGraph:
    """Stack ``(atoms, bonds)`` items into a :class:`DenseMolGraph`."""
    atoms = torch.stack([a for a, _ in items])
    bonds = torch.stack([b for _, b in items])
    return DenseMolGraph(atoms, bonds, atoms > 0)


def load_dense_dataset(
    dataset: str | MoleculeDatasetSpec,
    split: Literal["train", "test", "all"] = "train",
    on_error: OnError = "raise",
    root: Optional[Path] = None,
    cache_dir: Optional[Path] = None,
    progress: bool = True,
) -> DenseMoleculeDataset:
    """Dense graphs of one split, encoded once and cached under ``cache_dir`` (default :func:`cache_root`)."""
    spec = _spec(dataset)
    if split not in ("train", "test", "all"):
        raise ValueError(f"load_dense_dataset: split must be 'train', 'test' or 'all', got {split!r}")
    vocabulary_key = "_".join(spec.vocabulary.labels) + f"_{spec.vocabulary.max_atoms}"
    cache = Path(cache_dir) if cache_dir is not None else cache_root()
    vocabulary_digest = hashlib.sha256(vocabulary_key.encode()).hexdigest()[:8]
    cache_file = cache / f"{spec.name}-{spec.smiles_file.sha256[:16]}-{vocabulary_digest}-{on_error}.pt"
    if cache_file.exists():
        stored = torch.load(cache_file, weights_only=False)
        skipped = [RowError(*error) for error in stored["skipped"]]
        encoded = EncodedMolecules(stored["atoms"], stored["bonds_upper"], stored["rows"], skipped)
    else:
        smiles = load_smiles(spec, root)
        encoded = encode_smiles(smiles, spec.vocabulary, on_error, spec.header_lines, spec.name, progress)
        cache.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(".tmp")
        torch.save(
            {
                "atoms": encoded.atoms,
                "bonds_upper": encoded.bonds_upper,
                "rows": encoded.rows,
                "skipped": [tuple(error) for error in encoded.skipped],
            },
            temporary,
        )
        temporary.replace(cache_file)
    if split == "all":
        return DenseMoleculeDataset(encoded, spec.vocabulary)
    test_rows = torch.tensor(load_test_indices(spec, root), dtype=torch.long)
    in_test = torch.isin(encoded.rows, test_rows)
    return DenseMoleculeDataset(encoded, spec.vocabulary, in_test if split == "test" else ~in_test)


def training_atom_prior(dataset: str | MoleculeDatasetSpec, root: Optional[Path] = None) -> AtomPrior:
    """The :class:`~structebm.chem.atom_prior.AtomPrior` of the standard training split of ``dataset``."""
    spec = _spec(dataset)
    return AtomPrior.fit(load_dense_dataset(spec, "train", root=root, progress=False).atoms, len(spec.vocabulary))
