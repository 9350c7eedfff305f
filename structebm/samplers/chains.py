"""Chain sources: where negative-phase chains start and where their end points go.

A chain source is independent of the step rule (Langevin, Gibbs, ...). Every source is
an :class:`torch.nn.Module` with the same two-call interface:

- ``start(x_data, c, generator) -> ChainStart`` — the starting states ``x`` (same batch
  size as the data), the condition ``c`` the chains run under, and, for persistent
  sources, the storage ``index`` the states came from;
- ``update(start, x_final, energy=None)`` — hand the chains' end points back (a no-op for
  non-persistent sources); ``energy`` is ``E(x_final, c)`` when the caller knows it.

Three sources are provided:

- :class:`DataInit` — short-run contrastive divergence (CD-k): chains start at the data.
- :class:`NoiseInit` — chains start from the space's noise distribution.
- :class:`ReplayBuffer` — persistent chains (PCD) with a reinitialisation probability;
  its storage is a set of registered buffers, so it is checkpointed with the model and
  follows ``.to(device)``. With ``num_classes`` the storage is split per class and a
  class-``c`` chain only starts from and returns to class-``c`` slots.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from structebm.spaces import Space

__all__ = ["ChainStart", "ChainSource", "DataInit", "NoiseInit", "SlotStorage", "ReplayBuffer"]


class ChainStart(NamedTuple):
    """Starting states of a batch of chains.

    Attributes:
        x: starting states ``[B, *event]``.
        c: condition the chains run under (``None`` if unconditional).
        index: storage slot of each chain ``[B]`` for persistent sources, else ``None``.
    """

    x: Tensor
    c: Optional[Tensor]
    index: Optional[Tensor] = None


class ChainSource(nn.Module):
    """Base class of chain sources; ``space`` (may be ``None``) describes legal states."""

    space: Optional[Space] = None

    def start(self, x_data: Tensor, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:  # pragma: no cover
        raise NotImplementedError

    def update(self, start: ChainStart, x_final: Tensor, energy: Optional[Tensor] = None) -> None:
        """Receive the chains' end points; non-persistent sources ignore them."""

    def statistics(self) -> dict[str, Tensor]:
        """Detached scalars worth logging; empty for stateless sources."""
        return {}


