"""Gibbs-with-gradients (Grathwohl et al., 2021, "Oops I Took A Gradient").

With ``X`` the one-hot encoding of ``x`` and ``g = ∇_X E(X)`` (from ``one_hot_energy``),
the first-order estimate of the energy change of setting site ``i`` to ``k`` is
``g[i, k] - g[i, x_i]``. The proposal ranks every single-site change by it:

.. math::
    q(i, k \\mid x) \\propto \\exp\\Bigl(-\\tfrac12\\bigl(g[i, k] - g[i, x_i]\\bigr)\\Bigr),
    \\qquad k \\ne x_i,\\ i \\text{ not frozen},

and a Metropolis–Hastings test with the reverse proposal at the proposed state ``y``
makes the chain exact:

.. math::
    α = \\min\\Bigl(1, \\exp\\bigl(E(x) - E(y)\\bigr)\\,\\frac{q(x \\mid y)}{q(y \\mid x)}\\Bigr).

With ``num_flips = n > 1`` one step proposes a path ``x = z_0 → z_1 → … → z_n = y`` of
``n`` single-site changes, each drawn from the proposal built from the gradient at ``x``
(evaluated at the current ``z_t``); the reverse path ``y → … → x`` is scored with the
gradient at ``y``, and ``q`` above becomes the product over the path. This is an exact
MH move on (state, path), so ``p`` stays invariant for every ``n``
(:mod:`structebm.samplers._path_proposal`, shared with the graph sampler). One step costs one
``one_hot_energy`` evaluation and gradient (the one at ``x`` is kept in ``state.grad``).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import HasOneHotEnergy, check_energy_output, require
from structebm.samplers._categorical import float_dtype_of, frozen_sites
from structebm.samplers._path_proposal import propose_and_accept
from structebm.samplers.base import (
    ChainDivergedError,
    ChainState,
    SamplingAlgorithm,
    StepInfo,
    chain_condition,
    check_chain_finite,
)
from structebm.structured.enumerate import check_categorical_states, one_hot_states

__all__ = ["gibbs_with_gradients"]


def _proposal_log_probs(grad: Tensor, z: Tensor, frozen: Tensor, immovable: Tensor) -> Tensor:
    """Log-probabilities ``[B, L*K]`` of every single-site change of ``z`` (flattened ``i*K + k``)."""
    num_states = grad.shape[2]
    logits = -0.5 * (grad - grad.gather(2, z[:, :, None]))
    blocked = one_hot_states(z, num_states, torch.bool) | frozen[:, :, None]
    logits = logits.masked_fill(blocked, float("-inf")).flatten(1)
    # Chains with nothing to change get a dummy uniform proposal; their move is always rejected.
    logits = logits.masked_fill(immovable[:, None], 0.0)
    return torch.log_softmax(logits, dim=1)


def gibbs_with_gradients(
    energy: nn.Module, num_flips: int = 1, mask: Optional[Tensor] = None, num_states: Optional[int] = None
) -> SamplingAlgorithm:
    """Build a Gibbs-with-gradients sampler for categorical states ``[B, L]``.

    Args:
        energy: an energy with ``one_hot_energy(x_one_hot [B, L, K], c) -> [B]``.
        num_flips: single-site changes per proposal (path length ``n``); one step is one
            MH test of that path.
        mask: optional bool ``[L]`` or ``[B, L]``; ``True`` marks a site that never changes.
        num_states: ``K``; defaults to ``energy.num_states``.

    Returns:
        ``SamplingAlgorithm(init, step)``. ``state.grad`` holds ``∇_X E`` at ``state.x``
        (``[B, L, K]``); ``StepInfo`` has ``energy``, ``acceptance_rate`` (MH probability, 0 for
        chains with every site frozen), ``accepted`` and ``grad_norm`` (of ``∇_X E`` at the new state).

    Shapes:
        - x: ``[B, L]`` long in ``[0, K)``; c: whatever the energy accepts
        - state.x: ``[B, L]`` long; info fields: ``[B]``
    """
    require(energy, HasOneHotEnergy, "gibbs_with_gradients")
    if isinstance(num_flips, bool) or not isinstance(num_flips, int) or num_flips < 1:
        raise ValueError(f"gibbs_with_gradients: num_flips must be a positive int, got {num_flips!r}")
    num_states = num_states if num_states is not None else getattr(energy, "num_states", None)
    if not isinstance(num_states, int) or num_states < 2:
        raise ValueError(
            "gibbs_with_gradients: needs the number of states per site K >= 2; pass num_states=K or give "
            f"the energy an int attribute 'num_states' (got {num_states!r})"
        )
    K: int = num_states
    dtype = float_dtype_of(energy)

    def energy_and_grad(x: Tensor, c: Optional[Tensor], where: str) -> tuple[Tensor, Tensor]:
        """``one_hot_energy`` and its gradient in the one-hot input; non-finite values stop the chain."""
        with torch.enable_grad():
            x_one_hot = one_hot_states(x, K, dtype).requires_grad_(True)
            values = energy.one_hot_energy(x_one_hot, c)
            if not isinstance(values, Tensor) or values.shape != (x.shape[0],):
                check_energy_output(values, x.shape[0], where)
            (grad,) = torch.autograd.grad(values.sum(), x_one_hot)
        bad = ~(torch.isfinite(values) & torch.isfinite(grad.flatten(1)).all(dim=1))
        if bad.any():
            chains = bad.nonzero().flatten()[:8].tolist()
            raise ChainDivergedError(
                f"{where}: the one-hot energy or its gradient is not finite for chain(s) {chains}; "
                "regularise the energy magnitude or check the model parameters"
            )
        return values.detach(), grad.detach()

    def init(x: Tensor, c: Optional[Tensor] = None) -> ChainState:
        check_categorical_states(x, K, where="gibbs_with_gradients.init")
        x = x.detach().long().clone()
        frozen_sites(mask, x, "gibbs_with_gradients.init")
        c = chain_condition(energy, c)
        values, grad = energy_and_grad(x, c, "gibbs_with_gradients.init")
        return ChainState(x=x, c=c, energy=values, grad=grad, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        x, c = state.x, state.c
        if state.grad is None or state.grad.shape != (*x.shape, K):
            raise ValueError("gibbs_with_gradients.step: the state was not made by this sampler's init (grad missing)")
        chains = torch.arange(x.shape[0], device=x.device)
        frozen = frozen_sites(mask, x, "gibbs_with_gradients.step")
        immovable = frozen.all(dim=1)

        def apply(z: Tensor, choice: Tensor) -> tuple[Tensor, Tensor]:
            site = torch.div(choice, K, rounding_mode="floor")
            reverse = site * K + z[chains, site]
            z = z.clone()
            z[chains, site] = choice % K
            return z, reverse

        where = f"gibbs_with_gradients.step {state.step + 1}"
        move = propose_and_accept(
            x, state.energy, state.grad, num_flips, 1.0,
            lambda grad, z: (_proposal_log_probs(grad, z, frozen, immovable), immovable),
            apply, lambda z: energy_and_grad(z, c, where), generator,
        )
        proposal, proposal_energy, proposal_grad, accepted, acceptance_rate = move[:5]

        new_x = torch.where(accepted[:, None], proposal, x)
        new_energy = torch.where(accepted, proposal_energy, state.energy)
        new_grad = torch.where(accepted[:, None, None], proposal_grad, state.grad)
        new_state = ChainState(x=new_x, c=c, energy=new_energy, grad=new_grad, step=state.step + 1)
        check_chain_finite(new_state, "gibbs_with_gradients")
        info = StepInfo(
            energy=new_energy,
            grad_norm=new_grad.flatten(1).norm(dim=1),
            acceptance_rate=acceptance_rate,
            accepted=accepted,
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
