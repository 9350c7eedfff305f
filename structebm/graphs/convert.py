"""Dense graphs to and from networkx graphs and PyTorch Geometric ``Data`` / ``Batch``.

Sparse forms hold only the occupied slots, numbered ``0..n-1`` in slot order; the way back
puts the nodes of each graph into slots ``0..n-1`` in node order. Values keep their meaning:
node value ``k`` is type ``k`` (``1..K``), edge value ``r`` is type ``r`` (``1..R``).

- networkx: node attribute ``"value"`` and edge attribute ``"value"`` (ints);
- PyG (the library's conventions): ``x [n, K]`` one-hot float node features, ``edge_index
  [2, 2|E|]`` with both directions of every edge, ``edge_attr [2|E|, R]`` one-hot float.
  :func:`from_pyg` also accepts ``x`` as integer values ``[n]`` and missing ``x`` / ``edge_attr``
  (every node / edge then has type 1).

Every conversion checks its input and names the graph (its index in the list or batch) on
error: more nodes than the capacity, a self-loop, a value outside the alphabet.
"""

from __future__ import annotations

from typing import Hashable, Optional, Sequence, Union

import networkx as nx
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data

from structebm.graphs.state import DenseGraph

__all__ = ["to_networkx", "from_networkx", "to_pyg", "from_pyg"]


def to_networkx(x: DenseGraph) -> list[nx.Graph]:
    """One ``networkx.Graph`` per graph of ``x`` (see the module docstring)."""
    x = x.validate().to("cpu")
    graphs = []
    for b in range(x.batch_size):
        slots = x.mask[b].nonzero().flatten().tolist()
        graph = nx.Graph()
        graph.add_nodes_from((i, {"value": int(x.nodes[b, s])}) for i, s in enumerate(slots))
        sub = x.edges[b][slots][:, slots]
        rows, cols = torch.triu_indices(len(slots), len(slots), offset=1)
        present = sub[rows, cols] > 0
        graph.add_edges_from(
            (int(i), int(j), {"value": int(v)}) for i, j, v in zip(rows[present], cols[present], sub[rows, cols][present])
        )
        graphs.append(graph)
    return graphs


def _value(attributes: dict, key: Optional[str], what: str, index: int) -> int:
    if key is None:
        return 1
    if key not in attributes:
        raise ValueError(f"from_networkx: graph {index}: {what} has no attribute {key!r}")
    value = attributes[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"from_networkx: graph {index}: {what} has {key}={value!r}; values must be ints >= 1")
    return value


def from_networkx(
    graphs: Sequence[nx.Graph],
    max_nodes: int,
    node_attr: Optional[str] = None,
    edge_attr: Optional[str] = None,
    num_node_types: Optional[int] = None,
    num_edge_types: Optional[int] = None,
) -> DenseGraph:
    """A :class:`DenseGraph` with capacity ``max_nodes`` from undirected networkx graphs.

    Args:
        graphs: the graphs; node order gives the slots.
        max_nodes: the capacity ``N``.
        node_attr: node attribute holding the node value (``None``: every node has value 1).
        edge_attr: edge attribute holding the edge value (``None``: every edge has value 1).
        num_node_types, num_edge_types: if given, values must lie in ``1..K`` / ``1..R``.

    Shapes:
        - returns nodes ``[len(graphs), N]``, edges ``[len(graphs), N, N]``
    """
    nodes = torch.zeros(len(graphs), max_nodes, dtype=torch.long)
    edges = torch.zeros(len(graphs), max_nodes, max_nodes, dtype=torch.long)
    for index, graph in enumerate(graphs):
        if graph.is_directed():
            raise ValueError(f"from_networkx: graph {index} is directed; convert it with .to_undirected() first")
        if graph.number_of_nodes() > max_nodes:
            raise ValueError(
                f"from_networkx: graph {index} has {graph.number_of_nodes()} nodes, more than the capacity {max_nodes}"
            )
        slot: dict[Hashable, int] = {}
        for position, (node, attributes) in enumerate(graph.nodes(data=True)):
            slot[node] = position
            nodes[index, position] = _value(attributes, node_attr, f"node {node!r}", index)
        for u, v, attributes in graph.edges(data=True):
            if u == v:
                raise ValueError(f"from_networkx: graph {index} has a self-loop on node {u!r}")
            value = _value(attributes, edge_attr, f"edge ({u!r}, {v!r})", index)
            edges[index, slot[u], slot[v]] = edges[index, slot[v], slot[u]] = value
    return DenseGraph.from_tensors(nodes, edges, num_node_types, num_edge_types)


