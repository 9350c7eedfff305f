"""Constraints on dense graphs: which graphs are valid and which single-site moves keep them so.

A graph has ``N`` **node sites** (values ``0..K``, ``0`` = empty slot) and ``P = N(N-1)/2``
**edge sites** ``i < j`` (values ``0..R``, ``0`` = no edge). A constraint :math:`C` names a set
of valid graphs; a single-site move ``s ← k`` is **legal** in state :math:`G` iff the graph
after it, :math:`G_{s \\leftarrow k}`, is valid:

.. math::
    \\text{legal}_C(G, s, k) = C(G_{s \\leftarrow k}).

So on a valid graph the current value of every site is legal, and for every legal move the
reverse move is legal too (both end in valid graphs). A sampler restricted to legal moves
therefore keeps the target :math:`p(G) \\propto e^{-E(G)} [G \\in C]` exactly, with the proposal
masks of the reverse move computed the same way.

Every constraint implements :class:`GraphConstraint`: ``is_valid`` and the two legality masks.
Subclassing :class:`GraphConstraint` gives the masks for free by brute force from
``is_valid`` (every site, every value, one batched validity check); the ready-made
constraints write them in closed form. The **structural rule** (no edge on an empty slot) is
not a constraint object: :class:`~structebm.graphs.space.GraphSpace` always applies it.

Ready-made: :class:`MaxDegree` (every node has at most ``d`` edges) and
:class:`NodeCountBounds` (between ``min_nodes`` and ``max_nodes`` occupied slots). A
constraint may also define ``repair(x, space, generator) -> DenseGraph``, which the space
applies to noise graphs so that constrained chains can start from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor

from structebm.graphs.state import DenseGraph

if TYPE_CHECKING:
    from structebm.graphs.space import GraphSpace

__all__ = ["GraphConstraint", "MaxDegree", "NodeCountBounds", "brute_force_node_values", "brute_force_edge_values",
           "others_valid"]


def brute_force_node_values(constraint: "GraphConstraint", x: DenseGraph, space: "GraphSpace") -> Tensor:
    """``[B, N, K+1]`` bool: ``constraint.is_valid`` of every single-node change of ``x``.

    Builds ``B·N·(K+1)`` graphs; meant for small spaces and for checking closed forms.
    """
    b, n = x.nodes.shape
    values = space.num_node_values
    nodes = x.nodes[:, None, None, :].repeat(1, n, values, 1)  # [B, N(site), K+1, N]
    site = torch.arange(n, device=x.device)
    nodes[:, site, :, site] = torch.arange(values, device=x.device)[None, :]
    nodes = nodes.reshape(-1, n)
    edges = x.edges[:, None].expand(b, n * values, n, n).reshape(-1, n, n)
    return constraint.is_valid(DenseGraph(nodes, edges, nodes > 0)).reshape(b, n, values)


def brute_force_edge_values(constraint: "GraphConstraint", x: DenseGraph, space: "GraphSpace") -> Tensor:
    """``[B, P, R+1]`` bool: ``constraint.is_valid`` of every single-edge change of ``x`` (pairs ``i < j``)."""
    b, n = x.nodes.shape
    values = space.num_edge_values
    rows, cols = space.upper_pairs(x.device)
    p = rows.shape[0]
    edges = x.edges[:, None, None].repeat(1, p, values, 1, 1)  # [B, P, R+1, N, N]
    pair = torch.arange(p, device=x.device)
    value = torch.arange(values, device=x.device)[None, :]
    edges[:, pair, :, rows, cols] = value
    edges[:, pair, :, cols, rows] = value
    nodes = x.nodes[:, None].expand(b, p * values, n).reshape(-1, n)
    graphs = DenseGraph(nodes, edges.reshape(-1, n, n), nodes > 0)
    return constraint.is_valid(graphs).reshape(b, p, values)


@runtime_checkable
class GraphConstraint(Protocol):
    """A set of valid graphs and the legal single-site moves it induces (see the module docstring).

    Implementations must give ``is_valid``; subclasses inherit brute-force legality masks.
    """

    def is_valid(self, x: DenseGraph) -> Tensor:
        """``[B]`` bool: which graphs satisfy the constraint."""
        ...

    def legal_node_values(self, x: DenseGraph, space: "GraphSpace") -> Tensor:
        """``[B, N, K+1]`` bool: node values whose single change leaves a valid graph."""
        return brute_force_node_values(self, x, space)

    def legal_edge_values(self, x: DenseGraph, space: "GraphSpace") -> Tensor:
        """``[B, P, R+1]`` bool: edge values of each pair ``i < j`` whose change leaves a valid graph."""
        return brute_force_edge_values(self, x, space)


def others_valid(bad: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``[B, P]`` bool: no node other than ``rows[p]`` and ``cols[p]`` is flagged in ``bad [B, N]``."""
    count = bad.sum(dim=1, keepdim=True)
    return (count - bad[:, rows].long() - bad[:, cols].long()) == 0


