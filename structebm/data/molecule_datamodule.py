"""A LightningDataModule over the dense molecular graphs of QM9 or ZINC250k.

Training batches are :class:`~structebm.chem.dense.DenseMolGraph` batches of the standard
training split (every row not in the GDSS test indices, see
:mod:`structebm.data.molecules`), in an order drawn from ``(seed, epoch)`` alone
(:class:`~structebm.data.loaders.EpochShuffleSampler`):

.. math::
    G = (\\text{atoms} \\in \\{0..A\\}^{B \\times N}, \\;
    \\text{bonds} \\in \\{0..3\\}^{B \\times N \\times N}, \\; \\text{mask} = \\text{atoms} > 0).

Generated molecules are scored against the SMILES of the standard split: novelty against
:attr:`MoleculeDataModule.train_smiles`, FCD and NSPDK against
:attr:`MoleculeDataModule.test_smiles`. Lightning moves a ``DenseMolGraph`` to the device
through its ``to`` method; :meth:`MoleculeDataModule.transfer_batch_to_device` does so
explicitly, so that the batch keeps its type whatever Lightning's generic rules are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Subset

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.convert import canonical_smiles
from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.vocab import AtomVocabulary
from structebm.data.loaders import EpochShuffleSampler
from structebm.data.molecules import (
    MOLECULE_DATASETS,
    DenseMoleculeDataset,
    collate_dense_graphs,
    load_dense_dataset,
    load_smiles,
    standard_split,
)

__all__ = ["MoleculeDataModule"]


class MoleculeDataModule(pl.LightningDataModule):
    """Training graphs and evaluation SMILES of one molecule data set.

    Args:
        dataset: ``"qm9"`` or ``"zinc250k"``.
        batch_size: graphs per training batch.
        max_train_molecules: keep only the first training graphs (quick runs); ``None`` = all.
        max_test_molecules: keep only the first test SMILES for evaluation; ``None`` = all.
        seed: seed of the training order (a new permutation every epoch).
        data_root: directory holding the data files (default ``$STRUCTEBM_DATA``).
        num_workers: DataLoader worker processes.

    Shapes:
        - training batches: ``DenseMolGraph`` with atoms ``[B, N]``, bonds ``[B, N, N]``,
          ``N = vocabulary.max_atoms`` (9 for QM9, 38 for ZINC250k).
    """

    def __init__(
        self,
        dataset: str = "qm9",
        batch_size: int = 128,
        max_train_molecules: Optional[int] = None,
        max_test_molecules: Optional[int] = None,
        seed: int = 0,
        data_root: Optional[str] = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        name = str(dataset).lower()
        if name not in MOLECULE_DATASETS:
            raise ValueError(f"MoleculeDataModule: dataset must be one of {sorted(MOLECULE_DATASETS)}, got {dataset!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"MoleculeDataModule: batch_size must be a positive int, got {batch_size!r}")
        for key, limit in (("max_train_molecules", max_train_molecules), ("max_test_molecules", max_test_molecules)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise ValueError(f"MoleculeDataModule: {key} must be a positive int or None, got {limit!r}")
        if num_workers < 0:
            raise ValueError(f"MoleculeDataModule: num_workers must be non-negative, got {num_workers}")
        self.dataset_name = name
        self.batch_size = batch_size
        self.max_train_molecules = max_train_molecules
        self.max_test_molecules = max_test_molecules
        self.seed = seed
        self.data_root = None if data_root is None else Path(data_root)
        self.num_workers = num_workers
        self.train_graphs: Optional[DenseMoleculeDataset | Subset] = None
        self._train_smiles: Optional[list[str]] = None
        self._train_canonical: Optional[list[str]] = None
        self._test_smiles: Optional[list[str]] = None

    @property
    def vocabulary(self) -> AtomVocabulary:
        """The atom vocabulary of the data set."""
        return MOLECULE_DATASETS[self.dataset_name].vocabulary

    @property
    def space(self) -> MolGraphSpace:
        """The graph space of the data set (slot count, legal moves, noise)."""
        return MolGraphSpace(self.vocabulary)

    def prepare_data(self) -> None:
        """Resolve the SMILES and split files (checked by SHA-256)."""
        standard_split(self.dataset_name, self.data_root)

    def setup(self, stage: Optional[str] = None) -> None:
        """Load the training graphs (cached dense encoding) and the SMILES of both splits."""
        if self.train_graphs is not None:
            return
        graphs = load_dense_dataset(self.dataset_name, "train", root=self.data_root, progress=False)
        if self.max_train_molecules is not None:
            graphs = Subset(graphs, range(min(self.max_train_molecules, len(graphs))))
        if len(graphs) == 0:
            raise ValueError(f"MoleculeDataModule: the {self.dataset_name} training split is empty")
        smiles = load_smiles(self.dataset_name, self.data_root)
        split = standard_split(self.dataset_name, self.data_root)
        test_rows = split["test"] if self.max_test_molecules is None else split["test"][: self.max_test_molecules]
        self.train_graphs = graphs
        self._train_smiles = [smiles[row] for row in split["train"]]
        self._test_smiles = [smiles[row] for row in test_rows]

    def _require_setup(self, what: str) -> None:
        if self.train_graphs is None:
            raise RuntimeError(f"MoleculeDataModule: call setup() before asking for {what}")

    @property
    def train_smiles(self) -> list[str]:
        """Canonical SMILES of the whole training split (novelty is measured against all of it).

        The data files store SMILES as published, many of them not in RDKit's canonical form,
        while generated molecules are written canonically; novelty compares the two as strings,
        so the training side is canonicalised (:func:`~structebm.chem.convert.canonical_smiles`)
        on first access and kept (about 10 s for QM9's 120k molecules).
        """
        self._require_setup("train_smiles")
        if self._train_canonical is None:
            self._train_canonical = [canonical_smiles(smiles) for smiles in self._train_smiles]
        return self._train_canonical

    @property
    def test_smiles(self) -> list[str]:
        """SMILES of the test split (or its first ``max_test_molecules``), for FCD and NSPDK."""
        self._require_setup("test_smiles")
        return self._test_smiles

    def atom_prior(self) -> AtomPrior:
        """The :class:`~structebm.chem.atom_prior.AtomPrior` of the training graphs (noise atoms like theirs)."""
        self._require_setup("atom_prior()")
        graphs = self.train_graphs
        atoms = graphs.dataset.atoms[list(graphs.indices)] if isinstance(graphs, Subset) else graphs.atoms
        return AtomPrior.fit(atoms, len(self.vocabulary))

    def check_model(self, energy: Any) -> None:
        """Fail early, naming the config key, if ``energy`` expects another number of atom types."""
        declared = getattr(energy, "num_atom_types", None)
        if isinstance(declared, int) and declared != len(self.vocabulary):
            raise ValueError(
                f"MoleculeDataModule: {self.dataset_name} has {len(self.vocabulary)} atom types "
                f"{list(self.vocabulary.labels)} but the energy has {declared}; set "
                f"model.energy.init_args.vocabulary_size: {len(self.vocabulary)}"
            )

    def train_dataloader(self) -> DataLoader:
        self._require_setup("train_dataloader()")
        trainer = getattr(self, "trainer", None)
        if trainer is not None and getattr(trainer, "lightning_module", None) is not None:
            self.check_model(getattr(trainer.lightning_module, "energy", None))
        return DataLoader(
            self.train_graphs,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(len(self.train_graphs), seed=self.seed),
            collate_fn=collate_dense_graphs,
            num_workers=self.num_workers,
            drop_last=len(self.train_graphs) >= self.batch_size,
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move a :class:`DenseMolGraph` batch with its own ``to``; anything else the default way."""
        if isinstance(batch, DenseMolGraph):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
