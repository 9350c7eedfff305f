"""Energy evaluations compiled with :func:`torch.compile`, for the Langevin-type samplers.

A sampler built with ``compile=True`` evaluates :math:`E(x, c)` and :math:`\\nabla_x E(x, c)`
through a compiled function instead of the energy's eager code:

- an energy with its own ``score`` (:class:`~structebm.energies.base.HasScore`): one compiled
  function returning :math:`(E, s)`, the gradient is :math:`-s`;
- an energy with its own ``energy_and_grad`` (:class:`~structebm.energies.base.HasEnergyGradient`,
  e.g. :class:`~structebm.energies.mlp.MLPEnergy`): that method, compiled; its forward pass and
  chain-rule backward sweep fuse into a few kernels;
- any other energy: its ``forward``, compiled; autograd then runs the compiled backward that
  AOTAutograd derived for it.

Compilation happens on the first call (seconds to a minute) and again when the batch shape,
dtype or device changes; after that the values equal the eager ones up to rounding. It pays off
where a step is many small kernels (small MLPs on a GPU); measure before relying on it
(``benchmarks/gpu_check.py`` times it). The evaluation runs under the caller's autocast, like
the eager one.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import has_analytic_gradient

__all__ = ["Evaluation", "compiled_evaluation"]

Evaluation = Callable[[Tensor, Optional[Tensor]], tuple[Tensor, Tensor]]
"""``(x, c) -> (E [B], ∇ₓE [B, *event])``, both outside any autograd graph."""


def compiled_evaluation(energy: nn.Module, analytic_score: bool) -> Evaluation:
    """The energy's value and input gradient through :func:`torch.compile` (module docs).

    Args:
        energy: the energy module; it is compiled, not copied, so training it changes what the
            compiled function computes.
        analytic_score: whether the energy's own ``score`` gives the gradient (as decided by the
            sampler).

    Shapes:
        - x: ``[B, *event]``; returns ``[B]`` and ``[B, *event]``
    """
    if analytic_score:
        compiled_score = torch.compile(lambda x, c: (energy(x, c), energy.score(x, c)))

        def from_score(x: Tensor, c: Optional[Tensor]) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                values, scores = compiled_score(x, c)
            return values, torch.neg(scores)

        return from_score
    if has_analytic_gradient(energy):
        compiled_gradient = torch.compile(energy.energy_and_grad)

        def from_gradient(x: Tensor, c: Optional[Tensor]) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                return compiled_gradient(x.detach(), c)

        return from_gradient
    compiled_forward = torch.compile(energy)

    def from_autograd(x: Tensor, c: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            x_req = x.detach().requires_grad_(True)
            values = compiled_forward(x_req, c)
            (grad,) = torch.autograd.grad(values.sum(), x_req)
        return values.detach(), grad

    return from_autograd
