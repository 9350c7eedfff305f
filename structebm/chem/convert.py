"""Conversions between SMILES, RDKit molecules, dense graphs and networkx graphs.

The dense encoding (see :mod:`structebm.chem.dense`) keeps heavy atoms in RDKit atom order,
kekulized bonds, formal charges through the atom vocabulary and implicit hydrogens. Decoding
builds an RDKit ``RWMol`` from the tensors; RDKit then recomputes the implicit hydrogens and,
when sanitizing, the aromaticity. A graph that RDKit cannot sanitize decodes to ``None``
instead of raising.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import networkx as nx
import numpy as np
import torch
from rdkit import Chem, rdBase

from structebm.chem.dense import MAX_BOND_ORDER, DenseMolGraph
from structebm.chem.vocab import AtomVocabulary

__all__ = [
    "ConversionError",
    "mol_from_smiles",
    "mol_to_smiles",
    "canonical_smiles",
    "encode_mol_arrays",
    "mol_to_dense",
    "mols_to_dense",
    "smiles_to_dense",
    "dense_to_mol",
    "dense_to_mols",
    "dense_to_smiles",
    "mol_to_networkx",
    "networkx_to_mol",
]

_BOND_ORDER = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
_BOND_TYPE = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}


class ConversionError(ValueError):
    """A molecule cannot be represented (unparsable SMILES, too many atoms, unknown atom type)."""


def mol_from_smiles(smiles: str) -> Chem.Mol:
    """Parse and sanitize a SMILES string; ConversionError naming it if RDKit rejects it."""
    if not isinstance(smiles, str) or not smiles:
        raise ConversionError(f"expected a non-empty SMILES string, got {smiles!r}")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ConversionError(f"RDKit cannot parse SMILES {smiles!r}")
    return mol


def mol_to_smiles(mol: Chem.Mol) -> str:
    """Canonical SMILES without stereochemistry (dense graphs do not store it)."""
    return Chem.MolToSmiles(mol, isomericSmiles=False)


def canonical_smiles(smiles: str) -> str:
    """Canonical, non-isomeric SMILES of a SMILES string."""
    return mol_to_smiles(mol_from_smiles(smiles))


def encode_mol_arrays(mol: Chem.Mol, vocabulary: AtomVocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Encode one molecule as numpy ``atoms [N]`` and ``bonds [N, N]`` (int64); ConversionError if it does not fit."""
    mol = Chem.RemoveHs(mol)
    n = mol.GetNumAtoms()
    if n > vocabulary.max_atoms:
        raise ConversionError(
            f"molecule has {n} heavy atoms, more than the {vocabulary.name!r} capacity of {vocabulary.max_atoms}"
        )
    if n == 0:
        raise ConversionError("molecule has no heavy atoms")
    mol = Chem.RWMol(mol)
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception as error:
        raise ConversionError(f"cannot kekulize molecule: {error}") from None
    atoms = np.zeros(vocabulary.max_atoms, dtype=np.int64)
    for atom in mol.GetAtoms():
        try:
            atoms[atom.GetIdx()] = vocabulary.index(atom.GetSymbol(), atom.GetFormalCharge())
        except KeyError as error:
            raise ConversionError(str(error.args[0])) from None
    bonds = np.zeros((vocabulary.max_atoms, vocabulary.max_atoms), dtype=np.int64)
    for bond in mol.GetBonds():
        order = _BOND_ORDER.get(bond.GetBondType())
        if order is None:
            raise ConversionError(f"bond type {bond.GetBondType()} cannot be stored (only single/double/triple)")
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        bonds[i, j] = bonds[j, i] = order
    return atoms, bonds


def mol_to_dense(mol: Chem.Mol, vocabulary: AtomVocabulary) -> DenseMolGraph:
    """Encode one molecule as a batch of one dense graph (ConversionError if it does not fit)."""
    return mols_to_dense([mol], vocabulary)


def mols_to_dense(mols: Sequence[Chem.Mol], vocabulary: AtomVocabulary) -> DenseMolGraph:
    """Encode molecules as one dense batch; ConversionError naming the position of a bad one.

    Shapes:
        - output atoms ``[len(mols), vocabulary.max_atoms]``, bonds ``[len(mols), N, N]``
    """
    if len(mols) == 0:
        raise ConversionError("mols_to_dense: got no molecules")
    atoms = np.zeros((len(mols), vocabulary.max_atoms), dtype=np.int64)
    bonds = np.zeros((len(mols), vocabulary.max_atoms, vocabulary.max_atoms), dtype=np.int64)
    for position, mol in enumerate(mols):
        if mol is None:
            raise ConversionError(f"molecule {position} is None")
        try:
            atoms[position], bonds[position] = encode_mol_arrays(mol, vocabulary)
        except ConversionError as error:
            raise ConversionError(f"molecule {position}: {error}") from None
    atoms_t = torch.from_numpy(atoms)
    return DenseMolGraph(atoms_t, torch.from_numpy(bonds), atoms_t > 0)


def smiles_to_dense(smiles: Sequence[str], vocabulary: AtomVocabulary) -> DenseMolGraph:
    """Parse and encode SMILES strings; ConversionError naming the position and SMILES of a bad one."""
    mols = []
    for position, text in enumerate(smiles):
        try:
            mols.append(mol_from_smiles(text))
        except ConversionError as error:
            raise ConversionError(f"SMILES {position}: {error}") from None
    return mols_to_dense(mols, vocabulary)


