"""Chain sources for molecular graphs: noise starts and a persistent replay buffer.

:class:`~structebm.samplers.chains.ReplayBuffer` stores tensor states; a
:class:`~structebm.chem.dense.DenseMolGraph` is a pair of tensors, so graphs get their own
sources with the same interface (``start`` / ``update`` / ``statistics``, plus ``initial`` and
``push`` on the buffer):

- :class:`GraphNoiseInit` — chains start from :meth:`MolGraphSpace.noise`;
- :class:`GraphReplayBuffer` — persistent chains restarted from noise with probability
  :math:`\\rho`, exactly as the tensor buffer:

.. math::
    G_0 = \\begin{cases} \\text{noise} & \\text{w.p. } \\rho \\text{ or slot empty} \\\\
    \\text{buffer}[g(c), j], \\; j \\sim \\mathcal{U}\\{0..S-1\\} & \\text{otherwise.} \\end{cases}

The buffer keeps atoms and bonds as ``int8`` registered buffers (a ZINC250k slot with
``N = 38`` takes 1.5 kB), so it is checkpointed with the model and follows ``.to(device)``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.samplers.chains import ChainSource, ChainStart

__all__ = ["GraphNoiseInit", "GraphReplayBuffer"]


class GraphNoiseInit(ChainSource):
    """Start every chain from fresh noise graphs of ``space``.

    Shapes:
        - ``start(x_data, c, generator).x``: ``DenseMolGraph`` with ``x_data``'s batch size
    """

    def __init__(self, space: MolGraphSpace) -> None:
        super().__init__()
        self.space = space

    def start(self, x_data: DenseMolGraph, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        return ChainStart(self.space.noise(x_data.batch_size, generator, x_data.atoms.device), c)


def _last_chain_per_slot(index: Tensor) -> Tensor:
    """Positions of the last chain writing to each distinct slot in ``index [B]``.

    An indexed write with repeated indices keeps an unspecified one per tensor, so atoms
    and bonds of a slot could come from different chains; writing one chain per slot avoids it.
    """
    slots, inverse = torch.unique(index, return_inverse=True)
    positions = torch.arange(index.shape[0], device=index.device)
    last = torch.full((slots.shape[0],), -1, dtype=torch.long, device=index.device)
    return last.scatter_reduce(0, inverse, positions, reduce="amax")


class GraphReplayBuffer(ChainSource):
    """Persistent graph chains in a fixed-size buffer (the interface of ``ReplayBuffer``).

    Args:
        space: the graph space (slot count ``N``, vocabulary, noise).
        capacity: total number of stored graphs; split evenly over classes when ``num_classes`` is set.
        reinit_prob: probability :math:`\\rho` that a chain restarts from noise.
        num_classes: number of classes for per-class storage; ``c`` must then be integer labels ``[B]``.

    Shapes:
        - storage: atoms ``[capacity, N]``, bonds ``[capacity, N, N]`` (``int8``)
        - ``initial`` returns a ``DenseMolGraph`` of ``batch_size`` graphs and ``index [B]`` (flat slots)
    """

    def __init__(
        self, space: MolGraphSpace, capacity: int = 10000, reinit_prob: float = 0.05, num_classes: Optional[int] = None
    ) -> None:
        super().__init__()
        if not isinstance(space, MolGraphSpace):
            raise TypeError(f"GraphReplayBuffer: space must be a MolGraphSpace, got {type(space).__name__}")
        if not 0.0 <= float(reinit_prob) <= 1.0:
            raise ValueError(f"GraphReplayBuffer: reinit_prob must lie in [0, 1], got {reinit_prob}")
        groups = 1 if num_classes is None else int(num_classes)
        if groups < 1 or int(capacity) < groups:
            raise ValueError(
                f"GraphReplayBuffer: capacity ({capacity}) must be at least num_classes ({num_classes}) and positive"
            )
        self.space = space
        self.reinit_prob = float(reinit_prob)
        self.num_classes = num_classes
        self.slots_per_group = int(capacity) // groups
        size, n = self.slots_per_group * groups, space.max_atoms
        self.register_buffer("stored_atoms", torch.zeros((size, n), dtype=torch.int8))
        self.register_buffer("stored_bonds", torch.zeros((size, n, n), dtype=torch.int8))
        self.register_buffer("filled", torch.zeros(size, dtype=torch.bool))
        self.register_buffer("stored_energy", torch.full((size,), float("nan")))
        self.register_buffer("last_reinit_fraction", torch.zeros(()))
        self.register_buffer("last_noise_fraction", torch.zeros(()))

    @property
    def capacity(self) -> int:
        """Number of storage slots."""
        return self.filled.shape[0]

    def _group_of(self, c: Optional[Tensor], batch_size: int) -> Tensor:
        device = self.filled.device
        if self.num_classes is None:
            return torch.zeros(batch_size, dtype=torch.long, device=device)
        if not isinstance(c, Tensor) or c.shape != (batch_size,) or c.is_floating_point():
            got = f"{tuple(c.shape)} {c.dtype}" if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(
                f"GraphReplayBuffer: per-class storage (num_classes={self.num_classes}) needs integer class labels "
                f"c of shape ({batch_size},), got {got}"
            )
        if ((c < 0) | (c >= self.num_classes)).any():
            raise ValueError(
                f"GraphReplayBuffer: class labels must lie in [0, {self.num_classes}), got {c.unique().tolist()[:8]}"
            )
        return c.to(device=device, dtype=torch.long)

    def initial(self, batch_size: int, c: Optional[Tensor], generator: torch.Generator) -> tuple[DenseMolGraph, Tensor]:
        """Draw ``batch_size`` starting graphs and the flat slots ``index`` they belong to."""
        device = self.filled.device
        if generator.device.type != device.type:
            raise ValueError(f"GraphReplayBuffer: the generator is on {generator.device} but the buffer lives on {device}")
        group = self._group_of(c, batch_size)
        slot = torch.randint(0, self.slots_per_group, (batch_size,), generator=generator, device=device)
        index = group * self.slots_per_group + slot
        reinit = torch.rand(batch_size, generator=generator, device=device) < self.reinit_prob
        from_noise = reinit | ~self.filled[index]
        atoms = self.stored_atoms[index].long()
        bonds = self.stored_bonds[index].long()
        if from_noise.any():
            noise = self.space.noise(int(from_noise.sum()), generator, device)
            atoms[from_noise] = noise.atoms
            bonds[from_noise] = noise.bonds
        self.last_reinit_fraction.fill_(reinit.float().mean())
        self.last_noise_fraction.fill_(from_noise.float().mean())
        return DenseMolGraph(atoms, bonds, atoms > 0), index

    def push(self, x: DenseMolGraph, index: Tensor, c: Optional[Tensor] = None, energy: Optional[Tensor] = None) -> None:
        """Write chain end points ``x`` back to slots ``index`` (checked against ``c``'s class)."""
        self.space.validate(x, "GraphReplayBuffer.push")
        if x.batch_size != index.shape[0]:
            raise ValueError(f"GraphReplayBuffer.push: {x.batch_size} graphs but {index.shape[0]} slot indices")
        index = index.to(self.filled.device)
        if self.num_classes is not None:
            expected = self._group_of(c, x.batch_size)
            if not torch.equal(index // self.slots_per_group, expected):
                raise ValueError("GraphReplayBuffer.push: a chain would be written to another class's storage")
        keep = _last_chain_per_slot(index)  # repeated slots: atoms and bonds must come from one chain
        x, index = x[keep.to(x.atoms.device)], index[keep]
        energy = None if energy is None else energy[keep.to(energy.device)]
        self.stored_atoms[index] = x.atoms.to(self.filled.device, torch.int8)
        self.stored_bonds[index] = x.bonds.to(self.filled.device, torch.int8)
        self.filled[index] = True
        values = torch.full_like(self.stored_energy[index], float("nan")) if energy is None else energy.detach()
        self.stored_energy[index] = values.to(self.stored_energy)

    def start(self, x_data: DenseMolGraph, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        x0, index = self.initial(x_data.batch_size, c, generator)
        return ChainStart(x0.to(x_data.atoms.device), c, index)

    def update(self, start: ChainStart, x_final: DenseMolGraph, energy: Optional[Tensor] = None) -> None:
        if start.index is None:
            raise ValueError("GraphReplayBuffer.update: the ChainStart has no index; it did not come from this buffer")
        self.push(x_final, start.index, start.c, energy)

    def statistics(self) -> dict[str, Tensor]:
        """``fill``, ``reinit_fraction`` and ``noise_start_fraction`` of the last draw, and
        ``mean_energy`` over slots whose energy (at writing time) is known."""
        stats = {
            "fill": self.filled.float().mean(),
            "reinit_fraction": self.last_reinit_fraction.clone(),
            "noise_start_fraction": self.last_noise_fraction.clone(),
        }
        known = ~torch.isnan(self.stored_energy)
        if known.any():
            stats["mean_energy"] = self.stored_energy[known].mean()
        return stats
