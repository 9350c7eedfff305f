"""Shared maths and checks of the Langevin-type samplers (ULA and MALA).

Both rules move a continuous state with the discretised Langevin diffusion

.. math::
    x' = x - \\epsilon \\nabla_x E(x, c) + \\sigma \\xi, \\qquad \\xi \\sim \\mathcal{N}(0, I),

with :math:`\\sigma = \\sqrt{2\\epsilon}` for the correctly scaled proposal. MALA corrects
the discretisation error with a Metropolis–Hastings test that needs the proposal's log
density

.. math::
    \\log q(x' \\mid x) = -\\frac{\\lVert x' - x + \\epsilon \\nabla_x E(x, c) \\rVert^2}{4 \\epsilon}
    + \\text{const}.

The helpers here do the arithmetic once and never sync the device inside a step (the
finiteness check runs every ``check_every`` steps), which keeps the per-step overhead over
a hand-written loop small.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import EnergyOutputError, check_energy_output, energy_and_gradient, has_analytic_score, score
from structebm.finite import nonfinite_rows
from structebm.samplers._compiled import Evaluation
from structebm.samplers.base import ChainState, check_chain_finite, check_positive

__all__ = [
    "check_sampler_arguments",
    "check_bounds",
    "check_start",
    "check_generator",
    "initial_state",
    "energy_and_grad",
    "step_size_at",
    "per_sample_norm",
    "clip_per_sample_norm",
    "langevin_proposal",
    "langevin_update_",
    "NoiseScratch",
    "proposal_log_density",
    "metropolis_hastings",
    "select_rows",
    "check_every_n_steps",
]


def check_bounds(bounds: Optional[tuple[float, float]], where: str) -> Optional[tuple[float, float]]:
    """Validate a box ``(low, high)`` with ``low < high``; ``None`` means unbounded."""
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"{where}: bounds must be a pair (low, high), got {bounds!r}")
    low, high = float(bounds[0]), float(bounds[1])
    if math.isnan(low) or math.isnan(high) or not low < high:
        raise ValueError(f"{where}: bounds need low < high, got ({low}, {high})")
    return low, high


def check_sampler_arguments(
    energy: nn.Module,
    step_size: float,
    bounds: Optional[tuple[float, float]],
    step_size_schedule: Optional[Callable[[int], float]],
    check_every: int,
    where: str,
) -> tuple[float, Optional[tuple[float, float]], bool]:
    """Validate the settings both samplers share; return ``(step_size, bounds, analytic_score)``.

    ``analytic_score`` records once whether the energy provides its own ``score``.
    """
    if not isinstance(energy, nn.Module):
        raise TypeError(f"{where}: energy must be an nn.Module, got {type(energy).__name__}")
    if step_size_schedule is not None and not callable(step_size_schedule):
        raise TypeError(f"{where}: step_size_schedule must be a callable int -> float")
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"{where}: check_every must be an integer >= 1, got {check_every!r}")
    return check_positive(step_size, "step_size", where), check_bounds(bounds, where), has_analytic_score(energy)


def check_start(x: Tensor, c: Optional[Tensor], where: str, bounds: Optional[tuple[float, float]]) -> Tensor:
    """Validate a starting point ``[B, *event]`` (and condition) and return it detached."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{where}: the starting point must be a floating-point Tensor [B, *event], got {kind}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"{where}: the starting point needs a non-empty batch dimension, got shape {tuple(x.shape)}")
    if isinstance(c, Tensor) and c.shape[:1] != x.shape[:1]:
        raise ValueError(f"{where}: condition batch {tuple(c.shape)} does not match starting point batch {x.shape[0]}")
    x = x.detach()
    rows = nonfinite_rows(x)
    if rows:
        raise ValueError(f"{where}: the starting point has NaN or infinite values in row(s) {rows}")
    if bounds is not None and ((x < bounds[0]) | (x > bounds[1])).any():
        raise ValueError(f"{where}: the starting point lies outside the bounds {bounds}")
    return x


def check_generator(generator: torch.Generator, x: Tensor, where: str) -> None:
    """Raise a clear error when the generator is missing or lives on another device than ``x``."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{where}: step needs a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(f"{where}: the generator is on {generator.device} but the chain is on {x.device}")


def energy_and_grad(
    energy: nn.Module, x: Tensor, c: Optional[Tensor], where: str, analytic_score: bool, evaluate: Optional[Evaluation] = None
) -> tuple[Tensor, Tensor]:
    """Detached energy ``[B]`` and gradient ``∇ₓE`` of a batch, with one energy evaluation.

    ``analytic_score`` says whether the energy has its own ``score`` (decided once, when the
    sampler is built); otherwise the gradient comes straight from autograd. ``evaluate`` (a
    :func:`~structebm.samplers._compiled.compiled_evaluation`) replaces both. Only the output shape is checked
    (a metadata test that needs no device sync); the chain's finiteness is checked by
    :func:`check_every_n_steps`.

    Both come back in ``x``'s dtype: under autocast an energy computes in bfloat16 or float16,
    and the chain's arithmetic (drift, noise, Metropolis–Hastings ratios) stays in the precision
    of the chain itself; the values carry the energy's rounding (about :math:`2^{-8} |E|` in
    bfloat16).
    """
    if evaluate is not None:
        values, grad = evaluate(x, c)
    elif analytic_score:
        with torch.no_grad():  # keep the analytic score's graph out of the chain
            values, scores = score(energy, x, c)
        grad = torch.neg(scores)
    else:
        values, grad = energy_and_gradient(energy, x, c)  # autograd with respect to a detached copy of x only
    if not isinstance(values, Tensor) or values.shape != x.shape[:1]:
        check_energy_output(values, x.shape[0], where)
    if grad.shape != x.shape:
        raise EnergyOutputError(f"{where}: the energy gradient has shape {tuple(grad.shape)}, expected {tuple(x.shape)}")
    # autograd.grad without create_graph returns a tensor outside any graph; .to is a no-op in the chain's dtype
    return values.detach().to(x.dtype), grad.to(x.dtype)


def initial_state(
    energy: nn.Module, x: Tensor, c: Optional[Tensor], where: str, analytic_score: bool, evaluate: Optional[Evaluation] = None
) -> ChainState:
    """Evaluate a validated starting point and check that its energy is finite."""
    values, grad = energy_and_grad(energy, x, c, where, analytic_score, evaluate)
    check_energy_output(values, x.shape[0], where)
    state = ChainState(x=x, c=c, energy=values, grad=grad, step=0)
    check_chain_finite(state, where)
    return state


def step_size_at(schedule: Optional[Callable[[int], float]], step_size: float, step: int, where: str) -> float:
    """Step size for transition number ``step`` (0-based): the schedule's value, else the constant."""
    if schedule is None:
        return step_size
    return check_positive(schedule(step), f"step_size_schedule({step})", where)


