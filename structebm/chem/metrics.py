"""Validity, uniqueness and novelty of generated molecules.

Definitions (``G`` = all generated graphs, ``V`` = canonical SMILES of the valid ones):

.. math::
    \\mathrm{validity} = \\frac{|\\{g \\in G : g \\text{ valid}\\}|}{|G|}, \\qquad
    \\mathrm{uniqueness} = \\frac{|\\mathrm{set}(V)|}{|V|}, \\qquad
    \\mathrm{novelty} = \\frac{|\\mathrm{set}(V) \\setminus \\mathrm{train}|}{|\\mathrm{set}(V)|}.

* *Validity without correction*: RDKit sanitizes the graph exactly as generated and the result
  is one connected molecule (an empty graph is invalid).
* *Validity with correction*: the graph is first passed through
  :func:`~structebm.chem.valence.correct_valence`, and the largest connected fragment is kept
  (the GDSS protocol); valid when that fragment sanitizes and RDKit parses its own SMILES of it
  back (as GDSS, which re-reads the corrected molecule from its SMILES; a few charged,
  hypervalent fragments such as ``C[O+]=[IH]`` sanitize but do not survive that round trip).

Uniqueness and novelty are computed on the corrected valid molecules, as GDSS does.

:class:`DecodedMolecules` decodes a batch once (as generated, without sanitization, and
corrected) and every figure above, the invalidity reasons and the molecule grid read from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, List, Optional, Sequence, Union

from rdkit import Chem, rdBase

from structebm.chem.convert import dense_to_mols, mol_to_smiles
from structebm.chem.dense import DenseMolGraph
from structebm.chem.valence import correct_valence, is_valence_valid
from structebm.chem.vocab import AtomVocabulary

__all__ = [
    "DecodedMolecules",
    "ValidityReport",
    "largest_fragment",
    "validity_without_correction",
    "invalidity_reasons",
    "corrected_molecules",
    "validity_report",
    "uniqueness",
    "novelty",
]


@dataclass(frozen=True)
class ValidityReport:
    """Validities of a batch and the canonical SMILES of its corrected valid molecules."""

    validity_without_correction: float
    validity_with_correction: float
    valid_smiles: List[str]


def largest_fragment(mol: Chem.Mol) -> Chem.Mol:
    """The connected fragment with the most atoms (the first one on ties)."""
    fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    return max(fragments, key=lambda fragment: fragment.GetNumAtoms())


def _is_single_valid(mol: Optional[Chem.Mol]) -> bool:
    return mol is not None and len(Chem.GetMolFrags(mol)) == 1


def validity_without_correction(graph: Union[DenseMolGraph, "DecodedMolecules"], vocabulary: AtomVocabulary) -> float:
    """Fraction of all graphs that sanitize as generated and form one connected molecule."""
    return _decoded(graph, vocabulary).validity_without_correction


def invalidity_reasons(graph: Union[DenseMolGraph, "DecodedMolecules"], vocabulary: AtomVocabulary) -> dict[str, float]:
    """Why graphs fail validity without correction, as fractions of all graphs.

    Returns ``empty`` (no atoms), ``over_valent`` (some atom carries more bonds than its type
    allows), ``disconnected`` (more than one fragment) and ``other`` (non-empty, not over-valent,
    connected, yet RDKit does not sanitize it). A graph both over-valent and disconnected counts in
    both, so the fractions may sum to more than ``1 - validity``.
    """
    return _decoded(graph, vocabulary).invalidity_reasons


def corrected_molecules(graph: DenseMolGraph, vocabulary: AtomVocabulary) -> List[Optional[Chem.Mol]]:
    """Valency-corrected largest fragment of every graph, read back from its SMILES; ``None`` where
    it does not sanitize or its SMILES does not parse (see the module docstring)."""
    corrected = correct_valence(graph, vocabulary)
    out: List[Optional[Chem.Mol]] = []
    for mol in dense_to_mols(corrected, vocabulary, sanitize=False):
        if mol is None:
            out.append(None)
            continue
        fragment = Chem.Mol(largest_fragment(mol))
        with rdBase.BlockLogs():
            try:
                Chem.SanitizeMol(fragment)
            except Exception:
                out.append(None)
                continue
            out.append(Chem.MolFromSmiles(Chem.MolToSmiles(fragment)))  # None when its SMILES does not parse
    return out


class DecodedMolecules:
    """A batch of generated graphs decoded once: as generated, unsanitized, and corrected.

    Every view is computed on first use and kept, so scoring, invalidity reasons, statistics
    and drawings of one batch share the RDKit work.

    Args:
        graph: the generated graphs (moved to the CPU).
        vocabulary: their atom vocabulary.
    """

    def __init__(self, graph: DenseMolGraph, vocabulary: AtomVocabulary) -> None:
        if graph.batch_size == 0:
            raise ValueError("DecodedMolecules: got an empty batch")
        self.graph = graph.to("cpu")
        self.vocabulary = vocabulary

    def __len__(self) -> int:
        return self.graph.batch_size

    @cached_property
    def as_generated(self) -> List[Optional[Chem.Mol]]:
        """Sanitized molecules exactly as generated (``None`` where RDKit rejects one)."""
        return dense_to_mols(self.graph, self.vocabulary, sanitize=True)

    @cached_property
    def unsanitized(self) -> List[Optional[Chem.Mol]]:
        """Molecules as generated, not sanitized (``None`` only for empty graphs)."""
        return dense_to_mols(self.graph, self.vocabulary, sanitize=False)

    @cached_property
    def corrected(self) -> List[Optional[Chem.Mol]]:
        """:func:`corrected_molecules` of the batch."""
        return corrected_molecules(self.graph, self.vocabulary)

    @cached_property
    def valid_smiles(self) -> List[str]:
        """Canonical SMILES of the corrected valid molecules."""
        return [mol_to_smiles(m) for m in self.corrected if m is not None]

    @property
    def validity_without_correction(self) -> float:
        return sum(_is_single_valid(m) for m in self.as_generated) / len(self)

    @property
    def validity_with_correction(self) -> float:
        return len(self.valid_smiles) / len(self)

    @cached_property
    def invalidity_reasons(self) -> dict[str, float]:
        """See :func:`invalidity_reasons`."""
        empty = (self.graph.num_nodes == 0).tolist()
        over_valent = (~is_valence_valid(self.graph, self.vocabulary)).tolist()
        disconnected = [m is not None and len(Chem.GetMolFrags(m)) > 1 for m in self.unsanitized]
        other = [
            m is None and not (e or o or d)
            for m, e, o, d in zip(self.as_generated, empty, over_valent, disconnected)
        ]
        n = len(self)
        return {
            "empty": sum(empty) / n,
            "over_valent": sum(over_valent) / n,
            "disconnected": sum(disconnected) / n,
            "other": sum(other) / n,
        }


def _decoded(graph: Union[DenseMolGraph, DecodedMolecules], vocabulary: AtomVocabulary) -> DecodedMolecules:
    return graph if isinstance(graph, DecodedMolecules) else DecodedMolecules(graph, vocabulary)


def validity_report(graph: Union[DenseMolGraph, DecodedMolecules], vocabulary: AtomVocabulary) -> ValidityReport:
    """Both validities and the canonical SMILES of the corrected valid molecules."""
    decoded = _decoded(graph, vocabulary)
    return ValidityReport(
        validity_without_correction=decoded.validity_without_correction,
        validity_with_correction=decoded.validity_with_correction,
        valid_smiles=decoded.valid_smiles,
    )


def uniqueness(valid_smiles: Sequence[str]) -> float:
    """Fraction of distinct canonical SMILES among the valid ones (0 when there are none)."""
    if len(valid_smiles) == 0:
        return 0.0
    return len(set(valid_smiles)) / len(valid_smiles)


def novelty(valid_smiles: Sequence[str], train_smiles: Iterable[str]) -> float:
    """Fraction of distinct valid SMILES that are not in ``train_smiles`` (0 when none are valid).

    Both sides must be canonical SMILES of the same convention
    (:func:`~structebm.chem.convert.canonical_smiles`).
    """
    distinct = set(valid_smiles)
    if not distinct:
        return 0.0
    train = train_smiles if isinstance(train_smiles, (set, frozenset)) else set(train_smiles)
    return len(distinct - train) / len(distinct)