def _decode(atoms: np.ndarray, bonds: np.ndarray, vocabulary: AtomVocabulary, sanitize: bool) -> Optional[Chem.Mol]:
    slots = np.flatnonzero(atoms)
    if slots.size == 0:
        return None
    mol = Chem.RWMol()
    for slot in slots:
        atom_type = vocabulary.atom_type(int(atoms[slot]))
        atom = Chem.Atom(atom_type.atomic_number)
        atom.SetFormalCharge(atom_type.charge)
        mol.AddAtom(atom)
    sub = bonds[np.ix_(slots, slots)]
    rows, cols = np.nonzero(np.triu(sub, k=1))
    for i, j in zip(rows.tolist(), cols.tolist()):
        mol.AddBond(i, j, _BOND_TYPE[int(sub[i, j])])
    mol = mol.GetMol()
    if sanitize:
        try:
            with rdBase.BlockLogs():
                Chem.SanitizeMol(mol)
        except Exception:
            return None
    return mol


def dense_to_mols(
    graph: DenseMolGraph, vocabulary: AtomVocabulary, sanitize: bool = True
) -> List[Optional[Chem.Mol]]:
    """Decode every graph of a batch; ``None`` where the graph is empty or (with ``sanitize``)
    RDKit rejects it. Empty slots are dropped, so atom ``k`` of the molecule is the ``k``-th
    occupied slot.
    """
    try:
        graph.validate(len(vocabulary), MAX_BOND_ORDER)
    except ValueError as error:
        raise ValueError(f"dense_to_mols: {error}") from None
    atoms = graph.nodes.detach().cpu().numpy()
    bonds = graph.edges.detach().cpu().numpy()
    return [_decode(atoms[b], bonds[b], vocabulary, sanitize) for b in range(graph.batch_size)]


def dense_to_mol(graph: DenseMolGraph, vocabulary: AtomVocabulary, sanitize: bool = True) -> Optional[Chem.Mol]:
    """Decode a batch holding exactly one graph."""
    if graph.batch_size != 1:
        raise ValueError(f"dense_to_mol: expected a batch of one graph, got {graph.batch_size}")
    return dense_to_mols(graph, vocabulary, sanitize)[0]


def dense_to_smiles(graph: DenseMolGraph, vocabulary: AtomVocabulary) -> List[Optional[str]]:
    """Canonical SMILES of every graph; ``None`` where it does not sanitize."""
    return [None if mol is None else mol_to_smiles(mol) for mol in dense_to_mols(graph, vocabulary)]


def mol_to_networkx(mol: Chem.Mol) -> nx.Graph:
    """Molecule as a labelled networkx graph.

    Node attributes: ``label`` (element symbol), ``atomic_num``, ``formal_charge``,
    ``num_explicit_hs``, ``is_aromatic``.
    Edge attributes: ``label`` = ``int(bond order)`` (aromatic bonds count as 1, the GDSS
    convention used for NSPDK) and ``bond_type`` (the RDKit bond type name, for an exact
    way back).
    """
    graph = nx.Graph()
    for atom in mol.GetAtoms():
        graph.add_node(
            atom.GetIdx(), label=atom.GetSymbol(), atomic_num=atom.GetAtomicNum(),
            formal_charge=atom.GetFormalCharge(),
            num_explicit_hs=atom.GetNumExplicitHs(),
            is_aromatic=atom.GetIsAromatic(),
        )
    for bond in mol.GetBonds():
        graph.add_edge(
            bond.GetBeginAtomIdx(),
            bond.GetEndAtomIdx(),
            label=int(bond.GetBondTypeAsDouble()),
            bond_type=str(bond.GetBondType()),
        )
    return graph


def networkx_to_mol(graph: nx.Graph, sanitize: bool = True) -> Optional[Chem.Mol]:
    """Inverse of :func:`mol_to_networkx`; ``None`` if RDKit cannot sanitize the result."""
    mol = Chem.RWMol()
    index = {}
    for node, data in graph.nodes(data=True):
        if "atomic_num" not in data:
            raise ValueError(f"networkx_to_mol: node {node!r} has no 'atomic_num' attribute")
        atom = Chem.Atom(int(data["atomic_num"]))
        atom.SetFormalCharge(int(data.get("formal_charge", 0)))
        atom.SetNumExplicitHs(int(data.get("num_explicit_hs", 0)))
        atom.SetIsAromatic(bool(data.get("is_aromatic", False)))
        index[node] = mol.AddAtom(atom)
    for u, v, data in graph.edges(data=True):
        name = data.get("bond_type")
        if name is None:
            raise ValueError(f"networkx_to_mol: edge {(u, v)!r} has no 'bond_type' attribute")
        if name not in Chem.BondType.names:
            raise ValueError(f"networkx_to_mol: edge {(u, v)!r} has unknown bond_type {name!r}")
        bond_type = Chem.BondType.names[name]
        mol.AddBond(index[u], index[v], bond_type)
        mol.GetBondBetweenAtoms(index[u], index[v]).SetIsAromatic(bond_type == Chem.BondType.AROMATIC)
    out = mol.GetMol()
    if sanitize:
        try:
            with rdBase.BlockLogs():
                Chem.SanitizeMol(out)
        except Exception:
            return None
    return out

