"""Unadjusted Langevin algorithm (ULA) for continuous states.

Roberts & Tweedie, "Exponential convergence of Langevin distributions and their discrete
approximations", Bernoulli 1996. One transition is

.. math::
    x_{t+1} = x_t - \\epsilon_t \\nabla_x E(x_t, c) + \\sigma_t \\xi_t, \\qquad
    \\xi_t \\sim \\mathcal{N}(0, I), \\quad \\sigma_t = \\sqrt{2 \\epsilon_t}.

Without a Metropolis correction the chain's stationary law is only close to
:math:`p \\propto e^{-E}`, with a bias of order :math:`\\epsilon` (for a Gaussian
:math:`\\mathcal{N}(0, \\Sigma)` it is exactly :math:`\\mathcal{N}(0, \\Sigma (I - \\epsilon \\Sigma^{-1}/2)^{-1})`);
use :func:`structebm.samplers.mala.mala` where exactness matters.

A separate ``noise_scale`` :math:`\\sigma` is common when training EBMs with short-run
chains (e.g. Du & Mordatch 2019). For small :math:`\\epsilon` the chain then targets the
tempered density :math:`p_T \\propto e^{-E/T}` with temperature :math:`T = \\sigma^2 / (2\\epsilon)`.

Evaluation is lazy: a step evaluates ``E`` and ``∇E`` at the state it starts from and
moves, so a ``K``-step chain costs ``K`` gradient evaluations (not ``K + 1``). The returned
state therefore carries ``energy = grad = None``, and each step's :class:`StepInfo`
describes the state the step moved *from*. A :attr:`~structebm.samplers.base.ChainState.donated`
state is updated in place (no new proposal or noise tensor per step); :func:`~structebm.samplers.base.run_chain`
and the contrastive-divergence objective donate every state after the first. While autograd
takes :math:`\\nabla_x E`, the energy's parameters are frozen (``requires_grad=False``, restored
afterwards): a chain needs the gradient in ``x`` only, and a graph without parameter nodes is
cheaper to build and to run backwards. An energy with its own gradient
(:class:`~structebm.energies.base.HasEnergyGradient`, e.g. :class:`~structebm.energies.mlp.MLPEnergy`)
skips autograd altogether.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from structebm.energies.base import has_analytic_gradient
from structebm.samplers._compiled import Evaluation, compiled_evaluation
from structebm.samplers._diffusion import (
    check_sampler_arguments,
    check_generator,
    check_start,
    clip_per_sample_norm,
    energy_and_grad,
    langevin_proposal,
    langevin_update_,
    NoiseScratch,
    step_size_at,
)
from structebm.samplers.base import ChainState, SamplingAlgorithm, StepInfo, check_chain_finite, check_positive

__all__ = ["langevin"]

_NAME = "langevin"


def _energy_and_grad_in_x(
    energy: nn.Module, parameters: Sequence[nn.Parameter], x: Tensor, c: Optional[Tensor], where: str, analytic_score: bool, uses_autograd: bool,
    evaluate: Optional[Evaluation],
) -> tuple[Tensor, Tensor]:
    """:func:`~structebm.samplers._diffusion.energy_and_grad` with ``parameters`` frozen while autograd runs.

    The parameters that require gradients are switched off for the call and back on afterwards
    (also when the energy raises); the values are those of an unfrozen evaluation. An
    analytic score or gradient is evaluated without autograd and needs no freezing.
    """
    if not uses_autograd:
        return energy_and_grad(energy, x, c, where, analytic_score, evaluate)
    thawed = [p for p in parameters if p.requires_grad]
    for p in thawed:
        p.requires_grad_(False)
    try:
        return energy_and_grad(energy, x, c, where, analytic_score, evaluate)
    finally:
        for p in thawed:
            p.requires_grad_(True)


def langevin(
    energy: nn.Module,
    step_size: float,
    noise_scale: Optional[float] = None,
    grad_clip: Optional[float] = None,
    bounds: Optional[tuple[float, float]] = None,
    step_size_schedule: Optional[Callable[[int], float]] = None,
    *,
    check_every: int = 10,
    compile_energy: bool = False,
) -> SamplingAlgorithm[ChainState]:
    """Build the unadjusted Langevin sampler for ``energy``.

    Args:
        energy: ``E(x, c) -> [B]``; its analytic ``score`` is used when it has one, else autograd.
        step_size: :math:`\\epsilon`, used when no schedule is given.
        noise_scale: :math:`\\sigma`; ``None`` means :math:`\\sqrt{2\\epsilon_t}` (the correctly
            scaled diffusion). A fixed value samples a tempered density (see the module docs).
        grad_clip: if set, each chain's gradient is rescaled to at most this L2 norm before the
            update (the reported ``grad_norm`` is the unclipped one).
        bounds: ``(low, high)``: every coordinate is clamped into the box after the update
            (projected Langevin; the stationary law then has mass on the box faces).
        step_size_schedule: maps the 0-based index of a transition to its :math:`\\epsilon_t`.
        check_every: the chain is checked for NaN / infinity every this many transitions
            (and at ``init``); each check is one device sync. A divergence raises
            :class:`~structebm.samplers.base.ChainDivergedError` naming the step it was caught at.
        compile_energy: evaluate the energy and its gradient through :func:`torch.compile`
            (:mod:`structebm.samplers._compiled`; compiled on the first step). Off by default: it
            pays off only where a step is many small kernels, such as small MLPs on a GPU.

    Under autocast (e.g. Lightning's ``precision="bf16-mixed"``) the energy and its gradient are
    computed in the lower precision and handed back in the chain's dtype; the noise and the
    update stay in that dtype (float32 for a float32 chain).

    Returns:
        ``SamplingAlgorithm(init, step)`` with ``init(x, c=None) -> ChainState`` and
        ``step(state, generator) -> (ChainState, StepInfo)``; ``StepInfo`` carries the energy,
        the gradient norm and an acceptance rate of ones.

    Shapes:
        - x: ``[B, *event]`` floating point; c: whatever the energy takes, batch first
        - state.energy, info.energy, info.grad_norm, info.acceptance_rate: ``[B]``
        - state.grad: ``[B, *event]``, the gradient :math:`\\nabla_x E` at ``state.x``
    """
    step_size, bounds, analytic_score = check_sampler_arguments(energy, step_size, bounds, step_size_schedule, check_every, _NAME)
    if noise_scale is not None:
        noise_scale = 0.0 if noise_scale == 0 else check_positive(noise_scale, "noise_scale", _NAME)
    grad_clip = None if grad_clip is None else check_positive(grad_clip, "grad_clip", _NAME)
    noise = NoiseScratch()
    parameters = tuple(energy.parameters())  # frozen during each evaluation; a stale list only costs speed
    uses_autograd = not (analytic_score or has_analytic_gradient(energy))
    evaluate = compiled_evaluation(energy, analytic_score) if compile_energy else None

    def init(x: Tensor, c: Optional[Tensor] = None) -> ChainState:
        x = check_start(x, c, f"{_NAME}.init", bounds)
        return ChainState(x=x, c=c, energy=None, grad=None, step=0)

    checked_generator: Optional[torch.Generator] = None  # the generator of the last step, already checked

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        nonlocal checked_generator
        where = f"{_NAME}.step {state.step}"
        if checked_generator is None or generator is not checked_generator:
            check_generator(generator, state.x, where)
            checked_generator = generator
        if state.grad is None:
            values, grad_x = _energy_and_grad_in_x(energy, parameters, state.x, state.c, where, analytic_score, uses_autograd, evaluate)
        else:  # a state another sampler already evaluated (e.g. handed over from MALA)
            values, grad_x = state.energy, state.grad
        if state.step == 0 or state.step % check_every == 0:
            check_chain_finite(ChainState(x=state.x, c=state.c, energy=values, step=state.step), where if state.step == 0 else _NAME)
        eps = step_size if step_size_schedule is None else step_size_at(step_size_schedule, step_size, state.step, where)
        sigma = math.sqrt(2.0 * eps) if noise_scale is None else noise_scale
        grad = grad_x if grad_clip is None else clip_per_sample_norm(grad_x, grad_clip)
        if state.donated:  # the caller gave the state up: update its x in place, as a hand-written loop would
            x_new = langevin_update_(state.x, grad, eps, sigma, generator, noise.like(state.x))
        else:
            x_new, _ = langevin_proposal(state.x, grad, eps, sigma, generator)
        if bounds is not None:
            x_new.clamp_(bounds[0], bounds[1])
        new_state = ChainState(x=x_new, c=state.c, energy=None, grad=None, step=state.step + 1)
        return new_state, StepInfo(energy=values, grad=grad_x, always_accepted=True)

    return SamplingAlgorithm(init, step)
