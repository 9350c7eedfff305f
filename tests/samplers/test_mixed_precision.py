"""Langevin and MALA under bfloat16 autocast: float32 chains with the statistics of float32 chains.

Autocast (what Lightning's ``precision="bf16-mixed"`` turns on) computes the energies' matrix
products in bfloat16; the samplers hand energies and gradients back in the chain's dtype, so the
noise, the update and the Metropolis–Hastings test stay in float32. On CPU, where bfloat16
autocast exists too, the final states of ``n = 4000`` parallel chains after burn-in are ``n``
independent draws (ESS = ``n``), and tolerances are ``z = 4`` standard errors
(``tests/stats.py``): bfloat16 rounding of the precision matrix (relative ``2^-9``) moves the
covariance by far less than one standard error (``4 · sqrt(2 / 4000) ≈ 9 %`` relative).
"""

from __future__ import annotations

import math

import torch

from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.mlp import MLPEnergy
from structebm.samplers.base import run_chain
from structebm.samplers.langevin import langevin
from structebm.samplers.mala import mala
from tests.samplers.test_langevin import ula_stationary_covariance
from tests.stats import Z_SCORE, assert_within, covariance_tolerance, gaussian_covariance_tolerance, mean_tolerance

COVARIANCE = torch.tensor([[1.0, 0.6, 0.2], [0.6, 1.5, -0.3], [0.2, -0.3, 0.8]])
MEAN = torch.tensor([0.5, -1.0, 2.0])
NUM_CHAINS = 4000


def gaussian() -> GaussianEnergy:
    return GaussianEnergy.from_covariance(MEAN, COVARIANCE)


def chains(algorithm, start: torch.Tensor, num_steps: int, bf16: bool, seed: int = 0):
    """Final states and step infos of ``num_steps`` transitions, under bfloat16 autocast or not."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        x, infos = run_chain(algorithm, start, num_steps, torch.Generator().manual_seed(seed), keep_infos=True)
    return x, infos


def assert_moments(x: torch.Tensor, mean: torch.Tensor, covariance: torch.Tensor, what: str, z: float = Z_SCORE) -> None:
    n = x.shape[0]
    assert_within(x.mean(0), mean, mean_tolerance(covariance.diagonal(), n, z), f"{what} mean")
    assert_within(torch.cov(x.T), covariance, gaussian_covariance_tolerance(covariance, n, z), f"{what} covariance")


def test_autocast_lowers_the_energy_but_not_the_chain() -> None:
    energy = gaussian()
    x = MEAN.expand(8, 3).clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert energy(x).dtype == torch.bfloat16 and energy.score(x).dtype == torch.bfloat16  # autocast is active
    for algorithm in (langevin(energy, 0.1), mala(energy, 0.1)):
        end, infos = chains(algorithm, x, 3, bf16=True)
        assert end.dtype == torch.float32
        assert all(info.energy.dtype == torch.float32 and info.grad_norm.dtype == torch.float32 for info in infos)


def test_ula_under_bf16_has_the_float32_stationary_law() -> None:
    # ε = 0.2, 300 steps from an offset of 5: stationary (see test_langevin.py); the same law in both precisions.
    start = (MEAN + 5.0).expand(NUM_CHAINS, 3).clone()
    expected = ula_stationary_covariance(COVARIANCE.double(), 0.2).float()
    x16, _ = chains(langevin(gaussian(), 0.2), start, 300, bf16=True)
    x32, _ = chains(langevin(gaussian(), 0.2), start, 300, bf16=False, seed=1)
    assert_moments(x16, MEAN, expected, "ULA bf16")
    assert_moments(x32, MEAN, expected, "ULA float32")
    # Two independent samples: their difference has sqrt(2) times one sample's standard error.
    assert_moments(x16, x32.mean(0), expected, "ULA bf16 against float32", z=Z_SCORE * math.sqrt(2))


def test_mala_under_bf16_stays_exact_and_accepts_as_often() -> None:
    # ε = 0.5, where ULA is visibly biased (test_mala.py): MALA's MH test keeps the exact law under bf16 too.
    start = (MEAN + 3.0).expand(NUM_CHAINS, 3).clone()
    x16, infos16 = chains(mala(gaussian(), 0.5), start, 400, bf16=True)
    x32, infos32 = chains(mala(gaussian(), 0.5), start, 400, bf16=False, seed=1)
    assert_moments(x16, MEAN, COVARIANCE, "MALA bf16")
    assert_moments(x32, MEAN, COVARIANCE, "MALA float32")
    # Acceptance probability of the last step, averaged over independent chains: Var ≤ its sample variance.
    rate16, rate32 = infos16[-1].acceptance_rate, infos32[-1].acceptance_rate
    spread = math.sqrt((rate16.var() + rate32.var()).item() / NUM_CHAINS)
    assert abs(rate16.mean().item() - rate32.mean().item()) <= Z_SCORE * spread, (rate16.mean(), rate32.mean())


def test_mlp_energy_gradient_under_bf16_gives_the_float32_law() -> None:
    # MLPEnergy computes its gradient itself (no autograd); under autocast that sweep runs in bfloat16.
    # Target: a random SiLU MLP plus |x|²/2 (a proper law with unknown moments); compare the two precisions.
    torch.manual_seed(0)
    confined = _Confined(MLPEnergy(2, (32, 32)))
    start = torch.randn(NUM_CHAINS, 2, generator=torch.Generator().manual_seed(3))
    x16, _ = chains(langevin(confined, 0.05), start, 400, bf16=True)
    x32, _ = chains(langevin(confined, 0.05), start, 400, bf16=False, seed=1)
    tolerance = math.sqrt(2) * mean_tolerance(x32.var(0), NUM_CHAINS)
    assert_within(x16.mean(0), x32.mean(0), tolerance, "MLP ULA bf16 against float32 mean")
    cov_tolerance = math.sqrt(2) * covariance_tolerance(x32, NUM_CHAINS)
    assert_within(torch.cov(x16.T), torch.cov(x32.T), cov_tolerance, "MLP ULA bf16 against float32 covariance")


class _Confined(torch.nn.Module):
    """``E(x) = MLP(x) + |x|² / 2`` with the gradient from the MLP's own chain rule plus ``x``."""

    def __init__(self, mlp: MLPEnergy) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor, c=None) -> torch.Tensor:
        return self.mlp(x) + 0.5 * x.square().sum(dim=1)

    def energy_and_grad(self, x: torch.Tensor, c=None) -> tuple[torch.Tensor, torch.Tensor]:
        values, grad = self.mlp.energy_and_grad(x)
        return values + 0.5 * x.square().sum(dim=1), grad + x
