"""The Metropolis–Hastings step of Gibbs-with-gradients, shared by sequences and graphs.

A state ``x`` with energy :math:`E(x)` and gradient ``g`` in its one-hot encoding proposes a path
:math:`x = z_0 \\to z_1 \\to \\dots \\to z_n = y` of ``n`` single-site changes, change ``t`` drawn
from :math:`q_g(\\cdot \\mid z_t)` (the proposal built from the gradient at ``x``, evaluated at the
current :math:`z_t`). The reverse path is scored with the gradient at ``y``, and

.. math::
    \\log α = \\min\\Bigl(0, \\tfrac{1}{T}\\bigl(E(x) - E(y)\\bigr)
        + \\textstyle\\sum_t \\log q_{g_y}(z_t \\mid z_{t+1}) - \\sum_t \\log q_{g_x}(z_{t+1} \\mid z_t)\\Bigr),

an exact MH move on (state, path), so :math:`e^{-E/T}` stays invariant for every ``n``. The
caller supplies the site layout as three functions: the proposal's log-probabilities over flat
changes, applying a flat change (with the flat index of its reverse), and the energy with its
gradient.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import torch
from torch import Tensor
from torch.profiler import record_function

from structebm.samplers._categorical import sample_categorical

__all__ = ["PathProposal", "propose_and_accept"]

ProposalLogProbs = Callable[[Tensor, Any], tuple[Tensor, Tensor]]
"""``(grad, z) -> (log_probs [B, S], stuck [B])``: stuck chains have no legal change (dummy proposal)."""
ApplyChange = Callable[[Any, Tensor], tuple[Any, Tensor]]
"""``(z, choice [B]) -> (z', reverse [B])``: the state after the flat change and the change back."""
EnergyAndGrad = Callable[[Any], tuple[Tensor, Tensor]]
"""``z -> (energy [B], grad)``."""


class PathProposal(NamedTuple):
    """The proposed end point and the MH outcome (all ``[B]`` but ``proposal`` and ``grad``)."""

    proposal: Any
    energy: Tensor
    grad: Tensor
    accepted: Tensor
    acceptance_rate: Tensor
    log_probs_at_x: tuple[Tensor, Tensor]
    """``log_probs_of(grad, x)``: the proposal at ``x`` (the next step's where this one rejects)."""
    log_probs_at_proposal: tuple[Tensor, Tensor]
    """``log_probs_of(proposal grad, proposal)``: the next step's proposal where this one accepts."""


def propose_and_accept(
    x: Any,
    energy: Tensor,
    grad: Tensor,
    num_flips: int,
    inverse_temperature: float,
    log_probs_of: ProposalLogProbs,
    apply: ApplyChange,
    energy_and_grad: EnergyAndGrad,
    generator: torch.Generator,
    log_probs_at_x: Optional[tuple[Tensor, Tensor]] = None,
) -> PathProposal:
    """Propose a ``num_flips``-change path from ``x`` and run the MH test (see the module docstring).

    Chains that are stuck at ``x`` (no legal change) always reject, with acceptance rate 0.
    ``log_probs_at_x``, when given, is ``log_probs_of(grad, x)`` computed before: the previous
    step's ``log_probs_at_proposal`` where it accepted, its ``log_probs_at_x`` where it rejected.
    """
    z = x
    log_q_forward = torch.zeros_like(energy)
    path = []  # (z_{t+1}, flat index of the change back to z_t)
    if log_probs_at_x is None:
        log_probs_at_x = log_probs_of(grad, x)
    immovable = log_probs_at_x[1]  # later z_t can always move back
    for flip in range(num_flips):
        log_probs, _ = log_probs_at_x if flip == 0 else log_probs_of(grad, z)
        with record_function("gwg.draw_change"):
            choice = sample_categorical(log_probs, generator)
        log_q_forward = log_q_forward + log_probs.gather(1, choice[:, None]).squeeze(1)
        z, reverse = apply(z, choice)
        path.append((z, reverse))

    proposal_energy, proposal_grad = energy_and_grad(z)
    log_q_reverse = torch.zeros_like(proposal_energy)
    for z_next, reverse in path:
        log_probs, stuck = log_probs_of(proposal_grad, z_next)
        log_q_reverse = log_q_reverse + log_probs.gather(1, reverse[:, None]).squeeze(1)

    with record_function("gwg.accept_reject"):
        log_ratio = inverse_temperature * (energy - proposal_energy) + log_q_reverse - log_q_forward
        log_uniform = torch.rand(energy.shape[0], generator=generator, device=energy.device, dtype=energy.dtype).log()
        accepted = (log_uniform < log_ratio) & ~immovable
        acceptance_rate = torch.where(immovable, torch.zeros_like(log_ratio), log_ratio.clamp(max=0.0).exp())
    return PathProposal(z, proposal_energy, proposal_grad, accepted, acceptance_rate, log_probs_at_x, (log_probs, stuck))
