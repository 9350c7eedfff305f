"""DenseGraph: structure checks name the graph and the problem; batch helpers keep graphs whole."""

import pytest
import torch

from structebm.graphs.state import DenseGraph


def path_graph(batch_size: int = 3, n: int = 4) -> DenseGraph:
    nodes = torch.tensor([1, 2, 1, 0]).repeat(batch_size, 1)
    edges = torch.zeros(batch_size, n, n, dtype=torch.long)
    edges[:, 0, 1] = edges[:, 1, 0] = 1
    edges[:, 1, 2] = edges[:, 2, 1] = 2
    return DenseGraph.from_tensors(nodes, edges, 2, 2)


def test_properties_and_helpers():
    x = path_graph()
    assert (x.batch_size, x.max_nodes) == (3, 4)
    assert x.num_nodes.tolist() == [3, 3, 3] and x.num_edges.tolist() == [2, 2, 2]
    both = DenseGraph.concatenate([x, x[1]])
    assert both.batch_size == 4 and torch.equal(both.edges[3], x.edges[1])
    keep = torch.tensor([True, False, True])
    mixed = x.where(keep, DenseGraph.empty(3, 4))
    assert mixed.num_nodes.tolist() == [3, 0, 3]
    mixed.validate(2, 2)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e, n: e.__setitem__((1, 3, 3), 1), "graph 1 has a self-loop on node 3"),
        (lambda e, n: e.__setitem__((2, 0, 2), 1), "graph 2 has an asymmetric adjacency"),
        (lambda e, n: (e.__setitem__((1, 0, 2), 3), e.__setitem__((1, 2, 0), 3)), "graph 1 has edge values [0, 1, 2, 3], outside 0..2"),
        (lambda e, n: n.__setitem__((2, 1), 5), "graph 2 has node values [1, 5, 1, 0] outside 0..2"),
        (lambda e, n: (e.__setitem__((0, 0, 3), 1), e.__setitem__((0, 3, 0), 1)), "graph 0 has an edge on an empty slot"),
    ],
)
def test_bad_graphs_are_named(edit, message):
    x = path_graph()
    nodes, edges = x.nodes.clone(), x.edges.clone()
    edit(edges, nodes)
    with pytest.raises(ValueError) as error:
        DenseGraph.from_tensors(nodes, edges, 2, 2)
    assert message in str(error.value)


def test_mask_must_match_nodes():
    x = path_graph()
    mask = x.mask.clone()
    mask[1, 3] = True
    with pytest.raises(ValueError, match="graph 1"):
        DenseGraph(x.nodes, x.edges, mask).validate()
