"""Classification scores of an energy over a small label set: accuracy and calibration.

For an energy with ``label_energies(x) -> [B, K]`` the label posterior is exact,

.. math::
    p(y \\mid x) = \\operatorname{softmax}_y(-E(x, \\cdot)), \\qquad \\hat y = \\arg\\max_y p(y \\mid x),

and :func:`classification_scores` reports the accuracy of :math:`\\hat y`, the expected
calibration error (:mod:`structebm.evaluation.calibration`) and, given a temperature fitted on
held-out data (:mod:`structebm.evaluation.temperature`), the ECE of
:math:`\\operatorname{softmax}(\\log p / T)`.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
from torch import Tensor, nn

from structebm.evaluation.calibration import expected_calibration_error

__all__ = ["label_posteriors", "log_probabilities", "classification_scores"]


@torch.no_grad()
def label_posteriors(energy: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Exact ``p(y | x)`` of every image and the gold labels, from ``(x, y)`` batches.

    Shapes:
        - returns: probabilities ``[N, K]`` and labels ``[N]``, on the CPU
    """
    label_energies = getattr(energy, "label_energies", None)
    if not callable(label_energies):
        raise TypeError(f"label_posteriors: {type(energy).__name__} has no label_energies(x) -> [B, K]")
    probabilities, labels = [], []
    for x, y in batches:
        probabilities.append(torch.softmax(-label_energies(x), dim=1).cpu())
        labels.append(y.cpu())
    if not labels:
        raise ValueError("label_posteriors: no batches to score")
    return torch.cat(probabilities), torch.cat(labels)


def log_probabilities(probabilities: Tensor) -> Tensor:
    """``log p`` with zeros clamped to the smallest positive float; ``softmax(log p / T)`` is ``p`` at ``T = 1``."""
    return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()


def classification_scores(
    probabilities: Tensor, labels: Tensor, num_bins: int = 15, temperature: Optional[float] = None
) -> dict[str, Any]:
    """``accuracy``, ``ece``, ``temperature`` and ``ece_temperature_scaled`` (``None`` without a temperature).

    Shapes:
        - probabilities: ``[N, K]`` rows summing to 1; labels: ``[N]`` integer
    """
    if temperature is not None and not temperature > 0:
        raise ValueError(f"classification_scores: temperature must be positive, got {temperature}")
    ece = expected_calibration_error(probabilities, labels, num_bins)
    scaled = None
    if temperature is not None:
        scaled = expected_calibration_error(
            torch.softmax(log_probabilities(probabilities) / temperature, dim=1), labels, num_bins
        )
    return {
        "accuracy": float((probabilities.argmax(dim=1) == labels).double().mean()),
        "ece": ece,
        "temperature": temperature,
        "ece_temperature_scaled": scaled,
    }
