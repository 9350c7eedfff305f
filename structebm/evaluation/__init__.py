"""Quality measures on tensors and strings, free of any model layer.

One module per measure: :mod:`~structebm.evaluation.calibration` (ECE),
:mod:`~structebm.evaluation.temperature` (temperature scaling),
:mod:`~structebm.evaluation.classification` (accuracy and calibration of label posteriors),
:mod:`~structebm.evaluation.ood` (AUROC of out-of-distribution scores),
:mod:`~structebm.evaluation.mmd` (maximum mean discrepancy),
:mod:`~structebm.evaluation.grid_density` (normalised 2-D densities by quadrature) and
:mod:`~structebm.evaluation.tagging` (chunk F1, token accuracy and per-tag F1).
"""

from structebm.evaluation.mmd import mmd_rbf, median_bandwidth

__all__ = ["mmd_rbf", "median_bandwidth"]
