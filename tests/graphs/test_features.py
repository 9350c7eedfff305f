"""Structural node features: hand counts on small graphs, and gradients through relaxed one-hots."""

import networkx as nx
import torch
import torch.nn.functional as F

from structebm.graphs.convert import from_networkx
from structebm.graphs.features import StructuralFeatures


def features_of(graph, scale=1.0):
    dense = from_networkx([graph], max_nodes=graph.number_of_nodes() + 1)
    nodes, edges = F.one_hot(dense.nodes, 2).float(), F.one_hot(dense.edges, 2).float()
    return StructuralFeatures(scale)(nodes, edges)


def test_hand_counts():
    node, terms = features_of(nx.complete_graph(4))
    # K4: degree 3, three triangles per node (A^3_ii = 6), A^4_ii = 21
    assert torch.equal(node[0, :4], torch.tensor([[3.0, 6.0, 21.0]] * 4)) and terms.shape == (1, 0)
    assert torch.equal(node[0, 4], torch.zeros(3))  # empty slot
    node, _ = features_of(nx.cycle_graph(4))
    # C4: degree 2, no triangle, closed 4-walks: 2 around the cycle + 6 back-and-forth = 8
    assert torch.equal(node[0, :4], torch.tensor([[2.0, 0.0, 8.0]] * 4))
    node, _ = features_of(nx.path_graph(3), scale=2.0)
    assert torch.allclose(node[0, 1], torch.tensor([2 / 2, 0.0, 4 / 8]))


def test_gradient_reaches_relaxed_edges():
    edges = torch.full((1, 3, 3, 2), 0.5, requires_grad=True)
    node, _ = StructuralFeatures()(torch.ones(1, 3, 2), edges)
    node[..., 1].sum().backward()
    assert edges.grad is not None and edges.grad[..., 1].abs().sum() > 0
