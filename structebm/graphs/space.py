"""A graph space: capacity, alphabets, constraints and the noise that chains start from.

States are :class:`~structebm.graphs.state.DenseGraph` batches with ``N = max_nodes`` slots,
node values ``0..K`` (``0`` = empty slot) and edge values ``0..R`` (``0`` = no edge). Sites are
the ``N`` node slots and the ``P = N(N-1)/2`` pairs ``i < j`` in row-major order
(:meth:`GraphSpace.upper_pairs`).

**Legal values.** The structural rule is always on: a slot can only be emptied when it has no
edge, and an edge can only join two occupied slots,

.. math::
    \\text{node } i \\leftarrow k: \\; k > 0 \\,\\lor\\, \\deg_i = 0, \\qquad
    \\text{edge } (i, j) \\leftarrow r: \\; r = 0 \\,\\lor\\, (x_i > 0 \\land x_j > 0).

With ``constrained=True`` a value must also be legal for every
:class:`~structebm.graphs.constraints.GraphConstraint` of the space (the graph after the move is
valid), so samplers restricted to legal moves target :math:`e^{-E(G)} [G \\text{ valid}]` exactly.

**Noise** (:meth:`GraphSpace.noise`). Node values are uniform on ``0..K`` per slot, or drawn
from a fitted :class:`~structebm.graphs.prior.NodePrior` (node count, then i.i.d. types).
Edges between occupied slots are uniform on ``0..R`` per pair, or present with probability
``edge_prob`` (then of a uniform type ``1..R``), or, with ``tree_noise``, a random tree of
type-1 edges within ``tree_capacity`` (:func:`~structebm.graphs.random.random_tree_edges`).
With ``valid_noise`` each constraint's ``repair`` (where it has one) is then applied, so
constrained chains can start from noise.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from structebm.graphs.constraints import GraphConstraint
from structebm.graphs.prior import NodePrior
from structebm.graphs.random import random_tree_edges
from structebm.graphs.state import DenseGraph

__all__ = ["GraphSpace"]


def _positive_int(value: object, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"GraphSpace: {name} must be an int >= {least}, got {value!r}")
    return value


class GraphSpace:
    """Dense graphs with ``max_nodes`` slots over a node and an edge alphabet (see the module docstring).

    Args:
        max_nodes: the capacity ``N``.
        num_node_types: ``K >= 1`` node types (values ``1..K``).
        num_edge_types: ``R >= 1`` edge types (values ``1..R``).
        constraints: :class:`GraphConstraint` objects; the valid set is their intersection.
        node_prior: draw the nodes of noise graphs from this prior instead of uniformly.
        edge_prob: probability of an edge between two occupied noise slots (``None``: uniform on ``0..R``).
        tree_noise: noise edges form a random tree over the occupied slots instead.
        tree_capacity: ``[K + 1]`` (or one int for every value) largest degree in noise trees; ``None``: no limit.
        valid_noise: apply the constraints' ``repair`` to noise graphs.

    Shapes:
        - states: ``DenseGraph`` with nodes ``[B, N]``, edges ``[B, N, N]``
        - one-hot: nodes ``[B, N, K + 1]``, edges ``[B, N, N, R + 1]``
        - legal values: nodes ``[B, N, K + 1]``, edges ``[B, P, R + 1]`` (pairs in :meth:`upper_pairs` order)
    """

    def __init__(
        self,
        max_nodes: int,
        num_node_types: int,
        num_edge_types: int,
        constraints: Sequence[GraphConstraint] = (),
        node_prior: Optional[NodePrior] = None,
        edge_prob: Optional[float] = None,
        tree_noise: bool = False,
        tree_capacity: Union[Tensor, int, None] = None,
        valid_noise: bool = True,
    ) -> None:
        self.max_nodes = _positive_int(max_nodes, "max_nodes", 1)
        self.num_node_types = _positive_int(num_node_types, "num_node_types", 1)
        self.num_edge_types = _positive_int(num_edge_types, "num_edge_types", 1)
        self.constraints = tuple(constraints)
        for constraint in self.constraints:
            if not isinstance(constraint, GraphConstraint):
                raise TypeError(f"GraphSpace: {constraint!r} is not a GraphConstraint (it needs is_valid and the legality masks)")
        if node_prior is not None and (
            node_prior.max_nodes != max_nodes or node_prior.num_node_values != num_node_types + 1
        ):
            raise ValueError(
                f"GraphSpace: the node prior covers {node_prior.max_nodes} slots and {node_prior.num_node_values - 1} "
                f"node types, the space has {max_nodes} and {num_node_types}"
            )
        if edge_prob is not None and not 0.0 <= float(edge_prob) <= 1.0:
            raise ValueError(f"GraphSpace: edge_prob must lie in [0, 1] or be None, got {edge_prob!r}")
        if isinstance(tree_capacity, int):
            tree_capacity = torch.full((num_node_types + 1,), tree_capacity, dtype=torch.long)
        if tree_capacity is not None and tuple(tree_capacity.shape) != (num_node_types + 1,):
            raise ValueError(f"GraphSpace: tree_capacity must have shape [{num_node_types + 1}], got {tuple(tree_capacity.shape)}")
        self.node_prior = node_prior
        self.edge_prob = None if edge_prob is None else float(edge_prob)
        self.tree_noise = bool(tree_noise)
        self.tree_capacity = torch.full((num_node_types + 1,), max_nodes, dtype=torch.long) if tree_capacity is None \
            else tree_capacity.long()
        self.valid_noise = bool(valid_noise)

    @property
    def num_node_values(self) -> int:
        """``K + 1``: node types and the empty slot."""
        return self.num_node_types + 1

    @property
    def num_edge_values(self) -> int:
        """``R + 1``: edge types and "no edge"."""
        return self.num_edge_types + 1

    @property
    def num_pairs(self) -> int:
        """``P = N(N-1)/2`` edge sites."""
        return self.max_nodes * (self.max_nodes - 1) // 2

    def __repr__(self) -> str:
        return (
            f"GraphSpace(max_nodes={self.max_nodes}, num_node_types={self.num_node_types}, "
            f"num_edge_types={self.num_edge_types}, constraints={list(self.constraints)})"
        )

    def upper_pairs(self, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Row and column indices ``[P]`` of the edge sites ``i < j`` (row-major order)."""
        rows, cols = torch.triu_indices(self.max_nodes, self.max_nodes, offset=1, device=device)
        return rows, cols

    def noise(self, n: int, generator: torch.Generator, device: torch.device | str | None = None) -> DenseGraph:
        """Draw ``n`` noise graphs (see the module docstring) on ``device`` (default: the generator's)."""
        device = generator.device if device is None else torch.device(device)
        if self.node_prior is None:
            nodes = torch.randint(0, self.num_node_values, (n, self.max_nodes), generator=generator, device=device)
        else:
            nodes = self.node_prior.sample(n, generator, device)
        occupied = nodes > 0
        if self.tree_noise:
            edges = random_tree_edges(nodes, self.tree_capacity, generator)
        else:
            shape = (n, self.max_nodes, self.max_nodes)
            if self.edge_prob is None:
                upper = torch.randint(0, self.num_edge_values, shape, generator=generator, device=device)
            else:
                present = torch.rand(shape, generator=generator, device=device) < self.edge_prob
                upper = present * torch.randint(1, self.num_edge_values, shape, generator=generator, device=device)
            upper = upper.triu(diagonal=1)
            edges = (upper + upper.transpose(1, 2)) * (occupied[:, :, None] & occupied[:, None, :])
        graph = DenseGraph(nodes, edges, occupied)
        if self.valid_noise:
            for constraint in self.constraints:
                repair = getattr(constraint, "repair", None)
                if repair is not None:
                    graph = repair(graph, self, generator)
        return graph

    def validate(self, x: DenseGraph, where: str) -> None:
        """Raise ``TypeError`` / ``ValueError`` naming ``where`` and the graph if ``x`` does not belong to the space."""
        if not isinstance(x, DenseGraph):
            raise TypeError(f"{where}: expected a DenseGraph, got {type(x).__name__}")
        if x.nodes.dim() == 2 and x.max_nodes != self.max_nodes:
            raise ValueError(f"{where}: the graphs have {x.max_nodes} slots but the space has max_nodes={self.max_nodes}")
        try:
            x.validate(self.num_node_types, self.num_edge_types)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    def is_valid(self, x: DenseGraph) -> Tensor:
        """``[B]`` bool: every constraint holds (the structural rule holds on any validated graph)."""
        valid = torch.ones(x.batch_size, dtype=torch.bool, device=x.device)
        for constraint in self.constraints:
            valid = valid & constraint.is_valid(x)
        return valid

    def check_valid(self, x: DenseGraph, where: str) -> None:
        """Raise ``ValueError`` naming the first graphs of ``x`` that break a constraint."""
        valid = self.is_valid(x)
        if not valid.all():
            bad = (~valid).nonzero().flatten()[:8].tolist()
            raise ValueError(
                f"{where}: constrained sampling needs valid start graphs, but graph(s) {bad} break a constraint of "
                f"{list(self.constraints)}; start from space.noise(...) with valid_noise=True or sample unconstrained"
            )

    def one_hot(self, x: DenseGraph, dtype: Optional[torch.dtype] = None) -> tuple[Tensor, Tensor]:
        """Exact one-hot encodings: nodes ``[B, N, K + 1]`` and edges ``[B, N, N, R + 1]`` of ``dtype``."""
        dtype = torch.get_default_dtype() if dtype is None else dtype
        return F.one_hot(x.nodes, self.num_node_values).to(dtype), F.one_hot(x.edges, self.num_edge_values).to(dtype)

    def pair_values(self, x: DenseGraph) -> Tensor:
        """``[B, P]`` edge value of every pair ``i < j``."""
        rows, cols = self.upper_pairs(x.device)
        return x.edges[:, rows, cols]

    def legal_node_values(self, x: DenseGraph, constrained: bool) -> Tensor:
        """``[B, N, K + 1]`` bool: values each slot may take with everything else fixed."""
        isolated = (x.edges == 0).all(dim=2)[:, :, None]
        legal = (torch.arange(self.num_node_values, device=x.device) > 0)[None, None, :] | isolated
        if constrained:
            for constraint in self.constraints:
                legal = legal & constraint.legal_node_values(x, self)
        return legal

    def legal_edge_values(self, x: DenseGraph, constrained: bool) -> Tensor:
        """``[B, P, R + 1]`` bool: values each pair ``i < j`` may take with everything else fixed."""
        rows, cols = self.upper_pairs(x.device)
        both = (x.mask[:, rows] & x.mask[:, cols])[:, :, None]
        legal = (torch.arange(self.num_edge_values, device=x.device) == 0)[None, None, :] | both
        if constrained:
            for constraint in self.constraints:
                legal = legal & constraint.legal_edge_values(x, self)
        return legal
