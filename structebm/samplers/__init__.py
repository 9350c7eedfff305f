"""Samplers as ``init`` / ``step`` pairs, and the chain sources that feed them."""

from structebm.samplers.base import ChainDivergedError, ChainState, SamplingAlgorithm, StepInfo, run_chain
from structebm.samplers.chains import DataInit, NoiseInit, ReplayBuffer
from structebm.samplers.gibbs import gibbs
from structebm.samplers.gwg import gibbs_with_gradients
from structebm.samplers.langevin import langevin
from structebm.samplers.mala import mala

__all__ = [
    "ChainDivergedError",
    "ChainState",
    "SamplingAlgorithm",
    "StepInfo",
    "run_chain",
    "DataInit",
    "NoiseInit",
    "ReplayBuffer",
    "gibbs",
    "gibbs_with_gradients",
    "langevin",
    "mala",
]
