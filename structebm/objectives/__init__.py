"""Objectives ``forward(energy, batch) -> LossOutput``."""

from structebm.objectives.base import LossOutput, Objective
from structebm.objectives.conditional_noise import LaggedModelNoise, ModelNoise
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.objectives.exact_nll import ExactNLL
from structebm.objectives.nce import NCE
from structebm.objectives.noise import CategoricalNoise, GaussianNoise, UniformNoise
from structebm.objectives.ranking_nce import RankingNCE
from structebm.objectives.ratio_matching import RatioMatching
from structebm.objectives.score_matching import DenoisingScoreMatching, SlicedScoreMatching

__all__ = [
    "LossOutput",
    "Objective",
    "ContrastiveDivergence",
    "ExactNLL",
    "NCE",
    "RankingNCE",
    "RatioMatching",
    "ModelNoise",
    "LaggedModelNoise",
    "CategoricalNoise",
    "GaussianNoise",
    "UniformNoise",
    "DenoisingScoreMatching",
    "SlicedScoreMatching",
]
