"""The normalised density of a 2-D energy by quadrature on a grid, and exact samples of it.

On the square :math:`[-b, b]^2` with a ``G × G`` grid of points :math:`x_{ij}` (spacing
:math:`h = 2b / (G - 1)`), the probability of the cell around :math:`x_{ij}` is

.. math::
    p_{ij} = \\frac{e^{-E(x_{ij})}}{\\sum_{kl} e^{-E(x_{kl})}},

which is the model's density times the cell area :math:`h^2` up to the quadrature error
(and the mass outside the square). Drawing a cell from :math:`p` and a uniform offset inside
it samples the model without any Markov chain, so a sample-based score of these draws
measures the model alone.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["grid_density", "sample_grid_density"]


def grid_density(energy: Callable[[Tensor], Tensor], box: float, grid_size: int) -> tuple[Tensor, Tensor, float]:
    """Grid points ``[G², 2]``, the probability of each cell ``[G²]`` (float64) and the cell area.

    ``energy`` maps points ``[n, 2]`` to energies ``[n]``; it is evaluated without gradients,
    4,096 points at a time.
    """
    if not box > 0 or isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 2:
        raise ValueError(f"grid_density: need box > 0 and an integer grid_size >= 2, got box={box}, grid_size={grid_size}")
    axis = torch.linspace(-box, box, grid_size)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    with torch.no_grad():
        log_unnormalised = -torch.cat([energy(chunk) for chunk in points.split(4096)])
    if log_unnormalised.shape != (points.shape[0],):
        raise ValueError(f"grid_density: the energy must return one value per point, got {tuple(log_unnormalised.shape)}")
    mass = torch.softmax(log_unnormalised.double(), dim=0)
    cell_area = (axis[1] - axis[0]).item() ** 2
    return points, mass, cell_area


def sample_grid_density(points: Tensor, mass: Tensor, cell_area: float, n: int, generator: torch.Generator) -> Tensor:
    """``n`` draws of the grid density: a cell from ``mass``, then a uniform point in the cell.

    Shapes:
        - points: ``[G², 2]``; mass: ``[G²]``; returns ``[n, 2]``
    """
    cells = torch.multinomial(mass.float(), n, replacement=True, generator=generator)
    jitter = (torch.rand(n, 2, generator=generator) - 0.5) * cell_area**0.5
    return points[cells] + jitter
