"""Label posteriors and classification scores against direct computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from structebm.evaluation.classification import classification_scores, label_posteriors, log_probabilities


class FixedLabelEnergies(nn.Module):
    """``E(x, k) = -x[k]``: the posterior is ``softmax(x)``."""

    def label_energies(self, x: torch.Tensor) -> torch.Tensor:
        return -x


def test_label_posteriors_are_the_softmax_of_minus_the_energies():
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    probabilities, labels = label_posteriors(FixedLabelEnergies(), [(x[:3], y[:3]), (x[3:], y[3:])])
    torch.testing.assert_close(probabilities, torch.softmax(x, dim=1))
    assert torch.equal(labels, y)


def test_label_posteriors_name_what_is_missing():
    with pytest.raises(TypeError, match="Linear has no label_energies"):
        label_posteriors(nn.Linear(2, 2), [])
    with pytest.raises(ValueError, match="no batches"):
        label_posteriors(FixedLabelEnergies(), [])


def test_scores_by_hand():
    # confidences 0.9 (right), 0.8 (wrong), 0.6 (right): one bin each of 10 -> ECE = (0.1 + 0.8 + 0.4) / 3
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0])
    scores = classification_scores(probabilities, labels, num_bins=10)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["ece"] == pytest.approx((0.1 + 0.8 + 0.4) / 3)
    assert scores["temperature"] is None and scores["ece_temperature_scaled"] is None


def test_temperature_one_changes_nothing_and_a_high_temperature_flattens():
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0])
    same = classification_scores(probabilities, labels, num_bins=10, temperature=1.0)
    assert same["ece_temperature_scaled"] == pytest.approx(same["ece"])
    flat = classification_scores(probabilities, labels, num_bins=10, temperature=1e6)
    # every confidence -> 1/2: accuracy 2/3 in one bin, ECE = |2/3 - 1/2|
    assert flat["ece_temperature_scaled"] == pytest.approx(1 / 6, abs=1e-5)
    with pytest.raises(ValueError, match="temperature must be positive"):
        classification_scores(probabilities, labels, temperature=0.0)


def test_log_probabilities_keep_zeros_finite():
    logs = log_probabilities(torch.tensor([[1.0, 0.0]]))
    assert logs[0, 0] == 0.0 and math.isfinite(logs[0, 1].item()) and logs[0, 1] < -80
