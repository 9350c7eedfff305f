"""Langevin inpainting: observed coordinates never move, a seed reproduces the chain, and the
free coordinates follow the Gaussian conditional law (with ULA's known step-size bias)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from structebm.energies.gaussian import GaussianEnergy
from structebm.samplers.base import run_chain
from structebm.samplers.inpainting import inpainting_langevin

from tests.stats import Z_SCORE


class QuadraticImageEnergy(nn.Module):
    """``E(x) = 0.5 * sum((x - 0.3)^2)`` over images, with autograd scores."""

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * (x - 0.3).pow(2).flatten(1).sum(dim=1)


def test_observed_pixels_never_change_and_free_pixels_move():
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand((6, 1, 8, 8), generator=generator) * 2 - 1
    observed = torch.rand((6, 1, 8, 8), generator=generator) < 0.5  # one mask per chain
    sampler = inpainting_langevin(QuadraticImageEnergy(), observed, step_size=0.1, bounds=(-1.0, 1.0))
    state = sampler.init(x0)
    for _ in range(25):
        state, info = sampler.step(state, generator)
        assert torch.equal(state.x[observed], x0[observed])
    assert (state.x[~observed] != x0[~observed]).all()
    assert state.x.min() >= -1.0 and state.x.max() <= 1.0
    assert torch.allclose(info.extra["free_fraction"], (~observed).flatten(1).float().mean(1))
    assert not state.x.requires_grad


def test_a_seed_reproduces_the_chain():
    x0 = torch.zeros((4, 1, 5, 5))
    observed = torch.zeros((1, 5, 5), dtype=torch.bool)
    observed[:, :2] = True  # the top two rows, shared by every chain
    sampler = inpainting_langevin(QuadraticImageEnergy(), observed, step_size=0.05, noise_scale=0.02)
    first, _ = run_chain(sampler, x0, 10, torch.Generator().manual_seed(7))
    second, _ = run_chain(sampler, x0, 10, torch.Generator().manual_seed(7))
    other, _ = run_chain(sampler, x0, 10, torch.Generator().manual_seed(8))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_free_coordinate_follows_the_gaussian_conditional():
    # Unit-variance Gaussian with correlation rho, x_0 observed at a: x_1 | x_0 = a ~ N(rho a, 1 - rho^2).
    # ULA with step eps on a 1-D Gaussian of precision lam has stationary law
    # N(mean, 1 / (lam (1 - eps lam / 2))) (solve v = (1 - eps lam)^2 v + 2 eps).
    rho, a, eps, n = 0.8, 1.5, 0.05, 4000
    covariance = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    energy = GaussianEnergy(torch.zeros(2, dtype=torch.float64), torch.linalg.inv(covariance))
    observed = torch.tensor([True, False])
    x0 = torch.zeros((n, 2), dtype=torch.float64)
    x0[:, 0] = a
    # (1 - eps lam)^300 with eps lam = 0.139 is below 1e-19: the chains forget their start.
    samples, _ = run_chain(inpainting_langevin(energy, observed, step_size=eps), x0, 300, torch.Generator().manual_seed(3))
    assert torch.equal(samples[:, 0], x0[:, 0])
    lam = 1 / (1 - rho**2)
    mean, variance = rho * a, 1 / (lam * (1 - eps * lam / 2))
    # n independent chains: standard errors sqrt(v / n) for the mean and v sqrt(2 / (n - 1)) for the variance.
    assert samples[:, 1].mean().item() == pytest.approx(mean, abs=Z_SCORE * math.sqrt(variance / n))
    assert samples[:, 1].var().item() == pytest.approx(variance, abs=Z_SCORE * variance * math.sqrt(2 / (n - 1)))


def test_bad_input_is_a_clear_error():
    energy = QuadraticImageEnergy()
    with pytest.raises(TypeError, match="observed must be a boolean Tensor"):
        inpainting_langevin(energy, torch.ones(1, 4, 4), step_size=0.1)
    with pytest.raises(ValueError, match="step_size"):
        inpainting_langevin(energy, torch.ones(1, 4, 4, dtype=torch.bool), step_size=-1.0)
    sampler = inpainting_langevin(energy, torch.ones(1, 3, 3, dtype=torch.bool), step_size=0.1, bounds=(-1.0, 1.0))
    with pytest.raises(ValueError, match=r"observed mask has shape \(1, 3, 3\); expected the event shape \(1, 4, 4\)"):
        sampler.init(torch.zeros(2, 1, 4, 4))
    free = inpainting_langevin(energy, torch.zeros(1, 2, 2, dtype=torch.bool), step_size=0.1, bounds=(-1.0, 1.0))
    with pytest.raises(ValueError, match="outside the bounds"):
        free.init(torch.full((2, 1, 2, 2), 3.0))
    with pytest.raises(ValueError, match="NaN"):
        free.init(torch.full((2, 1, 2, 2), float("nan")))
