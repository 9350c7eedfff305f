"""User graph readers: JSON edge lists, networkx and PyG, with errors naming the graph."""

import json

import networkx as nx
import pytest
import torch
from torch_geometric.data import Data

from structebm.data.graph_files import graphs_from_pyg, read_graph_json, relabel_graphs, write_graph_json


def write(tmp_path, records):
    path = tmp_path / "graphs.json"
    path.write_text(json.dumps(records))
    return path


def test_json_round_trip_with_labels(tmp_path):
    graph = nx.Graph()
    graph.add_nodes_from([(0, {"value": 2}), (1, {"value": 1}), (2, {"value": 3})])
    graph.add_edges_from([(0, 1, {"value": 1}), (1, 2, {"value": 2})])
    path = write_graph_json([graph, nx.Graph()], tmp_path / "out.json", labels=True)
    back = read_graph_json(path)
    assert len(back) == 2 and back[1].number_of_nodes() == 0
    assert dict(back[0].nodes(data="value")) == {0: 2, 1: 1, 2: 3}
    assert {(u, v): d for u, v, d in back[0].edges(data="value")} == {(0, 1): 1, (1, 2): 2}


@pytest.mark.parametrize(
    "record, message",
    [
        ({"num_nodes": 3, "edges": [[0, 1], [1, 1]]}, "graph 1: edge 1 is a self-loop on node 1"),
        ({"num_nodes": 3, "edges": [[0, 3]]}, "graph 1: edge 0 \\(0, 3\\) names a node outside 0..2"),
        ({"num_nodes": 3, "edges": [[0, 1], [1, 0]]}, "graph 1: edge 1 \\(1, 0\\) is listed twice"),
        ({"num_nodes": 2, "edges": [[0, 1]], "edge_labels": [0]}, "graph 1: the label of edge 0 is 0"),
        ({"num_nodes": 2, "edges": [[0, 1]], "node_labels": [1]}, "graph 1: node_labels must be a list of 2"),
        ({"num_nodes": -1, "edges": []}, "graph 1: num_nodes must be an int >= 0"),
    ],
)
def test_json_bad_records_name_the_graph(tmp_path, record, message):
    path = write(tmp_path, [{"num_nodes": 2, "edges": [[0, 1]]}, record])
    with pytest.raises(ValueError, match=message):
        read_graph_json(path)


def test_json_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"num_nodes": 2,\n "edges": [[0, 1]]},\n {"num_nodes": 2 "edges": []}]')
    with pytest.raises(ValueError, match="line 3"):
        read_graph_json(path)


def test_networkx_relabelling_and_errors():
    graph = nx.Graph([("a", "b"), ("b", "c")])
    copy = relabel_graphs([graph])[0]
    assert sorted(copy.edges()) == [(0, 1), (1, 2)] and set(dict(copy.nodes(data="value")).values()) == {1}
    looped = nx.Graph([(0, 1), (1, 1)])
    with pytest.raises(ValueError, match="graph 1: self-loop on node 1"):
        relabel_graphs([graph, looped])
    with pytest.raises(ValueError, match="graph 0: expected an undirected"):
        relabel_graphs([nx.DiGraph([(0, 1)])])


def test_pyg_graphs_and_asymmetric_adjacency():
    both = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=3)
    graph = graphs_from_pyg([both])[0]
    assert sorted(graph.edges()) == [(0, 1), (1, 2)]
    one_way = Data(edge_index=torch.tensor([[0, 1, 1], [1, 0, 2]]), num_nodes=3)
    with pytest.raises(ValueError, match="PyG graph 1: asymmetric adjacency: edge \\(1, 2\\) labelled 1 but \\(2, 1\\) missing"):
        graphs_from_pyg([both, one_way])
    typed = Data(
        x=torch.tensor([[1.0, 0.0], [0.0, 1.0]]), edge_index=torch.tensor([[0, 1], [1, 0]]),
        edge_attr=torch.tensor([[0.0, 1.0], [0.0, 1.0]]), num_nodes=2,
    )
    graph = graphs_from_pyg([typed], node_labels=True, edge_labels=True)[0]
    assert dict(graph.nodes(data="value")) == {0: 1, 1: 2} and graph.edges[0, 1]["value"] == 2
