"""Single-site moves on dense molecular graphs: Gibbs and Gibbs-with-gradients.

A graph has ``N`` atom sites (values ``0..A``, ``0`` = empty slot) and ``P = N(N-1)/2`` bond
sites ``i < j`` (orders ``0..3``; the bond tensor stays symmetric). Which values a site may
take is decided by :class:`~structebm.chem.graph_space.MolGraphSpace`: never a bond to an
empty slot, and with ``valence_aware=True`` never an atom above its maximum valence. With
valence-aware moves the target is :math:`p(G) \\propto e^{-E(G, c)} \\, [G \\text{ valence-valid}]`
and chains must start from valence-valid graphs; otherwise it is :math:`e^{-E(G, c)}` over all
structurally consistent graphs.

**Gibbs** (:func:`graph_gibbs`). One step draws one site per chain, uniformly among the sites
allowed by ``sites`` (independently of the state), evaluates the energy of every other legal
value of that site in one batched call (the current graph's energy is carried in the state)
and redraws the site from its exact conditional

.. math::
    p(s = k \\mid G_{-s}) = \\frac{[k \\text{ legal}] \\, e^{-E(G_{s \\leftarrow k}, c)}}
    {\\sum_{k'} [k' \\text{ legal}] \\, e^{-E(G_{s \\leftarrow k'}, c)}} .

**Gibbs-with-gradients** (:func:`graph_gibbs_with_gradients`; Grathwohl et al., 2021). With the
gradient :math:`g` of ``one_hot_energy`` at the exact one-hot encoding (for a bond site the
sum of the gradients at ``(i, j)`` and ``(j, i)``), every legal single-site change ``s ← k`` is
ranked by its first-order energy change and a Metropolis–Hastings test corrects the proposal:

.. math::
    q(s, k \\mid G) \\propto [k \\ne G_s,\\ k \\text{ legal}] \\,
    \\exp\\bigl(-\\tfrac12 (g_{s k} - g_{s G_s})\\bigr), \\qquad
    α = \\min\\Bigl(1, e^{E(G) - E(G')} \\frac{q(G \\mid G')}{q(G' \\mid G)}\\Bigr).

With ``num_flips = n`` a proposal is a path of ``n`` changes drawn with the gradient at ``G``
and the reverse path is scored with the gradient at ``G'`` (an exact MH move on state and
path). The reverse proposal uses the same legality masks, and a legal move's reverse is
legal, so the chain stays exact.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import NUM_BOND_VALUES, MolGraphSpace
from structebm.chem.vocab import AtomVocabulary
from structebm.energies.base import check_energy_output, require
from structebm.energies.graph import HasGraphOneHotEnergy
from structebm.samplers._categorical import float_dtype_of, sample_categorical
from structebm.samplers.base import ChainDivergedError, ChainState, SamplingAlgorithm, StepInfo

__all__ = ["graph_gibbs", "graph_gibbs_with_gradients"]

SiteKind = Literal["atoms", "bonds", "atoms_and_bonds"]


def _build_space(energy: nn.Module, vocabulary: AtomVocabulary, where: str) -> MolGraphSpace:
    space = MolGraphSpace(vocabulary)
    if space.max_atoms < 2:
        raise ValueError(f"{where}: graph moves need at least 2 atom slots, vocabulary has max_atoms={space.max_atoms}")
    declared = getattr(energy, "num_atom_types", None)
    if isinstance(declared, int) and declared != len(vocabulary):
        raise ValueError(
            f"{where}: the energy has {declared} atom types but vocabulary {vocabulary.name!r} has {len(vocabulary)}"
        )
    return space


def _check_start(space: MolGraphSpace, x: DenseMolGraph, c: Optional[Tensor], valence_aware: bool, where: str) -> None:
    space.validate(x, where)
    if c is not None and (not isinstance(c, Tensor) or c.dim() < 1 or c.shape[0] != x.batch_size):
        got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
        raise ValueError(f"{where}: c must be None or a tensor with batch size {x.batch_size} first, got {got}")
    if valence_aware:
        space.check_valence_valid(x, where)


def _check_shape(values: Tensor, count: int, where: str) -> None:
    """Raise the contract's error when the energy did not return a ``Tensor[count]``."""
    if not isinstance(values, Tensor) or values.shape != (count,):
        check_energy_output(values, count, where)


