"""One call that scores generated molecules with the standard GDSS + MOSES metric set.

Keys of the returned dict (all floats, ``nan`` where a metric is undefined, e.g. no valid
molecule):

=========================== ==================================================================
``validity_wo_correction``  fraction of all generated graphs valid as generated (one molecule)
``validity_with_correction`` fraction valid after valency correction + largest fragment
``uniqueness``              distinct / valid (corrected valid molecules)
``novelty``                 distinct valid not in the training set / distinct valid
``fcd``                     Fréchet ChemNet Distance, valid generated vs test SMILES
``nspdk``                   NSPDK MMD², valid generated vs test molecular graphs
``int_div``                 MOSES IntDiv₁ of the valid generated molecules
``snn``                     MOSES SNN, valid generated vs test
``frag``                    MOSES Frag, valid generated vs test
``scaf``                    MOSES Scaf, valid generated vs test
=========================== ==================================================================
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
from rdkit import Chem

from structebm.chem.convert import mol_to_networkx, mol_to_smiles
from structebm.chem.dense import DenseMolGraph
from structebm.chem.fcd import fcd_statistics, frechet_chemnet_distance
from structebm.chem.metrics import DecodedMolecules, largest_fragment, novelty, uniqueness, validity_report
from structebm.chem.moses_metrics import (
    fragment_similarity,
    internal_diversity,
    scaffold_similarity,
    similarity_to_nearest_neighbour,
)
from structebm.chem.nspdk import NSPDKReference
from structebm.chem.vocab import AtomVocabulary

__all__ = ["METRIC_KEYS", "MoleculeReference", "evaluate_molecules"]

METRIC_KEYS = (
    "validity_wo_correction",
    "validity_with_correction",
    "uniqueness",
    "novelty",
    "fcd",
    "nspdk",
    "int_div",
    "snn",
    "frag",
    "scaf",
)

Generated = Union[DenseMolGraph, DecodedMolecules, Sequence[Optional[Union[str, Chem.Mol]]]]


def _validities_of_molecules(generated: Sequence[Optional[Union[str, Chem.Mol]]]) -> tuple[float, float, List[str]]:
    """Validities of ready-made molecules (no graph to correct: the largest fragment is kept)."""
    if len(generated) == 0:
        raise ValueError("evaluate_molecules: got no generated molecules")
    single, valid = 0, []
    for item in generated:
        mol = Chem.MolFromSmiles(item) if isinstance(item, str) and item else item
        if mol is None or isinstance(mol, str) or mol.GetNumAtoms() == 0:
            continue
        single += len(Chem.GetMolFrags(mol)) == 1
        valid.append(mol_to_smiles(largest_fragment(mol)))
    return single / len(generated), len(valid) / len(generated), valid


def _mol_graphs(smiles: Iterable[str]) -> list:
    return [mol_to_networkx(Chem.MolFromSmiles(s)) for s in smiles]


def _or_nan(compute: Callable[[], float], needed: int, available: int) -> float:
    return compute() if available >= needed else math.nan


class MoleculeReference:
    """The test molecules of an evaluation, with what FCD and NSPDK need of them computed once.

    Pass one to :func:`evaluate_molecules` in place of the test SMILES when several sets are
    scored against the same molecules (sampler variants, checkpoints of a chain): ChemNet's
    mean and covariance and the NSPDK mean feature vector of the test set are computed on first
    use and kept.

    Args:
        smiles: SMILES of the test set (at least one).
        device: device for ChemNet (FCD).
    """

    def __init__(self, smiles: Sequence[str], device: str = "cpu") -> None:
        self.smiles = list(smiles)
        if not self.smiles:
            raise ValueError("MoleculeReference: the test set is empty")
        self.device = device

    @cached_property
    def fcd_statistics(self) -> Dict[str, np.ndarray]:
        return fcd_statistics(self.smiles, device=self.device)

    @cached_property
    def nspdk(self) -> NSPDKReference:
        return NSPDKReference(_mol_graphs(self.smiles))


def evaluate_molecules(
    generated: Generated,
    train_smiles: Iterable[str],
    test_smiles: Union[Sequence[str], MoleculeReference],
    vocabulary: Optional[AtomVocabulary] = None,
    metrics: Sequence[str] = METRIC_KEYS,
    device: str = "cpu",
) -> Dict[str, float]:
    """Score generated molecules (see the module docstring for the keys).

    Args:
        generated: a :class:`DenseMolGraph` batch (needs ``vocabulary``), a
            :class:`~structebm.chem.metrics.DecodedMolecules` (decoded once, reused by the caller),
            or a list of SMILES / RDKit molecules with ``None`` for failed generations.
        train_smiles: canonical SMILES of the training set (for novelty).
        test_smiles: SMILES of the test set (for FCD, NSPDK, SNN, Frag, Scaf), or a
            :class:`MoleculeReference` of them to reuse across calls.
        vocabulary: atom vocabulary of ``generated`` when it is a dense batch.
        metrics: which keys to compute; the others are left out of the result.
        device: device for ChemNet (FCD) when ``test_smiles`` is not a :class:`MoleculeReference`
            (which has its own).
    """
    unknown = sorted(set(metrics) - set(METRIC_KEYS))
    if unknown:
        raise ValueError(f"evaluate_molecules: unknown metrics {unknown}; choose from {list(METRIC_KEYS)}")
    if isinstance(generated, DenseMolGraph) and vocabulary is None:
        raise ValueError("evaluate_molecules: a DenseMolGraph needs its vocabulary")
    if isinstance(generated, (DenseMolGraph, DecodedMolecules)):
        report = validity_report(generated, vocabulary)
        raw, corrected, valid = report.validity_without_correction, report.validity_with_correction, report.valid_smiles
    else:
        raw, corrected, valid = _validities_of_molecules(generated)
    if isinstance(test_smiles, MoleculeReference):
        reference = test_smiles
    elif len(test_smiles) == 0:
        raise ValueError("evaluate_molecules: test_smiles is empty")
    else:
        reference = MoleculeReference(test_smiles, device)
    test = reference.smiles
    computations: Dict[str, Callable[[], float]] = {
        "validity_wo_correction": lambda: raw,
        "validity_with_correction": lambda: corrected,
        "uniqueness": lambda: uniqueness(valid) if valid else math.nan,
        "novelty": lambda: novelty(valid, train_smiles) if valid else math.nan,
        "fcd": lambda: _or_nan(
            lambda: frechet_chemnet_distance(valid, reference_statistics=reference.fcd_statistics, device=reference.device),
            2, len(valid),
        ),
        "nspdk": lambda: _or_nan(lambda: reference.nspdk.mmd(_mol_graphs(valid)), 1, len(valid)),
        "int_div": lambda: _or_nan(lambda: internal_diversity(valid), 1, len(valid)),
        "snn": lambda: _or_nan(lambda: similarity_to_nearest_neighbour(valid, test), 1, len(valid)),
        "frag": lambda: _or_nan(lambda: fragment_similarity(valid, test), 1, len(valid)),
        "scaf": lambda: _or_nan(lambda: scaffold_similarity(valid, test), 1, len(valid)),
    }
    return {key: float(computations[key]()) for key in METRIC_KEYS if key in metrics}
