"""Dense molecular graphs ⇄ PyTorch Geometric ``Data`` / ``Batch``.

Node features are one-hot atom types, ``x [num_nodes, A]`` (column ``k`` = vocabulary index
``k + 1``); ``edge_index [2, E]`` lists every bond in both directions and
``edge_attr [E, 3]`` is the one-hot bond order (single, double, triple). Empty slots of the
dense batch are dropped; the way back puts the atoms of each graph into slots ``0..n-1`` in
order. The feature and index computations are vectorised over the batch.
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from structebm.chem.dense import MAX_BOND_ORDER, DenseMolGraph
from structebm.chem.vocab import AtomVocabulary

__all__ = ["dense_to_pyg", "pyg_to_dense"]


def dense_to_pyg(graph: DenseMolGraph, vocabulary: AtomVocabulary) -> Batch:
    """Convert a dense batch to a PyG ``Batch`` with ``num_graphs = B``.

    Shapes:
        - output x: ``[sum(num_atoms), A]`` float, edge_index ``[2, E]``, edge_attr ``[E, 3]`` float
    """
    graph.validate(len(vocabulary))
    atoms, bonds, mask = graph.atoms, graph.bonds, graph.mask
    slot_rank = mask.long().cumsum(dim=1) - 1
    x = F.one_hot(atoms[mask] - 1, num_classes=len(vocabulary)).float()
    b, i, j = bonds.nonzero(as_tuple=True)
    local_edges = torch.stack([slot_rank[b, i], slot_rank[b, j]])
    edge_attr = F.one_hot(bonds[b, i, j] - 1, num_classes=MAX_BOND_ORDER).float()
    node_counts = mask.sum(dim=1).tolist()
    edge_counts = torch.bincount(b, minlength=graph.batch_size).tolist()
    data_list = [
        Data(x=node_x, edge_index=edges, edge_attr=attr, num_nodes=node_x.shape[0])
        for node_x, edges, attr in zip(
            x.split(node_counts), local_edges.split(edge_counts, dim=1), edge_attr.split(edge_counts)
        )
    ]
    return Batch.from_data_list(data_list)


def pyg_to_dense(data: Union[Data, Batch], vocabulary: AtomVocabulary) -> DenseMolGraph:
    """Convert a PyG ``Data`` or ``Batch`` (features as made by :func:`dense_to_pyg`) to a dense batch.

    Shapes:
        - output atoms ``[num_graphs, vocabulary.max_atoms]``, bonds ``[num_graphs, N, N]``
    """
    x, edge_index, edge_attr = data.x, data.edge_index, data.edge_attr
    if x is None or x.dim() != 2 or x.shape[1] != len(vocabulary):
        shape = None if x is None else tuple(x.shape)
        raise ValueError(f"pyg_to_dense: x must be [num_nodes, {len(vocabulary)}] one-hot atom types, got {shape}")
    if edge_attr is None or edge_attr.shape != (edge_index.shape[1], MAX_BOND_ORDER):
        shape = None if edge_attr is None else tuple(edge_attr.shape)
        raise ValueError(f"pyg_to_dense: edge_attr must be [E, {MAX_BOND_ORDER}] one-hot bond orders, got {shape}")
    num_nodes = x.shape[0]
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=x.device)
    num_graphs = int(data.num_graphs) if isinstance(data, Batch) else 1
    counts = torch.bincount(batch, minlength=num_graphs)
    if counts.numel() and int(counts.max()) > vocabulary.max_atoms:
        worst = int(counts.argmax())
        raise ValueError(
            f"pyg_to_dense: graph {worst} has {int(counts.max())} nodes, more than the capacity {vocabulary.max_atoms}"
        )
    first_node = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
    position = torch.arange(num_nodes, device=x.device) - first_node[batch]
    atoms = torch.zeros(num_graphs, vocabulary.max_atoms, dtype=torch.long, device=x.device)
    atoms[batch, position] = x.argmax(dim=1) + 1
    bonds = torch.zeros(num_graphs, vocabulary.max_atoms, vocabulary.max_atoms, dtype=torch.long, device=x.device)
    src, dst = edge_index
    bonds[batch[src], position[src], position[dst]] = edge_attr.argmax(dim=1) + 1
    return DenseMolGraph.from_tensors(atoms, bonds, len(vocabulary))
