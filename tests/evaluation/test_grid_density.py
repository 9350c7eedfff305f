"""Grid quadrature of a 2-D density and exact draws from it, on a Gaussian with known moments."""

from __future__ import annotations

import math

import pytest
import torch

from structebm.evaluation.grid_density import grid_density, sample_grid_density

SIGMA = 0.8


def gaussian_energy(x: torch.Tensor) -> torch.Tensor:
    return x.square().sum(dim=1) / (2 * SIGMA**2)


def test_cell_masses_have_the_gaussian_moments():
    points, mass, cell_area = grid_density(gaussian_energy, box=5.0, grid_size=201)
    assert mass.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert cell_area == pytest.approx((10.0 / 200) ** 2, rel=1e-5)  # float32 grid
    second_moment = (mass[:, None] * points.double().square()).sum(dim=0)
    torch.testing.assert_close(second_moment, torch.full((2,), SIGMA**2, dtype=torch.float64), rtol=1e-3, atol=0)
    centre = points.square().sum(dim=1).argmin()
    assert mass[centre].item() == pytest.approx(cell_area / (2 * math.pi * SIGMA**2), rel=1e-3)


def test_draws_have_the_variance_of_the_grid_plus_the_jitter():
    points, mass, cell_area = grid_density(gaussian_energy, box=5.0, grid_size=101)
    n = 20_000
    draws = sample_grid_density(points, mass, cell_area, n, torch.Generator().manual_seed(0)).double()
    expected = SIGMA**2 + cell_area / 12  # uniform jitter over a cell of side sqrt(cell_area)
    # the variance of a sample variance of a Gaussian is 2 sigma^4 / (n - 1)
    tolerance = 4 * math.sqrt(2 / (n - 1)) * expected
    for axis in range(2):
        assert abs(draws[:, axis].var().item() - expected) < tolerance
        assert abs(draws[:, axis].mean().item()) < 4 * math.sqrt(expected / n)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="grid_size >= 2"):
        grid_density(gaussian_energy, box=1.0, grid_size=1)
    with pytest.raises(ValueError, match="one value per point"):
        grid_density(lambda x: x, box=1.0, grid_size=4)
