"""Conversions: SMILES -> dense -> SMILES round trips over data sets, PyG and networkx round trips."""

from __future__ import annotations

import random

import networkx as nx
import pytest
import torch
from rdkit import Chem, RDLogger

from structebm.chem.convert import (
    ConversionError,
    canonical_smiles,
    dense_to_mol,
    dense_to_smiles,
    mol_from_smiles,
    mol_to_networkx,
    mol_to_smiles,
    mols_to_dense,
    networkx_to_mol,
    smiles_to_dense,
)
from structebm.chem.dense import DenseMolGraph
from structebm.chem.pyg import dense_to_pyg, pyg_to_dense
from structebm.chem.vocab import QM9_VOCABULARY, ZINC250K_VOCABULARY, get_vocabulary
from structebm.data.molecules import load_smiles

RDLogger.DisableLog("rdApp.*")


def test_round_trip_all_of_qm9():
    smiles = load_smiles("qm9")
    assert len(smiles) == 133_885
    mols = [mol_from_smiles(s) for s in smiles]
    expected = [mol_to_smiles(m) for m in mols]
    graph = mols_to_dense(mols, QM9_VOCABULARY)
    assert graph.nodes.shape == (133_885, 9)
    graph.validate(len(QM9_VOCABULARY))
    decoded = dense_to_smiles(graph, QM9_VOCABULARY)
    mismatches = [(i, e, d) for i, (e, d) in enumerate(zip(expected, decoded)) if e != d]
    assert mismatches == []


def test_round_trip_zinc250k_sample():
    smiles = load_smiles("zinc250k")
    assert len(smiles) == 249_455
    sample = random.Random(0).sample(range(len(smiles)), 3000)
    graph = smiles_to_dense([smiles[i] for i in sample], ZINC250K_VOCABULARY)
    decoded = dense_to_smiles(graph, ZINC250K_VOCABULARY)
    expected = [canonical_smiles(smiles[i]) for i in sample]
    assert decoded == expected


def test_charged_atoms_and_aromatic_nitrogen_round_trip():
    smiles = ["c1cc[nH]c1", "C[NH3+]", "CCC(=O)[O-]", "[C-]#[N+]C", "C[N+](C)(C)C"]
    graph = smiles_to_dense(smiles, QM9_VOCABULARY)
    assert graph.nodes[1].tolist()[:2] == [1, QM9_VOCABULARY.index("N", 1)]
    assert dense_to_smiles(graph, QM9_VOCABULARY) == [canonical_smiles(s) for s in smiles]
    # kekulized: pyrrole has two double bonds and no aromatic order
    assert int((graph.edges[0] == 2).sum()) == 4


def test_conversion_errors_name_the_problem():
    with pytest.raises(ConversionError, match="cannot parse"):
        smiles_to_dense(["CC", "C1CC"], QM9_VOCABULARY)
    with pytest.raises(ConversionError, match="molecule 1: .*10 heavy atoms"):
        smiles_to_dense(["C", "CCCCCCCCCC"], QM9_VOCABULARY)
    with pytest.raises(ConversionError, match="'S' is not in the 'qm9' vocabulary"):
        smiles_to_dense(["CS"], QM9_VOCABULARY)
    with pytest.raises(ValueError, match="unknown vocabulary"):
        get_vocabulary("moses")


def test_decode_reports_failure_instead_of_raising():
    atoms = torch.tensor([[1, 1, 0]])
    bonds = torch.zeros(1, 3, 3, dtype=torch.long)
    bonds[0, 0, 1] = bonds[0, 1, 0] = 3
    fluorine = DenseMolGraph.from_tensors(torch.tensor([[4, 4, 0]]), bonds)  # F#F is over-valent
    assert dense_to_mol(fluorine, QM9_VOCABULARY) is None
    unsanitized = dense_to_mol(fluorine, QM9_VOCABULARY, sanitize=False)
    assert unsanitized is not None and unsanitized.GetNumBonds() == 1
    assert dense_to_smiles(DenseMolGraph.from_tensors(atoms, bonds), QM9_VOCABULARY) == ["C#C"]
    assert dense_to_smiles(DenseMolGraph.empty(1, 3), QM9_VOCABULARY) == [None]


