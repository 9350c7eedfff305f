"""Metropolis-adjusted Langevin algorithm (MALA) for continuous states.

Roberts & Tweedie, "Exponential convergence of Langevin distributions and their discrete
approximations", Bernoulli 1996. A Langevin proposal

.. math::
    x' = x - \\epsilon \\nabla_x E(x, c) + \\sqrt{2\\epsilon}\\, \\xi, \\qquad \\xi \\sim \\mathcal{N}(0, I),

is accepted with probability :math:`\\min(1, \\alpha)`, where

.. math::
    \\log \\alpha = E(x, c) - E(x', c) + \\log q(x \\mid x') - \\log q(x' \\mid x), \\qquad
    \\log q(y \\mid x) = -\\frac{\\lVert y - x + \\epsilon \\nabla_x E(x, c) \\rVert^2}{4\\epsilon} + \\text{const},

so the chain leaves :math:`p \\propto e^{-E}` exactly invariant at any step size.

Bounds: with ``bounds=(low, high)`` the target is :math:`p` restricted to the box. Proposals
leaving the box are rejected (their target density is zero), which keeps the chain exact for
the truncated density. A proposal whose energy is NaN or :math:`+\\infty` is rejected too.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from structebm.samplers._compiled import compiled_evaluation
from structebm.samplers._diffusion import (
    check_sampler_arguments,
    check_every_n_steps,
    check_generator,
    check_start,
    clip_per_sample_norm,
    energy_and_grad,
    initial_state,
    langevin_proposal,
    metropolis_hastings,
    proposal_log_density,
    select_rows,
    step_size_at,
)
from structebm.samplers.base import ChainState, SamplingAlgorithm, StepInfo, check_positive

__all__ = ["mala"]

_NAME = "mala"


def mala(
    energy: nn.Module,
    step_size: float,
    bounds: Optional[tuple[float, float]] = None,
    step_size_schedule: Optional[Callable[[int], float]] = None,
    grad_clip: Optional[float] = None,
    *,
    check_every: int = 10,
    compile_energy: bool = False,
) -> SamplingAlgorithm[ChainState]:
    """Build the Metropolis-adjusted Langevin sampler for ``energy``.

    Args:
        energy: ``E(x, c) -> [B]``; its analytic ``score`` is used when it has one, else autograd.
        step_size: :math:`\\epsilon`, used when no schedule is given.
        bounds: ``(low, high)``: sample :math:`p` restricted to this box; proposals outside it
            are rejected.
        step_size_schedule: maps the 0-based index of a transition to its :math:`\\epsilon_t`.
            Every transition is exact on its own, so any schedule that depends only on the
            index keeps :math:`p` invariant.
        grad_clip: if set, the drift uses each chain's gradient rescaled to at most this L2
            norm, in both the forward and the reverse proposal density; the clipped drift is a
            deterministic function of the origin, so the chain stays exact (only the proposal
            changes), and far-out starts cannot jump to infinity.
        check_every: the chain is checked for NaN / infinity every this many transitions
            (and at ``init``); each check is one device sync.
        compile_energy: evaluate the energy and its gradient through :func:`torch.compile`
            (:mod:`structebm.samplers._compiled`), as for :func:`~structebm.samplers.langevin.langevin`.

    Under autocast the energy and its gradient are computed in the lower precision and handed
    back in the chain's dtype, so the proposal, its densities and the acceptance test are computed
    in that dtype (float32 for a float32 chain). The energies entering the test carry the
    autocast rounding (about :math:`2^{-8} |E|` in bfloat16); for energies of large magnitude run
    the chain outside autocast.

    Returns:
        ``SamplingAlgorithm(init, step)``; ``StepInfo`` carries the energy and gradient norm
        after the step, the acceptance probability :math:`\\min(1, \\alpha)` and ``accepted``.

    Shapes:
        - x: ``[B, *event]`` floating point; c: whatever the energy takes, batch first
        - info.energy, info.grad_norm, info.acceptance_rate, info.accepted: ``[B]``
        - state.grad: ``[B, *event]``, the gradient :math:`\\nabla_x E` at ``state.x``
    """
    step_size, bounds, analytic_score = check_sampler_arguments(energy, step_size, bounds, step_size_schedule, check_every, _NAME)
    grad_clip = None if grad_clip is None else check_positive(grad_clip, "grad_clip", _NAME)
    evaluate = compiled_evaluation(energy, analytic_score) if compile_energy else None

    def drift(grad: Tensor) -> Tensor:
        return grad if grad_clip is None else clip_per_sample_norm(grad, grad_clip)

    def init(x: Tensor, c: Optional[Tensor] = None) -> ChainState:
        x = check_start(x, c, f"{_NAME}.init", bounds)
        return initial_state(energy, x, c, f"{_NAME}.init", analytic_score, evaluate)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        where = f"{_NAME}.step {state.step}"
        check_generator(generator, state.x, where)
        eps = step_size_at(step_size_schedule, step_size, state.step, where)
        proposal, noise = langevin_proposal(state.x, drift(state.grad), eps, math.sqrt(2.0 * eps), generator)
        energy_prop, grad_prop = energy_and_grad(energy, proposal, state.c, where, analytic_score, evaluate)
        # log q(x'|x) = -|x' - x + eps grad(x)|^2 / (4 eps) = -|noise|^2 / 2 (up to rounding),
        # since x' - x + eps grad(x) = sqrt(2 eps) noise.
        log_forward = noise.square().reshape(noise.shape[0], -1).sum(dim=1).mul_(-0.5)
        log_backward = proposal_log_density(state.x, proposal, drift(grad_prop), eps)
        log_ratio = (state.energy - energy_prop).add_(log_backward).sub_(log_forward)
        if bounds is not None:
            inside = ((proposal >= bounds[0]) & (proposal <= bounds[1])).reshape(proposal.shape[0], -1).all(dim=1)
            log_ratio = log_ratio.masked_fill_(~inside, -math.inf)
        accepted, acceptance_rate = metropolis_hastings(log_ratio, generator)
        new_state = ChainState(
            x=select_rows(accepted, proposal, state.x),
            c=state.c,
            energy=torch.where(accepted, energy_prop, state.energy),
            grad=select_rows(accepted, grad_prop, state.grad),
            step=state.step + 1,
        )
        check_every_n_steps(new_state, _NAME, check_every)
        info = StepInfo(
            energy=new_state.energy,
            grad=new_state.grad,
            acceptance_rate=acceptance_rate,
            accepted=accepted,
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
