"""A LightningDataModule over the dense molecular graphs of QM9, ZINC250k or a user's SMILES file.

Training batches are :class:`~structebm.chem.dense.DenseMolGraph` batches of the training
split, in an order drawn from ``(seed, epoch)`` alone
(:class:`~structebm.data.loaders.EpochShuffleSampler`). For QM9 and ZINC250k the split is the
standard one (every row not in the GDSS test indices, see :mod:`structebm.data.molecules`);
for a file path it is a test file, test rows or a seeded fraction, and the atom vocabulary and
capacity are inferred from the training molecules unless given
(:mod:`structebm.data.molecule_files`):

.. math::
    G = (\\text{atoms} \\in \\{0..A\\}^{B \\times N}, \\;
    \\text{bonds} \\in \\{0..3\\}^{B \\times N \\times N}, \\; \\text{mask} = \\text{atoms} > 0).

Generated molecules are scored against the SMILES of the split: novelty against
:attr:`MoleculeDataModule.train_smiles`, FCD and NSPDK against
:attr:`MoleculeDataModule.test_smiles`. Lightning moves a ``DenseMolGraph`` to the device
through its ``to`` method; :meth:`MoleculeDataModule.transfer_batch_to_device` does so
explicitly, so that the batch keeps its type whatever Lightning's generic rules are.

With ``properties`` (RDKit properties by name, :data:`~structebm.chem.properties.PROPERTIES`)
and, for a ``.csv`` file, ``property_columns`` (the user's own numeric columns), every training
batch is ``(graphs, c)`` with ``c [B, P]`` the molecules' properties normalised by the training
split's mean and standard deviation (:mod:`structebm.data.molecule_conditions`); the energy
then needs ``condition_dim = P`` and the persistent chain source keeps each chain's condition,
both set by :meth:`MoleculeDataModule.model_settings`. :attr:`MoleculeDataModule.property_scaling`
maps targets to and from the property's own units.

The vocabulary is given once, by the data: :meth:`MoleculeDataModule.model_settings` names the
model settings that follow from it (the energy's node-type count and chemistry features, the
sampler's and the chain source's vocabulary, the chain source's atom prior for a file), and the
``structebm`` command writes them into the model's config (:func:`~structebm.cli.apply_data_settings`).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Subset

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.convert import canonical_smiles
from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.properties import PROPERTIES, PropertyScaling, check_property_names
from structebm.chem.vocab import AtomVocabulary
from structebm.data._files import cache_root
from structebm.data.loaders import EpochShuffleSampler
from structebm.data.molecule_conditions import ConditionedGraphs, collate_conditioned_graphs, computed_values
from structebm.data.molecule_files import MoleculeFileData, load_molecule_file
from structebm.data.molecules import (
    MOLECULE_DATASETS,
    DenseMoleculeDataset,
    collate_dense_graphs,
    load_dense_dataset,
    load_smiles,
    standard_split,
)

__all__ = ["MoleculeDataModule"]


@lru_cache(maxsize=2)
def _load_file_once(stamps: tuple[tuple[str, int, int], ...], options: tuple[tuple[str, Any], ...]) -> MoleculeFileData:
    """:func:`load_molecule_file` once per file state and options: ``model_settings`` and the data module
    built after it share one read (``stamps``: path, modification time and size of the main and test files)."""
    arguments = {key: list(value) if isinstance(value, tuple) else value for key, value in options}
    data = load_molecule_file(stamps[0][0], **arguments)
    if data.skipped or data.skipped_test:
        count = len(data.skipped) + len(data.skipped_test)
        warnings.warn(f"MoleculeDataModule: skipped {count} row(s) of {stamps[0][0]} (on_error='skip'): "
                      f"lines {[e.line for e in data.skipped]}, test file lines {[e.line for e in data.skipped_test]}",
                      stacklevel=3)
    return data


class MoleculeDataModule(pl.LightningDataModule):
    """Training graphs and evaluation SMILES of one molecule data set.

    Args:
        dataset: ``"qm9"``, ``"zinc250k"``, or the path of a SMILES file (``.csv``, ``.smi``,
            ``.txt``, optionally ``.gz``; :func:`~structebm.data.molecule_files.load_molecule_file`).
        batch_size: graphs per training batch.
        max_train_molecules: keep only the first training graphs (quick runs); ``None`` = all.
        max_test_molecules: keep only the first test SMILES for evaluation; ``None`` = all.
        seed: seed of the training order (a new permutation every epoch).
        data_root: directory holding the data files (default ``$STRUCTEBM_DATA``).
        num_workers: DataLoader worker processes.
        smiles_column: (file) the ``.csv`` column holding the SMILES.
        test_file: (file) a second file with the test molecules; every row of ``dataset`` trains.
        test_rows: (file) 0-based data rows of ``dataset`` forming the test split.
        test_fraction: (file) fraction of rows drawn with ``split_seed`` for the test split
            (0.1 when no split is given).
        split_seed: (file) seed of the fraction split.
        atom_types: (file) vocabulary labels such as ``["C", "N", "O", "N+", "O-"]``; default: the
            elements with the formal charges that occur in the training molecules.
        max_atoms: (file) the graph capacity; default: the largest heavy-atom count of the training molecules.
        on_error: (file) ``"raise"``: loading fails listing every unparsable row and every training
            molecule over the capacity or outside ``atom_types``, by line; ``"skip"``: they are left out
            and counted (warning, :meth:`data_summary`).
        properties: RDKit properties yielded as the condition, e.g. ``["qed", "logp"]``
            (:data:`~structebm.chem.properties.PROPERTIES`); computed once and cached.
        property_columns: (``.csv`` file) the user's own numeric columns yielded as the condition,
            after ``properties``.
        property_cache_dir: where computed properties are cached (default: the structebm cache folder).

    Shapes:
        - training batches: ``DenseMolGraph`` with atoms ``[B, N]``, bonds ``[B, N, N]``,
          ``N = vocabulary.max_atoms`` (9 for QM9, 38 for ZINC250k); with properties, the tuple
          ``(DenseMolGraph, c [B, P])``, ``P = len(properties) + len(property_columns)``.
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
        smiles_column: str = "smiles",
        test_file: Optional[str] = None,
        test_rows: Optional[list[int]] = None,
        test_fraction: Optional[float] = None,
        split_seed: int = 0,
        atom_types: Optional[list[str]] = None,
        max_atoms: Optional[int] = None,
        on_error: Literal["raise", "skip"] = "raise",
        properties: Optional[list[str]] = None,
        property_columns: Optional[list[str]] = None,
        property_cache_dir: Optional[str] = None,
    ) -> None:
        super().__init__()
        name = str(dataset).lower()
        file_options = {"test_file": test_file, "test_rows": test_rows, "test_fraction": test_fraction,
                        "atom_types": atom_types, "max_atoms": max_atoms, "property_columns": property_columns}
        if name in MOLECULE_DATASETS:
            given = sorted(key for key, value in file_options.items() if value is not None)
            if given:
                raise ValueError(f"MoleculeDataModule: {given} apply to a SMILES file, not to the named data set {name!r}")
        elif not Path(dataset).is_file():
            raise ValueError(
                f"MoleculeDataModule: dataset must be one of {sorted(MOLECULE_DATASETS)} or an existing SMILES file, "
                f"got {dataset!r}"
            )
        if on_error not in ("raise", "skip"):
            raise ValueError(f"MoleculeDataModule: on_error must be 'raise' or 'skip', got {on_error!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"MoleculeDataModule: batch_size must be a positive int, got {batch_size!r}")
        for key, limit in (("max_train_molecules", max_train_molecules), ("max_test_molecules", max_test_molecules)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise ValueError(f"MoleculeDataModule: {key} must be a positive int or None, got {limit!r}")
        if num_workers < 0:
            raise ValueError(f"MoleculeDataModule: num_workers must be non-negative, got {num_workers}")
        self.properties = self._checked_properties(properties, property_columns)
        self.property_columns = list(property_columns or [])
        self.property_cache_dir = None if property_cache_dir is None else Path(property_cache_dir)
        self.property_scaling: Optional[PropertyScaling] = None
        self._train_values: Optional[torch.Tensor] = None
        self._test_values: Optional[torch.Tensor] = None
        self.dataset_name = name if name in MOLECULE_DATASETS else None
        self.path = None if self.dataset_name else Path(dataset)
        self.file_options = {**file_options, "smiles_column": smiles_column, "split_seed": split_seed, "on_error": on_error}
        self.file_data: Optional[MoleculeFileData] = None
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

    @staticmethod
    def _checked_properties(properties: Optional[list[str]], columns: Optional[list[str]]) -> list[str]:
        where = "MoleculeDataModule"
        if isinstance(columns, str):
            raise TypeError(f"{where}: property_columns must be a list of column names, got the string {columns!r}")
        if properties is None:
            return []
        unknown = [name for name in properties if name not in PROPERTIES]
        if unknown:
            raise ValueError(f"{where}: unknown molecular properties {unknown}; known: {sorted(PROPERTIES)} "
                             "(a numeric column of your own .csv goes in property_columns)")
        names = check_property_names(properties, where)
        clash = sorted(set(names) & set(columns or []))
        if clash:
            raise ValueError(f"{where}: {clash} are named both in properties and in property_columns")
        return names

    @property
    def condition_names(self) -> list[str]:
        """The property of each column of the condition ``c`` (empty: unconditional batches)."""
        return self.properties + self.property_columns

    @property
    def condition_dim(self) -> Optional[int]:
        """``P``, the number of condition columns, or ``None`` without properties."""
        return len(self.condition_names) or None

    @property
    def vocabulary(self) -> AtomVocabulary:
        """The atom vocabulary of the data set (of a file: inferred or given, known after :meth:`setup`)."""
        if self.dataset_name is not None:
            return MOLECULE_DATASETS[self.dataset_name].vocabulary
        self._require_setup("the vocabulary of a SMILES file")
        return self.file_data.vocabulary

    @property
    def source(self) -> str:
        """The data set's name, or the path of its file (for messages and reports)."""
        return self.dataset_name or str(self.path)

    @classmethod
    def model_settings(cls, **init_args: Any) -> dict[str, Any]:
        """The model settings the data decides, by config key under ``model``.

        The vocabulary's ``name`` (``"qm9"``, ``"zinc250k"``, or the spec line of a file's
        vocabulary, :mod:`structebm.chem.vocab_inference`) goes to the energy's chemistry
        features, the sampler options and the persistent chain source; the energy's node-type
        count is the vocabulary's size; for a file, the chain source's atom prior is that of its
        training split (named data sets fit theirs once per process); with properties, the number of
        condition columns goes to the energy's and the chain source's ``condition_dim``. The ``structebm`` command
        sets each key the model's config has (:func:`~structebm.cli.apply_data_settings`).

        Args:
            init_args: this class's arguments, as in the ``data.init_args`` of a config.
        """
        data = cls(**init_args)
        if data.dataset_name is None:
            data.setup("fit")
        vocabulary = data.vocabulary
        settings: dict[str, Any] = {
            "energy.init_args.num_node_types": len(vocabulary),
            "energy.init_args.features.init_args.vocabulary": vocabulary.name,
            "objective.init_args.sampler_options.dataset": vocabulary.name,
            "objective.init_args.source.init_args.dataset": vocabulary.name,
        }
        if data.condition_dim is not None:
            settings["energy.init_args.condition_dim"] = data.condition_dim
            settings["objective.init_args.source.init_args.condition_dim"] = data.condition_dim
        if data.dataset_name is None:
            prior = data.atom_prior()
            settings["objective.init_args.source.init_args.atom_prior"] = {
                "count_probs": prior.count_probs.tolist(), "type_probs": prior.type_probs.tolist(),
            }
        return settings

    @property
    def space(self) -> MolGraphSpace:
        """The graph space of the data set (slot count, legal moves, noise)."""
        return MolGraphSpace(self.vocabulary)

    def prepare_data(self) -> None:
        """Resolve the SMILES and split files (checked by SHA-256); nothing to fetch for a user's file."""
        if self.dataset_name is not None:
            standard_split(self.dataset_name, self.data_root)

    def setup(self, stage: Optional[str] = None) -> None:
        """Load the training graphs (cached dense encoding) and the SMILES of both splits."""
        if self.train_graphs is not None:
            return
        if self.dataset_name is None:
            self._setup_file()
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
        if self.properties:
            dense = graphs.dataset if isinstance(graphs, Subset) else graphs
            graph_rows = dense.rows[list(graphs.indices)] if isinstance(graphs, Subset) else dense.rows
            cache = self.property_cache_dir or cache_root()
            where = f"MoleculeDataModule ({self.dataset_name})"
            self._set_values(computed_values([smiles[row] for row in graph_rows.tolist()], self.properties, cache, where),
                             computed_values(self._test_smiles, self.properties, cache, where))

    def _setup_file(self) -> None:
        files = [Path(f) for f in (self.path, self.file_options["test_file"]) if f is not None]
        stamps = tuple((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        options = tuple((key, tuple(v) if isinstance(v, list) else v) for key, v in sorted(self.file_options.items()))
        data = _load_file_once(stamps, options)  # warns once about skipped rows
        graphs: DenseMoleculeDataset | Subset = data.train_graphs
        if self.max_train_molecules is not None:
            graphs = Subset(graphs, range(min(self.max_train_molecules, len(graphs))))
        self.file_data = data
        self.train_graphs = graphs
        self._train_smiles = data.train_smiles
        self._test_smiles = data.test_smiles[: self.max_test_molecules] if self.max_test_molecules else data.test_smiles
        if self.condition_names:
            cache, where = self.property_cache_dir or cache_root(), f"MoleculeDataModule ({self.path})"
            self._set_values(
                torch.cat([computed_values(data.train_smiles[: len(graphs)], self.properties, cache, where),
                           data.train_values[: len(graphs)]], dim=1),
                torch.cat([computed_values(self._test_smiles, self.properties, cache, where),
                           data.test_values[: len(self._test_smiles)]], dim=1),
            )

    def _set_values(self, train: torch.Tensor, test: torch.Tensor) -> None:
        """Keep the raw property values of both splits and fit the scaling on the training graphs."""
        self._train_values, self._test_values = train, test
        self.property_scaling = PropertyScaling.fit(self.condition_names, train)

    @property
    def train_properties(self) -> torch.Tensor:
        """``[M, P]`` float64: the properties of the training graphs, in their own units."""
        self._require_conditions("train_properties")
        return self._train_values

    @property
    def test_properties(self) -> torch.Tensor:
        """``[len(test_smiles), P]`` float64: the properties of the test molecules, in their own units."""
        self._require_conditions("test_properties")
        return self._test_values

    def _require_conditions(self, what: str) -> None:
        if not self.condition_names:
            raise RuntimeError(f"MoleculeDataModule: {what} needs properties or property_columns; none were given")
        self._require_setup(what)

    def data_summary(self) -> dict[str, Any]:
        """What the data module holds, for a report: source, vocabulary, split sizes and, for a file,
        the lines skipped and the test molecules outside the vocabulary."""
        self._require_setup("data_summary()")
        summary: dict[str, Any] = {"source": self.source}
        if self.file_data is not None:
            summary.update(self.file_data.summary())
        else:
            summary.update({"vocabulary": list(self.vocabulary.labels), "max_atoms": self.vocabulary.max_atoms,
                            "num_train": len(self._train_smiles)})
        summary["num_test"] = len(self._test_smiles)
        return summary

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
        """Fail early, naming the config key, if ``energy`` expects another number of atom types, or
        a condition the data do not give (or none where they give one, or another width)."""
        declared = getattr(energy, "num_node_types", None)
        if isinstance(declared, int) and declared != len(self.vocabulary):
            raise ValueError(
                f"MoleculeDataModule: {self.source} has {len(self.vocabulary)} atom types "
                f"{list(self.vocabulary.labels)} but the energy has {declared}; set "
                f"model.energy.init_args.num_node_types: {len(self.vocabulary)}"
            )
        wanted = getattr(energy, "condition_dim", None)
        given = self.condition_dim
        if wanted is not None and given is None:
            raise ValueError(
                f"MoleculeDataModule: the energy is conditional (condition_dim={wanted}) but the data give no "
                f"condition; set data.init_args.properties (e.g. ['qed']) or property_columns"
            )
        if given is not None and wanted != given:
            raise ValueError(
                f"MoleculeDataModule: the data give {given} condition column(s) {self.condition_names} but the "
                f"energy has condition_dim={wanted}; set model.energy.init_args.condition_dim: {given}"
            )

    def train_dataloader(self) -> DataLoader:
        self._require_setup("train_dataloader()")
        trainer = getattr(self, "trainer", None)
        if trainer is not None and getattr(trainer, "lightning_module", None) is not None:
            self.check_model(getattr(trainer.lightning_module, "energy", None))
        conditioned = bool(self.condition_names)
        return DataLoader(
            ConditionedGraphs(self.train_graphs, self.training_conditions()) if conditioned else self.train_graphs,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(len(self.train_graphs), seed=self.seed),
            collate_fn=collate_conditioned_graphs if conditioned else collate_dense_graphs,
            num_workers=self.num_workers,
            drop_last=len(self.train_graphs) >= self.batch_size,
        )

    def training_conditions(self) -> torch.Tensor:
        """``[M, P]`` float32: the normalised properties of the training graphs (the conditions ``c``)."""
        return self.property_scaling.normalise(self.train_properties)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move a :class:`DenseMolGraph` batch, or a ``(graphs, c)`` pair, with its own ``to``;
        anything else the default way."""
        if isinstance(batch, DenseMolGraph):
            return batch.to(device)
        if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], DenseMolGraph):
            return batch[0].to(device), batch[1].to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
