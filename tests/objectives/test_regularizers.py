"""Energy-magnitude and gradient penalties: exact values, interpolation, errors."""

import pytest
import torch

from structebm.objectives.regularizers import energy_magnitude_penalty, gradient_penalty
from tests.objectives._targets import gaussian_target


def test_energy_magnitude_penalty_value():
    value = energy_magnitude_penalty(torch.tensor([1.0, -3.0]), torch.tensor([2.0]), weight=0.5)
    assert torch.allclose(value, torch.tensor(0.5 * (5.0 + 4.0)))


def test_gradient_penalty_at_data_matches_the_analytic_gradient():
    energy = gaussian_target()
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        analytic = ((x - energy.mean) @ energy.precision).pow(2).sum(1).mean()
    value = gradient_penalty(energy, x, None, weight=2.0)
    assert torch.allclose(value, 2 * analytic, atol=1e-5)
    (grad,) = torch.autograd.grad(value, energy.mean)
    assert grad.abs().sum() > 0, "the penalty must backpropagate into the parameters"


def test_gradient_penalty_at_interpolates_uses_points_between_data_and_negatives():
    energy = gaussian_target()
    x_data = torch.zeros(6, 2)
    x_negative = torch.ones(6, 2)
    # For this energy ||grad E(t * 0 + (1 - t) * 1)||^2 depends on t; reproduce t from the generator.
    value = gradient_penalty(energy, x_data, None, 1.0, "interpolates", x_negative, torch.Generator().manual_seed(3))
    t = torch.rand(6, generator=torch.Generator().manual_seed(3)).unsqueeze(1)
    points = (1 - t) * x_negative
    with torch.no_grad():
        expected = ((points - energy.mean) @ energy.precision).pow(2).sum(1).mean()
    assert torch.allclose(value, expected, atol=1e-5)


def test_bad_arguments_are_named():
    energy = gaussian_target()
    with pytest.raises(TypeError, match="floating-point"):
        gradient_penalty(energy, torch.zeros(2, 2, dtype=torch.long), None, 1.0, where="MyObjective")
    with pytest.raises(ValueError, match="MyObjective: a gradient penalty at interpolates needs negatives"):
        gradient_penalty(energy, torch.zeros(2, 2), None, 1.0, "interpolates", where="MyObjective")
    with pytest.raises(ValueError, match="'data' or 'interpolates'"):
        gradient_penalty(energy, torch.zeros(2, 2), None, 1.0, "everywhere")
