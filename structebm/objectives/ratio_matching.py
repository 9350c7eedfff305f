"""Ratio matching and pseudo-likelihood: MCMC-free fitting of categorical and graph energies.

The ratio of the model's probabilities of a state ``x`` and a single-site neighbour
``y = x_{s←v}`` (:mod:`structebm.objectives.site_differences`) needs no normaliser:
:math:`p_\\theta(x)/p_\\theta(y) = e^{\\Delta}`, :math:`\\Delta = E_\\theta(y) - E_\\theta(x)`. Two
objectives use only these differences at data points, so training draws no model samples.

**Ratio matching** (Hyvärinen, "Some extensions of score matching", 2007, for binary data;
here generalised to every legal value of a categorical site, which the argument below allows) with
:math:`g(u) = 1/(1+u)`, so :math:`g(p_\\theta(x)/p_\\theta(y)) = \\sigma(-\\Delta)`:

.. math::
    J(\\theta) = \\mathbb{E}_{x \\sim p_{\\text{data}}} \\sum_s \\sum_{v \\in \\mathcal{V}_s(x),\\, v \\ne x_s}
        \\sigma\\bigl(-\\Delta_{sv}(x)\\bigr)^2 .

It equals, up to a constant, :math:`\\mathbb{E}_x \\sum_{y} [g(p_d(x)/p_d(y)) - g(p_\\theta(x)/p_\\theta(y))]^2`:
the cross term :math:`\\sum_x p_d(x) g(p_d(x)/p_d(y)) g(\\cdot)` is constant because
:math:`p_d(x) g(p_d(x)/p_d(y)) = p_d(x)p_d(y)/(p_d(x)+p_d(y))` is symmetric in ``x, y``, the
neighbour relation is symmetric, and :math:`g(u) + g(1/u) = 1`. So its minimiser matches every
conditional ratio of the data, and the expected gradient vanishes at the true parameters.

**Pseudo-likelihood** (Besag, 1975), ``criterion="pseudo_likelihood"``: the negative log
conditional of each site given the rest, over its legal values,

.. math::
    J(\\theta) = \\mathbb{E}_{x} \\sum_s -\\log p_\\theta(x_s \\mid x_{-s})
        = \\mathbb{E}_{x} \\sum_s \\log\\Bigl(1 + \\sum_{v \\ne x_s} e^{-\\Delta_{sv}(x)}\\Bigr).

**Sites per step.** With ``num_sites`` = ``S`` each state contributes ``S`` sites drawn
uniformly without replacement out of its ``T`` sites, their sum scaled by ``T/S``: an unbiased
estimate of the full sum at ``S/T`` of the cost of the exact differences. ``estimator="gradient"``
takes first-order differences from one backward pass instead (exact for a Potts model, an
approximation for a neural energy; see :mod:`~structebm.objectives.site_differences`).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.energies.base import MissingCapabilityError
from structebm.objectives.base import LossOutput, split_batch
from structebm.objectives.seeded import SeededObjective
from structebm.objectives.site_differences import Estimator, choose_sites, num_sites_of, site_differences

__all__ = ["RatioMatching", "Criterion"]

Criterion = Literal["ratio", "pseudo_likelihood"]


class RatioMatching(SeededObjective):
    """Ratio matching (or pseudo-likelihood) over single-site neighbours (see the module docstring).

    Args:
        criterion: ``"ratio"`` (Hyvärinen's ratio matching) or ``"pseudo_likelihood"``.
        num_sites: sites per state and step, drawn at random; ``None``: every site.
        estimator: ``"exact"`` energy differences or first-order ``"gradient"`` ones.
        num_states: ``K`` of categorical sequence states, if the energy does not declare ``num_states``.
        generator_seed: seed of the generator choosing the sites.

    Shapes:
        - batch: ``x [B, L]`` (integer categories) or a ``DenseGraph``, or ``(x, c)``.
        - returns a scalar loss (mean over the batch of the per-state sums); metrics
          ``energy_data``, ``neighbour_gap`` (mean :math:`\\Delta` over legal neighbours: positive
          when data sit below their neighbours) and ``data_below_neighbours`` (fraction with
          :math:`\\Delta > 0`).
    """

    def __init__(
        self,
        criterion: Criterion = "ratio",
        num_sites: Optional[int] = None,
        estimator: Estimator = "exact",
        num_states: Optional[int] = None,
        generator_seed: int = 0,
    ) -> None:
        super().__init__(generator_seed)
        if criterion not in ("ratio", "pseudo_likelihood"):
            raise ValueError(f"RatioMatching: criterion must be 'ratio' or 'pseudo_likelihood', got {criterion!r}")
        if estimator not in ("exact", "gradient"):
            raise ValueError(f"RatioMatching: estimator must be 'exact' or 'gradient', got {estimator!r}")
        if num_sites is not None and (isinstance(num_sites, bool) or not isinstance(num_sites, int) or num_sites < 1):
            raise ValueError(f"RatioMatching: num_sites must be a positive int or None, got {num_sites!r}")
        if num_states is not None and (isinstance(num_states, bool) or not isinstance(num_states, int) or num_states < 2):
            raise ValueError(f"RatioMatching: num_states must be an int >= 2 or None, got {num_states!r}")
        self.criterion, self.num_sites, self.estimator, self.num_states = criterion, num_sites, estimator, num_states

    def bind(self, energy: nn.Module) -> None:
        """The gradient estimator needs a one-hot energy; place the generator on the energy's device."""
        if self.estimator == "gradient" and not any(
            callable(getattr(energy, name, None)) for name in ("one_hot_energy", "graph_one_hot_energy")
        ):
            raise MissingCapabilityError(
                "RatioMatching(estimator='gradient') needs an energy with one_hot_energy (sequences) or "
                f"graph_one_hot_energy (graphs); {type(energy).__name__} provides neither"
            )
        self.bind_generator(energy)

    def example_losses(self, energy: nn.Module, x: Any, c: Optional[Tensor] = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-state losses ``[B]`` (each an estimate of the sum over all sites) and detached metrics."""
        where = "RatioMatching"
        device = x.device
        total = num_sites_of(x)
        batch = x.batch_size if hasattr(x, "batch_size") else x.shape[0]
        sites = choose_sites(batch, total, self.num_sites, self.generator_for(device), device)
        diff = site_differences(energy, x, c, sites, self.estimator, self.num_states, where)
        mask = diff.mask
        if self.criterion == "ratio":
            terms = torch.sigmoid(-diff.deltas).square() * mask
            per_site = terms.sum(dim=2)
        else:
            logits = (-diff.deltas).masked_fill(~mask, torch.finfo(diff.deltas.dtype).min)
            per_site = F.softplus(torch.logsumexp(logits, dim=2)).masked_fill(~mask.any(dim=2), 0.0)
        losses = per_site.sum(dim=1) * (total / sites.shape[1])
        with torch.no_grad():
            legal = mask.sum().clamp_min(1)
            metrics = {
                "energy_data": diff.energy.mean(),
                "neighbour_gap": (diff.deltas * mask).sum() / legal,
                "data_below_neighbours": ((diff.deltas > 0) & mask).sum() / legal,
            }
        return losses, metrics

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        x, c = split_batch(batch)
        losses, metrics = self.example_losses(energy, x, c)
        return LossOutput(losses.mean(), metrics)
