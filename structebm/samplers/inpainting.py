"""Langevin inpainting: sample the missing part of a state with the observed part clamped.

Split a state into observed coordinates :math:`x_O` (a boolean mask) and free coordinates
:math:`x_F`. The conditional :math:`p(x_F \\mid x_O, c) \\propto e^{-E(x_F, x_O, c)}` is
sampled by unadjusted Langevin moves of the free coordinates only:

.. math::
    x_F^{t+1} = x_F^t - \\epsilon \\, \\nabla_{x_F} E(x^t, c) + \\sigma \\xi_F, \\qquad
    x_O^{t+1} = x_O^t, \\qquad \\xi \\sim \\mathcal{N}(0, I), \\quad \\sigma = \\sqrt{2\\epsilon}.

Observed coordinates are copied from the starting point with :func:`torch.where`, so they are
never changed, not even by rounding. As with :func:`~structebm.samplers.langevin.langevin`, a
separate ``noise_scale`` samples the tempered conditional (temperature :math:`\\sigma^2 / 2\\epsilon`),
and ``bounds`` clamps the free coordinates into a box after each move.

The observed values are those of the starting point given to ``init``; what ``init`` finds at
free coordinates is where their chains start (noise, a blank, or a guess).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from structebm.samplers._diffusion import (
    check_every_n_steps,
    check_generator,
    check_sampler_arguments,
    check_start,
    clip_per_sample_norm,
    energy_and_grad,
    langevin_proposal,
)
from structebm.samplers.base import ChainState, SamplingAlgorithm, StepInfo, check_chain_finite, check_positive

__all__ = ["inpainting_langevin"]

_NAME = "inpainting_langevin"


def _broadcast_mask(observed: Tensor, x: Tensor, where: str) -> Tensor:
    """The observed mask as a boolean tensor of ``x``'s shape, on ``x``'s device."""
    event = tuple(x.shape[1:])
    if tuple(observed.shape) not in (event, tuple(x.shape)):
        raise ValueError(
            f"{where}: the observed mask has shape {tuple(observed.shape)}; expected the event shape {event} "
            f"(one mask for every chain) or the batch shape {tuple(x.shape)} (one mask per chain)"
        )
    return torch.broadcast_to(observed.to(x.device), x.shape)


def inpainting_langevin(
    energy: nn.Module,
    observed: Tensor,
    step_size: float,
    noise_scale: Optional[float] = None,
    grad_clip: Optional[float] = None,
    bounds: Optional[tuple[float, float]] = None,
    *,
    check_every: int = 10,
) -> SamplingAlgorithm[ChainState]:
    """Build a Langevin sampler that moves only the coordinates where ``observed`` is false.

    Args:
        energy: ``E(x, c) -> [B]``; its analytic ``score`` is used when it has one, else autograd.
        observed: boolean mask, true where the coordinate is observed (clamped); shape ``[*event]``
            (shared by all chains) or ``[B, *event]`` (one per chain).
        step_size: :math:`\\epsilon`.
        noise_scale: :math:`\\sigma`; ``None`` means :math:`\\sqrt{2\\epsilon}`.
        grad_clip: if set, each chain's free-coordinate gradient is rescaled to at most this L2 norm.
        bounds: ``(low, high)`` box for the free coordinates (the observed ones are left as given).
        check_every: the chain is checked for NaN / infinity every this many transitions.

    Returns:
        ``SamplingAlgorithm(init, step)``; ``init(x, c=None)`` takes the observed values at the
        observed coordinates and the chains' starting values elsewhere. ``StepInfo`` carries the
        energy and the gradient norm over the free coordinates of the state a step moved from,
        and the fraction of free coordinates per chain under ``extra["free_fraction"]``.

    Shapes:
        - x: ``[B, *event]`` floating point; observed: ``[*event]`` or ``[B, *event]`` bool
        - info.energy, info.grad_norm: ``[B]``
    """
    if not isinstance(observed, Tensor) or observed.dtype != torch.bool:
        kind = observed.dtype if isinstance(observed, Tensor) else type(observed).__name__
        raise TypeError(f"{_NAME}: observed must be a boolean Tensor (true = clamped), got {kind}")
    step_size, checked_bounds, analytic_score = check_sampler_arguments(energy, step_size, bounds, None, check_every, _NAME)
    if noise_scale is not None and noise_scale != 0:
        noise_scale = check_positive(noise_scale, "noise_scale", _NAME)
    grad_clip = None if grad_clip is None else check_positive(grad_clip, "grad_clip", _NAME)
    sigma = math.sqrt(2.0 * step_size) if noise_scale is None else float(noise_scale)

    def init(x: Tensor, c: Optional[Tensor] = None) -> ChainState:
        where = f"{_NAME}.init"
        x = check_start(x, c, where, None)
        mask = _broadcast_mask(observed, x, where)
        if checked_bounds is not None and ((x < checked_bounds[0]) | (x > checked_bounds[1]))[~mask].any():
            raise ValueError(f"{where}: free coordinates of the starting point lie outside the bounds {checked_bounds}")
        return ChainState(x=x.clone(), c=c, energy=None, grad=None, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        where = f"{_NAME}.step {state.step}"
        check_generator(generator, state.x, where)
        mask = _broadcast_mask(observed, state.x, where)
        values, grad = energy_and_grad(energy, state.x, state.c, where, analytic_score)
        grad = grad.masked_fill(mask, 0.0)
        evaluated = ChainState(x=state.x, c=state.c, energy=values, grad=grad, step=state.step)
        if state.step == 0:
            check_chain_finite(evaluated, where)
        else:
            check_every_n_steps(evaluated, _NAME, check_every)
        moved_grad = grad if grad_clip is None else clip_per_sample_norm(grad, grad_clip)
        proposal, _ = langevin_proposal(state.x, moved_grad, step_size, sigma, generator)
        if checked_bounds is not None:
            proposal.clamp_(checked_bounds[0], checked_bounds[1])
        x_new = torch.where(mask, state.x, proposal)
        info = StepInfo(
            energy=values,
            grad=grad,
            always_accepted=True,
            extra={"free_fraction": (~mask).flatten(1).float().mean(dim=1)},
        )
        return ChainState(x=x_new, c=state.c, energy=None, grad=None, step=state.step + 1), info

    return SamplingAlgorithm(init, step)