def _checked_values(values: Tensor, count: int, where: str) -> Tensor:
    """Detached energies ``[count]``; a non-finite value stops the chain."""
    _check_shape(values, count, where)
    if not torch.isfinite(values).all():
        raise ChainDivergedError(f"{where}: the energy is not finite for some graph(s); regularise the energy magnitude")
    return values.detach()


def _set_sites(
    atoms: Tensor, bonds: Tensor, is_atom: Tensor, slot: Tensor, row: Tensor, col: Tensor, value: Tensor
) -> DenseMolGraph:
    """Copy of the graphs with one site per row set to ``value`` (atom ``slot`` or bond ``(row, col)``)."""
    index = torch.arange(atoms.shape[0], device=atoms.device)
    atoms, bonds = atoms.clone(), bonds.clone()
    atoms[index, slot] = torch.where(is_atom, value, atoms[index, slot])
    order = torch.where(is_atom, bonds[index, row, col], value)
    bonds[index, row, col] = order
    bonds[index, col, row] = order
    return DenseMolGraph(atoms, bonds, atoms > 0)


def _pad_columns(mask: Tensor, width: int) -> Tensor:
    """``[B, K]`` bool mask padded with ``False`` columns to ``[B, width]``."""
    return torch.cat([mask, mask.new_zeros(mask.shape[0], width - mask.shape[1])], dim=1)


def _step_info(
    space: MolGraphSpace, x: DenseMolGraph, values: Tensor, extra: Optional[dict[str, Tensor]] = None, **fields: Tensor
) -> StepInfo:
    """``StepInfo`` with ``extra["valence_valid"]`` (1.0 where ``x`` is valence-valid) added."""
    extra = {"valence_valid": space.valence_valid(x).to(values.dtype), **(extra or {})}
    return StepInfo(energy=values, extra=extra, **fields)


