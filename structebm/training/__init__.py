"""The Lightning module that trains any energy with any valid objective."""

from structebm.training.finite_checks import TrainingDivergedError
from structebm.training.module import EBMModule

__all__ = ["EBMModule", "TrainingDivergedError"]
