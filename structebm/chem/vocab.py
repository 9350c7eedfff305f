"""Atom vocabularies: which (element, formal charge) pairs a dense molecular graph can hold.

A dense graph stores one integer per atom slot: ``0`` for an empty slot and ``1..A`` for the
``A`` atom types of a :class:`AtomVocabulary`. Each type is an element together with a formal
charge, so charged atoms survive a round trip exactly; hydrogens are always implicit.

Vocabularies of the two standard benchmarks:

* **QM9** (at most 9 heavy atoms): ``C, N, O, F`` (the four element channels of GraphNVP,
  MoFlow and GDSS, kept at indices 1-4), followed by the charged forms that occur in the data
  set: ``N+`` (1,847 atoms), ``O-`` (1,527), ``N-`` (170), ``C-`` (150).
* **ZINC250k** (at most 38 heavy atoms): ``C, N, O, F, P, S, Cl, Br, I`` (the nine element
  channels of MoFlow and GDSS, indices 1-9), followed by every charged form that occurs in
  the data set: ``N+, O-, N-, S-, O+, S+, C-, P+``.

MoFlow and GDSS encode the element only; when they rebuild a molecule they re-add a ``+1``
charge to an N, O or S atom whose valence exceeds the neutral one by exactly one, and they
cannot express ``O-``, ``N-``, ``S-`` or ``C-`` at all. Keeping the observed charged forms as
extra types makes SMILES -> dense graph -> SMILES exact on every molecule of both sets
(up to stereochemistry, which a dense graph does not store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, Tuple

import torch
from rdkit import Chem, rdBase
from torch import Tensor

__all__ = ["AtomType", "AtomVocabulary", "QM9_VOCABULARY", "ZINC250K_VOCABULARY", "get_vocabulary"]

_PERIODIC_TABLE = Chem.GetPeriodicTable()
_LARGEST_VALENCE_TRIED = 8


@dataclass(frozen=True)
class AtomType:
    """One heavy-atom type: an element symbol and a formal charge."""

    symbol: str
    charge: int = 0

    @property
    def atomic_number(self) -> int:
        return _PERIODIC_TABLE.GetAtomicNumber(self.symbol)

    @property
    def label(self) -> str:
        """Short text label, e.g. ``"N+"``, ``"O-"``, ``"C"``."""
        if self.charge == 0:
            return self.symbol
        sign = "+" if self.charge > 0 else "-"
        return self.symbol + sign * abs(self.charge)

    @property
    def max_valence(self) -> int:
        """Largest total bond order (heavy-atom bonds plus hydrogens) RDKit accepts.

        For neutral atoms this is the largest entry of RDKit's valence list (C 4, N 3, S 6,
        P 5 ...); charged atoms mostly follow their isoelectronic element (``N+`` 4, ``O-`` 1,
        ``C-`` 3) with RDKit's exceptions (``S-`` 5). The value is read off RDKit itself, as the
        largest ``v`` for which the atom with ``v`` single bonds to fluorine sanitizes,

        .. math::
            v_{\\max}(Z, q) = \\max \\{ v : \\mathrm{sanitize}(\\mathrm{X}^{q}\\mathrm{F}_v) \\},

        so the tensor check of :mod:`structebm.chem.valence` agrees with RDKit sanitization.
        """
        return _max_valence(self.atomic_number, self.charge)


@lru_cache(maxsize=None)
def _max_valence(atomic_number: int, charge: int) -> int:
    largest = -1
    for valence in range(_LARGEST_VALENCE_TRIED + 1):
        mol = Chem.RWMol()
        centre = Chem.Atom(atomic_number)
        centre.SetFormalCharge(charge)
        mol.AddAtom(centre)
        for neighbour in range(1, valence + 1):
            mol.AddAtom(Chem.Atom(9))
            mol.AddBond(0, neighbour, Chem.BondType.SINGLE)
        try:
            with rdBase.BlockLogs():
                Chem.SanitizeMol(mol)
        except Exception:
            continue
        largest = valence
    if largest < 0:
        raise ValueError(f"RDKit accepts no valence for atomic number {atomic_number} with charge {charge}")
    return largest


@dataclass(frozen=True)
class AtomVocabulary:
    """An ordered list of atom types and the atom capacity of a data set.

    Args:
        name: short name, e.g. ``"qm9"``.
        atom_types: the types; type ``i`` is stored as the integer ``i + 1``.
        max_atoms: number of atom slots ``N`` of a dense graph.
    """

    name: str
    atom_types: Tuple[AtomType, ...]
    max_atoms: int
    _index: Dict[Tuple[str, int], int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_atoms < 1:
            raise ValueError(f"AtomVocabulary {self.name!r}: max_atoms must be >= 1, got {self.max_atoms}")
        index = {(t.symbol, t.charge): i + 1 for i, t in enumerate(self.atom_types)}
        if len(index) != len(self.atom_types):
            raise ValueError(f"AtomVocabulary {self.name!r}: atom types are not unique")
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.atom_types)

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(t.label for t in self.atom_types)

    def index(self, symbol: str, charge: int = 0) -> int:
        """The stored integer (1-based) of ``(symbol, charge)``; KeyError naming it if absent."""
        try:
            return self._index[(symbol, charge)]
        except KeyError:
            label = AtomType(symbol, charge).label
            raise KeyError(
                f"atom type {label!r} is not in the {self.name!r} vocabulary {list(self.labels)}"
            ) from None

    def contains(self, symbol: str, charge: int = 0) -> bool:
        return (symbol, charge) in self._index

    def atom_type(self, index: int) -> AtomType:
        """The type stored as ``index`` (1-based)."""
        if not 1 <= index <= len(self):
            raise IndexError(f"atom index {index} is outside 1..{len(self)} of vocabulary {self.name!r}")
        return self.atom_types[index - 1]

    def max_valence_table(self, device: torch.device | str | None = None) -> Tensor:
        """``[A + 1]`` long tensor of maximum valences; entry 0 (no atom) is 0."""
        values = [0] + [t.max_valence for t in self.atom_types]
        return torch.tensor(values, dtype=torch.long, device=device)

    def atomic_number_table(self, device: torch.device | str | None = None) -> Tensor:
        """``[A + 1]`` long tensor of atomic numbers; entry 0 (no atom) is 0."""
        values = [0] + [t.atomic_number for t in self.atom_types]
        return torch.tensor(values, dtype=torch.long, device=device)


def _types(*labels: str) -> Tuple[AtomType, ...]:
    out = []
    for label in labels:
        symbol = label.rstrip("+-")
        charge = label.count("+") - label.count("-")
        out.append(AtomType(symbol, charge))
    return tuple(out)


QM9_VOCABULARY = AtomVocabulary("qm9", _types("C", "N", "O", "F", "N+", "O-", "N-", "C-"), max_atoms=9)
ZINC250K_VOCABULARY = AtomVocabulary(
    "zinc250k",
    _types("C", "N", "O", "F", "P", "S", "Cl", "Br", "I", "N+", "O-", "N-", "S-", "O+", "S+", "C-", "P+"),
    max_atoms=38,
)

_VOCABULARIES = {"qm9": QM9_VOCABULARY, "zinc250k": ZINC250K_VOCABULARY}


def get_vocabulary(name: str) -> AtomVocabulary:
    """The vocabulary of a named data set (``"qm9"`` or ``"zinc250k"``), or the one a spec line
    ``"atoms=C,N,O,N+;max_atoms=12"`` describes (:mod:`structebm.chem.vocab_inference`)."""
    from structebm.chem.vocab_inference import is_vocabulary_spec, parse_vocabulary_spec

    if is_vocabulary_spec(name):
        return parse_vocabulary_spec(name)
    try:
        return _VOCABULARIES[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown vocabulary {name!r}; expected one of {sorted(_VOCABULARIES)} or a spec 'atoms=C,N,O;max_atoms=12'"
        ) from None