def test_dense_validation_catches_bad_tensors():
    atoms = torch.tensor([[1, 1, 0]])
    bonds = torch.zeros(1, 3, 3, dtype=torch.long)
    bonds[0, 0, 1] = 1
    with pytest.raises(ValueError, match="graph 0 has an asymmetric adjacency"):
        DenseMolGraph.from_tensors(atoms, bonds)
    bonds[0, 1, 0] = 1
    bonds[0, 0, 0] = 1
    with pytest.raises(ValueError, match="graph 0 has a self-loop on node 0"):
        DenseMolGraph.from_tensors(atoms, bonds)
    bonds[0, 0, 0] = 0
    bonds[0, 0, 2] = bonds[0, 2, 0] = 1
    with pytest.raises(ValueError, match="graph 0 has an edge on an empty slot"):
        DenseMolGraph.from_tensors(atoms, bonds)
    with pytest.raises(ValueError, match=r"edges must be \[B, N, N\]"):
        DenseMolGraph.from_tensors(atoms, torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"graph 0 has node values \[9, 0, 0\] outside 0..8"):
        DenseMolGraph.from_tensors(torch.tensor([[9, 0, 0]]), torch.zeros(1, 3, 3, dtype=torch.long), 8)


def test_pyg_round_trip_with_holes_in_the_mask():
    graph = smiles_to_dense(["CC(=O)[O-]", "C#N", "c1ccccc1", "O"], QM9_VOCABULARY)
    batch = dense_to_pyg(graph, QM9_VOCABULARY)
    assert batch.num_graphs == 4
    assert batch.x.shape == (4 + 2 + 6 + 1, len(QM9_VOCABULARY))
    assert batch.edge_index.shape[1] == 2 * (3 + 1 + 6)
    assert torch.equal(batch.edge_attr.sum(0), torch.tensor([2.0 * (2 + 3), 2.0 * (1 + 3), 2.0 * 1]))
    back = pyg_to_dense(batch, QM9_VOCABULARY)
    assert torch.equal(back.nodes, graph.nodes) and torch.equal(back.edges, graph.edges)
    # a graph whose atoms sit in slots 1 and 3 comes back compacted into slots 0 and 1
    atoms = torch.tensor([[0, 1, 0, 3, 0, 0, 0, 0, 0]])
    bonds = torch.zeros(1, 9, 9, dtype=torch.long)
    bonds[0, 1, 3] = bonds[0, 3, 1] = 2
    holes = DenseMolGraph.from_tensors(atoms, bonds)
    compact = pyg_to_dense(dense_to_pyg(holes, QM9_VOCABULARY), QM9_VOCABULARY)
    assert compact.nodes[0, :2].tolist() == [1, 3] and int(compact.edges[0, 0, 1]) == 2
    assert dense_to_smiles(compact, QM9_VOCABULARY) == dense_to_smiles(holes, QM9_VOCABULARY) == ["C=O"]


def test_networkx_round_trip():
    for smiles in ["c1cc[nH]c1", "CC(=O)[O-]", "NS(=O)(=O)c1ccccc1", "C#N", "c1ccc2ccccc2c1"]:
        mol = Chem.MolFromSmiles(smiles)
        graph = mol_to_networkx(mol)
        assert isinstance(graph, nx.Graph) and graph.number_of_nodes() == mol.GetNumAtoms()
        assert mol_to_smiles(networkx_to_mol(graph)) == mol_to_smiles(mol)
    aromatic = mol_to_networkx(Chem.MolFromSmiles("c1ccccc1"))
    assert {d["label"] for _, _, d in aromatic.edges(data=True)} == {1}
