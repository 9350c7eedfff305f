"""Scoring generated dense graphs: GDSS's isolated-node rule, the figures, and the PNG."""

import networkx as nx
import pytest
import torch

from structebm.graphs.convert import from_networkx
from structebm.graphs.draw import graph_comparison_png
from structebm.graphs.evaluate import evaluate_graphs, generated_networkx
from structebm.graphs.state import DenseGraph


def test_isolated_nodes_of_generated_graphs_are_removed_before_scoring():
    reference = [nx.cycle_graph(5), nx.path_graph(4)]
    padded = [nx.cycle_graph(5), nx.path_graph(4)]
    padded[0].add_nodes_from([5, 6])  # two isolated nodes: removed, so the scores stay 0
    empty = nx.Graph()
    empty.add_nodes_from(range(3))  # only isolated nodes: an empty graph, left out
    dense = from_networkx(padded + [empty], max_nodes=8)
    graphs = generated_networkx(dense)
    assert [g.number_of_nodes() for g in graphs] == [5, 4, 0]
    scores = evaluate_graphs(dense, reference)
    for key in ("degree_mmd", "clustering_mmd", "orbit_mmd", "spectral_mmd"):
        assert scores[key] == pytest.approx(0.0, abs=1e-12)
    assert scores["num_samples"] == 3 and scores["empty_fraction"] == pytest.approx(1 / 3)
    assert scores["mean_nodes"] == pytest.approx(4.5) and scores["mean_edges"] == pytest.approx(4.0)


def test_different_graphs_score_above_zero():
    dense = from_networkx([nx.complete_graph(5), nx.complete_graph(4)], max_nodes=6)
    scores = evaluate_graphs(dense, [nx.path_graph(5), nx.star_graph(3)], metrics=("degree",))
    assert scores["degree_mmd"] > 0.5


def test_comparison_png(tmp_path):
    dense = DenseGraph.from_tensors(torch.ones(3, 4, dtype=torch.long), torch.zeros(3, 4, 4, dtype=torch.long))
    path = graph_comparison_png(generated_networkx(dense) + [nx.cycle_graph(6)], [nx.path_graph(4)], tmp_path / "g.png", per_row=2, rows=1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one"):
        graph_comparison_png([], [nx.path_graph(3)], tmp_path / "h.png")
