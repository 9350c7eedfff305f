"""Sample-quality measures that do not depend on the kind of data."""

from structebm.evaluation.mmd import mmd_rbf, median_bandwidth

__all__ = ["mmd_rbf", "median_bandwidth"]
