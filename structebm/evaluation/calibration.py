"""Expected calibration error (ECE) of a classifier's predicted probabilities.

Naeini et al., "Obtaining well calibrated probabilities using Bayesian binning", AAAI 2015;
Guo et al., "On calibration of modern neural networks", ICML 2017. Predictions are grouped
by their confidence :math:`\\hat p_i = \\max_k p(k \\mid x_i)` into ``M`` equal-width bins
:math:`B_m = ((m-1)/M, m/M]`, and the gap between accuracy and confidence is averaged with
the bins' weights:

.. math::
    \\mathrm{ECE} = \\sum_{m=1}^{M} \\frac{|B_m|}{N}
        \\left| \\operatorname{acc}(B_m) - \\operatorname{conf}(B_m) \\right|, \\qquad
    \\operatorname{acc}(B_m) = \\frac{1}{|B_m|} \\sum_{i \\in B_m} [\\hat y_i = y_i], \\quad
    \\operatorname{conf}(B_m) = \\frac{1}{|B_m|} \\sum_{i \\in B_m} \\hat p_i.

A confidence of exactly 0 (impossible for a probability vector over ``K`` classes, whose
maximum is at least ``1/K``) would fall into the first bin.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["CalibrationBins", "calibration_bins", "expected_calibration_error"]


class CalibrationBins(NamedTuple):
    """Per-bin statistics of a reliability diagram.

    Attributes:
        count: number of predictions in each bin ``[M]`` (long).
        accuracy: fraction correct in each bin ``[M]`` (NaN for an empty bin).
        confidence: mean confidence in each bin ``[M]`` (NaN for an empty bin).
    """

    count: Tensor
    accuracy: Tensor
    confidence: Tensor


def _check_inputs(probabilities: Tensor, labels: Tensor, num_bins: int, where: str) -> None:
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"{where}: num_bins must be a positive integer, got {num_bins!r}")
    if not isinstance(probabilities, Tensor) or not probabilities.is_floating_point() or probabilities.dim() != 2:
        got = f"{tuple(probabilities.shape)} {probabilities.dtype}" if isinstance(probabilities, Tensor) else type(probabilities).__name__
        raise ValueError(f"{where}: probabilities must be a float Tensor [N, K], got {got}")
    n, k = probabilities.shape
    if n == 0:
        raise ValueError(f"{where}: no predictions to score")
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.shape != (n,):
        got = f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{where}: labels must be an integer Tensor ({n},), got {got}")
    if ((labels < 0) | (labels >= k)).any():
        raise ValueError(f"{where}: labels must lie in [0, {k})")
    if not torch.isfinite(probabilities).all() or (probabilities < 0).any():
        raise ValueError(f"{where}: probabilities must be finite and non-negative")
    off = (probabilities.sum(dim=1) - 1).abs() > 1e-3
    if off.any():
        raise ValueError(f"{where}: rows {off.nonzero().flatten()[:8].tolist()} of probabilities do not sum to 1")


def calibration_bins(probabilities: Tensor, labels: Tensor, num_bins: int = 15) -> CalibrationBins:
    """Count, accuracy and mean confidence of the predictions in each confidence bin.

    Shapes:
        - probabilities: ``[N, K]`` rows summing to 1; labels: ``[N]`` integer
        - returns: three tensors ``[num_bins]``
    """
    _check_inputs(probabilities, labels, num_bins, "calibration_bins")
    confidence, predicted = probabilities.detach().double().max(dim=1)
    correct = (predicted == labels.to(predicted.device)).double()
    # Bin m (0-based) holds confidences in (m/M, (m+1)/M]: ceil(p * M) - 1, with 0 sent to bin 0.
    bin_index = (torch.ceil(confidence * num_bins).long() - 1).clamp_(0, num_bins - 1)
    count = torch.bincount(bin_index, minlength=num_bins)
    correct_sum = torch.bincount(bin_index, weights=correct, minlength=num_bins)
    confidence_sum = torch.bincount(bin_index, weights=confidence, minlength=num_bins)
    denominator = count.double()
    return CalibrationBins(count, correct_sum / denominator, confidence_sum / denominator)


def expected_calibration_error(probabilities: Tensor, labels: Tensor, num_bins: int = 15) -> float:
    """ECE with ``num_bins`` equal-width confidence bins (15 by default, as in Guo et al.).

    Shapes:
        - probabilities: ``[N, K]`` rows summing to 1; labels: ``[N]`` integer
    """
    bins = calibration_bins(probabilities, labels, num_bins)
    filled = bins.count > 0
    weights = bins.count[filled].double() / bins.count.sum()
    return float((weights * (bins.accuracy[filled] - bins.confidence[filled]).abs()).sum())
