"""Unadjusted Langevin: stationary law on Gaussians and a mixture, options, contract and errors.

Parallel chains: after burn-in the final states of ``n`` independent chains are ``n``
independent draws from the chain's law at that time, so ESS = ``n`` and a sample mean has
standard error ``sqrt(Var / n)`` (tolerances: ``tests/stats.py``, ``z = 4``).
"""

import math

import pytest
import torch

from structebm.energies.base import EnergyOutputError
from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.mixture import GaussianMixtureEnergy
from structebm.energies.mlp import MLPEnergy
from structebm.samplers.base import ChainDivergedError, run_chain
from structebm.samplers.langevin import langevin
from tests.stats import (
    assert_within,
    covariance_tolerance,
    effective_sample_size,
    gaussian_covariance_tolerance,
    integrated_autocorrelation_time,
    mean_tolerance,
)

COVARIANCE = torch.tensor([[1.0, 0.6, 0.2], [0.6, 1.5, -0.3], [0.2, -0.3, 0.8]], dtype=torch.float64)
MEAN = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
NUM_CHAINS = 4000




def gaussian() -> GaussianEnergy:
    return GaussianEnergy.from_covariance(MEAN, COVARIANCE)


def ula_stationary_covariance(covariance: torch.Tensor, step_size: float, temperature: float = 1.0) -> torch.Tensor:
    """ULA on N(μ, Σ): x' - μ = (I - εP)(x - μ) + σξ, so S = A S A + σ² I with A = I - εP.

    A and P commute, so S = σ² (I - A²)⁻¹ = σ² (2εP - ε²P²)⁻¹ = T · Σ (I - εP/2)⁻¹ with
    T = σ² / (2ε) (T = 1 for σ = √(2ε)).
    """
    precision = torch.linalg.inv(covariance)
    return temperature * covariance @ torch.linalg.inv(torch.eye(covariance.shape[0], dtype=covariance.dtype) - step_size * precision / 2)


def final_states(algorithm, start: torch.Tensor, num_steps: int, seed: int = 0) -> torch.Tensor:
    x, _ = run_chain(algorithm, start, num_steps, torch.Generator().manual_seed(seed))
    return x


def assert_gaussian_moments(x: torch.Tensor, mean: torch.Tensor, covariance: torch.Tensor, what: str) -> None:
    assert_within(x.mean(0), mean, mean_tolerance(covariance.diagonal(), x.shape[0]), f"{what} mean")
    assert_within(torch.cov(x.T), covariance, gaussian_covariance_tolerance(covariance, x.shape[0]), f"{what} covariance")


def test_ula_on_a_correlated_gaussian_has_the_analytic_biased_stationary_law() -> None:
    # ε = 0.2; the slowest mode contracts by 1 - ε λ_min(P) ≈ 0.9 per step, so after 300 steps
    # an offset start of size ~5 has decayed to ~1e-13: the chains are at stationarity.
    step_size = 0.2
    start = MEAN + 5.0
    x = final_states(langevin(gaussian(), step_size), start.expand(NUM_CHAINS, 3).clone(), 300)
    expected = ula_stationary_covariance(COVARIANCE, step_size)
    assert_gaussian_moments(x, MEAN, expected, "ULA ε=0.2")


def test_ula_with_a_small_step_matches_the_target() -> None:
    # Bias of the variance ≈ ε/(2σ²) relative ≤ 0.01 / (2 · 0.5) = 1% (σ² ≥ 0.5 on every eigen-direction
    # here); tolerance is 4 · sqrt(2 / 4000) ≈ 9% relative, so the target itself must be matched.
    step_size = 0.01
    start = MEAN + torch.randn(NUM_CHAINS, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = final_states(langevin(gaussian(), step_size), start, 1500)
    assert_gaussian_moments(x, MEAN, COVARIANCE, "ULA ε=0.01")


def test_ula_on_a_gaussian_mixture_via_autograd() -> None:
    mixture = GaussianMixtureEnergy(
        torch.tensor([0.5, 0.3, 0.2]), torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, 1.5]]), torch.tensor([0.5, 0.4, 0.3])
    )
    start = mixture.sample(None, NUM_CHAINS, torch.Generator().manual_seed(2)) + 1.0  # a shifted start
    x = final_states(langevin(mixture, 0.01), start, 1000)
    exact = mixture.sample(None, 200_000, torch.Generator().manual_seed(3))  # for the covariance-entry spread only
    assert_within(x.mean(0), mixture.mean(), mean_tolerance(mixture.covariance().diagonal(), NUM_CHAINS), "ULA mixture mean")
    tolerance = covariance_tolerance(exact, NUM_CHAINS)
    assert_within(torch.cov(x.T), mixture.covariance(), tolerance, "ULA mixture covariance")


