"""Energies ``E(x, c) -> [B]`` and the capabilities samplers and objectives check for."""

from structebm.energies.base import (
    Energy,
    EnergyOutputError,
    HasArgmax,
    HasExactSample,
    HasLocalMoves,
    HasLogPartition,
    HasMarginals,
    HasOneHotEnergy,
    HasScore,
    MissingCapabilityError,
    require,
)
from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.mixture import GaussianMixtureEnergy
from structebm.energies.mlp import MLPEnergy
from structebm.energies.potts import PottsEnergy

__all__ = [
    "Energy",
    "EnergyOutputError",
    "MissingCapabilityError",
    "HasScore",
    "HasLogPartition",
    "HasMarginals",
    "HasArgmax",
    "HasExactSample",
    "HasLocalMoves",
    "HasOneHotEnergy",
    "require",
    "GaussianEnergy",
    "GaussianMixtureEnergy",
    "MLPEnergy",
    "PottsEnergy",
]
