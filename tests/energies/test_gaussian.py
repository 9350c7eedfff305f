"""GaussianEnergy and GaussianMixtureEnergy: exact log Z, score and samples against independent references."""

import math

import pytest
import torch

from structebm.energies.base import HasExactSample, HasLogPartition, HasScore, score
from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.mixture import GaussianMixtureEnergy
from tests.stats import assert_within, covariance_tolerance, gaussian_covariance_tolerance, mean_tolerance

MEAN = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
COVARIANCE = torch.tensor([[2.0, 0.6, -0.4], [0.6, 1.0, 0.1], [-0.4, 0.1, 0.5]], dtype=torch.float64)


def gaussian() -> GaussianEnergy:
    return GaussianEnergy.from_covariance(MEAN, COVARIANCE)


def reference() -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(MEAN, covariance_matrix=COVARIANCE)


def test_capabilities_are_declared() -> None:
    energy = gaussian()
    assert isinstance(energy, HasScore) and isinstance(energy, HasLogPartition) and isinstance(energy, HasExactSample)


def test_energy_and_log_partition_give_the_reference_log_density() -> None:
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    energy = gaussian()
    log_density = -energy(x) - energy.log_partition()
    assert energy(x).shape == (64,) and energy.log_partition().shape == ()
    assert torch.allclose(log_density, reference().log_prob(x), atol=1e-10)
    assert torch.allclose(energy.covariance, COVARIANCE, atol=1e-10)
    assert torch.allclose(energy.precision, torch.linalg.inv(COVARIANCE), atol=1e-10)


def test_analytic_score_matches_autograd() -> None:
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    energy = gaussian()
    x_req = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x_req).sum(), x_req)
    assert torch.allclose(energy.score(x), -grad, atol=1e-10)
    values, via_contract = score(energy, x)
    assert torch.allclose(via_contract, -grad, atol=1e-10) and torch.allclose(values, energy(x))


def test_samples_have_the_right_moments_and_follow_the_seed() -> None:
    # n i.i.d. draws: ESS = n; z = 4 standard errors per entry (tests/stats.py).
    n = 20_000
    samples = gaussian().sample(None, n, torch.Generator().manual_seed(2))
    assert samples.shape == (n, 3) and not samples.requires_grad
    assert_within(samples.mean(0), MEAN, mean_tolerance(COVARIANCE.diagonal(), n), "sample mean")
    assert_within(torch.cov(samples.T), COVARIANCE, gaussian_covariance_tolerance(COVARIANCE, n), "sample covariance")
    assert torch.equal(samples[:10], gaussian().sample(None, n, torch.Generator().manual_seed(2))[:10])


def test_any_parameter_values_give_a_positive_definite_precision() -> None:
    energy = gaussian()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in energy.parameters():
            parameter.copy_(3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    assert (torch.linalg.eigvalsh(energy.precision) > 0).all()
    assert torch.isfinite(energy.log_partition())


def test_maximum_likelihood_recovers_the_parameters() -> None:
    # The exact NLL mean(E(x)) + log Z is minimised at the sample mean and sample covariance.
    data = gaussian().sample(None, 4000, torch.Generator().manual_seed(4))
    model = GaussianEnergy(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    optimiser = torch.optim.LBFGS(model.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = model(data).mean() + model.log_partition()
        loss.backward()
        return loss

    optimiser.step(closure)
    assert torch.allclose(model.mean.detach(), data.mean(0), atol=1e-5)
    assert torch.allclose(model.covariance.detach(), torch.cov(data.T, correction=0), atol=1e-5)


def test_bad_arguments_give_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"precision must have shape \(3, 3\)"):
        GaussianEnergy(MEAN, torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianEnergy(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="symmetric"):
        GaussianEnergy(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"expected x of shape \[B, 3\], got \(4, 2\)"):
        gaussian()(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="unconditional"):
        gaussian()(torch.zeros(4, 3, dtype=torch.float64), torch.zeros(4))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        gaussian().sample(None, 0)


def mixture() -> GaussianMixtureEnergy:
    covariances = torch.stack([torch.tensor([[0.5, 0.2], [0.2, 0.3]]), 0.4 * torch.eye(2)]).double()
    return GaussianMixtureEnergy(torch.tensor([3.0, 1.0]), torch.tensor([[-1.0, 0.0], [1.5, 1.0]], dtype=torch.float64), covariances)


def test_mixture_energy_is_the_negative_log_mixture_density() -> None:
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    components = torch.distributions.MultivariateNormal(mixture().means, covariance_matrix=mixture().cholesky @ mixture().cholesky.mT)
    reference_density = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(torch.tensor([0.75, 0.25], dtype=torch.float64)), components)
    assert torch.allclose(-mixture()(x), reference_density.log_prob(x), atol=1e-10)
    assert mixture().log_partition() == 0
    isotropic = GaussianMixtureEnergy(torch.ones(2), torch.zeros(2, 2), 0.25)
    assert torch.allclose(isotropic(torch.zeros(1, 2)), torch.tensor([math.log(2 * math.pi * 0.25)]))


def test_mixture_samples_match_the_closed_form_moments() -> None:
    n = 20_000
    samples = mixture().sample(None, n, torch.Generator().manual_seed(6))
    assert_within(samples.mean(0), mixture().mean(), mean_tolerance(mixture().covariance().diagonal(), n), "mixture mean")
    assert_within(torch.cov(samples.T), mixture().covariance(), covariance_tolerance(samples, n), "mixture covariance")


def test_mixture_bad_arguments() -> None:
    with pytest.raises(ValueError, match="weights must be 2 positive numbers"):
        GaussianMixtureEnergy(torch.tensor([1.0, -1.0]), torch.zeros(2, 2), 1.0)
    with pytest.raises(ValueError, match="not positive definite"):
        GaussianMixtureEnergy(torch.ones(2), torch.zeros(2, 2), torch.stack([torch.eye(2), -torch.eye(2)]))
    with pytest.raises(ValueError, match=r"expected x of shape \[B, 2\]"):
        mixture()(torch.zeros(3, 3, dtype=torch.float64))
