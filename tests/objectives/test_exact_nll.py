"""ExactNLL: equals -mean log p, recovers known parameters, and rejects bad input clearly."""

import math

import pytest
import torch
from torch import nn

from structebm.energies.base import EnergyOutputError, MissingCapabilityError
from structebm.energies.mlp import MLPEnergy
from structebm.energies.potts import PottsEnergy
from structebm.objectives.exact_nll import ExactNLL
from tests.objectives._targets import (
    POTTS_LENGTH,
    POTTS_STATES,
    TRUE_COVARIANCE,
    TRUE_MEAN,
    all_potts_states,
    gaussian_data,
    gaussian_target,
    potts_data,
    potts_kl,
    potts_log_probs,
    potts_marginals,
    potts_target,
    standard_gaussian_model,
)


def _fit(energy: nn.Module, batch, steps: int, lr: float) -> None:
    objective = ExactNLL()
    objective.bind(energy)
    optimizer = torch.optim.Adam(energy.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        objective(energy, batch).loss.backward()
        optimizer.step()


def test_equals_minus_mean_log_density_of_a_gaussian():
    energy = gaussian_target()
    x = gaussian_data(64)
    reference = torch.distributions.MultivariateNormal(TRUE_MEAN, TRUE_COVARIANCE).log_prob(x)
    out = ExactNLL()(energy, x)
    assert torch.allclose(out.loss, -reference.mean(), atol=1e-5)
    assert set(out.metrics) == {"nll", "energy_data", "log_partition"}


def test_equals_minus_mean_log_mass_of_a_potts_model_with_and_without_condition():
    target = potts_target()
    x = potts_data(target, 50)
    index = (x * POTTS_STATES ** torch.arange(POTTS_LENGTH - 1, -1, -1)).sum(1)
    assert torch.equal(all_potts_states()[index], x)
    out = ExactNLL()(target, x)
    assert torch.allclose(out.loss, -potts_log_probs(target)[index].mean(), atol=1e-5)
    # With an external field c the log-partition is per row: log p(x | c) by brute force.
    c = torch.randn(50, POTTS_LENGTH, POTTS_STATES, generator=torch.Generator().manual_seed(1))
    states = all_potts_states()
    sites = torch.arange(POTTS_LENGTH)
    with torch.no_grad():
        energies = target(states)[None, :] - c[:, sites, states].sum(-1)  # [B, K^L]
        log_p = -energies - torch.logsumexp(-energies, dim=1, keepdim=True)
    reference = log_p[torch.arange(50), index]
    assert torch.allclose(ExactNLL()(target, (x, c)).loss, -reference.mean(), atol=1e-5)


def test_recovers_gaussian_parameters():
    n = 4000
    x = gaussian_data(n)
    model = standard_gaussian_model()
    _fit(model, x, steps=400, lr=0.05)
    with torch.no_grad():
        mean, covariance = model.mean, model.covariance
    sample_mean = x.mean(0)
    sample_cov = (x - sample_mean).T @ (x - sample_mean) / n
    # The exact NLL's minimiser is the sample mean / (1/n) covariance; the optimiser must reach it.
    assert torch.allclose(mean, sample_mean, atol=1e-3) and torch.allclose(covariance, sample_cov, atol=1e-3)
    # Against the truth: se(mean_i) = sqrt(S_ii / n), se(cov_ij) = sqrt((S_ii S_jj + S_ij^2) / n); 5 se.
    diagonal = TRUE_COVARIANCE.diagonal()
    assert ((mean - TRUE_MEAN).abs() < 5 * (diagonal / n).sqrt()).all()
    cov_se = ((diagonal[:, None] * diagonal[None, :] + TRUE_COVARIANCE**2) / n).sqrt()
    assert ((covariance - TRUE_COVARIANCE).abs() < 5 * cov_se).all()


def test_recovers_a_potts_model():
    n = 5000
    target = potts_target()
    x = potts_data(target, n)
    model = PottsEnergy(POTTS_LENGTH, POTTS_STATES)
    _fit(model, x, steps=300, lr=0.1)
    # Moment matching: at the maximum-likelihood point the model's single-site marginals equal
    # the empirical ones (up to optimisation error).
    empirical = nn.functional.one_hot(x, POTTS_STATES).float().mean(0)
    assert (potts_marginals(model) - empirical).abs().max() < 5e-3
    # Gauge-free comparison with the truth: for the MLE, 2n KL(target || fit) is approximately
    # chi-square with d = L(K-1) + C(L,2)(K-1)^2 = 8 + 24 = 32 degrees of freedom (mean 32, sd 8).
    # 32 + 6 sd = 80 gives KL < 80 / (2n) = 0.008, a bound missed by chance with probability < 1e-5.
    degrees = POTTS_LENGTH * (POTTS_STATES - 1) + math.comb(POTTS_LENGTH, 2) * (POTTS_STATES - 1) ** 2
    assert potts_kl(target, model) < (degrees + 6 * math.sqrt(2 * degrees)) / (2 * n)


def test_missing_log_partition_fails_at_bind():
    with pytest.raises(MissingCapabilityError, match="ExactNLL needs an energy with HasLogPartition"):
        ExactNLL().bind(MLPEnergy(2, hidden=(8,)))


def test_nan_data_is_named():
    x = gaussian_data(8)
    x[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"ExactNLL: .* row\(s\) \[3\]"):
        ExactNLL()(gaussian_target(), x)


class _WrongShapes(nn.Module):
    def __init__(self, energy_shape: tuple, log_z_shape: tuple) -> None:
        super().__init__()
        self.energy_shape, self.log_z_shape = energy_shape, log_z_shape

    def forward(self, x, c=None):
        return torch.zeros(self.energy_shape)

    def log_partition(self, c=None):
        return torch.zeros(self.log_z_shape)


def test_wrong_shapes_are_named():
    x = torch.zeros(4, 2)
    with pytest.raises(EnergyOutputError, match=r"ExactNLL: energy of the data batch: .* shape \(4, 1\)"):
        ExactNLL()(_WrongShapes((4, 1), ()), x)
    with pytest.raises(ValueError, match=r"ExactNLL: log_partition\(c\) returned \(3,\)"):
        ExactNLL()(_WrongShapes((4,), (3,)), x)
