"""A user's own graphs as networkx graphs: a JSON edge-list file, networkx graphs, a PyG data set.

Every reader returns ``list[networkx.Graph]`` with nodes ``0..n-1`` and integer attributes
``"value"`` on nodes (``1..K``) and edges (``1..R``), the form that
:func:`~structebm.graphs.convert.from_networkx` turns into a dense batch with
``node_attr="value", edge_attr="value"``. Unlabelled graphs get value 1 everywhere.

JSON edge-list format (the format of ``graph_generation/*.json``), one record per graph::

    [{"num_nodes": 4, "edges": [[0, 1], [1, 2], [2, 3]],
      "node_labels": [1, 2, 2, 1],        # optional, ints >= 1, one per node
      "edge_labels": [1, 1, 2]},          # optional, ints >= 1, one per edge
     ...]

Other keys of a record are ignored. Bad input raises ``ValueError`` naming the graph (its
index in the file or list) and the problem: a self-loop, a node outside ``0..n-1``, an edge
listed twice, a label that is not an int >= 1 or above the alphabet, or (PyG) an edge listed in
one direction only; a JSON syntax error names the file's line and column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import networkx as nx
import torch

__all__ = ["graph_from_record", "read_graph_json", "write_graph_json", "relabel_graphs", "graphs_from_pyg"]


def _label(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {what} is {value!r}; labels must be ints >= 1")
    return value


def graph_from_record(record: Any, where: str) -> nx.Graph:
    """One JSON record (see the module docstring) as a ``networkx.Graph``; ``where`` names it in errors."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object with num_nodes and edges, got {type(record).__name__}")
    n = record.get("num_nodes")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{where}: num_nodes must be an int >= 0, got {n!r}")
    edges = record.get("edges")
    if not isinstance(edges, list):
        raise ValueError(f"{where}: edges must be a list of [u, v] pairs, got {type(edges).__name__}")
    node_labels = record.get("node_labels")
    if node_labels is not None and (not isinstance(node_labels, list) or len(node_labels) != n):
        raise ValueError(f"{where}: node_labels must be a list of {n} ints, one per node")
    edge_labels = record.get("edge_labels")
    if edge_labels is not None and (not isinstance(edge_labels, list) or len(edge_labels) != len(edges)):
        raise ValueError(f"{where}: edge_labels must be a list of {len(edges)} ints, one per edge")
    graph = nx.Graph()
    for node in range(n):
        value = 1 if node_labels is None else _label(node_labels[node], f"the label of node {node}", where)
        graph.add_node(node, value=value)
    for e, pair in enumerate(edges):
        ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        if not ok:
            raise ValueError(f"{where}: edge {e} is {pair!r}, not a pair of node numbers")
        u, v = pair
        if not (0 <= u < n and 0 <= v < n):
            raise ValueError(f"{where}: edge {e} ({u}, {v}) names a node outside 0..{n - 1}")
        if u == v:
            raise ValueError(f"{where}: edge {e} is a self-loop on node {u}")
        if graph.has_edge(u, v):
            raise ValueError(f"{where}: edge {e} ({u}, {v}) is listed twice")
        value = 1 if edge_labels is None else _label(edge_labels[e], f"the label of edge {e}", where)
        graph.add_edge(u, v, value=value)
    return graph


def read_graph_json(path: Union[str, Path]) -> list[nx.Graph]:
    """The graphs of a JSON edge-list file, in file order (errors name the graph index)."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of graph records, got {type(records).__name__}")
    return [graph_from_record(record, f"{path}: graph {i}") for i, record in enumerate(records)]


def write_graph_json(graphs: Iterable[nx.Graph], path: Union[str, Path], labels: bool = False) -> Path:
    """Write graphs as a JSON edge-list file (nodes renumbered in node order); with ``labels``,
    the ``"value"`` attributes go to ``node_labels`` / ``edge_labels``."""
    records = []
    for graph in graphs:
        index = {node: i for i, node in enumerate(graph.nodes())}
        record: dict[str, Any] = {"num_nodes": len(index), "edges": [[index[u], index[v]] for u, v in graph.edges()]}
        if labels:
            record["node_labels"] = [int(data.get("value", 1)) for _, data in graph.nodes(data=True)]
            record["edge_labels"] = [int(data.get("value", 1)) for _, _, data in graph.edges(data=True)]
        records.append(record)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, separators=(",", ":")))
    return path


def relabel_graphs(
    graphs: Sequence[nx.Graph], node_attr: Optional[str] = None, edge_attr: Optional[str] = None
) -> list[nx.Graph]:
    """Copies of networkx graphs with nodes ``0..n-1`` (in node order) and ``"value"`` attributes.

    Args:
        graphs: undirected graphs.
        node_attr, edge_attr: attribute holding the node / edge label (ints >= 1);
            ``None`` gives every node / edge value 1.
    """
    out = []
    for i, graph in enumerate(graphs):
        where = f"graph {i}"
        if not isinstance(graph, nx.Graph) or graph.is_directed() or graph.is_multigraph():
            raise ValueError(f"{where}: expected an undirected networkx.Graph, got {type(graph).__name__}")
        index = {node: k for k, node in enumerate(graph.nodes())}
        copy = nx.Graph()
        for node, data in graph.nodes(data=True):
            value = 1 if node_attr is None else _label(data.get(node_attr), f"node {node!r} attribute {node_attr!r}", where)
            copy.add_node(index[node], value=value)
        for u, v, data in graph.edges(data=True):
            if u == v:
                raise ValueError(f"{where}: self-loop on node {u!r}")
            value = 1 if edge_attr is None else _label(data.get(edge_attr), f"edge ({u!r}, {v!r}) attribute {edge_attr!r}", where)
            copy.add_edge(index[u], index[v], value=value)
        out.append(copy)
    return out


def _pyg_values(features: Optional[torch.Tensor], count: int) -> list[int]:
    if features is None:
        return [1] * count
    if features.dim() == 1:
        return [int(v) for v in features.tolist()]
    return [int(v) + 1 for v in features.argmax(dim=1).tolist()]


def graphs_from_pyg(dataset: Iterable[Any], node_labels: bool = False, edge_labels: bool = False) -> list[nx.Graph]:
    """networkx graphs from a PyG data set (any iterable of ``Data``).

    Edges must be listed in both directions with equal labels (PyG's undirected convention).
    Labels come from one-hot ``x`` / ``edge_attr`` (argmax + 1) or integer vectors (as they are)
    when ``node_labels`` / ``edge_labels`` is set.
    """
    graphs = []
    for i, data in enumerate(dataset):
        where = f"PyG graph {i}"
        n = int(data.num_nodes)
        source, target = (row.tolist() for row in data.edge_index)
        nodes = _pyg_values(data.x if node_labels else None, n)
        values = _pyg_values(data.edge_attr if edge_labels else None, len(source))
        directed = {}
        for u, v, value in zip(source, target, values):
            if u == v:
                raise ValueError(f"{where}: self-loop on node {u}")
            directed[(u, v)] = value
        record = {"num_nodes": n, "node_labels": nodes, "edges": [], "edge_labels": []}
        for (u, v), value in directed.items():
            if directed.get((v, u)) != value:
                found = "missing" if (v, u) not in directed else f"labelled {directed[(v, u)]}"
                raise ValueError(f"{where}: asymmetric adjacency: edge ({u}, {v}) labelled {value} but ({v}, {u}) {found}")
            if u < v:
                record["edges"].append([u, v])
                record["edge_labels"].append(value)
        graphs.append(graph_from_record(record, where))
    return graphs
