"""Dense molecular graphs ⇄ PyTorch Geometric ``Data`` / ``Batch``.

The generic conversion of :mod:`structebm.graphs.convert` with the widths of a vocabulary:
node features are one-hot atom types, ``x [num_nodes, A]`` (column ``k`` = vocabulary index
``k + 1``); ``edge_index [2, E]`` lists every bond in both directions and ``edge_attr [E, 3]``
is the one-hot bond order (single, double, triple). Empty slots of the dense batch are
dropped; the way back puts the atoms of each graph into slots ``0..n-1`` in order.
"""

from __future__ import annotations

from typing import Union

from torch_geometric.data import Batch, Data

from structebm.chem.dense import MAX_BOND_ORDER, DenseMolGraph
from structebm.chem.vocab import AtomVocabulary
from structebm.graphs.convert import from_pyg, to_pyg

__all__ = ["dense_to_pyg", "pyg_to_dense"]


def dense_to_pyg(graph: DenseMolGraph, vocabulary: AtomVocabulary) -> Batch:
    """Convert a dense batch to a PyG ``Batch`` with ``num_graphs = B``.

    Shapes:
        - output x: ``[sum(num_atoms), A]`` float, edge_index ``[2, E]``, edge_attr ``[E, 3]`` float
    """
    return to_pyg(graph, len(vocabulary), MAX_BOND_ORDER)


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
    try:
        return from_pyg(data, vocabulary.max_atoms).validate(len(vocabulary), MAX_BOND_ORDER)
    except ValueError as error:
        raise ValueError(f"pyg_to_dense: {error}") from None
