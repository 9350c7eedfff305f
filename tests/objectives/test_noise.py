"""Noise distributions for NCE: exact log-densities, sampling statistics, fitting, checkpoints."""

import math

import pytest
import torch

from structebm.objectives.noise import CategoricalNoise, GaussianNoise, NoiseDistribution, UniformNoise


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_log_prob_matches_torch_distributions():
    mean = torch.tensor([0.5, -1.0, 2.0])
    covariance = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    noise = GaussianNoise((3,), mean, covariance, covariance_scale=1.5)
    assert isinstance(noise, NoiseDistribution) and not noise.needs_fit
    x = torch.randn(20, 3, generator=_generator())
    reference = torch.distributions.MultivariateNormal(mean, 1.5 * covariance).log_prob(x)
    assert torch.allclose(noise.log_prob(x), reference, atol=1e-5)


def test_gaussian_samples_have_the_stated_moments_and_fit_recovers_them():
    mean = torch.tensor([1.0, -2.0])
    covariance = torch.tensor([[1.0, -0.4], [-0.4, 0.5]])
    n = 20000
    x = GaussianNoise((2,), mean, covariance).sample(n, _generator(1))
    # se(mean_i) = sqrt(S_ii / n); se(cov_ij) = sqrt((S_ii S_jj + S_ij^2) / n); 5 se.
    diagonal = covariance.diagonal()
    assert ((x.mean(0) - mean).abs() < 5 * (diagonal / n).sqrt()).all()
    cov_se = ((diagonal[:, None] * diagonal[None, :] + covariance**2) / n).sqrt()
    assert ((x.T.cov() - covariance).abs() < 5 * cov_se).all()
    fitted = GaussianNoise((2,))
    assert fitted.needs_fit
    fitted.fit(x)
    assert not fitted.needs_fit
    assert torch.allclose(fitted.mean, x.mean(0), atol=1e-5)
    assert torch.allclose(fitted.scale_tril @ fitted.scale_tril.T, x.T.cov(), atol=1e-4)


def test_gaussian_over_image_shaped_states_and_checkpoint_round_trip():
    noise = GaussianNoise((2, 2))
    noise.fit(torch.randn(50, 2, 2, generator=_generator(2)))
    restored = GaussianNoise((2, 2))
    restored.load_state_dict(noise.state_dict())
    assert not restored.needs_fit
    x = restored.sample(4, _generator(3))
    assert x.shape == (4, 2, 2)
    assert torch.allclose(restored.log_prob(x), noise.log_prob(x))


def test_uniform_noise_density_and_support():
    noise = UniformNoise((2,), low=torch.tensor([-1.0, 0.0]), high=torch.tensor([1.0, 4.0]))
    x = noise.sample(1000, _generator())
    assert (x[:, 0].abs() <= 1).all() and ((x[:, 1] >= 0) & (x[:, 1] <= 4)).all()
    assert torch.allclose(noise.log_prob(x), torch.full((1000,), -math.log(8.0)))
    assert noise.log_prob(torch.tensor([[0.0, 5.0]])).item() == float("-inf")


def test_categorical_noise_is_normalised_and_fits_smoothed_frequencies():
    x = torch.tensor([[0, 1], [0, 2], [1, 2]])
    noise = CategoricalNoise(2, 3, pseudocount=0.5)
    noise.fit(x)
    # Site 0 counts (2, 1, 0) -> (2.5, 1.5, 0.5) / 4.5.
    assert torch.allclose(noise.log_probs[0].exp(), torch.tensor([2.5, 1.5, 0.5]) / 4.5)
    states = torch.cartesian_prod(torch.arange(3), torch.arange(3))
    assert torch.allclose(noise.log_prob(states).exp().sum(), torch.tensor(1.0))


def test_categorical_samples_follow_the_site_probabilities():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    noise = CategoricalNoise(2, 3, probs=probs)
    n = 20000
    x = noise.sample(n, _generator(4))
    assert x.shape == (n, 2) and x.dtype == torch.long
    frequencies = torch.nn.functional.one_hot(x, 3).float().mean(0)
    # Binomial proportions: se = sqrt(p (1 - p) / n); 5 se.
    assert ((frequencies - probs).abs() < 5 * (probs * (1 - probs) / n).sqrt()).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="both mean and covariance"):
        GaussianNoise((2,), mean=torch.zeros(2))
    with pytest.raises(ValueError, match="not positive definite"):
        GaussianNoise((2,), torch.zeros(2), -torch.eye(2))
    with pytest.raises(ValueError, match=r"need mean \(2,\)"):
        GaussianNoise((2,), torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match=r"GaussianNoise.log_prob: expected a batch of shape \[B, 2\]"):
        GaussianNoise((2,)).log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="strictly below"):
        UniformNoise((2,), 1.0, 0.0)
    with pytest.raises(ValueError, match="sum to 1"):
        CategoricalNoise(2, 2, probs=torch.tensor([0.6, 0.6]))
    with pytest.raises(ValueError, match=r"integer states in \[0, 3\)"):
        CategoricalNoise(2, 3).log_prob(torch.tensor([[0, 3]]))
