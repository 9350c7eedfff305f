"""Temperature scaling recovers the temperature that generated the labels and fixes calibration."""

import math

import pytest
import torch

from structebm.evaluation.calibration import expected_calibration_error
from structebm.evaluation.temperature import fit_temperature


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_recovers_the_generating_temperature(true_temperature):
    # Labels drawn from softmax(z); the model reports logits z * T0, i.e. it is off by temperature T0.
    generator = torch.Generator().manual_seed(0)
    n, k = 20_000, 10
    z = 3.0 * torch.randn(n, k, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z, dim=1), 1, generator=generator).squeeze(1)
    fitted = fit_temperature(z * true_temperature, labels)
    # The MLE of log T has standard error about 1 / sqrt(N * Fisher information); with N = 20,000
    # and logits of this spread the information per sample is O(1), so 5 % is over 5 standard errors.
    assert math.isclose(fitted, true_temperature, rel_tol=0.05)
    scaled = torch.softmax(z * true_temperature / fitted, dim=1)
    raw = torch.softmax(z * true_temperature, dim=1)
    assert expected_calibration_error(scaled.float(), labels) < expected_calibration_error(raw.float(), labels)


@pytest.mark.parametrize("logits, labels, message", [
    (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), "non-empty"),
    (torch.zeros(4, 3), torch.zeros(4), "integer"),
    (torch.zeros(4, 3), torch.tensor([0, 1, 2, 3]), r"\[0, 3\)"),
    (torch.tensor([[0.0, float("nan")]]), torch.tensor([0]), "finite"),
])
def test_bad_inputs_are_named(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_temperature(logits, labels)