class MaxDegree(GraphConstraint):
    """Every node has at most ``max_degree`` edges (of any type).

    With degrees :math:`d_i = \\sum_j [e_{ij} > 0]`, an edge change ``(i, j) ← r`` is legal iff

    .. math::
        d_i - [e_{ij} > 0] + [r > 0] \\le d_{\\max}, \\quad
        d_j - [e_{ij} > 0] + [r > 0] \\le d_{\\max}, \\quad
        d_k \\le d_{\\max} \\; (k \\ne i, j),

    and a node change is legal iff the graph is valid (node values do not change degrees).

    Args:
        max_degree: :math:`d_{\\max} \\ge 0`.
    """

    def __init__(self, max_degree: int) -> None:
        if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 0:
            raise ValueError(f"MaxDegree: max_degree must be an int >= 0, got {max_degree!r}")
        self.max_degree = max_degree

    def __repr__(self) -> str:
        return f"MaxDegree({self.max_degree})"

    def degrees(self, x: DenseGraph) -> Tensor:
        """``[B, N]`` number of edges of every node."""
        return (x.edges > 0).sum(dim=2)

    def is_valid(self, x: DenseGraph) -> Tensor:
        return (self.degrees(x) <= self.max_degree).all(dim=1)

    def legal_node_values(self, x: DenseGraph, space: "GraphSpace") -> Tensor:
        return self.is_valid(x)[:, None, None].expand(x.batch_size, x.max_nodes, space.num_node_values)

    def legal_edge_values(self, x: DenseGraph, space: "GraphSpace") -> Tensor:
        rows, cols = space.upper_pairs(x.device)
        degree = self.degrees(x)
        present = (x.edges[:, rows, cols] > 0).long()  # [B, P]
        adds = (torch.arange(space.num_edge_values, device=x.device) > 0).long()  # [R+1]
        degree_i = (degree[:, rows] - present)[:, :, None] + adds
        degree_j = (degree[:, cols] - present)[:, :, None] + adds
        rest = others_valid(degree > self.max_degree, rows, cols)[:, :, None]
        return (degree_i <= self.max_degree) & (degree_j <= self.max_degree) & rest

    def repair(self, x: DenseGraph, space: "GraphSpace", generator: Optional[torch.Generator] = None) -> DenseGraph:
        """Remove edges until no node is above the bound: repeatedly, the edge of the node with the
        largest excess (ties: lowest slot) to its highest-slot neighbour."""
        edges = x.edges.clone()
        chains = torch.arange(x.batch_size, device=x.device)
        slots = torch.arange(x.max_nodes, device=x.device)
        for _ in range(int((edges > 0).sum()) // 2 + 1):
            excess = (edges > 0).sum(dim=2) - self.max_degree
            worst, node = excess.max(dim=1)
            todo = worst > 0
            if not todo.any():
                break
            neighbour = ((edges[chains, node] > 0) * (slots + 1)).argmax(dim=1)
            b, i, j = chains[todo], node[todo], neighbour[todo]
            edges[b, i, j] = 0
            edges[b, j, i] = 0
        return DenseGraph(x.nodes, edges, x.mask)


class NodeCountBounds(GraphConstraint):
    """Between ``min_nodes`` and ``max_nodes`` occupied slots (inclusive).

    A node change ``i ← k`` moves the count to :math:`n - [x_i > 0] + [k > 0]` and is legal iff
    that lies in the bounds; edge changes leave the count alone and are legal iff the graph is valid.

    Args:
        min_nodes: smallest node count (``>= 0``).
        max_nodes: largest node count, or ``None`` for the space's capacity.
    """

    def __init__(self, min_nodes: int = 0, max_nodes: Optional[int] = None) -> None:
        if isinstance(min_nodes, bool) or not isinstance(min_nodes, int) or min_nodes < 0:
            raise ValueError(f"NodeCountBounds: min_nodes must be an int >= 0, got {min_nodes!r}")
        if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < min_nodes):
            raise ValueError(f"NodeCountBounds: max_nodes must be None or an int >= min_nodes, got {max_nodes!r}")
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes

    def __repr__(self) -> str:
        return f"NodeCountBounds({self.min_nodes}, {self.max_nodes})"

    def _in_bounds(self, count: Tensor) -> Tensor:
        upper = count.new_tensor(count.max() if self.max_nodes is None else self.max_nodes)
        return (count >= self.min_nodes) & (count <= upper)

    def is_valid(self, x: DenseGraph) -> Tensor:
        return self._in_bounds(x.num_nodes)

    def legal_node_values(self, x: DenseGraph, space: "GraphSpace") -> Tensor:
        occupied = (torch.arange(space.num_node_values, device=x.device) > 0).long()
        count = (x.num_nodes[:, None] - x.mask.long())[:, :, None] + occupied  # [B, N, K+1]
        return self._in_bounds(count)

    def legal_edge_values(self, x: DenseGraph, space: "GraphSpace") -> Tensor:
        return self.is_valid(x)[:, None, None].expand(x.batch_size, space.num_pairs, space.num_edge_values)

    def repair(self, x: DenseGraph, space: "GraphSpace", generator: torch.Generator) -> DenseGraph:
        """Empty the highest occupied slots of graphs above the bound (dropping their edges); fill the
        lowest empty slots of graphs below it with uniformly drawn node types."""
        nodes = x.nodes.clone()
        rank = x.mask.long().cumsum(dim=1)  # 1-based rank of each occupied slot
        if self.max_nodes is not None:
            nodes = nodes.masked_fill(x.mask & (rank > self.max_nodes), 0)
        missing = (self.min_nodes - (nodes > 0).sum(dim=1)).clamp(min=0)
        empty_rank = (nodes == 0).long().cumsum(dim=1)
        fill = (nodes == 0) & (empty_rank <= missing[:, None])
        draws = torch.randint(1, space.num_node_values, nodes.shape, generator=generator, device=x.device)
        nodes = torch.where(fill, draws, nodes)
        occupied = nodes > 0
        edges = x.edges * (occupied[:, :, None] & occupied[:, None, :])
        return DenseGraph(nodes, edges, occupied)
