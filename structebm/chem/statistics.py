"""Summary statistics of a set of molecules, to see *where* generated molecules differ from data.

FCD and NSPDK say how far two sets are apart; these say in what. For sanitized RDKit
molecules (generated ones after correction, or a reference set), :func:`molecule_statistics`
returns

- ``num_molecules``: how many molecules were counted;
- ``atoms_per_molecule``: mean number of heavy atoms;
- ``atom_types``: fraction of heavy atoms of each vocabulary type (``"other"`` for types
  outside the vocabulary);
- ``bond_types``: fraction of bonds of each RDKit type after sanitization (``SINGLE``,
  ``DOUBLE``, ``TRIPLE``, ``AROMATIC``);
- ``rings_per_molecule``: mean size of RDKit's smallest set of smallest rings;
- ``ring_sizes``: fraction of those rings with each number of atoms;
- ``aromatic_molecules``: fraction of molecules with at least one aromatic atom.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from rdkit import Chem

from structebm.chem.vocab import AtomType, AtomVocabulary

__all__ = ["molecule_statistics"]


def _fractions(counts: Counter) -> dict[str, float]:
    total = sum(counts.values())
    return {str(key): counts[key] / total for key in sorted(counts, key=str)} if total else {}


def molecule_statistics(mols: Sequence[Chem.Mol], vocabulary: AtomVocabulary) -> dict[str, Any]:
    """Statistics of sanitized molecules ``mols`` (see the module docstring); ``ValueError`` if empty."""
    if len(mols) == 0:
        raise ValueError("molecule_statistics: no molecules")
    atom_types: Counter = Counter()
    bond_types: Counter = Counter()
    ring_sizes: Counter = Counter()
    num_atoms = num_rings = num_aromatic = 0
    for index, mol in enumerate(mols):
        if not isinstance(mol, Chem.Mol):
            raise ValueError(f"molecule_statistics: item {index} is {type(mol).__name__}, not an RDKit molecule")
        for atom in mol.GetAtoms():
            kind = AtomType(atom.GetSymbol(), atom.GetFormalCharge())
            atom_types[kind.label if vocabulary.contains(kind.symbol, kind.charge) else "other"] += 1
        bond_types.update(str(bond.GetBondType()) for bond in mol.GetBonds())
        rings = mol.GetRingInfo().AtomRings()
        ring_sizes.update(len(ring) for ring in rings)
        num_atoms += mol.GetNumAtoms()
        num_rings += len(rings)
        num_aromatic += any(atom.GetIsAromatic() for atom in mol.GetAtoms())
    return {
        "num_molecules": len(mols),
        "atoms_per_molecule": num_atoms / len(mols),
        "atom_types": _fractions(atom_types),
        "bond_types": _fractions(bond_types),
        "rings_per_molecule": num_rings / len(mols),
        "ring_sizes": _fractions(ring_sizes),
        "aromatic_molecules": num_aromatic / len(mols),
    }
