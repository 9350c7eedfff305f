"""DenseGraph <-> networkx <-> PyG round trips, and conversion errors naming the graph."""

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data

from structebm.graphs.convert import from_networkx, from_pyg, to_networkx, to_pyg
from structebm.graphs.space import GraphSpace


def packed(space: GraphSpace, n: int, seed: int):
    """Noise graphs with their nodes in the first slots (the form conversions give back)."""
    x = space.noise(n, torch.Generator().manual_seed(seed))
    return from_networkx(to_networkx(x), space.max_nodes, "value", "value")


@pytest.mark.parametrize("options", [{}, {"edge_prob": 0.4}])
def test_round_trips(options):
    space = GraphSpace(6, 3, 2, **options)
    x = packed(space, 200, 0)
    assert x.num_edges.sum() > 0 and (x.num_nodes < 6).any()
    back = from_networkx(to_networkx(x), 6, "value", "value", 3, 2)
    assert torch.equal(back.nodes, x.nodes) and torch.equal(back.edges, x.edges)
    batch = to_pyg(x, 3, 2)
    assert batch.num_graphs == 200 and batch.x.shape == (int(x.num_nodes.sum()), 3)
    assert batch.edge_index.shape[1] == 2 * int(x.num_edges.sum())
    back = from_pyg(batch, 6)
    assert torch.equal(back.nodes, x.nodes) and torch.equal(back.edges, x.edges)
    single = from_pyg(batch.get_example(3), 6)
    assert torch.equal(single.edges[0], x.edges[3])


def test_networkx_attributes_and_unlabelled_graphs():
    graph = to_networkx(packed(GraphSpace(5, 2, 2, edge_prob=0.5), 1, 3))[0]
    assert all(data["value"] in (1, 2) for _, data in graph.nodes(data=True))
    plain = [nx.cycle_graph(4), nx.path_graph(3)]
    x = from_networkx(plain, 5)
    assert x.num_nodes.tolist() == [4, 3] and x.num_edges.tolist() == [4, 2]
    assert set(x.nodes[x.mask].tolist()) == {1} and set(x.edges[x.edges > 0].tolist()) == {1}


def test_networkx_errors_name_the_graph():
    with pytest.raises(ValueError, match="graph 1 has 6 nodes, more than the capacity 5"):
        from_networkx([nx.path_graph(3), nx.path_graph(6)], 5)
    looped = nx.path_graph(3)
    looped.add_edge(2, 2)
    with pytest.raises(ValueError, match="graph 1 has a self-loop on node 2"):
        from_networkx([nx.path_graph(3), looped], 5)
    valued = nx.path_graph(3)
    nx.set_edge_attributes(valued, 3, "type")
    with pytest.raises(ValueError, match="graph 0 has edge values \\[0, 3\\], outside 0..2"):
        from_networkx([valued], 5, edge_attr="type", num_edge_types=2)


def test_pyg_errors_name_the_graph():
    big = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=7)
    small = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
    with pytest.raises(ValueError, match="graph 1 has 7 nodes, more than the capacity 5"):
        from_pyg(Batch.from_data_list([small, big]), 5)
    one_way = Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2)
    with pytest.raises(ValueError, match="graph 1 has an asymmetric adjacency"):
        from_pyg(Batch.from_data_list([small, one_way]), 5)
    loop = Data(edge_index=torch.tensor([[1], [1]]), num_nodes=2)
    with pytest.raises(ValueError, match="graph 0 has a self-loop on node 1"):
        from_pyg(loop, 5)