def test_noise_scale_samples_the_tempered_law() -> None:
    # σ² / (2ε) = T: with ε = 0.2 and T = 2 the stationary covariance doubles the ε-biased one.
    step_size, temperature = 0.2, 2.0
    algorithm = langevin(gaussian(), step_size, noise_scale=math.sqrt(2 * step_size * temperature))
    x = final_states(algorithm, MEAN.expand(NUM_CHAINS, 3).clone(), 300)
    assert_gaussian_moments(x, MEAN, ula_stationary_covariance(COVARIANCE, step_size, temperature), "tempered ULA")


def test_ula_autocorrelation_time_on_a_1d_gaussian() -> None:
    # On N(0, 1), ULA is AR(1) with ρ = 1 - ε, so τ = (1 + ρ) / (1 - ρ) = 9 for ε = 0.2.
    # Sokal: Var[τ̂] ≈ 2(2M + 1) τ² / T with window M ≈ 5τ; for T = 2000 that is a 30% relative
    # sd per chain, 3.8% for the mean over 64 chains; 4 sd ≈ 15%.
    step_size, num_chains, length = 0.2, 64, 2000
    algorithm = langevin(GaussianEnergy(torch.zeros(1), torch.eye(1)), step_size)
    stationary_sd = math.sqrt(1.0 / (1.0 - step_size / 2))
    state = algorithm.init(stationary_sd * torch.randn(num_chains, 1, generator=torch.Generator().manual_seed(4)))
    generator = torch.Generator().manual_seed(5)
    trace = []
    for _ in range(length):
        state, _ = algorithm.step(state, generator)
        trace.append(state.x[:, 0])
    series = torch.stack(trace)
    tau = integrated_autocorrelation_time(series).mean().item()
    assert abs(tau - 9.0) <= 0.15 * 9.0, f"τ = {tau}, expected 9"
    assert torch.allclose(effective_sample_size(series), length / integrated_autocorrelation_time(series))


def test_grad_clip_bounds_each_noiseless_move() -> None:
    algorithm = langevin(gaussian(), 0.1, noise_scale=0.0, grad_clip=0.5)
    state = algorithm.init(torch.full((16, 3), 50.0, dtype=torch.float64))
    new_state, info = algorithm.step(state, torch.Generator().manual_seed(0))
    moves = (new_state.x - state.x).norm(dim=1)
    assert torch.allclose(moves, torch.full_like(moves, 0.1 * 0.5))  # the raw gradient is far larger than 0.5
    assert (info.grad_norm > 10).all()


def test_bounds_keep_every_state_in_the_box() -> None:
    x = final_states(langevin(gaussian(), 0.5, bounds=(-0.5, 0.25)), torch.zeros(500, 3, dtype=torch.float64), 50)
    assert x.min() >= -0.5 and x.max() <= 0.25
    assert (x == 0.25).any()  # the target's mass beyond the box piles up on the faces


def test_schedule_is_called_with_each_transition_index() -> None:
    calls: list[int] = []

    def schedule(step: int) -> float:
        calls.append(step)
        return 0.1 / (1 + step)

    run_chain(langevin(gaussian(), 1.0, step_size_schedule=schedule), torch.zeros(4, 3, dtype=torch.float64), 5, torch.Generator())
    assert calls == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"step_size_schedule\(0\)"):
        run_chain(langevin(gaussian(), 1.0, step_size_schedule=lambda step: -1.0), torch.zeros(4, 3), 1, torch.Generator())


