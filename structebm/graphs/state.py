"""Fixed-capacity dense graphs: the state every graph sampler and graph energy works on.

A batch of ``B`` graphs with at most ``N`` nodes each is three tensors:

* ``nodes [B, N]`` long: ``0`` = empty slot, ``1..K`` = node type;
* ``edges [B, N, N]`` long, symmetric, zero diagonal: ``0`` = no edge, ``1..R`` = edge type;
* ``mask [B, N]`` bool, ``mask = nodes > 0``.

Rows and columns of empty slots hold no edge. A graph with ``n`` nodes may sit in any ``n``
slots; conversions (:mod:`structebm.graphs.convert`) put them in slots ``0..n-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import torch
from torch import Tensor

__all__ = ["DenseGraph"]


def _first(bad: Tensor) -> int:
    """Index of the first ``True`` graph of ``bad [B]``."""
    return int(bad.nonzero()[0, 0])


@dataclass(frozen=True)
class DenseGraph:
    """A batch of dense graphs (see the module docstring).

    Construct with :meth:`from_tensors` (which derives the mask and validates) or directly
    and call :meth:`validate`.

    Shapes:
        - nodes: ``[B, N]`` long
        - edges: ``[B, N, N]`` long
        - mask: ``[B, N]`` bool
    """

    nodes: Tensor
    edges: Tensor
    mask: Tensor

    @classmethod
    def from_tensors(
        cls, nodes: Tensor, edges: Tensor, num_node_types: Optional[int] = None, num_edge_types: Optional[int] = None
    ) -> "DenseGraph":
        """Build from ``nodes`` and ``edges``, derive ``mask = nodes > 0`` and validate."""
        if not isinstance(nodes, Tensor) or not isinstance(edges, Tensor):
            raise TypeError("DenseGraph.from_tensors: nodes and edges must be tensors")
        graph = cls(nodes.long(), edges.long(), nodes > 0)
        return graph.validate(num_node_types, num_edge_types)

    @classmethod
    def empty(cls, batch_size: int, max_nodes: int, device: torch.device | str | None = None) -> "DenseGraph":
        """``batch_size`` graphs without nodes."""
        nodes = torch.zeros(batch_size, max_nodes, dtype=torch.long, device=device)
        edges = torch.zeros(batch_size, max_nodes, max_nodes, dtype=torch.long, device=device)
        return cls(nodes, edges, nodes > 0)

    @classmethod
    def concatenate(cls, graphs: Sequence["DenseGraph"]) -> "DenseGraph":
        """One batch holding the graphs of every batch in ``graphs``, in order."""
        if len(graphs) == 0:
            raise ValueError("DenseGraph.concatenate: got no graphs")
        sizes = {g.max_nodes for g in graphs}
        if len(sizes) != 1:
            raise ValueError(f"DenseGraph.concatenate: batches have different capacities {sorted(sizes)}")
        return cls(
            torch.cat([g.nodes for g in graphs]), torch.cat([g.edges for g in graphs]), torch.cat([g.mask for g in graphs])
        )

    @property
    def batch_size(self) -> int:
        return self.nodes.shape[0]

    @property
    def max_nodes(self) -> int:
        """The capacity ``N`` (slots per graph)."""
        return self.nodes.shape[1]

    @property
    def device(self) -> torch.device:
        return self.nodes.device

    @property
    def num_nodes(self) -> Tensor:
        """``[B]`` number of occupied slots."""
        return self.mask.sum(dim=1)

    @property
    def num_edges(self) -> Tensor:
        """``[B]`` number of edges (each unordered pair counted once)."""
        return (self.edges > 0).flatten(1).sum(dim=1) // 2

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: int | slice | Tensor) -> "DenseGraph":
        """A sub-batch; an ``int`` gives a batch of one graph."""
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return DenseGraph(self.nodes[index], self.edges[index], self.mask[index])

    def __iter__(self) -> Iterator["DenseGraph"]:
        for i in range(self.batch_size):
            yield self[i]

    def to(self, device: torch.device | str) -> "DenseGraph":
        return DenseGraph(self.nodes.to(device), self.edges.to(device), self.mask.to(device))

    def detach(self) -> "DenseGraph":
        """The same graphs cut from any autograd graph."""
        return DenseGraph(self.nodes.detach(), self.edges.detach(), self.mask.detach())

    def clone(self) -> "DenseGraph":
        return DenseGraph(self.nodes.clone(), self.edges.clone(), self.mask.clone())

    def where(self, keep: Tensor, other: "DenseGraph") -> "DenseGraph":
        """Graph ``b`` of ``self`` where ``keep[b]``, else graph ``b`` of ``other`` (``keep [B]`` bool)."""
        return DenseGraph(
            torch.where(keep[:, None], self.nodes, other.nodes),
            torch.where(keep[:, None, None], self.edges, other.edges),
            torch.where(keep[:, None], self.mask, other.mask),
        )

    def validate(self, num_node_types: Optional[int] = None, num_edge_types: Optional[int] = None) -> "DenseGraph":
        """Check shapes, dtypes, alphabets and structure; raise ``ValueError`` naming the first bad graph.

        Args:
            num_node_types: ``K``; if given, node values must lie in ``0..K``.
            num_edge_types: ``R``; if given, edge values must lie in ``0..R``.

        Returns:
            ``self``, so calls chain.
        """
        nodes, edges, mask = self.nodes, self.edges, self.mask
        if not all(isinstance(t, Tensor) for t in (nodes, edges, mask)):
            raise TypeError("DenseGraph: nodes, edges and mask must be tensors")
        if nodes.dim() != 2:
            raise ValueError(f"DenseGraph: nodes must be [B, N], got shape {tuple(nodes.shape)}")
        b, n = nodes.shape
        if edges.shape != (b, n, n):
            raise ValueError(f"DenseGraph: edges must be [B, N, N] = {(b, n, n)}, got {tuple(edges.shape)}")
        if mask.shape != (b, n):
            raise ValueError(f"DenseGraph: mask must be [B, N] = {(b, n)}, got {tuple(mask.shape)}")
        if nodes.dtype != torch.long or edges.dtype != torch.long or mask.dtype != torch.bool:
            raise ValueError(
                f"DenseGraph: expected long nodes and edges and a bool mask, got {nodes.dtype}, {edges.dtype}, {mask.dtype}"
            )
        high = nodes.max() if num_node_types is None else num_node_types
        bad_nodes = ((nodes < 0) | (nodes > high)).any(dim=1)
        if bad_nodes.any():
            g = _first(bad_nodes)
            alphabet = "0.." + ("K" if num_node_types is None else str(num_node_types))
            raise ValueError(f"DenseGraph: graph {g} has node values {nodes[g].tolist()} outside {alphabet}")
        high = edges.max() if num_edge_types is None else num_edge_types
        bad_edges = ((edges < 0) | (edges > high)).flatten(1).any(dim=1)
        if bad_edges.any():
            g = _first(bad_edges)
            values = sorted(set(edges[g].flatten().tolist()))
            alphabet = "0.." + ("R" if num_edge_types is None else str(num_edge_types))
            raise ValueError(f"DenseGraph: graph {g} has edge values {values}, outside {alphabet}")
        if not torch.equal(mask, nodes > 0):
            raise ValueError(f"DenseGraph: mask must equal nodes > 0 (graph {_first((mask != (nodes > 0)).any(dim=1))})")
        diagonal = edges.diagonal(dim1=1, dim2=2)
        loops = (diagonal != 0).any(dim=1)
        if loops.any():
            g = _first(loops)
            raise ValueError(f"DenseGraph: graph {g} has a self-loop on node {int((diagonal[g] != 0).nonzero()[0, 0])}")
        asymmetric = edges != edges.transpose(1, 2)
        if asymmetric.any():
            g = _first(asymmetric.flatten(1).any(dim=1))
            i, j = (int(v) for v in asymmetric[g].nonzero()[0])
            raise ValueError(
                f"DenseGraph: graph {g} has an asymmetric adjacency: edges[{i}, {j}] = {int(edges[g, i, j])} "
                f"but edges[{j}, {i}] = {int(edges[g, j, i])}"
            )
        dangling = ((edges != 0) & ~(mask[:, :, None] & mask[:, None, :])).flatten(1).any(dim=1)
        if dangling.any():
            raise ValueError(f"DenseGraph: graph {_first(dangling)} has an edge on an empty slot")
        return self
