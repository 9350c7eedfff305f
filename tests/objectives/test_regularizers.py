"""Energy-magnitude and gradient penalties: exact values, interpolation, errors."""

import pytest
import torch

from structebm.objectives.regularizers import energy_magnitude_penalty, gradient_penalty
from tests.objectives._targets import gaussian_target


def test_energy_magnitude_penalty_value():
    value = energy_magnitude_penalty(torch.tensor([1.0, -3.0]), torch.tensor([2.0]), weight=0.5)
    assert torch.allclose(value, torch.tensor(0.5 * (5.0 + 4.0)))


@pytest.mark.parametrize("weight", [0.05, 0.01])
def test_energy_magnitude_penalty_holds_the_contrastive_energies_at_minus_and_plus_one_over_two_alpha(weight):
    # Free energies for 3 data points and 2 negatives, minimising the contrastive loss plus the
    # penalty: a convex problem whose minimum is every E(x^±) = ∓1 / (2 alpha), -1 / (2 alpha) in all.
    energy_data = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    energy_negative = torch.tensor([0.5, -0.2], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([energy_data, energy_negative], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = energy_data.mean() - energy_negative.mean() + energy_magnitude_penalty(energy_data, energy_negative, weight)
        loss.backward()
        return loss

    optimizer.step(closure)
    bound = 1 / (2 * weight)
    assert torch.allclose(energy_data, torch.full_like(energy_data, -bound), atol=1e-6)
    assert torch.allclose(energy_negative, torch.full_like(energy_negative, bound), atol=1e-6)
    assert float(closure().detach()) == pytest.approx(-bound, abs=1e-9)


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