def graph_gibbs(
    energy: nn.Module, vocabulary: AtomVocabulary, valence_aware: bool = True, sites: SiteKind = "atoms_and_bonds"
) -> SamplingAlgorithm:
    """Build a random-scan Gibbs sampler over atom types and bond orders (see the module docstring).

    Args:
        energy: ``E(G, c) -> [B]`` on :class:`DenseMolGraph` batches.
        vocabulary: the atom vocabulary; ``N = vocabulary.max_atoms`` slots.
        valence_aware: give zero probability to values that put an atom above its maximum valence.
        sites: which sites are resampled: ``"atoms"``, ``"bonds"`` or ``"atoms_and_bonds"``.

    Returns:
        ``SamplingAlgorithm(init, step)``; one step resamples one site per chain with one energy
        call on the other legal values of the site (a few per chain). ``StepInfo`` has ``energy``,
        ``acceptance_rate`` (ones), ``extra["valence_valid"]`` (1 where the graph is valence-valid;
        its mean is the valid fraction) and ``extra["site_changed"]`` (1 where the site's value changed).

    Shapes:
        - x: ``DenseMolGraph`` atoms ``[B, N]``, bonds ``[B, N, N]``; c: ``None`` or ``[B, ...]``
        - state.x: ``DenseMolGraph``; info fields: ``[B]``
    """
    space = _build_space(energy, vocabulary, "graph_gibbs")
    site_ranges = {"atoms": (0, space.max_atoms), "bonds": (space.max_atoms, space.max_atoms + space.num_pairs)}
    site_ranges["atoms_and_bonds"] = (0, space.max_atoms + space.num_pairs)
    if sites not in site_ranges:
        raise ValueError(f"graph_gibbs: sites must be one of {sorted(site_ranges)}, got {sites!r}")
    first_site, end_site = site_ranges[sites]
    width = max(space.num_atom_values, NUM_BOND_VALUES)

    def init(x: DenseMolGraph, c: Optional[Tensor] = None) -> ChainState:
        _check_start(space, x, c, valence_aware, "graph_gibbs.init")
        x = DenseMolGraph(x.atoms.clone(), x.bonds.clone(), x.mask.clone())
        with torch.no_grad():
            values = _checked_values(energy(x, c), x.batch_size, "graph_gibbs.init")
        return ChainState(x=x, c=c, energy=values, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        x, c = state.x, state.c
        device = x.atoms.device
        chains = torch.arange(x.batch_size, device=device)
        site = torch.randint(first_site, end_site, (x.batch_size,), generator=generator, device=device)
        is_atom = site < space.max_atoms
        slot = site.clamp(max=space.max_atoms - 1)
        pair = (site - space.max_atoms).clamp(min=0)
        rows, cols = space.upper_pairs(device)
        row, col = rows[pair], cols[pair]
        atom_legal = _pad_columns(space.legal_atom_values(x, valence_aware)[chains, slot], width)
        bond_legal = _pad_columns(space.legal_bond_values(x, valence_aware)[chains, pair], width)
        legal = torch.where(is_atom[:, None], atom_legal, bond_legal)  # [B, width]

        current = torch.where(is_atom, x.atoms[chains, slot], x.bonds[chains, row, col])
        alternatives = legal.clone()
        alternatives[chains, current] = False  # the current graph's energy is already in the state
        chain_of, value_of = alternatives.nonzero(as_tuple=True)  # one row per other legal value
        candidates = _set_sites(
            x.atoms[chain_of], x.bonds[chain_of], is_atom[chain_of], slot[chain_of], row[chain_of], col[chain_of], value_of
        )
        where = f"graph_gibbs.step {state.step + 1}"
        energies = state.energy[:, None].repeat(1, width)
        if chain_of.numel() > 0:
            with torch.no_grad():
                values = energy(candidates, None if c is None else c[chain_of])
            energies[chain_of, value_of] = _checked_values(values, chain_of.shape[0], where)
        logits = (-energies).masked_fill(~legal, float("-inf"))
        choice = sample_categorical(logits, generator)

        position = torch.zeros(x.batch_size, width, dtype=torch.long, device=device)
        position[chain_of, value_of] = torch.arange(chain_of.shape[0], device=device)
        changed = choice != current
        chosen = position[chains, choice][changed]
        atoms, bonds = x.atoms.clone(), x.bonds.clone()
        atoms[changed], bonds[changed] = candidates.atoms[chosen], candidates.bonds[chosen]
        new_x = DenseMolGraph(atoms, bonds, atoms > 0)
        new_energy = energies[chains, choice]
        new_state = ChainState(x=new_x, c=c, energy=new_energy, step=state.step + 1)
        info = _step_info(
            space,
            new_x,
            new_energy,
            acceptance_rate=torch.ones_like(new_energy),
            extra={"site_changed": changed.to(new_energy.dtype)},
        )
        return new_state, info

    return SamplingAlgorithm(init, step)


class _SiteGradient:
    """Layout of the flat site vector ``[B, S]``, ``S = N(A+1) + 4P``: atom sites, then bond sites."""

    def __init__(self, space: MolGraphSpace) -> None:
        self.space = space
        self.atom_part = space.max_atoms * space.num_atom_values
        self.size = self.atom_part + space.num_pairs * NUM_BOND_VALUES

    def of(
        self, energy: nn.Module, x: DenseMolGraph, c: Optional[Tensor], dtype: torch.dtype, where: str
    ) -> tuple[Tensor, Tensor]:
        """Energy ``[B]`` and its gradient in the one-hot value of every site ``[B, S]``."""
        with torch.enable_grad():
            atoms_one_hot, bonds_one_hot = (t.requires_grad_(True) for t in self.space.one_hot(x, dtype))
            values = energy.one_hot_energy(atoms_one_hot, bonds_one_hot, c)
            _check_shape(values, x.batch_size, where)
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
        logits = (-0.5 * (grad - held)).masked_fill(~allowed, float("-inf"))
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
        return _set_sites(z.atoms, z.bonds, is_atom, slot, row, col, value), reverse


def graph_gibbs_with_gradients(
    energy: nn.Module, vocabulary: AtomVocabulary, valence_aware: bool = True, num_flips: int = 1
) -> SamplingAlgorithm:
    """Build a Gibbs-with-gradients sampler over all atom and bond sites (see the module docstring).

    Args:
        energy: an energy with ``one_hot_energy(atoms_one_hot, bonds_one_hot, c) -> [B]``.
        vocabulary: the atom vocabulary; ``N = vocabulary.max_atoms`` slots.
        valence_aware: put zero proposal mass on changes that break a valence.
        num_flips: single-site changes per proposal; one step is one MH test of that path.

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
    space = _build_space(energy, vocabulary, "graph_gibbs_with_gradients")
    layout = _SiteGradient(space)
    dtype = float_dtype_of(energy)

    def init(x: DenseMolGraph, c: Optional[Tensor] = None) -> ChainState:
        _check_start(space, x, c, valence_aware, "graph_gibbs_with_gradients.init")
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

        log_ratio = state.energy - proposal_energy + log_q_reverse - log_q_forward
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
        info = _step_info(
            space, new_x, new_energy, grad_norm=new_grad.norm(dim=1), acceptance_rate=acceptance_rate, accepted=accepted
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
