"""Regularisers that objectives add to their loss as options.

- :func:`energy_magnitude_penalty` keeps energies near zero so that their scale does not
  drift (Du & Mordatch, 2019, "Implicit Generation and Generalization in Energy-Based
  Models"):

  .. math::
      R_{\\text{mag}} = \\alpha \\left( \\overline{E(x^+)^2} + \\overline{E(x^-)^2} \\right).

  Added to the contrastive loss :math:`\\overline{E(x^+)} - \\overline{E(x^-)}`, it bounds how
  far apart the energies can go: the sum is at least :math:`-1 / (2 \\alpha)`, reached when every
  :math:`E(x^\\pm) = \\mp 1 / (2 \\alpha)`, so the mean energies settle at most :math:`1 / \\alpha`
  nats apart (10 and 50 nats either side of zero for :math:`\\alpha` = 0.05 and 0.01). An energy
  whose data and negatives sit at :math:`\\mp 1 / (2 \\alpha)` is held by the penalty, not by
  the data; a smaller :math:`\\alpha` lets it go on learning.

- :func:`gradient_penalty` smooths the energy landscape by penalising the squared norm of
  its input gradient, at the data or at random interpolates between data and negatives:

  .. math::
      R_{\\text{grad}} = \\lambda \\, \\overline{\\lVert \\nabla_x E(\\hat x, c) \\rVert^2}, \\qquad
      \\hat x = t x^+ + (1 - t) x^-, \\; t \\sim \\mathcal{U}[0, 1] \\text{ per row}.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import check_energy_output

__all__ = ["energy_magnitude_penalty", "gradient_penalty", "GradientPenaltyAt"]

GradientPenaltyAt = Literal["data", "interpolates"]


def energy_magnitude_penalty(energy_data: Tensor, energy_negative: Tensor, weight: float) -> Tensor:
    """``weight * (mean(E_data^2) + mean(E_negative^2))``.

    Shapes:
        - energy_data: ``[B]``; energy_negative: ``[M]``; returns a scalar.
    """
    return weight * (energy_data.pow(2).mean() + energy_negative.pow(2).mean())


def gradient_penalty(
    energy: nn.Module,
    x_data: Tensor,
    c: Optional[Tensor],
    weight: float,
    at: GradientPenaltyAt = "data",
    x_negative: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    where: str = "gradient_penalty",
) -> Tensor:
    """``weight * mean ||grad_x E(x_hat, c)||^2`` with a graph for backpropagation into parameters.

    Args:
        energy: the energy.
        x_data: continuous data ``[B, *event]``.
        c: condition, or ``None``.
        weight: the coefficient ``lambda``.
        at: ``"data"`` (``x_hat = x_data``) or ``"interpolates"`` (needs ``x_negative`` and ``generator``).
        x_negative: negatives ``[B, *event]`` for interpolates.
        generator: source of the interpolation weights ``t``.
        where: name of the caller for error messages.

    Shapes:
        - returns a scalar.
    """
    if not x_data.is_floating_point():
        raise TypeError(f"{where}: the gradient penalty needs continuous (floating-point) x, got {x_data.dtype}")
    if at == "data":
        x_hat = x_data.detach()
    elif at == "interpolates":
        if x_negative is None or generator is None:
            raise ValueError(f"{where}: a gradient penalty at interpolates needs negatives and a generator")
        if x_negative.shape != x_data.shape:
            raise ValueError(f"{where}: negatives {tuple(x_negative.shape)} and data {tuple(x_data.shape)} differ in shape")
        t = torch.rand(x_data.shape[0], generator=generator, device=x_data.device, dtype=x_data.dtype)
        t = t.view(-1, *([1] * (x_data.dim() - 1)))
        x_hat = (t * x_data + (1 - t) * x_negative).detach()
    else:
        raise ValueError(f"{where}: gradient penalty 'at' must be 'data' or 'interpolates', got {at!r}")
    x_hat = x_hat.requires_grad_(True)
    with torch.enable_grad():
        values = check_energy_output(energy(x_hat, c), x_hat.shape[0], f"{where}: energy at the penalty points")
        (grad,) = torch.autograd.grad(values.sum(), x_hat, create_graph=True)
    return weight * grad.pow(2).flatten(1).sum(dim=1).mean()
