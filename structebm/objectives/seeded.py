"""Objectives that own a :class:`torch.Generator` (negative sampling, noise, projections).

The generator is created from ``generator_seed`` on the energy's device when the
objective is bound, and is moved along when the data arrive on another device (Lightning
binds on the CPU, then moves the model). Its state is exported and imported as a tensor,
the protocol :mod:`structebm.training.rng` uses to put it in checkpoints. A state saved on
another device type (a CUDA run resumed on the CPU, or the reverse) is kept aside and
applied once the generator lives on that device type again.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from structebm.objectives.base import Objective

__all__ = ["SeededObjective", "device_of"]


def device_of(module: nn.Module, fallback: torch.device) -> torch.device:
    """Device of ``module``'s first parameter or buffer, else ``fallback``."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return fallback


class SeededObjective(Objective):
    """Base class giving an objective a reproducible, checkpointable generator.

    Args:
        generator_seed: seed of the generator.
    """

    def __init__(self, generator_seed: int = 0) -> None:
        super().__init__()
        self.generator_seed = int(generator_seed)
        self._generator = torch.Generator().manual_seed(self.generator_seed)
        self._pending_state: Optional[Tensor] = None

    def _place_generator(self, device: torch.device) -> torch.Generator:
        """Return the generator on ``device``, moving it there if needed.

        A move continues the stream: the new generator is seeded from a draw of the old
        one, or takes a pending checkpointed state saved on that device type.
        """
        device = torch.device(device)
        if self._generator.device.type == device.type:
            return self._generator
        moved = torch.Generator(device=device)
        if self._pending_state is not None and self._pending_state.numel() == moved.get_state().numel():
            moved.set_state(self._pending_state)
            self._pending_state = None
        else:
            seed = int(torch.randint(0, 2**62, (), generator=self._generator, device=self._generator.device))
            moved.manual_seed(seed)
        self._generator = moved
        return moved

    def generator_for(self, device: torch.device) -> torch.Generator:
        """The objective's generator, living on ``device``."""
        return self._place_generator(device)

    def bind_generator(self, energy: nn.Module) -> None:
        """Place the generator on ``energy``'s device (called from :meth:`bind`)."""
        self._place_generator(device_of(energy, self._generator.device))

    def generator_state(self) -> Tensor:
        """The generator's state (a ``uint8`` tensor), for checkpoints."""
        return self._generator.get_state()

    def load_generator_state(self, state: Tensor) -> None:
        """Restore a state from :meth:`generator_state`, possibly saved on another device type."""
        if not isinstance(state, Tensor) or state.dtype != torch.uint8:
            raise TypeError(f"{type(self).__name__}.load_generator_state: expected a uint8 tensor from generator_state()")
        state = state.detach().cpu()
        if state.numel() == self._generator.get_state().numel():
            self._generator.set_state(state)
            self._pending_state = None
        else:
            self._pending_state = state.clone()
