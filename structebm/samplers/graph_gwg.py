"""Gibbs-with-gradients on dense molecular graphs (Grathwohl et al., 2021).

Sites, legal values and the two targets (valence-aware or not) are those of
:mod:`structebm.samplers.graph_moves`. With the gradient :math:`g` of ``one_hot_energy`` at the exact one-hot encoding (for a bond site the
sum of the gradients at ``(i, j)`` and ``(j, i)``), every legal single-site change ``s ← k`` is
ranked by its first-order energy change and a Metropolis–Hastings test corrects the proposal:

.. math::
    q(s, k \\mid G) \\propto [k \\ne G_s,\\ k \\text{ legal}] \\,
    \\exp\\bigl(-\\tfrac{1}{2T} (g_{s k} - g_{s G_s})\\bigr), \\qquad
    α = \\min\\Bigl(1, e^{(E(G) - E(G')) / T} \\frac{q(G \\mid G')}{q(G' \\mid G)}\\Bigr),

where the temperature :math:`T` (``temperature``, default 1) tempers the target to
:math:`e^{-E / T}` as for :func:`~structebm.samplers.graph_moves.graph_gibbs`; state and
reported energies stay untempered.

With ``num_flips = n`` a proposal is a path of ``n`` changes drawn with the gradient at ``G``
and the reverse path is scored with the gradient at ``G'`` (an exact MH move on state and
path). The reverse proposal uses the same legality masks, and a legal move's reverse is
legal, so the chain stays exact.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import NUM_BOND_VALUES, MolGraphSpace
from structebm.chem.vocab import AtomVocabulary
from structebm.energies.base import require
from structebm.energies.graph import HasGraphOneHotEnergy
from structebm.samplers._categorical import float_dtype_of, sample_categorical
from structebm.samplers._graph_sites import build_space, check_shape, check_start, set_sites, step_info
from structebm.samplers.base import ChainDivergedError, ChainState, SamplingAlgorithm, StepInfo, check_positive

__all__ = ["graph_gibbs_with_gradients"]


class _SiteGradient:
    """Layout of the flat site vector ``[B, S]``, ``S = N(A+1) + 4P``: atom sites, then bond sites."""

    def __init__(self, space: MolGraphSpace, inverse_temperature: float) -> None:
        self.space = space
        self.inverse_temperature = inverse_temperature
        self.atom_part = space.max_atoms * space.num_atom_values
        self.size = self.atom_part + space.num_pairs * NUM_BOND_VALUES

    def of(
        self, energy: nn.Module, x: DenseMolGraph, c: Optional[Tensor], dtype: torch.dtype, where: str
    ) -> tuple[Tensor, Tensor]:
        """Energy ``[B]`` and its gradient in the one-hot value of every site ``[B, S]``."""
        with torch.enable_grad():
            atoms_one_hot, bonds_one_hot = (t.requires_grad_(True) for t in self.space.one_hot(x, dtype))
            values = energy.one_hot_energy(atoms_one_hot, bonds_one_hot, c)
            check_shape(values, x.batch_size, where)
            atom_grad, bond_grad = torch.autograd.grad(values.sum(), (atoms_one_hot, bonds_one_hot))
        rows, cols = self.space.upper_pairs(x.atoms.device)
        pair_grad = bond_grad[:, rows, cols] + bond_grad[:, cols, rows]
        grad = torch.cat([atom_grad.flatten(1), pair_grad.flatten(1)], dim=1)
        if not (torch.isfinite(values).all() and torch.isfinite(grad).all()):
            raise ChainDivergedError(f"{where}: the one-hot energy or its gradient is not finite; regularise the energy")
        return values.detach(), grad.detach()

    def current(self, x: DenseMolGraph) -> Tensor:
        """``[B, S]`` bool: the entries of the values the sites hold now."""
        atoms = F.one_hot(x.atoms, self.space.num_atom_values).flatten(1)
        bonds = F.one_hot(self.space.pair_values(x), NUM_BOND_VALUES).flatten(1)
        return torch.cat([atoms, bonds], dim=1).bool()

    def legal(self, x: DenseMolGraph, valence_aware: bool) -> Tensor:
        """``[B, S]`` bool: legal values of every site."""
        atoms = self.space.legal_atom_values(x, valence_aware).flatten(1)
        return torch.cat([atoms, self.space.legal_bond_values(x, valence_aware).flatten(1)], dim=1)

    def proposal_log_probs(self, grad: Tensor, z: DenseMolGraph, valence_aware: bool) -> tuple[Tensor, Tensor]:
        """Log-probabilities ``[B, S]`` of every legal change of ``z`` and the chains with none ``[B]``."""
        current = self.current(z)
        atom_grad = grad[:, : self.atom_part].view(z.batch_size, self.space.max_atoms, -1)
        bond_grad = grad[:, self.atom_part :].view(z.batch_size, self.space.num_pairs, NUM_BOND_VALUES)
        held = torch.cat(
            [
                atom_grad.gather(2, z.atoms[:, :, None]).expand_as(atom_grad).flatten(1),
                bond_grad.gather(2, self.space.pair_values(z)[:, :, None]).expand_as(bond_grad).flatten(1),
            ],
            dim=1,
        )
        allowed = self.legal(z, valence_aware) & ~current
        immovable = ~allowed.any(dim=1)
        logits = (-0.5 * self.inverse_temperature * (grad - held)).masked_fill(~allowed, float("-inf"))
        logits = logits.masked_fill(immovable[:, None], 0.0)  # dummy proposal; such chains always reject
        return torch.log_softmax(logits, dim=1), immovable

    def apply(self, z: DenseMolGraph, choice: Tensor) -> tuple[DenseMolGraph, Tensor]:
        """Graphs with the flat change ``choice [B]`` applied, and the flat index of the reverse change."""
        num_values, (rows, cols) = self.space.num_atom_values, self.space.upper_pairs(z.atoms.device)
        is_atom = choice < self.atom_part
        slot = torch.div(choice, num_values, rounding_mode="floor").clamp(max=self.space.max_atoms - 1)
        bond_index = (choice - self.atom_part).clamp(min=0)
        pair = torch.div(bond_index, NUM_BOND_VALUES, rounding_mode="floor")
        row, col = rows[pair], cols[pair]
        value = torch.where(is_atom, choice % num_values, bond_index % NUM_BOND_VALUES)
        chains = torch.arange(z.batch_size, device=z.atoms.device)
        old = torch.where(is_atom, z.atoms[chains, slot], z.bonds[chains, row, col])
        reverse = torch.where(is_atom, slot * num_values + old, self.atom_part + pair * NUM_BOND_VALUES + old)
        return set_sites(z.atoms, z.bonds, is_atom, slot, row, col, value), reverse


def graph_gibbs_with_gradients(
    energy: nn.Module,
    vocabulary: AtomVocabulary,
    valence_aware: bool = True,
    num_flips: int = 1,
    temperature: float = 1.0,
) -> SamplingAlgorithm:
    """Build a Gibbs-with-gradients sampler over all atom and bond sites (see the module docstring).

    Args:
        energy: an energy with ``one_hot_energy(atoms_one_hot, bonds_one_hot, c) -> [B]``.
        vocabulary: the atom vocabulary; ``N = vocabulary.max_atoms`` slots.
        valence_aware: put zero proposal mass on changes that break a valence.
        num_flips: single-site changes per proposal; one step is one MH test of that path.
        temperature: sample :math:`e^{-E / T}` (a positive finite float; 1 is the energy's own target).

    Returns:
        ``SamplingAlgorithm(init, step)``. ``state.grad`` is the gradient of the energy in the
        one-hot value of every site, ``[B, N(A+1) + 4P]`` (atom sites first, then bond sites
        ``i < j`` in row-major order). ``StepInfo`` has ``energy``, ``acceptance_rate`` (MH
        probability), ``accepted``, ``grad_norm`` and ``extra["valence_valid"]``.

    Shapes:
        - x: ``DenseMolGraph`` atoms ``[B, N]``, bonds ``[B, N, N]``; c: ``None`` or ``[B, ...]``
        - state.x: ``DenseMolGraph``; info fields: ``[B]``
    """
    require(energy, HasGraphOneHotEnergy, "graph_gibbs_with_gradients")
    if isinstance(num_flips, bool) or not isinstance(num_flips, int) or num_flips < 1:
        raise ValueError(f"graph_gibbs_with_gradients: num_flips must be a positive int, got {num_flips!r}")
    space = build_space(energy, vocabulary, "graph_gibbs_with_gradients")
    layout = _SiteGradient(space, 1.0 / check_positive(temperature, "temperature", "graph_gibbs_with_gradients"))
    dtype = float_dtype_of(energy)

    def init(x: DenseMolGraph, c: Optional[Tensor] = None) -> ChainState:
        check_start(space, x, c, valence_aware, "graph_gibbs_with_gradients.init")
        x = DenseMolGraph(x.atoms.clone(), x.bonds.clone(), x.mask.clone())
        values, grad = layout.of(energy, x, c, dtype, "graph_gibbs_with_gradients.init")
        return ChainState(x=x, c=c, energy=values, grad=grad, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        x, c = state.x, state.c
        if state.grad is None or state.grad.shape != (x.batch_size, layout.size):
            raise ValueError("graph_gibbs_with_gradients.step: the state was not made by this sampler's init")
        z = x
        log_q_forward = torch.zeros_like(state.energy)
        path: list[tuple[DenseMolGraph, Tensor]] = []  # (z_{t+1}, flat index of the change back to z_t)
        for flip in range(num_flips):
            log_probs, stuck = layout.proposal_log_probs(state.grad, z, valence_aware)
            if flip == 0:
                immovable = stuck  # later z_t always have a legal move: the one back
            choice = sample_categorical(log_probs, generator)
            log_q_forward = log_q_forward + log_probs.gather(1, choice[:, None]).squeeze(1)
            z, reverse = layout.apply(z, choice)
            path.append((z, reverse))

        where = f"graph_gibbs_with_gradients.step {state.step + 1}"
        proposal_energy, proposal_grad = layout.of(energy, z, c, dtype, where)
        log_q_reverse = torch.zeros_like(proposal_energy)
        for z_next, reverse in path:
            log_probs, _ = layout.proposal_log_probs(proposal_grad, z_next, valence_aware)
            log_q_reverse = log_q_reverse + log_probs.gather(1, reverse[:, None]).squeeze(1)

        log_ratio = layout.inverse_temperature * (state.energy - proposal_energy) + log_q_reverse - log_q_forward
        log_uniform = torch.rand(x.batch_size, generator=generator, device=x.atoms.device, dtype=dtype).log()
        accepted = (log_uniform < log_ratio) & ~immovable
        acceptance_rate = torch.where(immovable, torch.zeros_like(log_ratio), log_ratio.clamp(max=0.0).exp())
        keep = accepted[:, None]
        new_x = DenseMolGraph(
            torch.where(keep, z.atoms, x.atoms),
            torch.where(keep[:, :, None], z.bonds, x.bonds),
            torch.where(keep, z.mask, x.mask),
        )
        new_energy = torch.where(accepted, proposal_energy, state.energy)
        new_grad = torch.where(keep, proposal_grad, state.grad)
        new_state = ChainState(x=new_x, c=c, energy=new_energy, grad=new_grad, step=state.step + 1)
        info = step_info(
            space, new_x, new_energy, grad_norm=new_grad.norm(dim=1), acceptance_rate=acceptance_rate, accepted=accepted
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
