"""MolGraphSpace: noise, validation and the legal single-site moves against brute force."""

import pytest
import torch

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.valence import is_valence_valid
from structebm.chem.vocab import QM9_VOCABULARY, ZINC250K_VOCABULARY, AtomType, AtomVocabulary

SMALL = AtomVocabulary("small", (AtomType("C"), AtomType("O"), AtomType("F"), AtomType("N", 1)), max_atoms=5)
NUM_BOND_VALUES = 4


@pytest.mark.parametrize("vocabulary", [QM9_VOCABULARY, ZINC250K_VOCABULARY])
def test_noise_is_valid_reproducible_and_varied(vocabulary):
    space = MolGraphSpace(vocabulary)
    first = space.noise(64, torch.Generator().manual_seed(0))
    second = space.noise(64, torch.Generator().manual_seed(0))
    space.validate(first, "noise")
    assert is_valence_valid(first, vocabulary).all()
    assert torch.equal(first.nodes, second.nodes) and torch.equal(first.edges, second.edges)
    assert first.edges.sum() > 0 and (first.nodes == 0).any() and first.nodes.unique().numel() == len(vocabulary) + 1


def test_unconstrained_noise_is_structurally_valid_but_may_break_valences():
    space = MolGraphSpace(QM9_VOCABULARY, valid_noise=False)
    graphs = space.noise(256, torch.Generator().manual_seed(1))
    space.validate(graphs, "noise")
    assert not space.is_valid(graphs).all()
    assert torch.equal(space.is_valid(graphs), is_valence_valid(graphs, QM9_VOCABULARY))


@pytest.mark.parametrize("valence_aware", [True, False])
def test_legal_values_match_brute_force(valence_aware):
    """A value is legal iff setting it gives a structurally valid (and, if asked, valence-valid) graph."""
    space = MolGraphSpace(SMALL)
    graphs = space.noise(40, torch.Generator().manual_seed(2))
    atom_legal = space.legal_node_values(graphs, valence_aware)
    bond_legal = space.legal_edge_values(graphs, valence_aware)
    rows, cols = space.upper_pairs(graphs.nodes.device)
    assert atom_legal.shape == (40, 5, len(SMALL) + 1) and bond_legal.shape == (40, 10, NUM_BOND_VALUES)
    assert not atom_legal.all() and not bond_legal.all() and atom_legal.any() and bond_legal.any()

    def acceptable(atoms: torch.Tensor, bonds: torch.Tensor) -> bool:
        graph = DenseMolGraph(atoms[None], bonds[None], atoms[None] > 0)
        try:
            graph.validate(len(SMALL), NUM_BOND_VALUES - 1)
        except ValueError:
            return False
        return bool(space.is_valid(graph)) if valence_aware else True

    for b in range(graphs.batch_size):
        for slot in range(space.max_nodes):
            for value in range(space.num_node_values):
                atoms = graphs.nodes[b].clone()
                atoms[slot] = value
                assert bool(atom_legal[b, slot, value]) == acceptable(atoms, graphs.edges[b]), (b, slot, value)
        for pair in range(space.num_pairs):
            for order in range(NUM_BOND_VALUES):
                bonds = graphs.edges[b].clone()
                bonds[rows[pair], cols[pair]] = bonds[cols[pair], rows[pair]] = order
                assert bool(bond_legal[b, pair, order]) == acceptable(graphs.nodes[b], bonds), (b, pair, order)


def test_one_hot_and_pair_values():
    space = MolGraphSpace(SMALL)
    graphs = space.noise(8, torch.Generator().manual_seed(3))
    atoms, bonds = space.one_hot(graphs, torch.float64)
    assert atoms.dtype == torch.float64 and torch.equal(atoms.argmax(-1), graphs.nodes)
    assert torch.equal(bonds.argmax(-1), graphs.edges)
    assert torch.equal(bonds.sum(-1), torch.ones(8, 5, 5, dtype=torch.float64))
    rows, cols = space.upper_pairs(graphs.nodes.device)
    assert torch.equal(space.pair_values(graphs), graphs.edges[:, rows, cols])


def test_validate_names_the_problem():
    space = MolGraphSpace(SMALL)
    graphs = space.noise(4, torch.Generator().manual_seed(4))
    with pytest.raises(TypeError, match="here: expected a DenseGraph"):
        space.validate(graphs.nodes, "here")
    asymmetric = graphs.edges.clone()
    asymmetric[0, 0, 1], asymmetric[0, 1, 0] = 1, 0
    atoms = graphs.nodes.clone()
    atoms[0, :2] = 1
    with pytest.raises(ValueError, match="here: DenseGraph: graph 0 has an asymmetric adjacency"):
        space.validate(DenseMolGraph(atoms, asymmetric, atoms > 0), "here")
    with pytest.raises(ValueError, match="has max_nodes=5"):
        space.validate(DenseMolGraph.empty(2, 7), "here")
    double_bonded = torch.tensor([[[0, 2, 0, 0, 0], [2, 0, 0, 0, 0]] + [[0] * 5] * 3])
    over = DenseMolGraph.from_tensors(torch.tensor([[3, 3, 0, 0, 0]]), double_bonded)  # F=F: both over-valent
    with pytest.raises(ValueError, match=r"graph\(s\) \[0\] break a constraint of \[ValenceConstraint\('small'\)\]"):
        space.check_valid(over, "here")
    with pytest.raises(TypeError, match="AtomVocabulary"):
        MolGraphSpace("qm9")
