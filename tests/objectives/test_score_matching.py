"""Denoising and sliced score matching recover a Gaussian's parameters; bad input is named."""

import math

import pytest
import torch
from torch import nn

from structebm.energies.base import EnergyOutputError
from structebm.energies.potts import PottsEnergy
from structebm.objectives.score_matching import DenoisingScoreMatching, SlicedScoreMatching
from tests.objectives._targets import (
    TRUE_COVARIANCE,
    TRUE_MEAN,
    gaussian_data,
    standard_gaussian_model,
)

N = 4000


def _fit(objective: nn.Module, x: torch.Tensor, steps: int = 300, lr: float = 0.05):
    model = standard_gaussian_model()
    objective.bind(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        objective(model, x).loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        return model.mean.clone(), model.covariance.clone()


def _sample_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = x.mean(0)
    return mean, (x - mean).T @ (x - mean) / x.shape[0]


def _mle_standard_errors(covariance: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """se(mean_i) = sqrt(S_ii / n); se(cov_ij) = sqrt((S_ii S_jj + S_ij^2) / n) for Gaussian data."""
    diagonal = covariance.diagonal()
    return (diagonal / n).sqrt(), ((diagonal[:, None] * diagonal[None, :] + covariance**2) / n).sqrt()


def test_denoising_score_matching_recovers_the_smoothed_gaussian():
    sigma = 1.0
    x = gaussian_data(N)
    mean, covariance = _fit(DenoisingScoreMatching(sigma, generator_seed=1), x)
    smoothed = covariance - sigma**2 * torch.eye(2)
    # DSM's minimiser (in expectation over the noise) is the Gaussian fit of data + sigma * eps:
    # the sample mean and the sample covariance + sigma^2 I. Its Monte-Carlo error comes from
    # the noise draws: regressing -eps / sigma on y = x + sigma eps, the empirical cross-covariance
    # of eps and x has se sqrt(S_jj / n), so cov_ij has se <= ||S_y|| sqrt(max S_jj / n) / sigma and
    # the mean se <= sqrt(S_y,ii / n), S_y = S + sigma^2 I. These are single-step bounds; the
    # annealed optimiser averages over many draws, so 5 x these is conservative yet finite.
    noisy_covariance = TRUE_COVARIANCE + sigma**2 * torch.eye(2)
    mc_cov_se = torch.linalg.eigvalsh(noisy_covariance).max() * math.sqrt(TRUE_COVARIANCE.diagonal().max() / N) / sigma
    mc_mean_se = (noisy_covariance.diagonal() / N).sqrt()
    sample_mean, sample_cov = _sample_moments(x)
    assert ((mean - sample_mean).abs() < 5 * mc_mean_se).all()
    assert ((smoothed - sample_cov).abs() < 5 * mc_cov_se).all()
    # Against the truth, add the data's own sampling error.
    mean_se, cov_se = _mle_standard_errors(TRUE_COVARIANCE, N)
    assert ((mean - TRUE_MEAN).abs() < 5 * (mean_se**2 + mc_mean_se**2).sqrt()).all()
    assert ((smoothed - TRUE_COVARIANCE).abs() < 5 * (cov_se**2 + mc_cov_se**2).sqrt()).all()
    # It matches the smoothed density, not the raw one: the sigma^2 = 1 shift is far outside that band.
    assert ((covariance - TRUE_COVARIANCE).diagonal() > 0.5).all()


@pytest.mark.parametrize("variance_reduction", [True, False])
def test_sliced_score_matching_recovers_the_gaussian(variance_reduction):
    m = 2
    x = gaussian_data(N)
    mean, covariance = _fit(SlicedScoreMatching(m, variance_reduction, generator_seed=2), x)
    # Score matching for a Gaussian model is minimised exactly by the sample mean and (1/n)
    # covariance (Hyvarinen, 2005). Slicing replaces tr(grad s) by v^T (grad s) v averaged over
    # n m projections, an estimate of the identity with element se sqrt(2 / (n m)) that perturbs
    # cov_ij by about sqrt(2 / (n m)) sqrt(S_ii S_jj) (single-step bound, as above); without
    # variance reduction the (v^T s)^2 term adds the same order again, so allow twice that.
    # The mean enters only through the ||s||^2 (resp. (v^T s)^2) term: with variance reduction it
    # is minimised exactly at the sample mean; random weights v v^T perturb it by at most about
    # one more MLE standard error.
    diagonal = TRUE_COVARIANCE.diagonal()
    factor = 1.0 if variance_reduction else 2.0
    mc_cov_se = factor * math.sqrt(2 / (N * m)) * (diagonal[:, None] * diagonal[None, :]).sqrt()
    sample_mean, sample_cov = _sample_moments(x)
    mean_se, cov_se = _mle_standard_errors(TRUE_COVARIANCE, N)
    assert ((mean - sample_mean).abs() < 5 * factor * mean_se).all()
    assert ((covariance - sample_cov).abs() < 5 * mc_cov_se).all()
    assert ((mean - TRUE_MEAN).abs() < 5 * (1 + factor) * mean_se).all()
    assert ((covariance - TRUE_COVARIANCE).abs() < 5 * (cov_se**2 + mc_cov_se**2).sqrt()).all()


def test_sliced_loss_equals_the_exact_score_matching_loss_in_expectation():
    # For a Gaussian model grad_x s = -P, so E_v[v^T (grad s) v] = -tr P exactly; with many
    # projections the variance-reduced SSM loss approaches 1/2 ||s||^2 - tr P.
    model = standard_gaussian_model()
    with torch.no_grad():
        model.off_diagonal[1, 0] = 0.4
    x = gaussian_data(20)
    exact = 0.5 * model.score(x).pow(2).sum(1).mean() - torch.trace(model.precision)
    projections = 20000
    loss = SlicedScoreMatching(projections, generator_seed=3)(model, x).loss
    # v^T P v has variance 2 tr(P^2); its mean over 20 x 20000 draws has se sqrt(2 tr(P^2) / 4e5); 5 se.
    se = torch.sqrt(2 * torch.trace(model.precision @ model.precision) / (20 * projections))
    assert abs(float((loss - exact).detach())) < 5 * float(se.detach())


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="sigma must be positive"):
        DenoisingScoreMatching(0.0)
    with pytest.raises(ValueError, match="num_projections"):
        SlicedScoreMatching(0)
    potts = PottsEnergy(3, 2)
    with pytest.raises(TypeError, match="DenoisingScoreMatching: needs continuous data"):
        DenoisingScoreMatching(0.1)(potts, torch.zeros(4, 3, dtype=torch.long))
    x = gaussian_data(4)
    x[2, 1] = float("inf")
    with pytest.raises(ValueError, match=r"SlicedScoreMatching: .* row\(s\) \[2\]"):
        SlicedScoreMatching()(standard_gaussian_model(), x)

    class WrongShape(nn.Module):
        def forward(self, x, c=None):
            return (x**2).sum(1, keepdim=True)

    with pytest.raises(EnergyOutputError, match="DenoisingScoreMatching: energy"):
        DenoisingScoreMatching(0.1)(WrongShape(), gaussian_data(4))
