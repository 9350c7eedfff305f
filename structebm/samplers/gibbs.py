"""Gibbs sampling over categorical states with single-site heat-bath updates.

One update picks a site ``i`` and redraws it from its exact conditional, which follows
from the energy changes of all single-site changes (the ``HasLocalMoves`` capability):

.. math::
    p(x_i = k \\mid x_{-i}) = \\frac{\\exp\\bigl(-Δ_{ik}(x)\\bigr)}{\\sum_{k'} \\exp\\bigl(-Δ_{ik'}(x)\\bigr)},
    \\qquad Δ_{ik}(x) = E(x_{i \\leftarrow k}) - E(x).

**One step is one sweep**, every site redrawn once on average:

- ``scan="systematic"``: sites ``0, 1, …, L-1`` in order, ``L`` single-site updates;
- ``scan="random"``: ``L`` sites drawn independently and uniformly (with replacement) among
  each chain's free sites, independently per chain;
- ``scan="blocked"``: the colours of the energy's site colouring
  (:class:`~structebm.energies.base.HasSiteColouring`) in order, all sites of one colour at
  once. No term of the energy couples two sites of one colour, so given the other colours they
  are independent and the product of their single-site conditionals is their exact joint
  conditional: each colour's update is a Gibbs update of that block.

Each update leaves ``p`` invariant, so every sweep does; Gibbs always accepts. Each update
calls ``local_energy_deltas`` once, so a sweep costs ``L`` such calls, or one per colour
(two for a linear-chain CRF) when blocked.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import HasLocalMoves, HasSiteColouring, check_energy_output, require
from structebm.samplers._categorical import frozen_sites, sample_categorical
from structebm.samplers.base import (
    ChainDivergedError,
    ChainState,
    chain_condition,
    SamplingAlgorithm,
    StepInfo,
    check_chain_finite,
)
from structebm.structured.enumerate import check_categorical_states

__all__ = ["gibbs"]

ScanOrder = Literal["random", "systematic", "blocked"]


def _local_deltas(energy: nn.Module, x: Tensor, c: Optional[Tensor], where: str) -> Tensor:
    """``local_energy_deltas`` with its output shape checked: ``[B, L, K]`` with ``K >= 2``."""
    deltas = energy.local_energy_deltas(x, c)
    if not isinstance(deltas, Tensor) or deltas.dim() != 3 or deltas.shape[:2] != x.shape or deltas.shape[2] < 2:
        got = tuple(deltas.shape) if isinstance(deltas, Tensor) else type(deltas).__name__
        raise ValueError(
            f"{where}: local_energy_deltas returned {got}, expected [B, L, K] = ({x.shape[0]}, {x.shape[1]}, K>=2)"
        )
    return deltas


def _nan_deltas(step: int) -> ChainDivergedError:
    return ChainDivergedError(
        f"gibbs: local_energy_deltas returned NaN during step {step}; the energy is not finite for some single-site change"
    )


def _site_colours(energy: nn.Module, x: Tensor) -> list[Tensor]:
    """The sites of each colour of ``energy.site_colours(L)``, checked: a bool mask ``[L]`` per colour."""
    length = x.shape[1]
    colours = energy.site_colours(length)
    if not isinstance(colours, Tensor) or colours.shape != (length,) or colours.is_floating_point() or (colours < 0).any():
        got = f"{tuple(colours.shape)} {colours.dtype}" if isinstance(colours, Tensor) else type(colours).__name__
        raise ValueError(f"gibbs: site_colours({length}) must return non-negative integers [{length}], got {got}")
    colours = colours.to(x.device)
    return [colours == colour for colour in colours.unique().tolist()]


def gibbs(energy: nn.Module, scan: ScanOrder = "random", mask: Optional[Tensor] = None) -> SamplingAlgorithm:
    """Build a Gibbs sampler for categorical states ``[B, L]`` with ``K`` states per site.

    Args:
        energy: an energy with ``local_energy_deltas(x, c) -> [B, L, K]``.
        scan: ``"systematic"`` (sites in order), ``"random"`` (uniform random sites) or
            ``"blocked"`` (colour by colour; the energy must have ``site_colours``).
        mask: optional bool ``[L]`` or ``[B, L]``; ``True`` marks a site that never changes
            (padding or observed positions).

    Returns:
        ``SamplingAlgorithm(init, step)`` with ``init(x, c=None) -> ChainState`` and
        ``step(state, generator) -> (state, StepInfo)``; one step is one sweep of ``L`` updates.
        ``StepInfo.acceptance_rate`` is all ones; ``extra["changed_fraction"]`` is the fraction
        of sites whose value differs from before the sweep.

    Shapes:
        - x: ``[B, L]`` long in ``[0, K)``; c: whatever the energy accepts
        - state.x: ``[B, L]`` long; info fields: ``[B]``
    """
    require(energy, HasLocalMoves, "gibbs")
    if scan not in ("random", "systematic", "blocked"):
        raise ValueError(f"gibbs: scan must be 'random', 'systematic' or 'blocked', got {scan!r}")
    if scan == "blocked":
        require(energy, HasSiteColouring, "gibbs(scan='blocked')")
    colour_blocks: dict[tuple[int, torch.device], list[Tensor]] = {}  # the colouring is structural: once per length

    def init(x: Tensor, c: Optional[Tensor] = None) -> ChainState:
        check_categorical_states(x, num_states=None, where="gibbs.init")
        x = x.detach().long().clone()
        frozen_sites(mask, x, "gibbs.init")
        c = chain_condition(energy, c)
        with torch.no_grad():
            num_states = _local_deltas(energy, x, c, "gibbs.init").shape[2]
            check_categorical_states(x, num_states, where="gibbs.init")
            values = check_energy_output(energy(x, c), x.shape[0], "gibbs.init").detach()
        return ChainState(x=x, c=c, energy=values, grad=None, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        x = state.x.clone()
        frozen = frozen_sites(mask, x, "gibbs.step")
        if scan == "blocked":
            return _blocked_sweep(state, x, frozen, generator)
        batch_size, length = x.shape
        chains = torch.arange(batch_size, device=x.device)
        if scan == "systematic":
            sweep = torch.arange(length, device=x.device).expand(batch_size, length)
        else:
            weights = (~frozen).to(torch.get_default_dtype())
            weights[weights.sum(dim=1) == 0] = 1.0  # fully frozen chains: any site, none changes
            sweep = torch.multinomial(weights, length, replacement=True, generator=generator)
        nan_seen = torch.zeros((), dtype=torch.bool, device=x.device)
        with torch.no_grad():
            for update in range(length):
                site = sweep[:, update]
                site_deltas = _local_deltas(energy, x, state.c, "gibbs.step")[chains, site]  # [B, K]
                nan_seen |= torch.isnan(site_deltas).any()
                proposal = sample_categorical(-site_deltas, generator)
                current = x[chains, site]
                x[chains, site] = torch.where(frozen[chains, site], current, proposal)
            if nan_seen:
                raise _nan_deltas(state.step + 1)
        return _finish_sweep(state, x)

    def _blocked_sweep(state: ChainState, x: Tensor, frozen: Tensor, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        key = (x.shape[1], x.device)
        if key not in colour_blocks:
            colour_blocks[key] = _site_colours(energy, x)
        with torch.no_grad():
            for block in colour_blocks[key]:
                deltas = _local_deltas(energy, x, state.c, "gibbs.step")  # [B, L, K]
                if torch.isnan(deltas).any():
                    raise _nan_deltas(state.step + 1)
                x = torch.where(block & ~frozen, sample_categorical(-deltas, generator), x)
        return _finish_sweep(state, x)

    def _finish_sweep(state: ChainState, x: Tensor) -> tuple[ChainState, StepInfo]:
        with torch.no_grad():
            values = energy(x, state.c).detach()
        new_state = ChainState(x=x, c=state.c, energy=values, grad=None, step=state.step + 1)
        check_chain_finite(new_state, "gibbs")
        changed_fraction = (x != state.x).to(values.dtype).mean(dim=1)
        info = StepInfo(
            energy=values,
            acceptance_rate=torch.ones_like(values),
            extra={"changed_fraction": changed_fraction},
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