def test_same_seed_same_chain_and_no_gradient_leaks() -> None:
    energy = MLPEnergy(3, hidden=(16,))
    start = torch.randn(8, 3, requires_grad=True)
    first = final_states(langevin(energy, 0.05), start, 20, seed=7)
    second = final_states(langevin(energy, 0.05), start, 20, seed=7)
    third = final_states(langevin(energy, 0.05), start, 20, seed=8)
    assert torch.equal(first, second) and not torch.equal(first, third)
    assert not first.requires_grad and first.grad_fn is None
    assert all(p.grad is None for p in energy.parameters())
    state, info = langevin(energy, 0.05).step(langevin(energy, 0.05).init(start), torch.Generator())
    assert state.step == 1 and state.grad is None and state.energy is None  # evaluated lazily, at the next step
    assert not info.energy.requires_grad and info.grad_norm.grad_fn is None
    assert info.energy.shape == info.grad_norm.shape == info.acceptance_rate.shape == (8,)
    assert (info.acceptance_rate == 1).all()


def test_parameters_are_frozen_only_while_the_chain_evaluates_the_energy() -> None:
    class RecordingEnergy(MLPEnergy):
        def forward(self, x, c=None):
            self.seen = [p.requires_grad for p in self.parameters()]
            if getattr(self, "fail", False):
                raise RuntimeError("energy failed")
            return super().forward(x, c)

    energy = RecordingEnergy(3, hidden=(8,))
    energy.net[0].bias.requires_grad_(False)  # a parameter frozen by the user stays frozen
    before = [p.requires_grad for p in energy.parameters()]
    algorithm = langevin(energy, 0.05)
    algorithm.step(algorithm.init(torch.randn(4, 3)), torch.Generator())
    assert energy.seen == [False] * len(before)
    assert [p.requires_grad for p in energy.parameters()] == before
    energy.fail = True
    with pytest.raises(RuntimeError, match="energy failed"):
        algorithm.step(algorithm.init(torch.randn(4, 3)), torch.Generator())
    assert [p.requires_grad for p in energy.parameters()] == before


def test_a_diverging_chain_names_the_step() -> None:
    # ε P = 1000 on N(0, 1): |x_t| ≈ 999^t (the noise is negligible), and E = x²/2 exceeds the
    # float32 maximum 3.4e38 once |x| > 2.6e19, i.e. first at t = 7.
    algorithm = langevin(GaussianEnergy(torch.zeros(1), torch.eye(1)), 1000.0, check_every=1)
    with pytest.raises(ChainDivergedError, match=r"diverged at step 7\b"):
        run_chain(algorithm, torch.ones(4, 1), 50, torch.Generator())
    # With the default check every 10 steps it is caught at the first check after step 7.
    algorithm = langevin(GaussianEnergy(torch.zeros(1), torch.eye(1)), 1000.0)
    with pytest.raises(ChainDivergedError, match=r"diverged at step 10\b"):
        run_chain(algorithm, torch.ones(4, 1), 50, torch.Generator())


def test_wrong_energy_output_and_bad_arguments_give_clear_errors() -> None:
    class ColumnEnergy(torch.nn.Module):
        def forward(self, x, c=None):
            return x.square().sum(1, keepdim=True)

    with pytest.raises(EnergyOutputError, match=r"langevin.step 0.*shape \(4, 1\), expected \(4,\)"):
        algorithm = langevin(ColumnEnergy(), 0.1)
        algorithm.step(algorithm.init(torch.zeros(4, 2)), torch.Generator())
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        langevin(gaussian(), 0.0)
    with pytest.raises(ValueError, match="low < high"):
        langevin(gaussian(), 0.1, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"NaN or infinite values in row\(s\) \[1\]"):
        langevin(gaussian(), 0.1).init(torch.tensor([[0.0, 0.0, 0.0], [math.nan, 0.0, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="outside the bounds"):
        langevin(gaussian(), 0.1, bounds=(-1.0, 1.0)).init(torch.full((2, 3), 2.0, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Generator"):
        algorithm = langevin(gaussian(), 0.1)
        algorithm.step(algorithm.init(torch.zeros(2, 3, dtype=torch.float64)), None)
    with pytest.raises(ValueError, match="expected x of shape"):
        algorithm = langevin(gaussian(), 0.1)
        algorithm.step(algorithm.init(torch.zeros(2, 5, dtype=torch.float64)), torch.Generator())
