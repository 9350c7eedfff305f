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

For a conditional energy :math:`E(G, c)` with a continuous condition ``c [B, D]``
(``condition_dim = D``) the buffer keeps ``(G, c)`` pairs: a chain drawn from a written slot
goes on under the condition it ran with, and a chain restarted from noise takes the condition
of its row of the data batch,

.. math::
    (G_0, c_0) = \\begin{cases} (\\text{noise}, c^{\\text{data}}_b) & \\text{w.p. } \\rho \\text{ or slot empty} \\\\
    \\text{buffer}[j] & \\text{otherwise,} \\end{cases}

so every stored chain targets :math:`p(G \\mid c)` for one fixed ``c``, and the conditions of the
negatives are data conditions (those of earlier batches), as the conditional likelihood's
gradient :math:`\\mathbb{E}_{c}\\,\\mathbb{E}_{G \\sim p(\\cdot \\mid c)}[\\nabla_\\theta E]` needs.
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
        condition_dim: ``D`` of a continuous condition ``c [B, D]`` kept with each chain (see the
            module docstring); ``None``: chains run under the data batch's ``c`` as it is.

    Shapes:
        - storage: nodes ``[capacity, N]``, edges ``[capacity, N, N]`` (``int8``); conditions
          ``[capacity, D]`` (float) with ``condition_dim``
        - ``initial`` returns a ``DenseGraph`` of ``batch_size`` graphs and ``index [B]`` (flat slots)
    """

    def __init__(
        self, space: GraphSpace, capacity: int = 10000, reinit_prob: float = 0.05, num_classes: Optional[int] = None,
        condition_dim: Optional[int] = None,
    ) -> None:
        if not isinstance(space, GraphSpace):
            raise TypeError(f"GraphReplayBuffer: space must be a GraphSpace, got {type(space).__name__}")
        if space.num_node_values > 128 or space.num_edge_values > 128:
            raise ValueError(f"GraphReplayBuffer: int8 storage holds values up to 127; {space} has more")
        if condition_dim is not None and (isinstance(condition_dim, bool) or not isinstance(condition_dim, int) or condition_dim < 1):
            raise ValueError(f"GraphReplayBuffer: condition_dim must be a positive int or None, got {condition_dim!r}")
        if condition_dim is not None and num_classes is not None:
            raise ValueError("GraphReplayBuffer: give num_classes (class labels) or condition_dim (continuous c), not both")
        super().__init__(capacity, reinit_prob, num_classes)
        self.space = space
        self.condition_dim = condition_dim
        n = space.max_nodes
        self.register_buffer("stored_nodes", torch.zeros((self.capacity, n), dtype=torch.int8))
        self.register_buffer("stored_edges", torch.zeros((self.capacity, n, n), dtype=torch.int8))
        if condition_dim is not None:
            self.register_buffer("stored_condition", torch.zeros((self.capacity, condition_dim)))

    def initial(self, batch_size: int, c: Optional[Tensor], generator: torch.Generator) -> tuple[DenseGraph, Tensor]:
        """Draw ``batch_size`` starting graphs and the flat slots ``index`` they belong to."""
        x0, index, _ = self._draw(batch_size, c, generator)
        return x0, index

    def _draw(self, batch_size: int, c: Optional[Tensor], generator: torch.Generator) -> tuple[DenseGraph, Tensor, Tensor]:
        """Starting graphs, their slots and which of them restart from noise (``[B]`` bool)."""
        index, from_noise = self.draw_slots(batch_size, c, generator)
        device = self.filled.device
        nodes = self.stored_nodes[index].long()
        edges = self.stored_edges[index].long()
        if from_noise.any():
            noise = self.space.noise(int(from_noise.sum()), generator, device)
            nodes[from_noise] = noise.nodes
            edges[from_noise] = noise.edges
        return DenseGraph(nodes, edges, nodes > 0), index, from_noise

    def _check_condition(self, c: Optional[Tensor], batch_size: int, where: str) -> Tensor:
        if not isinstance(c, Tensor) or c.shape != (batch_size, self.condition_dim) or not c.is_floating_point():
            got = f"{tuple(c.shape)} {c.dtype}" if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(
                f"{where}: the buffer keeps a condition per chain (condition_dim={self.condition_dim}), so c must be "
                f"a float tensor [{batch_size}, {self.condition_dim}]; got {got}"
            )
        return c

    def push(self, x: DenseGraph, index: Tensor, c: Optional[Tensor] = None, energy: Optional[Tensor] = None) -> None:
        """Write chain end points ``x`` back to slots ``index`` (checked against ``c``'s class)."""
        self.space.validate(x, "GraphReplayBuffer.push")
        if x.batch_size != index.shape[0]:
            raise ValueError(f"GraphReplayBuffer.push: {x.batch_size} graphs but {index.shape[0]} slot indices")
        if self.condition_dim is not None:
            c = self._check_condition(c, x.batch_size, "GraphReplayBuffer.push")
        index = self.check_slots(index, c, "GraphReplayBuffer.push")
        keep = _last_chain_per_slot(index)  # repeated slots: nodes and edges must come from one chain
        x, index = x[keep.to(x.device)], index[keep]
        energy = None if energy is None else energy[keep.to(energy.device)]
        self.stored_nodes[index] = x.nodes.to(self.filled.device, torch.int8)
        self.stored_edges[index] = x.edges.to(self.filled.device, torch.int8)
        if self.condition_dim is not None:
            self.stored_condition[index] = c[keep.to(c.device)].detach().to(self.stored_condition)
        self.mark_written(index, energy)

    def start(self, x_data: DenseGraph, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        """Starting graphs for a data batch; with ``condition_dim``, each with its own condition."""
        if self.condition_dim is not None:
            c = self._check_condition(c, x_data.batch_size, "GraphReplayBuffer.start")
        x0, index, from_noise = self._draw(x_data.batch_size, c, generator)
        if self.condition_dim is not None:
            stored = self.stored_condition[index].to(c)
            c = torch.where(from_noise.to(c.device)[:, None], c, stored)
        return ChainStart(x0.to(x_data.device), c, index)

