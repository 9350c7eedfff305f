"""Chain sources for dense graphs: noise starts and a persistent replay buffer.

:class:`~structebm.samplers.chains.ReplayBuffer` stores tensor states; a
:class:`~structebm.graphs.state.DenseGraph` is a pair of tensors, so graphs get their own
sources with the same interface (``start`` / ``update`` / ``statistics``, plus ``initial`` and
``push`` on the buffer):

- :class:`GraphNoiseInit` — chains start from :meth:`GraphSpace.noise`;
- :class:`GraphReplayBuffer` — persistent chains restarted from noise with probability
  :math:`\\rho`, exactly as the tensor buffer:

.. math::
    G_0 = \\begin{cases} \\text{noise} & \\text{w.p. } \\rho \\text{ or slot empty} \\\\
    \\text{buffer}[g(c), j], \\; j \\sim \\mathcal{U}\\{0..S-1\\} & \\text{otherwise.} \\end{cases}

The buffer keeps nodes and edges as ``int8`` registered buffers (a slot with ``N = 38`` takes
1.5 kB), so it is checkpointed with the model and follows ``.to(device)``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers.chains import ChainSource, ChainStart, SlotStorage

__all__ = ["GraphNoiseInit", "GraphReplayBuffer"]


class GraphNoiseInit(ChainSource):
    """Start every chain from fresh noise graphs of ``space``.

    Shapes:
        - ``start(x_data, c, generator).x``: ``DenseGraph`` with ``x_data``'s batch size
    """

    def __init__(self, space: GraphSpace) -> None:
        super().__init__()
        if not isinstance(space, GraphSpace):
            raise TypeError(f"GraphNoiseInit: space must be a GraphSpace, got {type(space).__name__}")
        self.space = space

    def start(self, x_data: DenseGraph, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        return ChainStart(self.space.noise(x_data.batch_size, generator, x_data.device), c)


def _last_chain_per_slot(index: Tensor) -> Tensor:
    """Positions of the last chain writing to each distinct slot in ``index [B]``.

    An indexed write with repeated indices keeps an unspecified one per tensor, so nodes
    and edges of a slot could come from different chains; writing one chain per slot avoids it.
    """
    slots, inverse = torch.unique(index, return_inverse=True)
    positions = torch.arange(index.shape[0], device=index.device)
    last = torch.full((slots.shape[0],), -1, dtype=torch.long, device=index.device)
    return last.scatter_reduce(0, inverse, positions, reduce="amax")


class GraphReplayBuffer(SlotStorage):
    """Persistent graph chains in a fixed-size buffer (the interface of ``ReplayBuffer``).

    Args:
        space: the graph space (slot count ``N``, alphabets, noise).
        capacity: total number of stored graphs; split evenly over classes when ``num_classes`` is set.
        reinit_prob: probability :math:`\\rho` that a chain restarts from noise.
        num_classes: number of classes for per-class storage; ``c`` must then be integer labels ``[B]``.

    Shapes:
        - storage: nodes ``[capacity, N]``, edges ``[capacity, N, N]`` (``int8``)
        - ``initial`` returns a ``DenseGraph`` of ``batch_size`` graphs and ``index [B]`` (flat slots)
    """

    def __init__(
        self, space: GraphSpace, capacity: int = 10000, reinit_prob: float = 0.05, num_classes: Optional[int] = None
    ) -> None:
        if not isinstance(space, GraphSpace):
            raise TypeError(f"GraphReplayBuffer: space must be a GraphSpace, got {type(space).__name__}")
        if space.num_node_values > 128 or space.num_edge_values > 128:
            raise ValueError(f"GraphReplayBuffer: int8 storage holds values up to 127; {space} has more")
        super().__init__(capacity, reinit_prob, num_classes)
        self.space = space
        n = space.max_nodes
        self.register_buffer("stored_nodes", torch.zeros((self.capacity, n), dtype=torch.int8))
        self.register_buffer("stored_edges", torch.zeros((self.capacity, n, n), dtype=torch.int8))

    def initial(self, batch_size: int, c: Optional[Tensor], generator: torch.Generator) -> tuple[DenseGraph, Tensor]:
        """Draw ``batch_size`` starting graphs and the flat slots ``index`` they belong to."""
        index, from_noise = self.draw_slots(batch_size, c, generator)
        device = self.filled.device
        nodes = self.stored_nodes[index].long()
        edges = self.stored_edges[index].long()
        if from_noise.any():
            noise = self.space.noise(int(from_noise.sum()), generator, device)
            nodes[from_noise] = noise.nodes
            edges[from_noise] = noise.edges
        return DenseGraph(nodes, edges, nodes > 0), index

    def push(self, x: DenseGraph, index: Tensor, c: Optional[Tensor] = None, energy: Optional[Tensor] = None) -> None:
        """Write chain end points ``x`` back to slots ``index`` (checked against ``c``'s class)."""
        self.space.validate(x, "GraphReplayBuffer.push")
        if x.batch_size != index.shape[0]:
            raise ValueError(f"GraphReplayBuffer.push: {x.batch_size} graphs but {index.shape[0]} slot indices")
        index = self.check_slots(index, c, "GraphReplayBuffer.push")
        keep = _last_chain_per_slot(index)  # repeated slots: nodes and edges must come from one chain
        x, index = x[keep.to(x.device)], index[keep]
        energy = None if energy is None else energy[keep.to(energy.device)]
        self.stored_nodes[index] = x.nodes.to(self.filled.device, torch.int8)
        self.stored_edges[index] = x.edges.to(self.filled.device, torch.int8)
        self.mark_written(index, energy)

    def start(self, x_data: DenseGraph, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        x0, index = self.initial(x_data.batch_size, c, generator)
        return ChainStart(x0.to(x_data.device), c, index)

