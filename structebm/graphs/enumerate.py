"""Every graph of a small graph space, for exact distributions and checks of samplers.

A space with ``N`` slots, ``K`` node types and ``R`` edge types holds at most
:math:`(K+1)^N (R+1)^{N(N-1)/2}` dense graphs before the structural rule (no edge on an empty
slot) and the constraints remove some; :func:`all_graphs` lists them in a fixed order. With
the energy of each, the exact target is :math:`p(G) = e^{-E(G)/T} / \\sum_{G'} e^{-E(G')/T}`
(:func:`exact_distribution`).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph

__all__ = ["all_graphs", "graph_keys", "exact_distribution"]

_LIMIT = 2_000_000


def all_graphs(space: GraphSpace, constrained: bool = False) -> DenseGraph:
    """All structurally consistent graphs of ``space`` (with ``constrained``: the valid ones only).

    Shapes:
        - returns nodes ``[M, N]``, edges ``[M, N, N]``
    """
    n, p = space.max_nodes, space.num_pairs
    total = space.num_node_values**n * space.num_edge_values**p
    if total > _LIMIT:
        raise ValueError(f"all_graphs: {space} has {total} dense graphs, more than the {_LIMIT} this lists")
    nodes = torch.tensor(list(itertools.product(range(space.num_node_values), repeat=n)), dtype=torch.long).reshape(-1, n)
    pairs = torch.tensor(list(itertools.product(range(space.num_edge_values), repeat=p)), dtype=torch.long).reshape(-1, p)
    nodes = nodes.repeat_interleave(pairs.shape[0], dim=0)
    pairs = pairs.repeat(space.num_node_values**n, 1)
    rows, cols = space.upper_pairs()
    occupied = nodes > 0
    consistent = ((pairs == 0) | (occupied[:, rows] & occupied[:, cols])).all(dim=1)
    nodes, pairs = nodes[consistent], pairs[consistent]
    edges = torch.zeros(nodes.shape[0], n, n, dtype=torch.long)
    edges[:, rows, cols] = pairs
    edges[:, cols, rows] = pairs
    graphs = DenseGraph(nodes, edges, nodes > 0)
    return graphs[space.is_valid(graphs)] if constrained else graphs


def graph_keys(x: DenseGraph, space: GraphSpace) -> Tensor:
    """``[B]`` long: a code unique to each dense graph of ``space`` (mixed-radix over the sites)."""
    node_code = torch.zeros(x.batch_size, dtype=torch.long, device=x.device)
    for i in range(space.max_nodes):
        node_code = node_code * space.num_node_values + x.nodes[:, i]
    pair_code = torch.zeros_like(node_code)
    for column in space.pair_values(x).T:
        pair_code = pair_code * space.num_edge_values + column
    return node_code * space.num_edge_values**space.num_pairs + pair_code


def exact_distribution(energies: Tensor, temperature: float = 1.0) -> Tensor:
    """``[M]`` probabilities :math:`\\propto e^{-E/T}` of graphs with energies ``[M]``."""
    return torch.softmax(-energies.double() / temperature, dim=0)