def to_pyg(x: DenseGraph, num_node_types: Optional[int] = None, num_edge_types: Optional[int] = None) -> Batch:
    """A PyG ``Batch`` of the graphs of ``x`` (see the module docstring).

    Args:
        x: the dense graphs.
        num_node_types, num_edge_types: widths ``K`` and ``R`` of the one-hot features
            (default: the largest value in ``x``, at least 1).

    Shapes:
        - x ``[sum(n_b), K]``, edge_index ``[2, E]``, edge_attr ``[E, R]``, batch ``[sum(n_b)]``
    """
    x.validate(num_node_types, num_edge_types)
    k = num_node_types or max(int(x.nodes.max()) if x.nodes.numel() else 1, 1)
    r = num_edge_types or max(int(x.edges.max()) if x.edges.numel() else 1, 1)
    data = []
    for b in range(x.batch_size):
        slots = x.mask[b].nonzero().flatten()
        sub = x.edges[b][slots][:, slots]
        source, target = sub.nonzero(as_tuple=True)
        data.append(
            Data(
                x=F.one_hot(x.nodes[b, slots] - 1, k).float(),
                edge_index=torch.stack([source, target]),
                edge_attr=F.one_hot(sub[source, target] - 1, r).float(),
                num_nodes=int(slots.numel()),
            )
        )
    return Batch.from_data_list(data)


def _values(features: Optional[Tensor], count: int, device: torch.device) -> Tensor:
    """Integer values ``1..`` from one-hot features ``[count, D]``, integer values ``[count]`` or ``None``."""
    if features is None:
        return torch.ones(count, dtype=torch.long, device=device)
    if features.dim() == 1:
        return features.long()
    return features.argmax(dim=1) + 1


def from_pyg(data: Union[Data, Batch], max_nodes: int) -> DenseGraph:
    """A :class:`DenseGraph` with capacity ``max_nodes`` from a PyG ``Data`` or ``Batch``.

    Edges must be listed in both directions with equal values (PyG's undirected convention).

    Shapes:
        - returns nodes ``[num_graphs, N]``, edges ``[num_graphs, N, N]``
    """
    num_nodes = int(data.num_nodes)
    edge_index = data.edge_index
    device = edge_index.device
    batch = getattr(data, "batch", None)
    batch = torch.zeros(num_nodes, dtype=torch.long, device=device) if batch is None else batch
    num_graphs = int(getattr(data, "num_graphs", 1) or 1)
    counts = torch.bincount(batch, minlength=num_graphs)
    if counts.numel() and int(counts.max()) > max_nodes:
        worst = int(counts.argmax())
        raise ValueError(f"from_pyg: graph {worst} has {int(counts[worst])} nodes, more than the capacity {max_nodes}")
    first = torch.cumsum(counts, 0) - counts
    position = torch.arange(num_nodes, device=device) - first[batch]
    nodes = torch.zeros(num_graphs, max_nodes, dtype=torch.long, device=device)
    node_values = _values(getattr(data, "x", None), num_nodes, device)
    if (node_values < 1).any():
        raise ValueError(f"from_pyg: graph {int(batch[node_values < 1][0])} has a node value below 1")
    nodes[batch, position] = node_values
    source, target = edge_index
    loops = source == target
    if loops.any():
        raise ValueError(f"from_pyg: graph {int(batch[source[loops][0]])} has a self-loop on node {int(position[source[loops][0]])}")
    edges = torch.zeros(num_graphs, max_nodes, max_nodes, dtype=torch.long, device=device)
    edge_values = _values(getattr(data, "edge_attr", None), source.shape[0], device)
    if (edge_values < 1).any():
        raise ValueError(f"from_pyg: graph {int(batch[source[edge_values < 1][0]])} has an edge value below 1")
    edges[batch[source], position[source], position[target]] = edge_values
    try:
        return DenseGraph.from_tensors(nodes, edges)
    except ValueError as error:
        raise ValueError(f"from_pyg: {error}") from None
