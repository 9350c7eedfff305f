"""MALA: exact at large steps where ULA is biased, a mixture, a truncated Gaussian, contract and errors.

Tolerances as in ``test_langevin.py``: final states of ``n`` parallel chains after burn-in are
``n`` independent draws (ESS = ``n``), ``z = 4`` standard errors (``tests/stats.py``).
"""

import math

import pytest
import torch

from structebm.energies.base import EnergyOutputError
from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.mixture import GaussianMixtureEnergy
from structebm.energies.mlp import MLPEnergy
from structebm.samplers.base import run_chain
from structebm.samplers.langevin import langevin
from structebm.samplers.mala import mala
from tests.stats import assert_within, covariance_tolerance, gaussian_covariance_tolerance, mean_tolerance

COVARIANCE = torch.tensor([[1.0, 0.6, 0.2], [0.6, 1.5, -0.3], [0.2, -0.3, 0.8]], dtype=torch.float64)
MEAN = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
NUM_CHAINS = 4000




def gaussian() -> GaussianEnergy:
    return GaussianEnergy.from_covariance(MEAN, COVARIANCE)


def run(algorithm, start: torch.Tensor, num_steps: int, seed: int = 0):
    return run_chain(algorithm, start, num_steps, torch.Generator().manual_seed(seed))


def test_large_step_mala_is_exact_while_ula_is_biased() -> None:
    # ε = 0.5: the smallest covariance eigenvalue here is λ ≈ 0.47, so ULA's variance on that
    # direction is λ / (1 - ε / (2λ)) ≈ 2.1 λ, while on the largest (≈ 1.9) it is inflated by ~15%.
    step_size = 0.5
    start = (MEAN + 3.0).expand(NUM_CHAINS, 3).clone()
    x_mala, infos = run(mala(gaussian(), step_size), start, 400)
    x_ula, _ = run(langevin(gaussian(), step_size), start, 400)
    tolerance = gaussian_covariance_tolerance(COVARIANCE, NUM_CHAINS)
    assert_within(x_mala.mean(0), MEAN, mean_tolerance(COVARIANCE.diagonal(), NUM_CHAINS), "MALA mean")
    assert_within(torch.cov(x_mala.T), COVARIANCE, tolerance, "MALA covariance")
    ula_error = ((torch.cov(x_ula.T) - COVARIANCE).abs() / tolerance).max().item()
    assert ula_error > 5.0, f"ULA at ε = {step_size} should be visibly biased, but is off by only {ula_error:.1f} tolerances"
    rate = infos[-1].acceptance_rate.mean().item()
    assert 0.2 < rate < 0.95, f"acceptance rate {rate}"


def test_gradient_clipping_keeps_mala_exact() -> None:
    # The clipped drift changes the proposal, not the target: from far-out starts (|∇E| ≫ 1)
    # the chains still reach the exact mean and covariance within the same ESS-based tolerances.
    start = (MEAN + 8.0).expand(NUM_CHAINS, 3).clone()
    x, infos = run(mala(gaussian(), 0.3, grad_clip=1.0), start, 500)
    assert_within(x.mean(0), MEAN, mean_tolerance(COVARIANCE.diagonal(), NUM_CHAINS), "clipped MALA mean")
    assert_within(torch.cov(x.T), COVARIANCE, gaussian_covariance_tolerance(COVARIANCE, NUM_CHAINS), "clipped MALA covariance")
    with pytest.raises(ValueError, match="grad_clip"):
        mala(gaussian(), 0.3, grad_clip=0.0)


def test_mala_on_a_gaussian_mixture_via_autograd() -> None:
    mixture = GaussianMixtureEnergy(
        torch.tensor([0.5, 0.3, 0.2]), torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, 1.5]]), torch.tensor([0.5, 0.4, 0.3])
    )
    start = mixture.sample(None, NUM_CHAINS, torch.Generator().manual_seed(2)) + 1.0  # a shifted start
    x, _ = run(mala(mixture, 0.3), start, 600)
    exact = mixture.sample(None, 200_000, torch.Generator().manual_seed(3))  # for the covariance-entry spread only
    assert_within(x.mean(0), mixture.mean(), mean_tolerance(mixture.covariance().diagonal(), NUM_CHAINS), "MALA mixture mean")
    assert_within(torch.cov(x.T), mixture.covariance(), covariance_tolerance(exact, NUM_CHAINS), "MALA mixture covariance")


def test_bounds_give_the_exact_truncated_gaussian() -> None:
    # N(0, 1) restricted to [a, b]: mean (φ(a) - φ(b)) / Z, variance 1 + (aφ(a) - bφ(b)) / Z - mean²,
    # Z = Φ(b) - Φ(a). Variance of the sample variance: (μ₄ - σ⁴) / n, μ₄ taken from a fine grid.
    low, high = -0.5, 1.0
    x, infos = run(mala(GaussianEnergy(torch.zeros(1, dtype=torch.float64), torch.eye(1, dtype=torch.float64)), 0.8, bounds=(low, high)),
                   torch.zeros(NUM_CHAINS, 1, dtype=torch.float64), 300)
    assert x.min() >= low and x.max() <= high
    normal = torch.distributions.Normal(0.0, 1.0)
    a, b = torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
    mass = normal.cdf(b) - normal.cdf(a)
    pdf = lambda t: torch.exp(-0.5 * t**2) / math.sqrt(2 * math.pi)  # noqa: E731
    mean = (pdf(a) - pdf(b)) / mass
    variance = 1 + (a * pdf(a) - b * pdf(b)) / mass - mean**2
    grid = torch.linspace(low, high, 200_001, dtype=torch.float64)
    density = pdf(grid) / mass
    fourth_moment = torch.trapezoid((grid - mean) ** 4 * density, grid)
    assert_within(x.mean(), mean, mean_tolerance(variance, NUM_CHAINS), "truncated mean")
    assert_within(x.var(), variance, 4.0 * ((fourth_moment - variance**2) / NUM_CHAINS).sqrt(), "truncated variance")
    assert (infos[-1].acceptance_rate < 1).any()


