"""NCE: recovers a Gaussian and a small Potts model, estimates log Z, and rejects bad input."""

import math

import pytest
import torch
from torch import nn

from structebm.energies.base import EnergyOutputError
from structebm.energies.potts import PottsEnergy
from structebm.objectives.nce import NCE
from structebm.objectives.noise import CategoricalNoise, GaussianNoise, UniformNoise
from tests.objectives._targets import (
    POTTS_LENGTH,
    POTTS_STATES,
    TRUE_COVARIANCE,
    TRUE_MEAN,
    gaussian_data,
    potts_data,
    potts_kl,
    potts_marginals,
    potts_target,
    standard_gaussian_model,
    uniform_potts_kl,
)

# NCE is less efficient than maximum likelihood. With noise_ratio = 4 and a noise distribution
# close to the data, its asymptotic variance is within a factor of 2 of the MLE's (Gutmann &
# Hyvärinen, JMLR 2012, Sec. 2.4 and Fig. 4), so every standard error below is sqrt(2) x the MLE's.
EFFICIENCY_FACTOR = 2.0


def _fit(objective: NCE, energy: nn.Module, x: torch.Tensor, steps: int, lr: float) -> None:
    objective.bind(energy)
    optimizer = torch.optim.Adam(list(energy.parameters()) + list(objective.parameters()), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        objective(energy, x).loss.backward()
        optimizer.step()
        schedule.step()


def test_recovers_gaussian_parameters_and_log_partition():
    n = 4000
    x = gaussian_data(n)
    model = standard_gaussian_model()
    objective = NCE(GaussianNoise((2,), covariance_scale=1.5), noise_ratio=4, generator_seed=1)
    _fit(objective, model, x, steps=500, lr=0.05)
    assert not objective.noise.needs_fit
    with torch.no_grad():
        mean, covariance = model.mean, model.covariance
        log_z = model.log_partition()
    # MLE standard errors: se(mean_i) = sqrt(S_ii / n), se(cov_ij) = sqrt((S_ii S_jj + S_ij^2) / n);
    # inflated by sqrt(EFFICIENCY_FACTOR) for NCE; 5 se each.
    inflation = math.sqrt(EFFICIENCY_FACTOR)
    diagonal = TRUE_COVARIANCE.diagonal()
    assert ((mean - TRUE_MEAN).abs() < 5 * inflation * (diagonal / n).sqrt()).all()
    cov_se = ((diagonal[:, None] * diagonal[None, :] + TRUE_COVARIANCE**2) / n).sqrt()
    assert ((covariance - TRUE_COVARIANCE).abs() < 5 * inflation * cov_se).all()
    # The learned normaliser estimates log Z of the fitted energy. Its se is about
    # sqrt((1 + 1/nu) / n) = 0.018 (the variance of the NCE normaliser for a well-matched noise);
    # 5 se = 0.09.
    assert abs(float(objective.log_partition.detach()) - float(log_z)) < 5 * math.sqrt(1.25 / n)


def test_recovers_a_potts_model():
    n = 5000
    target = potts_target()
    x = potts_data(target, n)
    model = PottsEnergy(POTTS_LENGTH, POTTS_STATES)
    objective = NCE(CategoricalNoise(POTTS_LENGTH, POTTS_STATES), noise_ratio=4, generator_seed=2)
    _fit(objective, model, x, steps=200, lr=0.1)
    # Marginals: binomial se <= 0.5 / sqrt(n), times sqrt(EFFICIENCY_FACTOR); 5 se.
    tolerance = 5 * math.sqrt(EFFICIENCY_FACTOR) * 0.5 / math.sqrt(n)
    assert (potts_marginals(model) - potts_marginals(target)).abs().max() < tolerance
    # Gauge-free: for the MLE 2n KL(target || fit) ~ chi-square(d), d = 32 free parameters; NCE's
    # covariance is at most EFFICIENCY_FACTOR x larger, so KL < factor * (d + 6 sqrt(2d)) / (2n).
    degrees = POTTS_LENGTH * (POTTS_STATES - 1) + math.comb(POTTS_LENGTH, 2) * (POTTS_STATES - 1) ** 2
    kl = potts_kl(target, model)
    assert kl < EFFICIENCY_FACTOR * (degrees + 6 * math.sqrt(2 * degrees)) / (2 * n)
    assert kl < 0.05 * uniform_potts_kl(target)
    with torch.no_grad():
        assert abs(float(objective.log_partition.detach()) - float(model.log_partition())) < 5 * math.sqrt(1.25 / n)


def test_loss_is_the_binary_cross_entropy_of_the_stated_logit():
    model = standard_gaussian_model()
    noise = GaussianNoise((2,), mean=torch.zeros(2), covariance=2 * torch.eye(2))
    objective = NCE(noise, noise_ratio=3, generator_seed=5)
    with torch.no_grad():
        objective.log_partition.fill_(0.3)
    x = gaussian_data(10)
    out = objective(model, x)
    y = noise.sample(30, torch.Generator().manual_seed(5))

    def logit(z):
        return -model(z) - 0.3 - noise.log_prob(z) - math.log(3)

    expected = -nn.functional.logsigmoid(logit(x)).mean() - 3 * nn.functional.logsigmoid(-logit(y)).mean()
    assert torch.allclose(out.loss, expected, atol=1e-6)
    assert set(out.metrics) == {"accuracy", "energy_data", "energy_noise", "log_partition"}


def test_fixed_log_partition_is_not_a_trainable_parameter():
    objective = NCE(UniformNoise((2,), -1.0, 1.0), learn_log_partition=False)
    assert not objective.log_partition.requires_grad
    assert float(objective.log_partition.detach()) == 0.0


def test_bad_input_is_named():
    model = standard_gaussian_model()
    with pytest.raises(TypeError, match="NCE: noise must provide"):
        NCE(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="noise_ratio"):
        NCE(UniformNoise((2,), -1.0, 1.0), noise_ratio=0)
    objective = NCE(UniformNoise((2,), -1.0, 1.0))
    x = torch.zeros(4, 2)
    x[1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NCE: .* row\(s\) \[1\]"):
        objective(model, x)
    with pytest.raises(ValueError, match=r"NCE: the data batch has zero density under the noise in row\(s\) \[2\]"):
        objective(model, torch.tensor([[0.0, 0.0], [0.5, 0.5], [3.0, 0.0]]))

    class WrongShape(nn.Module):
        def forward(self, x, c=None):
            return torch.zeros(x.shape[0], 1)

    with pytest.raises(EnergyOutputError, match=r"NCE: energy of the data batch"):
        objective(WrongShape(), torch.zeros(3, 2))


def test_initial_log_partition_sets_the_starting_value_and_rejects_non_finite() -> None:
    objective = NCE(UniformNoise((2,), -1.0, 1.0), initial_log_partition=-12.5)
    assert objective.log_partition.item() == -12.5
    with pytest.raises(ValueError, match="initial_log_partition must be finite"):
        NCE(UniformNoise((2,), -1.0, 1.0), initial_log_partition=float("inf"))
