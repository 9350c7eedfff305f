"""Noise over structured outputs given an input: exact draws ``y ~ q(y | c)`` and exact ``log q(y | c)``.

Conditional noise-contrastive objectives (:class:`~structebm.objectives.ranking_nce.RankingNCE`)
compare each data labelling with labellings drawn from a noise distribution that depends on
the input. A good noise is close to the model and cheap to sample exactly; any energy with
exact inference provides one,

.. math::
    q(y \\mid c) = \\exp\\bigl(-E_q(y, c) - \\log Z_q(c)\\bigr),

either a fixed model fitted once (:class:`ModelNoise`, e.g. a first-order CRF over the tags)
or a lagged copy of the model being trained (:class:`LaggedModelNoise`), refreshed every
``refresh_every`` training steps. Both keep their energy frozen (no gradients, evaluation
mode, so dropout never changes ``q`` between a draw and its scoring).

Shapes:
    - ``sample(c, n, generator)``: ``[n, B, *event]`` for a batch of ``B`` conditions, ``[n, *event]``
      when ``c`` is ``None``;
    - ``log_prob(y, c)``: ``[B]``;
    - ``log_prob_given_condition(y, c)`` (optional): ``[B, M]`` for ``M`` labellings ``y [B, M, *event]``
      of each input, the input's potentials and normaliser computed once.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional, Protocol, Union, runtime_checkable

import torch
from torch import Tensor, nn

from structebm.energies.base import (
    HasExactSample,
    HasLogPartition,
    HasSharedCondition,
    batch_size_of,
    encode_condition,
    require,
)

__all__ = ["ConditionalNoise", "ModelNoise", "LaggedModelNoise"]


@runtime_checkable
class ConditionalNoise(Protocol):
    """What a conditional noise-contrastive objective needs from its noise.

    A noise may also have ``encode_condition(c)``: the objective then encodes each batch once
    and passes the result to ``sample`` and ``log_prob`` in place of ``c``.
    """

    def sample(self, c: Any, n: int, generator: Optional[torch.Generator] = None) -> Tensor: ...

    def log_prob(self, y: Tensor, c: Any = None) -> Tensor: ...


def _freeze(energy: nn.Module) -> nn.Module:
    energy.requires_grad_(False)
    return energy.eval()


class _FrozenEnergyNoise(nn.Module):
    """``q(y | c) ∝ exp(-E(y, c))`` of a frozen energy with exact sampling and log-partition."""

    energy: Optional[nn.Module]

    def train(self, mode: bool = True) -> "_FrozenEnergyNoise":
        """The wrapped energy stays in evaluation mode whatever the trainer asks."""
        super().train(mode)
        if self.energy is not None:
            self.energy.eval()
        return self

    def _energy(self, where: str) -> nn.Module:
        if self.energy is None:
            raise RuntimeError(f"{where}: no energy yet; call bind(energy) first (the objective does it)")
        return self.energy

    @torch.no_grad()
    def encode_condition(self, c: Any) -> Any:
        """``c`` encoded once by the noise's energy (its emissions, for a CRF), to pass to
        :meth:`sample` and the ``log_prob`` methods in its place
        (:func:`~structebm.energies.base.encode_condition`)."""
        return encode_condition(self._energy(f"{type(self).__name__}.encode_condition"), c)

    @torch.no_grad()
    def sample(self, c: Any, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        return self._energy(f"{type(self).__name__}.sample").sample(c, n, generator)

    @torch.no_grad()
    def log_prob(self, y: Tensor, c: Any = None) -> Tensor:
        """``-E(y, c) - log Z(c)``, shape ``[B]``."""
        energy = self._energy(f"{type(self).__name__}.log_prob")
        values = energy(y, c)
        log_z = energy.log_partition(c)
        if values.shape != (batch_size_of(y),) or log_z.shape not in (values.shape, ()):
            raise ValueError(
                f"{type(self).__name__}.log_prob: energy {tuple(values.shape)} and log_partition "
                f"{tuple(log_z.shape)} do not match a batch of {batch_size_of(y)}"
            )
        return -values - log_z

    @torch.no_grad()
    def log_prob_given_condition(self, y: Tensor, c: Any) -> Optional[Tensor]:
        """``log q(y[b, m] | c[b])`` ``[B, M]`` for ``y [B, M, *event]``, computing each input's emissions
        and ``log Z`` once; ``None`` when the energy cannot share a condition
        (:class:`~structebm.energies.base.HasSharedCondition`)."""
        energy = self._energy(f"{type(self).__name__}.log_prob_given_condition")
        if not isinstance(energy, HasSharedCondition):
            return None
        values = energy.energies_given_condition(y, c)
        log_z = energy.log_partition(c)
        if values.shape != tuple(y.shape[:2]) or log_z.shape != (y.shape[0],):
            raise ValueError(
                f"{type(self).__name__}.log_prob_given_condition: energies {tuple(values.shape)} and log_partition "
                f"{tuple(log_z.shape)} do not match labellings {tuple(y.shape[:2])}"
            )
        return -values - log_z[:, None]


class ModelNoise(_FrozenEnergyNoise):
    """A fixed energy as the noise, e.g. a first-order tagger fitted once.

    Args:
        energy: an energy with ``sample`` (:class:`~structebm.energies.base.HasExactSample`) and
            ``log_partition`` (:class:`~structebm.energies.base.HasLogPartition`); it is frozen.
        state_dict_path: optional file of a saved ``state_dict`` of ``energy`` (its fitted
            parameters), loaded on construction.
    """

    def __init__(self, energy: nn.Module, state_dict_path: Optional[Union[str, Path]] = None) -> None:
        super().__init__()
        require(energy, HasExactSample, "ModelNoise")
        require(energy, HasLogPartition, "ModelNoise")
        if state_dict_path is not None:
            path = Path(state_dict_path)
            if not path.is_file():
                raise FileNotFoundError(f"ModelNoise: state_dict_path {path} does not exist")
            energy.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.energy = _freeze(energy)

    def bind(self, energy: nn.Module) -> None:
        """A fixed noise ignores the model being trained."""


class LaggedModelNoise(_FrozenEnergyNoise):
    """A copy of the model being trained, refreshed every ``refresh_every`` calls of :meth:`refresh`.

    Args:
        refresh_every: training steps between two copies of the live parameters (1 = the
            model of the previous step).

    The copy is made in :meth:`bind` (the objective calls it once, before training), so it is
    part of the objective's ``state_dict`` and resumes from checkpoints.
    """

    def __init__(self, refresh_every: int = 100) -> None:
        super().__init__()
        if int(refresh_every) != refresh_every or refresh_every < 1:
            raise ValueError(f"LaggedModelNoise: refresh_every must be a positive integer, got {refresh_every}")
        self.refresh_every = int(refresh_every)
        self.energy = None
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def bind(self, energy: nn.Module) -> None:
        """Copy ``energy`` (which must have exact sampling and log-partition) as the first noise."""
        require(energy, HasExactSample, "LaggedModelNoise")
        require(energy, HasLogPartition, "LaggedModelNoise")
        if self.energy is None:
            self.energy = _freeze(copy.deepcopy(energy))
        else:
            self.energy.load_state_dict(energy.state_dict())

    @torch.no_grad()
    def refresh(self, energy: nn.Module) -> None:
        """Count one training step; copy the live parameters when ``refresh_every`` steps have passed."""
        if self.energy is None:
            self.bind(energy)
        elif int(self.steps) > 0 and int(self.steps) % self.refresh_every == 0:
            self.energy.load_state_dict(energy.state_dict())
        self.steps += 1