def test_small_steps_are_almost_always_accepted() -> None:
    # 1 - E[α] = O(ε^{3/2}) for MALA; at ε = 1e-3 it is far below 1%.
    x, infos = run(mala(gaussian(), 1e-3), gaussian().sample(None, 500, torch.Generator().manual_seed(1)), 5)
    assert infos[-1].acceptance_rate.mean() > 0.99


def test_info_matches_the_state_and_rejections_keep_the_old_state() -> None:
    algorithm = mala(gaussian(), 2.0)  # a large step: many rejections
    state = algorithm.init(gaussian().sample(None, 256, torch.Generator().manual_seed(0)))
    new_state, info = algorithm.step(state, torch.Generator().manual_seed(1))
    rejected = ~info.accepted
    assert info.accepted.dtype == torch.bool and rejected.any() and info.accepted.any()
    assert torch.equal(new_state.x[rejected], state.x[rejected])
    assert not torch.equal(new_state.x[info.accepted], state.x[info.accepted])
    assert torch.allclose(new_state.energy, gaussian()(new_state.x))
    assert torch.allclose(new_state.grad, -gaussian().score(new_state.x))
    assert torch.allclose(info.grad_norm, new_state.grad.norm(dim=1))
    # The reported rate is min(1, exp(log α)) of the MH ratio, recomputed here by hand from the
    # same noise draw: y = x - ε∇E(x) + √(2ε) ξ, log q(y | x) = -|y - x + ε∇E(x)|² / 4ε.
    eps = 2.0
    x, grad_x = state.x, -gaussian().score(state.x)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    y = x - eps * grad_x + math.sqrt(2.0 * eps) * noise
    grad_y = -gaussian().score(y)
    log_forward = -(y - x + eps * grad_x).square().sum(1) / (4 * eps)
    log_backward = -(x - y + eps * grad_y).square().sum(1) / (4 * eps)
    log_ratio = gaussian()(x) - gaussian()(y) + log_backward - log_forward
    assert torch.allclose(info.acceptance_rate, log_ratio.exp().clamp(max=1.0), rtol=1e-4, atol=1e-6)
    assert torch.equal(new_state.x[info.accepted], y[info.accepted])
    # A chain whose acceptance probability is 1 is always accepted.
    assert info.accepted[info.acceptance_rate == 1].all()


def test_nan_energy_proposals_are_rejected() -> None:
    class NaNAboveOne(torch.nn.Module):
        def forward(self, x, c=None):
            energy = 0.5 * x.square().sum(1)
            return torch.where(x[:, 0] > 1.0, torch.full_like(energy, math.nan), energy)

    x, infos = run(mala(NaNAboveOne(), 0.5), torch.zeros(500, 1), 50)
    assert x.max() <= 1.0 and torch.isfinite(x).all()


def test_same_seed_same_chain_and_no_gradient_leaks() -> None:
    energy = MLPEnergy(3, hidden=(16,))
    start = torch.randn(8, 3, requires_grad=True)
    first, _ = run(mala(energy, 0.05), start, 20, seed=7)
    second, _ = run(mala(energy, 0.05), start, 20, seed=7)
    third, _ = run(mala(energy, 0.05), start, 20, seed=8)
    assert torch.equal(first, second) and not torch.equal(first, third)
    assert not first.requires_grad and first.grad_fn is None
    assert all(p.grad is None for p in energy.parameters())


def test_schedule_and_errors() -> None:
    calls: list[int] = []
    run(mala(gaussian(), 1.0, step_size_schedule=lambda step: calls.append(step) or 0.1), torch.zeros(4, 3, dtype=torch.float64), 3)
    assert calls == [0, 1, 2]

    class ColumnEnergy(torch.nn.Module):
        def forward(self, x, c=None):
            return x.square().sum(1, keepdim=True)

    with pytest.raises(EnergyOutputError, match=r"mala.init.*shape \(4, 1\), expected \(4,\)"):
        mala(ColumnEnergy(), 0.1).init(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        mala(gaussian(), -1.0)
    with pytest.raises(ValueError, match="check_every"):
        mala(gaussian(), 0.1, check_every=0)


def test_the_condition_travels_with_the_chain() -> None:
    class CentredAtCondition(torch.nn.Module):
        def forward(self, x, c=None):
            return 0.5 * (x - c).square().sum(1)

    # Two conditions, 2000 chains each, target N(c, I): mean tolerance 4 · sqrt(1 / 2000) ≈ 0.09.
    condition = torch.tensor([[3.0, 0.0], [-2.0, 1.0]]).repeat_interleave(2000, dim=0)
    x, _ = run_chain(mala(CentredAtCondition(), 0.5), torch.zeros(4000, 2), 100, torch.Generator().manual_seed(3), c=condition)
    for rows, centre in ((slice(0, 2000), [3.0, 0.0]), (slice(2000, 4000), [-2.0, 1.0])):
        assert_within(x[rows].mean(0), torch.tensor(centre), mean_tolerance(torch.ones(2), 2000), f"mean under c = {centre}")
    with pytest.raises(ValueError, match="condition batch"):
        mala(CentredAtCondition(), 0.5).init(torch.zeros(3, 2), torch.zeros(4, 2))
