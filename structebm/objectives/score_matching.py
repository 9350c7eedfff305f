"""Score matching for continuous states: fit :math:`s_\\theta = -\\nabla_x E_\\theta` to the data score.

Neither objective needs samples from the model or its normaliser.

- :class:`DenoisingScoreMatching` (Vincent, 2011) matches the score of the data blurred by
  Gaussian noise of scale :math:`\\sigma`; with :math:`\\tilde x = x + \\sigma\\varepsilon`,

  .. math::
      L = \\tfrac12 \\, \\mathbb{E} \\lVert \\sigma s_\\theta(\\tilde x) + \\varepsilon \\rVert^2,

  (the :math:`\\sigma^2`-weighted form), whose minimiser is the score of
  :math:`p_{\\text{data}} * \\mathcal{N}(0, \\sigma^2 I)`.

- :class:`SlicedScoreMatching` (Song et al., 2019) matches the data score itself along random
  projections :math:`v \\sim \\mathcal{N}(0, I)`,

  .. math::
      L = \\mathbb{E}_{x, v}\\left[ v^\\top \\nabla_x (v^\\top s_\\theta(x)) + \\tfrac12 (v^\\top s_\\theta(x))^2 \\right],

  where the variance-reduced form replaces :math:`\\tfrac12 (v^\\top s)^2` by its expectation
  :math:`\\tfrac12 \\lVert s \\rVert^2`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from structebm.energies.base import batch_size_of, check_energy_output, score
from structebm.objectives.base import LossOutput, check_data, split_batch
from structebm.objectives.seeded import SeededObjective

__all__ = ["DenoisingScoreMatching", "SlicedScoreMatching"]


def _check_continuous(x: Any, where: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        got = f"{type(x).__name__} {getattr(x, 'dtype', '')} {tuple(getattr(x, 'shape', ()))}"
        raise TypeError(f"{where}: needs continuous data, a floating-point tensor [B, *event]; got {got}")
    check_data(x, where)


def _energy_and_score(energy: nn.Module, x: Tensor, c: Any, where: str) -> tuple[Tensor, Tensor]:
    values, data_score = score(energy, x, c, create_graph=True)
    check_energy_output(values, batch_size_of(x), f"{where}: energy")
    if data_score.shape != x.shape:
        raise ValueError(f"{where}: the score has shape {tuple(data_score.shape)}, expected {tuple(x.shape)}")
    return values, data_score


class DenoisingScoreMatching(SeededObjective):
    """Denoising score matching at one noise scale ``sigma``.

    Args:
        sigma: standard deviation of the Gaussian perturbation, positive.
        generator_seed: seed of the generator drawing the perturbations.

    Shapes:
        - batch: ``x [B, *event]`` (floating point) or ``(x, c)``.
        - returns a scalar loss; metrics ``energy_data`` (at the perturbed points), ``score_norm``.
    """

    def __init__(self, sigma: float, generator_seed: int = 0) -> None:
        super().__init__(generator_seed)
        if not sigma > 0:
            raise ValueError(f"DenoisingScoreMatching: sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def bind(self, energy: nn.Module) -> None:
        self.bind_generator(energy)

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        where = "DenoisingScoreMatching"
        x, c = split_batch(batch)
        _check_continuous(x, where)
        eps = torch.randn(x.shape, generator=self.generator_for(x.device), device=x.device, dtype=x.dtype)
        x_noisy = (x.detach() + self.sigma * eps).requires_grad_(True)
        values, noisy_score = _energy_and_score(energy, x_noisy, c, where)
        residual = (self.sigma * noisy_score + eps).flatten(1)
        loss = 0.5 * residual.pow(2).sum(-1).mean()
        return LossOutput(
            loss,
            {"energy_data": values.detach().mean(), "score_norm": noisy_score.detach().flatten(1).norm(dim=1).mean()},
        )


class SlicedScoreMatching(SeededObjective):
    """Sliced score matching with Gaussian projections.

    Args:
        num_projections: projections :math:`v` per data point, at least 1.
        variance_reduction: use :math:`\\tfrac12\\lVert s\\rVert^2` instead of :math:`\\tfrac12 (v^\\top s)^2`.
        generator_seed: seed of the generator drawing the projections.

    Shapes:
        - batch: ``x [B, *event]`` (floating point) or ``(x, c)``.
        - returns a scalar loss; metrics ``energy_data``, ``score_norm``.
    """

    def __init__(self, num_projections: int = 1, variance_reduction: bool = True, generator_seed: int = 0) -> None:
        super().__init__(generator_seed)
        if int(num_projections) != num_projections or num_projections < 1:
            raise ValueError(f"SlicedScoreMatching: num_projections must be a positive integer, got {num_projections}")
        self.num_projections = int(num_projections)
        self.variance_reduction = bool(variance_reduction)

    def bind(self, energy: nn.Module) -> None:
        self.bind_generator(energy)

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        where = "SlicedScoreMatching"
        x, c = split_batch(batch)
        _check_continuous(x, where)
        m = self.num_projections
        x_rep = x.detach().repeat_interleave(m, dim=0).requires_grad_(True)
        c_rep = c.repeat_interleave(m, dim=0) if isinstance(c, Tensor) else c
        v = torch.randn(x_rep.shape, generator=self.generator_for(x.device), device=x.device, dtype=x.dtype)
        with torch.enable_grad():
            values, data_score = _energy_and_score(energy, x_rep, c_rep, where)
            projected = (data_score * v).flatten(1).sum(-1)
            (grad_projected,) = torch.autograd.grad(projected.sum(), x_rep, create_graph=True)
        divergence_term = (grad_projected * v).flatten(1).sum(-1)
        if self.variance_reduction:
            norm_term = 0.5 * data_score.flatten(1).pow(2).sum(-1)
        else:
            norm_term = 0.5 * projected.pow(2)
        loss = (divergence_term + norm_term).mean()
        return LossOutput(
            loss,
            {"energy_data": values.detach().mean(), "score_norm": data_score.detach().flatten(1).norm(dim=1).mean()},
        )
