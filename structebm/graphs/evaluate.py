"""Score generated dense graphs against reference graphs the way the GDSS benchmark does.

A generated :class:`~structebm.graphs.state.DenseGraph` batch becomes networkx graphs
(:func:`~structebm.graphs.convert.to_networkx`); as in GDSS's evaluation, every isolated
node of a generated graph is removed first (a graph left without nodes then counts as empty
and is skipped by the MMDs, :mod:`structebm.graphs.metrics`). Reference graphs are used as
they are. Node and edge values are ignored: the benchmark MMDs look at the structure only.
"""

from __future__ import annotations

from typing import Sequence

import networkx as nx

from structebm.graphs.convert import to_networkx
from structebm.graphs.metrics import GRAPH_MMD_KEYS, graph_mmds
from structebm.graphs.state import DenseGraph

__all__ = ["generated_networkx", "evaluate_graphs"]


def generated_networkx(graphs: DenseGraph) -> list[nx.Graph]:
    """networkx graphs of a generated batch with isolated nodes removed (GDSS's rule)."""
    out = []
    for graph in to_networkx(graphs.to("cpu")):
        graph.remove_nodes_from(list(nx.isolates(graph)))
        out.append(nx.convert_node_labels_to_integers(graph))
    return out


def evaluate_graphs(
    generated: DenseGraph, reference: Sequence[nx.Graph], metrics: Sequence[str] = GRAPH_MMD_KEYS
) -> dict[str, float]:
    """``{"<metric>_mmd": value, "num_samples", "empty_fraction", "mean_nodes", "mean_edges"}``.

    ``empty_fraction`` is the share of generated graphs with no edge (left out of the MMDs);
    ``mean_nodes`` and ``mean_edges`` describe the non-empty generated graphs after isolated
    nodes are removed.
    """
    graphs = generated_networkx(generated)
    kept = [graph for graph in graphs if graph.number_of_nodes() > 0]
    scores = graph_mmds(reference, kept, metrics)
    scores["num_samples"] = len(graphs)
    scores["empty_fraction"] = 1.0 - len(kept) / max(len(graphs), 1)
    scores["mean_nodes"] = sum(g.number_of_nodes() for g in kept) / max(len(kept), 1)
    scores["mean_edges"] = sum(g.number_of_edges() for g in kept) / max(len(kept), 1)
    return scores
