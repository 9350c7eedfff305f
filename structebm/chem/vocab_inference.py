"""Atom vocabularies inferred from molecules, and written as one line of text.

For training molecules :math:`\\mathcal{M}` (hydrogens implicit) the inferred vocabulary is the
set of (element, formal charge) pairs that occur, and its capacity the largest heavy-atom count,

.. math::
    \\mathcal{A} = \\{ (Z(a), q(a)) : a \\in m,\\ m \\in \\mathcal{M} \\}, \\qquad
    N = \\max_{m \\in \\mathcal{M}} |m|,

ordered neutral elements first (by atomic number), then charged forms (by atomic number,
then charge), so the same molecules always give the same type indices.

A vocabulary that is not one of the named ones (``"qm9"``, ``"zinc250k"``) travels through
configs as its **spec**, a line that holds all of it, e.g. ``"atoms=C,N,O,N+,O-;max_atoms=12"``.
:func:`~structebm.chem.vocab.get_vocabulary` accepts a spec wherever it accepts a name, and
the vocabulary's ``name`` is its spec, so energies, samplers and chain sources built from
``vocabulary.name`` rebuild the same vocabulary.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from rdkit import Chem, rdBase

from structebm.chem.vocab import AtomType, AtomVocabulary

__all__ = ["atom_types_of", "infer_vocabulary", "vocabulary_spec", "parse_vocabulary_spec", "is_vocabulary_spec"]

_ATOMS_KEY = "atoms="
_CAPACITY_KEY = "max_atoms="
_PERIODIC_TABLE = Chem.GetPeriodicTable()


def atom_types_of(mol: Chem.Mol) -> set[tuple[str, int]]:
    """The ``(symbol, formal charge)`` pairs of the heavy atoms of ``mol``."""
    return {(atom.GetSymbol(), atom.GetFormalCharge()) for atom in Chem.RemoveHs(mol).GetAtoms()}


def _ordered(pairs: Iterable[tuple[str, int]]) -> tuple[AtomType, ...]:
    def key(pair: tuple[str, int]) -> tuple[int, int, int]:
        symbol, charge = pair
        return (charge != 0, _PERIODIC_TABLE.GetAtomicNumber(symbol), charge)

    return tuple(AtomType(symbol, charge) for symbol, charge in sorted(set(pairs), key=key))


def vocabulary_spec(atom_types: Sequence[AtomType], max_atoms: int) -> str:
    """The one-line spec ``"atoms=<label>,<label>...;max_atoms=<N>"`` of a vocabulary."""
    return f"{_ATOMS_KEY}{','.join(t.label for t in atom_types)};{_CAPACITY_KEY}{int(max_atoms)}"


def is_vocabulary_spec(text: str) -> bool:
    """Whether ``text`` has the form of a :func:`vocabulary_spec`."""
    return isinstance(text, str) and text.startswith(_ATOMS_KEY) and f";{_CAPACITY_KEY}" in text


def _is_element(symbol: str) -> bool:
    try:
        with rdBase.BlockLogs():
            return Chem.Atom(symbol).GetAtomicNum() > 0
    except RuntimeError:
        return False


def _atom_type(label: str, spec: str) -> AtomType:
    symbol = label.rstrip("+-")
    signs = label[len(symbol):]
    if not _is_element(symbol) or len(set(signs)) > 1:
        raise ValueError(f"vocabulary spec {spec!r}: {label!r} is not an element symbol followed by '+'s or '-'s")
    return AtomType(symbol, signs.count("+") - signs.count("-"))


def parse_vocabulary_spec(spec: str) -> AtomVocabulary:
    """The :class:`AtomVocabulary` of a :func:`vocabulary_spec` line (its ``name`` is the spec, normalised)."""
    if not is_vocabulary_spec(spec):
        raise ValueError(f"vocabulary spec {spec!r} must read 'atoms=C,N,O,N+;max_atoms=12'")
    atoms_part, _, capacity_part = spec[len(_ATOMS_KEY):].partition(f";{_CAPACITY_KEY}")
    labels = [label.strip() for label in atoms_part.split(",") if label.strip()]
    if not labels:
        raise ValueError(f"vocabulary spec {spec!r} names no atom type")
    try:
        max_atoms = int(capacity_part)
    except ValueError:
        raise ValueError(f"vocabulary spec {spec!r}: max_atoms must be an integer, got {capacity_part!r}") from None
    types = tuple(_atom_type(label, spec) for label in labels)
    return AtomVocabulary(vocabulary_spec(types, max_atoms), types, max_atoms)


def infer_vocabulary(
    mols: Sequence[Chem.Mol],
    atom_types: Optional[Sequence[str]] = None,
    max_atoms: Optional[int] = None,
) -> AtomVocabulary:
    """The vocabulary of ``mols``: the atom types and the capacity that occur, or those given.

    Args:
        mols: parsed training molecules (``None`` entries are not allowed).
        atom_types: labels such as ``["C", "N", "O", "N+", "O-"]`` to use instead of the
            inferred set (kept in the given order).
        max_atoms: the capacity to use instead of the largest heavy-atom count.

    Returns:
        an :class:`AtomVocabulary` named by its spec (:func:`vocabulary_spec`).
    """
    if not mols:
        raise ValueError("infer_vocabulary: no molecules to infer the vocabulary from")
    if atom_types is not None:
        spec = ",".join(atom_types)
        types = tuple(_atom_type(label.strip(), spec) for label in atom_types)
    else:
        types = _ordered(pair for mol in mols for pair in atom_types_of(mol))
    if max_atoms is None:
        max_atoms = max(Chem.RemoveHs(mol).GetNumAtoms() for mol in mols)
    for atom_type in types:
        try:
            atom_type.max_valence
        except ValueError as error:
            raise ValueError(f"infer_vocabulary: atom type {atom_type.label!r} cannot be stored: {error}") from None
    return AtomVocabulary(vocabulary_spec(types, max_atoms), types, max_atoms)