def per_sample_norm(t: Tensor) -> Tensor:
    """L2 norm of each batch element, ``[B, *event] -> [B]``."""
    return torch.linalg.vector_norm(t if t.dim() == 2 else t.reshape(t.shape[0], -1), dim=1)


def clip_per_sample_norm(grad: Tensor, max_norm: float) -> Tensor:
    """Rescale each batch element of ``grad`` so that its L2 norm is at most ``max_norm``.

    .. math::
        g_b \\leftarrow g_b \\cdot \\min\\left(1, \\frac{m}{\\lVert g_b \\rVert}\\right)
    """
    factor = (max_norm / per_sample_norm(grad).clamp_min(torch.finfo(grad.dtype).tiny)).clamp_max(1.0)
    return grad * factor.view(-1, *([1] * (grad.dim() - 1)))


def langevin_proposal(x: Tensor, grad: Tensor, step_size: float, noise_scale: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Draw ``x' = x - ε ∇E(x) + σ ξ``; returns ``(x', ξ)``.

    Shapes:
        - x, grad: ``[B, *event]``
        - returns: proposal and standard normal noise, both ``[B, *event]``
    """
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    proposal = torch.add(x, grad, alpha=-step_size).add_(noise, alpha=noise_scale)
    return proposal, noise


def langevin_update_(x: Tensor, grad: Tensor, step_size: float, noise_scale: float, generator: torch.Generator, noise: Tensor) -> Tensor:
    """In place: ``x ← x - ε ∇E(x) + σ ξ`` with ``ξ`` drawn into the scratch tensor ``noise``; returns ``x``.

    The same arithmetic and the same draw from ``generator`` as :func:`langevin_proposal`,
    without allocating the proposal or the noise.

    Shapes:
        - x, grad, noise: ``[B, *event]``
    """
    x.add_(grad, alpha=-step_size)
    noise.normal_(generator=generator)
    return x.add_(noise, alpha=noise_scale)


class NoiseScratch:
    """One reusable noise tensor for a sampler: ``like(x)`` returns it, reallocated when ``x``'s shape,
    dtype or device changes. Its contents are only meaningful within one step."""

    def __init__(self) -> None:
        self._tensor: Optional[Tensor] = None

    def like(self, x: Tensor) -> Tensor:
        t = self._tensor
        if t is None or t.shape != x.shape or t.dtype != x.dtype or t.device != x.device:
            t = self._tensor = torch.empty_like(x)
        return t


def proposal_log_density(to: Tensor, origin: Tensor, grad_at_origin: Tensor, step_size: float) -> Tensor:
    """``log q(to | origin)`` of the Langevin proposal, up to a constant shared by both directions.

    .. math::
        \\log q(y \\mid x) = -\\frac{\\lVert y - x + \\epsilon \\nabla E(x) \\rVert^2}{4\\epsilon}

    Shapes:
        - to, origin, grad_at_origin: ``[B, *event]``
        - returns: ``[B]``
    """
    residual = (to - origin).add_(grad_at_origin, alpha=step_size)
    return residual.square_().reshape(residual.shape[0], -1).sum(dim=1).mul_(-0.25 / step_size)


def metropolis_hastings(log_ratio: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Accept each chain with probability ``min(1, exp(log_ratio))``.

    A NaN ratio (a proposal whose energy is NaN) counts as ``-inf``: the proposal is rejected.

    Shapes:
        - log_ratio: ``[B]``
        - returns: ``accepted`` (bool ``[B]``) and the acceptance probability ``[B]``
    """
    log_ratio = torch.nan_to_num(log_ratio, nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    uniform = torch.rand(log_ratio.shape, generator=generator, device=log_ratio.device, dtype=log_ratio.dtype)
    accepted = uniform.log_() < log_ratio
    return accepted, log_ratio.clamp(max=0.0).exp_()


def select_rows(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Row-wise ``new[b] if mask[b] else old[b]`` for tensors ``[B, *event]`` and a mask ``[B]``."""
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def check_every_n_steps(state: ChainState, sampler: str, check_every: int) -> None:
    """Run :func:`check_chain_finite` every ``check_every`` transitions (one device sync each time).

    A non-finite value never turns finite again under a Langevin update without bounds, so a
    divergence is caught at most ``check_every - 1`` steps after it happens; the error names
    the step at which it was caught.
    """
    if state.step % check_every == 0:
        check_chain_finite(state, sampler)
