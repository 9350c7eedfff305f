"""Structural features against networkx counts, and as a feature module of the graph energy."""

import networkx as nx
import torch
import torch.nn.functional as F

from structebm.energies.graph import RelationalGraphEnergy
from structebm.energies.graph_structure import StructuralFeatures
from structebm.graphs.convert import from_networkx
from structebm.graphs.space import GraphSpace
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients

GRAPHS = [nx.cycle_graph(4), nx.complete_graph(5), nx.petersen_graph(), nx.path_graph(6), nx.grid_2d_graph(3, 3),
          nx.barbell_graph(4, 1)]


def four_cycles_through(graph: nx.Graph) -> list[int]:
    """Closed 4-walks through each node that are cycles: twice the number of 4-cycles through it."""
    counts = dict.fromkeys(graph, 0)
    for cycle in nx.simple_cycles(graph.to_directed()):
        if len(cycle) == 4:
            for node in cycle:
                counts[node] += 1
    return [counts[node] for node in graph]


def test_counts_match_networkx():
    x = from_networkx(GRAPHS, 12)
    features, terms = StructuralFeatures()(F.one_hot(x.nodes, 2).double(), F.one_hot(x.edges, 2).double())
    assert terms.shape == (len(GRAPHS), 0)
    counts = torch.expm1(features)
    for b, graph in enumerate(GRAPHS):
        n = graph.number_of_nodes()
        torch.testing.assert_close(counts[b, :n, 0], torch.tensor([float(d) for _, d in graph.degree()], dtype=torch.float64))
        torch.testing.assert_close(counts[b, :n, 1], torch.tensor([float(t) for t in nx.triangles(graph).values()],
                                                                  dtype=torch.float64))
        torch.testing.assert_close(counts[b, :n, 2], torch.tensor(four_cycles_through(graph), dtype=torch.float64))
        assert (features[b, n:] == 0).all()  # empty slots carry nothing


def test_energy_with_structural_features_samples_with_gradients():
    space = GraphSpace(8, 2, 1, edge_prob=0.3)
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(2, 1, hidden=16, num_layers=2, features=StructuralFeatures())
    x = space.noise(16, torch.Generator().manual_seed(1))
    torch.testing.assert_close(energy(x), energy.graph_one_hot_energy(*space.one_hot(x)))
    sampler = graph_gibbs_with_gradients(energy, space)
    state, generator = sampler.init(x), torch.Generator().manual_seed(2)
    for _ in range(5):
        state, info = sampler.step(state, generator)
    space.validate(state.x, "samples")
    assert torch.isfinite(info.grad_norm).all() and (info.grad_norm > 0).all()
