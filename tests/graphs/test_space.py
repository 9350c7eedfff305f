"""GraphSpace and the constraints on every graph with 4 slots, 2 node types and 2 edge values.

The closed-form legality masks of MaxDegree and NodeCountBounds must equal the brute-force
masks derived from validity on every graph (valid or not), and a legal move must lead to a
valid graph (the exactness argument of the module docstring).
"""

import pytest
import torch

from structebm.graphs.constraints import (
    GraphConstraint,
    MaxDegree,
    NodeCountBounds,
    brute_force_edge_values,
    brute_force_node_values,
)
from structebm.graphs.enumerate import all_graphs, graph_keys
from structebm.graphs.prior import NodePrior, edge_density
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph

CONSTRAINTS = [MaxDegree(1), MaxDegree(2), NodeCountBounds(2, 3)]


def test_enumeration_counts():
    space = GraphSpace(4, 2, 1)
    graphs = all_graphs(space)
    # sum over node counts k: C(4, k) 2^k 2^{k(k-1)/2}
    assert graphs.batch_size == 1 + 8 + 6 * 4 * 2 + 4 * 8 * 8 + 16 * 64
    assert graph_keys(graphs, space).unique().numel() == graphs.batch_size
    graphs.validate(2, 1)


@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=repr)
def test_closed_forms_equal_brute_force(constraint):
    space = GraphSpace(4, 2, 1, constraints=[constraint])
    graphs = all_graphs(space)
    assert torch.equal(constraint.legal_node_values(graphs, space), brute_force_node_values(constraint, graphs, space))
    assert torch.equal(constraint.legal_edge_values(graphs, space), brute_force_edge_values(constraint, graphs, space))


class EvenEdgeCount(GraphConstraint):
    """A constraint with only is_valid: the masks come from the brute-force default."""

    def is_valid(self, x: DenseGraph) -> torch.Tensor:
        return x.num_edges % 2 == 0


@pytest.mark.parametrize("constraint", [*CONSTRAINTS, EvenEdgeCount()], ids=repr)
def test_legal_moves_stay_valid(constraint):
    space = GraphSpace(4, 2, 1, constraints=[constraint])
    graphs = all_graphs(space, constrained=True)
    assert space.is_valid(graphs).all() and graphs.batch_size < all_graphs(space).batch_size
    node_legal = space.legal_node_values(graphs, constrained=True)
    edge_legal = space.legal_edge_values(graphs, constrained=True)
    rows, cols = space.upper_pairs()
    for b, i, k in node_legal.nonzero().tolist()[::7]:
        nodes = graphs.nodes[b].clone()
        nodes[i] = k
        moved = DenseGraph(nodes[None], graphs.edges[b][None], nodes[None] > 0).validate(2, 1)
        assert space.is_valid(moved).all()
    for b, p, r in edge_legal.nonzero().tolist()[::7]:
        edges = graphs.edges[b].clone()
        edges[rows[p], cols[p]] = edges[cols[p], rows[p]] = r
        moved = DenseGraph(graphs.nodes[b][None], edges[None], graphs.mask[b][None]).validate(2, 1)
        assert space.is_valid(moved).all()
    # the current value of every site is legal on a valid graph
    assert node_legal.gather(2, graphs.nodes[:, :, None]).all()
    assert edge_legal.gather(2, space.pair_values(graphs)[:, :, None]).all()


def test_structural_rule_without_constraints():
    space = GraphSpace(4, 2, 1)
    graphs = all_graphs(space)
    node_legal = space.legal_node_values(graphs, constrained=False)
    has_edge = (graphs.edges > 0).any(dim=2)
    assert torch.equal(node_legal[:, :, 0], ~has_edge)
    edge_legal = space.legal_edge_values(graphs, constrained=False)
    rows, cols = space.upper_pairs()
    assert torch.equal(edge_legal[:, :, 1], graphs.mask[:, rows] & graphs.mask[:, cols])


@pytest.mark.parametrize("options", [{}, {"edge_prob": 0.3}, {"tree_noise": True, "tree_capacity": 2}])
def test_noise_is_valid(options):
    space = GraphSpace(6, 3, 2, constraints=[MaxDegree(2), NodeCountBounds(2, 5)], **options)
    graphs = space.noise(500, torch.Generator().manual_seed(0))
    space.validate(graphs, "noise")
    assert space.is_valid(graphs).all()


def test_fitted_noise_matches_the_data():
    generator = torch.Generator().manual_seed(1)
    data = GraphSpace(8, 2, 1, edge_prob=0.25).noise(4000, generator)
    prior = NodePrior.fit(data.nodes, 2)
    density = edge_density(data)
    assert abs(density - 0.25) < 0.02  # ~ 40 000 pairs: sd 0.002
    noise = GraphSpace(8, 2, 1, node_prior=prior, edge_prob=density).noise(4000, generator)
    assert abs(noise.num_nodes.float().mean() - data.num_nodes.float().mean()) < 0.15  # sd of each mean ~ 0.02
    assert abs(edge_density(noise) - density) < 0.02


def test_bad_input_is_named():
    space = GraphSpace(3, 2, 1)
    with pytest.raises(ValueError, match="have 4 slots but the space has max_nodes=3"):
        space.validate(DenseGraph.empty(2, 4), "here")
    graphs = all_graphs(GraphSpace(3, 2, 2))
    with pytest.raises(ValueError, match=r"here: DenseGraph: graph \d+ has edge values \[0, 2\], outside 0..1"):
        space.validate(graphs, "here")
    with pytest.raises(TypeError, match="not a GraphConstraint"):
        GraphSpace(3, 2, 1, constraints=["max_degree"])
