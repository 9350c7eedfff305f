"""Random tree noise: valence-valid, symmetric, bonds only between atoms, connected whenever the atoms allow."""

import networkx as nx
import pytest
import torch

from structebm.chem.graph_space import MolGraphSpace
from structebm.graphs.random import random_tree_edges
from structebm.chem.valence import is_valence_valid
from structebm.chem.vocab import get_vocabulary


@pytest.mark.parametrize("name", ["qm9", "zinc250k"])
def test_noise_graphs_are_valid_single_bond_forests(name):
    vocabulary = get_vocabulary(name)
    space = MolGraphSpace(vocabulary, connected_noise=True)
    graphs = space.noise(500, torch.Generator().manual_seed(0))
    assert is_valence_valid(graphs, vocabulary).all()
    assert torch.equal(graphs.edges, graphs.edges.transpose(1, 2)) and graphs.edges.max() <= 1
    occupied = graphs.nodes > 0
    assert not (graphs.edges.bool() & ~(occupied[:, :, None] & occupied[:, None, :])).any()
    connected = 0
    for atoms, bonds in zip(graphs.nodes, graphs.edges):
        slots = (atoms > 0).nonzero().flatten().tolist()
        graph = nx.Graph()
        graph.add_nodes_from(slots)
        graph.add_edges_from((i, j) for i in slots for j in slots if i < j and bonds[i, j] > 0)
        assert nx.is_forest(graph)
        connected += len(slots) == 0 or nx.is_connected(graph)
    assert connected / 500 > 0.95  # only atom sets without enough free valence (e.g. mostly F) stay apart


def test_carbon_atoms_always_form_one_tree():
    # Carbon (max valence 4) everywhere: a tree over the occupied slots always exists, so every graph is connected.
    atoms = torch.tensor([[1, 1, 1, 0, 1, 1], [0, 0, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    max_valence = torch.tensor([0, 4, 3])
    bonds = random_tree_edges(atoms, max_valence, torch.Generator().manual_seed(3))
    for row, slots in zip(bonds, atoms > 0):
        occupied = slots.nonzero().flatten().tolist()
        assert int(row.sum()) // 2 == len(occupied) - 1  # a tree on n nodes has n - 1 edges
        graph = nx.from_numpy_array(row[occupied][:, occupied].numpy())
        assert nx.is_connected(graph) and not row[~slots].any()
    assert torch.equal(bonds, random_tree_edges(atoms, max_valence, torch.Generator().manual_seed(3)))