class DataInit(ChainSource):
    """Start every chain at a copy of its data point (short-run CD-k).

    Args:
        space: optional space, used by objectives to validate data.
    """

    def __init__(self, space: Optional[Space] = None) -> None:
        super().__init__()
        self.space = space

    def start(self, x_data: Tensor, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        return ChainStart(x_data.detach().clone(), c)


class NoiseInit(ChainSource):
    """Start every chain from fresh noise of ``space`` (uniform in a box, Gaussian, uniform categories).

    Args:
        space: the state space whose :meth:`noise` is drawn.
    """

    def __init__(self, space: Space) -> None:
        super().__init__()
        self.space = space

    def start(self, x_data: Tensor, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        return ChainStart(self.space.noise(x_data.shape[0], generator, x_data.device), c)


class SlotStorage(ChainSource):
    """Slot bookkeeping shared by persistent buffers: classes, restarts, fill level, statistics.

    Subclasses register the storage of their states (``[capacity, ...]``) and implement
    ``initial`` / ``push``; this class draws slots and restart coins, tracks which slots
    were written and the energy they had then, and implements ``update`` / ``statistics``.

    Args:
        capacity: total number of slots; split evenly over classes (``capacity // num_classes``
            slots each) when ``num_classes`` is set.
        reinit_prob: probability that a drawn chain restarts from noise.
        num_classes: number of classes for per-class storage; ``c`` must then be integer
            labels ``[B]`` in ``[0, num_classes)``.
    """

    def __init__(self, capacity: int, reinit_prob: float, num_classes: Optional[int]) -> None:
        super().__init__()
        name = type(self).__name__
        if not 0.0 <= float(reinit_prob) <= 1.0:
            raise ValueError(f"{name}: reinit_prob must lie in [0, 1], got {reinit_prob}")
        groups = 1 if num_classes is None else int(num_classes)
        if groups < 1 or int(capacity) < groups:
            raise ValueError(f"{name}: capacity ({capacity}) must be at least num_classes ({num_classes}) and positive")
        self.reinit_prob = float(reinit_prob)
        self.num_classes = num_classes
        self.slots_per_group = int(capacity) // groups
        size = self.slots_per_group * groups
        self.register_buffer("filled", torch.zeros(size, dtype=torch.bool))
        self.register_buffer("stored_energy", torch.full((size,), float("nan")))
        self.register_buffer("last_reinit_fraction", torch.zeros(()))
        self.register_buffer("last_noise_fraction", torch.zeros(()))
        self._energy_recorded = False  # whether stored_energy may hold a known value; else it is all NaN

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
                f"{type(self).__name__}: per-class storage (num_classes={self.num_classes}) needs class labels c: "
                f"it needs integer class labels of shape ({batch_size},), got {got}"
            )
        if ((c < 0) | (c >= self.num_classes)).any():
            raise ValueError(
                f"{type(self).__name__}: class labels must lie in [0, {self.num_classes}), got {c.unique().tolist()[:8]}"
            )
        return c.to(device=device, dtype=torch.long)

    def draw_slots(self, batch_size: int, c: Optional[Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw a slot of its class for each chain and decide which chains start from noise.

        Returns the flat slots ``index [B]`` and ``from_noise [B]`` (restart coin, or slot
        never written); records the restart fractions for :meth:`statistics`.
        """
        device = self.filled.device
        if generator.device.type != device.type:
            raise ValueError(f"{type(self).__name__}: the generator is on {generator.device} but the buffer lives on {device}")
        group = None if self.num_classes is None else self._group_of(c, batch_size)  # checks c before any draw
        index = torch.randint(0, self.slots_per_group, (batch_size,), generator=generator, device=device)
        if group is not None:
            index.add_(group * self.slots_per_group)
        reinit = torch.rand(batch_size, generator=generator, device=device) < self.reinit_prob
        from_noise = self.filled.index_select(0, index).logical_not_().logical_or_(reinit)
        self.last_reinit_fraction.fill_(torch.count_nonzero(reinit) / batch_size)
        self.last_noise_fraction.fill_(torch.count_nonzero(from_noise) / batch_size)
        return index, from_noise

    def check_slots(self, index: Tensor, c: Optional[Tensor], where: str) -> Tensor:
        """Move ``index`` to the buffer's device and check each chain writes into its own class."""
        index = index.to(self.filled.device)
        if self.num_classes is not None:
            expected = self._group_of(c, index.shape[0])
            if not torch.equal(index // self.slots_per_group, expected):
                raise ValueError(f"{where}: a chain would be written to another class's storage")
        return index

    def mark_written(self, index: Tensor, energy: Optional[Tensor]) -> None:
        """Record that ``index`` now holds states whose energy was ``energy`` (unknown if ``None``)."""
        self.filled.index_fill_(0, index, True)
        if energy is None:
            if self._energy_recorded:  # else every stored energy is NaN already
                self.stored_energy.index_fill_(0, index, float("nan"))
        else:
            self.stored_energy[index] = energy.detach().to(self.stored_energy)
            self._energy_recorded = True

    def push(self, x: Any, index: Tensor, c: Optional[Tensor] = None, energy: Optional[Tensor] = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def update(self, start: ChainStart, x_final: Any, energy: Optional[Tensor] = None) -> None:
        if start.index is None:
            raise ValueError(f"{type(self).__name__}.update: the ChainStart has no index; it did not come from this buffer")
        self.push(x_final, start.index, start.c, energy)

    def statistics(self) -> dict[str, Tensor]:
        """``fill`` (fraction of slots written), ``reinit_fraction`` and ``noise_start_fraction``
        of the last draw, and ``mean_energy`` over slots whose energy (at writing time) is known."""
        stats = {
            "fill": torch.count_nonzero(self.filled) / self.capacity,
            "reinit_fraction": self.last_reinit_fraction.clone(),
            "noise_start_fraction": self.last_noise_fraction.clone(),
        }
        if self._energy_recorded:  # else every stored energy is NaN: skip the test and its device sync
            known = ~torch.isnan(self.stored_energy)
            if known.any():
                stats["mean_energy"] = self.stored_energy[known].mean()
        return stats

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Load as usual; the loaded energies may be known, so :meth:`statistics` tests them again."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._energy_recorded = True


class ReplayBuffer(SlotStorage):

    """Persistent chains kept in a fixed-size buffer, restarted from noise with probability ``reinit_prob``.

    A drawn chain starts from a uniformly chosen slot (with replacement) of its group — the
    whole buffer, or the slots of its class when ``num_classes`` is set — unless its
    reinitialisation coin comes up (probability ``reinit_prob``) or the slot was never
    written, in which case it starts from noise. The buffer thus fills lazily:

    .. math::
        x_0 = \\begin{cases} \\text{noise} & \\text{w.p. } \\rho \\text{ or slot empty} \\\\
        \\text{buffer}[g(c), j], \\; j \\sim \\mathcal{U}\\{0..S-1\\} & \\text{otherwise.} \\end{cases}

    Args:
        space: state space (event shape, dtype and noise of the stored states).
        capacity: total number of stored states; split evenly over classes
            (``capacity // num_classes`` slots each) when ``num_classes`` is set.
        reinit_prob: probability ``rho`` that a chain restarts from noise.
        num_classes: number of classes for per-class storage; ``c`` must then be
            integer labels ``[B]`` in ``[0, num_classes)``.

    Besides the shared ``start`` / ``update``, :meth:`initial` (draw starts and their slots) and
    :meth:`push` (write end points back) can be called directly. :meth:`statistics` reports the
    fill level, the restart fractions of the last draw and the mean energy of the stored states
    (as computed when they were written, so it lags parameter updates).

    Shapes:
        - storage: ``[capacity, *event]`` (per-class: class ``k`` owns slots
          ``[k*S, (k+1)*S)``).
        - ``initial`` returns ``x0 [B, *event]`` and ``index [B]`` (long, flat slots).
    """

    def __init__(
        self, space: Space, capacity: int = 10000, reinit_prob: float = 0.05, num_classes: Optional[int] = None
    ) -> None:
        super().__init__(capacity, reinit_prob, num_classes)
        self.space = space
        self.register_buffer("storage", torch.zeros((self.capacity, *space.shape), dtype=space.dtype))

    def initial(self, batch_size: int, c: Optional[Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw ``batch_size`` starting states and the flat slots ``index`` they belong to."""
        index, from_noise = self.draw_slots(batch_size, c, generator)
        x0 = self.storage.index_select(0, index)
        restarts = from_noise.nonzero().flatten()  # noise is drawn only for restarted chains (one device sync)
        if restarts.numel() > 0:
            self.restart(x0, restarts, index, generator)
        return x0, index

    def restart(self, x0: Tensor, restarts: Tensor, index: Tensor, generator: torch.Generator) -> None:
        """Overwrite, in place, the rows ``restarts`` of ``x0`` (slots ``index[restarts]``) with fresh
        starting states: noise of the space. Subclasses may draw restarts from elsewhere."""
        x0[restarts] = self.space.noise(restarts.numel(), generator, self.storage.device)

    def push(self, x: Tensor, index: Tensor, c: Optional[Tensor] = None, energy: Optional[Tensor] = None) -> None:
        """Write chain end points ``x`` back to slots ``index`` (checked against ``c``'s class)."""
        if x.shape[0] != index.shape[0] or tuple(x.shape[1:]) != self.space.shape:
            raise ValueError(
                f"ReplayBuffer.push: x of shape {tuple(x.shape)} does not match index ({index.shape[0]},) "
                f"and event shape {self.space.shape}"
            )
        index = self.check_slots(index, c, "ReplayBuffer.push")
        self.storage.index_put_((index,), x.detach().to(self.storage.device, self.storage.dtype))
        self.mark_written(index, energy)

    def start(self, x_data: Tensor, c: Optional[Tensor], generator: torch.Generator) -> ChainStart:
        x0, index = self.initial(x_data.shape[0], c, generator)
        return ChainStart(x0.to(x_data.device), c, index)
