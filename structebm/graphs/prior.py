"""The nodes of noise graphs, fitted to a data set: how many nodes, and of which types.

Chains of a graph sampler start from noise graphs (:meth:`GraphSpace.noise`). Uniform node
values put a start far from the data when the data's node counts or types are skewed (on QM9,
half of a uniform start's atoms are charged forms that make up 0.3 % of the data's atoms,
each to be changed by its own single-site move). A :class:`NodePrior` draws the nodes instead as

.. math::
    k \\sim \\text{Categorical}(\\pi^{\\text{count}}), \\qquad
    a_1, \\dots, a_k \\overset{\\text{iid}}{\\sim} \\text{Categorical}(\\pi^{\\text{type}}), \\qquad
    a_{k+1} = \\dots = a_N = 0,

with :math:`\\pi^{\\text{count}}` the frequencies of the node counts and
:math:`\\pi^{\\text{type}}` those of the node types in a set of graphs
(:meth:`NodePrior.fit`; fit it on training graphs only). It is a starting distribution and
nothing more: the chains' stationary distribution is the energy's whatever the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from structebm.graphs.state import DenseGraph

__all__ = ["NodePrior", "edge_density"]


@dataclass(frozen=True)
class NodePrior:
    """Node counts and i.i.d. node types of noise graphs (see the module docstring).

    Args:
        count_probs: ``[N + 1]`` probability of each node count ``0..N`` (``N`` slots).
        type_probs: ``[K + 1]`` probability of each node value; entry 0 (empty slot) must be 0.
    """

    count_probs: Tensor
    type_probs: Tensor

    def __post_init__(self) -> None:
        for name in ("count_probs", "type_probs"):
            probs = getattr(self, name)
            if not isinstance(probs, Tensor) or probs.dim() != 1 or not probs.is_floating_point():
                raise ValueError(f"NodePrior: {name} must be a 1-d float tensor, got {probs!r}")
            if not bool(torch.isfinite(probs).all()) or bool((probs < 0).any()) or abs(float(probs.sum()) - 1.0) > 1e-4:
                raise ValueError(f"NodePrior: {name} must be finite, non-negative and sum to 1, got {probs.tolist()}")
        if float(self.type_probs[0]) != 0.0:
            raise ValueError(f"NodePrior: type_probs[0] is the empty slot and must be 0, got {float(self.type_probs[0])}")

    @property
    def max_nodes(self) -> int:
        """The slot count ``N``."""
        return self.count_probs.shape[0] - 1

    @property
    def num_node_values(self) -> int:
        """``K + 1``: node types plus the empty slot."""
        return self.type_probs.shape[0]

    @classmethod
    def fit(cls, nodes: Tensor, num_node_types: int) -> "NodePrior":
        """Frequencies of the node counts and node types of ``nodes`` ``[M, N]`` (values ``0..K``, 0 = empty)."""
        if not isinstance(nodes, Tensor) or nodes.dim() != 2 or nodes.dtype.is_floating_point:
            raise ValueError(f"NodePrior.fit: nodes must be an integer tensor [M, N], got {nodes!r}")
        if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) > num_node_types):
            raise ValueError(f"NodePrior.fit: node values must lie in 0..{num_node_types}")
        occupied = nodes > 0
        if not bool(occupied.any()):
            raise ValueError("NodePrior.fit: the graphs hold no node")
        counts = torch.bincount(occupied.sum(dim=1), minlength=nodes.shape[1] + 1).double()
        types = torch.bincount(nodes[occupied].long(), minlength=num_node_types + 1).double()
        return cls((counts / counts.sum()).float(), (types / types.sum()).float())

    def sample(self, n: int, generator: torch.Generator, device: Optional[torch.device] = None) -> Tensor:
        """``[n, N]`` long node values: ``k`` nodes in the first ``k`` slots, empty slots after them."""
        device = generator.device if device is None else torch.device(device)
        if n == 0:
            return torch.zeros((0, self.max_nodes), dtype=torch.long, device=device)
        count_probs, type_probs = self.count_probs.to(device), self.type_probs.to(device)
        counts = torch.multinomial(count_probs, n, replacement=True, generator=generator)
        types = torch.multinomial(type_probs, n * self.max_nodes, replacement=True, generator=generator)
        slots = torch.arange(self.max_nodes, device=device)
        return types.view(n, self.max_nodes) * (slots[None, :] < counts[:, None])


def edge_density(graphs: DenseGraph) -> float:
    """Fraction of the pairs of occupied slots that hold an edge, over all ``graphs``.

    .. math::
        \\rho = \\frac{\\sum_b |E_b|}{\\sum_b n_b (n_b - 1) / 2}
    """
    pairs = (graphs.num_nodes * (graphs.num_nodes - 1) // 2).sum()
    if int(pairs) == 0:
        raise ValueError("edge_density: the graphs hold no pair of nodes")
    return float(graphs.num_edges.sum()) / float(pairs)
