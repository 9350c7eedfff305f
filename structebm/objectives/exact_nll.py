"""Exact maximum likelihood for energies whose log-partition is tractable.

.. math::
    L = \\frac{1}{B} \\sum_{b=1}^{B} \\left[ E(x_b, c_b) + \\log Z(c_b) \\right]
      = -\\frac{1}{B} \\sum_b \\log p(x_b \\mid c_b).

Applies to linear-chain CRFs, image-label energies over a small label set, Gaussians and
small Potts models — any energy with ``log_partition(c)`` (:class:`HasLogPartition`).
An energy with a condition encoder (a CRF's emission model) encodes the batch once, so that
``E`` and ``log Z`` come from one network: with dropout, from the same mask, which makes the loss
the negative log-likelihood of one (thinned) model and never negative.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from structebm.energies.base import HasLogPartition, batch_size_of, check_energy_output, encode_condition, require
from structebm.objectives.base import LossOutput, Objective, check_data, split_batch

__all__ = ["ExactNLL"]


class ExactNLL(Objective):
    """Negative log-likelihood with the exact log-partition of the energy.

    Shapes:
        - batch: ``x [B, ...]`` or ``(x, c)``; ``log_partition(c)`` is ``[B]`` with a
          condition, a scalar ``[]`` without one (broadcast over the batch).
        - returns a scalar loss; metrics ``nll``, ``energy_data``, ``log_partition``.
    """

    def bind(self, energy: nn.Module) -> None:
        require(energy, HasLogPartition, "ExactNLL")

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        require(energy, HasLogPartition, "ExactNLL")
        x, c = split_batch(batch)
        check_data(x, "ExactNLL")
        n = batch_size_of(x)
        c = encode_condition(energy, c)
        values = check_energy_output(energy(x, c), n, "ExactNLL: energy of the data batch")
        log_z = energy.log_partition(c)
        expected = (n,) if c is not None else ()
        if not isinstance(log_z, Tensor) or log_z.shape not in (expected, ()):
            got = tuple(log_z.shape) if isinstance(log_z, Tensor) else type(log_z).__name__
            raise ValueError(f"ExactNLL: log_partition(c) returned {got}, expected shape {expected}")
        if not torch.isfinite(log_z).all():
            raise ValueError("ExactNLL: log_partition(c) is not finite")
        loss = (values + log_z).mean()
        return LossOutput(
            loss,
            {"nll": loss.detach(), "energy_data": values.detach().mean(), "log_partition": log_z.detach().mean()},
        )
