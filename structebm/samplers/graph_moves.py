"""Single-site moves on dense molecular graphs: Gibbs (Gibbs-with-gradients is in :mod:`~structebm.samplers.graph_gwg`).

A graph has ``N`` atom sites (values ``0..A``, ``0`` = empty slot) and ``P = N(N-1)/2`` bond
sites ``i < j`` (orders ``0..3``; the bond tensor stays symmetric). Which values a site may
take is decided by :class:`~structebm.chem.graph_space.MolGraphSpace`: never a bond to an
empty slot, and with ``valence_aware=True`` never an atom above its maximum valence. With
valence-aware moves the target is :math:`p(G) \\propto e^{-E(G, c)} \\, [G \\text{ valence-valid}]`
and chains must start from valence-valid graphs; otherwise it is :math:`e^{-E(G, c)}` over all
structurally consistent graphs. A ``temperature`` :math:`T` tempers either target to
:math:`p_T(G) \\propto p(G)^{1/T}`, i.e. :math:`E` is replaced by :math:`E / T`: :math:`T > 1` flattens
it (more diverse samples), :math:`T < 1` sharpens it. The energies carried in the state and
reported are those of ``energy`` itself, untempered.

**Gibbs** (:func:`graph_gibbs`). One step draws one site per chain, uniformly among the sites
allowed by ``sites`` (independently of the state), evaluates the energy of every other legal
value of that site in one batched call (the current graph's energy is carried in the state)
and redraws the site from its exact conditional

.. math::
    p(s = k \\mid G_{-s}) = \\frac{[k \\text{ legal}] \\, e^{-E(G_{s \\leftarrow k}, c) / T}}
    {\\sum_{k'} [k' \\text{ legal}] \\, e^{-E(G_{s \\leftarrow k'}, c) / T}} .
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import NUM_BOND_VALUES
from structebm.chem.vocab import AtomVocabulary
from structebm.samplers._categorical import sample_categorical
from structebm.samplers._graph_sites import (
    SiteKind,
    build_space,
    check_start,
    checked_values,
    pad_columns,
    set_sites,
    step_info,
)
from structebm.samplers.base import ChainState, SamplingAlgorithm, StepInfo, check_positive

__all__ = ["graph_gibbs"]


def graph_gibbs(
    energy: nn.Module,
    vocabulary: AtomVocabulary,
    valence_aware: bool = True,
    sites: SiteKind = "atoms_and_bonds",
    temperature: float = 1.0,
) -> SamplingAlgorithm:
    """Build a random-scan Gibbs sampler over atom types and bond orders (see the module docstring).

    Args:
        energy: ``E(G, c) -> [B]`` on :class:`DenseMolGraph` batches.
        vocabulary: the atom vocabulary; ``N = vocabulary.max_atoms`` slots.
        valence_aware: give zero probability to values that put an atom above its maximum valence.
        sites: which sites are resampled: ``"atoms"``, ``"bonds"`` or ``"atoms_and_bonds"``.
        temperature: sample :math:`e^{-E / T}` (a positive finite float; 1 is the energy's own target).

    Returns:
        ``SamplingAlgorithm(init, step)``; one step resamples one site per chain with one energy
        call on the other legal values of the site (a few per chain). ``StepInfo`` has ``energy``,
        ``acceptance_rate`` (ones), ``extra["valence_valid"]`` (1 where the graph is valence-valid;
        its mean is the valid fraction) and ``extra["site_changed"]`` (1 where the site's value changed).

    Shapes:
        - x: ``DenseMolGraph`` atoms ``[B, N]``, bonds ``[B, N, N]``; c: ``None`` or ``[B, ...]``
        - state.x: ``DenseMolGraph``; info fields: ``[B]``
    """
    space = build_space(energy, vocabulary, "graph_gibbs")
    inverse_temperature = 1.0 / check_positive(temperature, "temperature", "graph_gibbs")
    site_ranges = {"atoms": (0, space.max_atoms), "bonds": (space.max_atoms, space.max_atoms + space.num_pairs)}
    site_ranges["atoms_and_bonds"] = (0, space.max_atoms + space.num_pairs)
    if sites not in site_ranges:
        raise ValueError(f"graph_gibbs: sites must be one of {sorted(site_ranges)}, got {sites!r}")
    first_site, end_site = site_ranges[sites]
    width = max(space.num_atom_values, NUM_BOND_VALUES)

    def init(x: DenseMolGraph, c: Optional[Tensor] = None) -> ChainState:
        check_start(space, x, c, valence_aware, "graph_gibbs.init")
        x = DenseMolGraph(x.atoms.clone(), x.bonds.clone(), x.mask.clone())
        with torch.no_grad():
            values = checked_values(energy(x, c), x.batch_size, "graph_gibbs.init")
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
        atom_legal = pad_columns(space.legal_atom_values(x, valence_aware)[chains, slot], width)
        bond_legal = pad_columns(space.legal_bond_values(x, valence_aware)[chains, pair], width)
        legal = torch.where(is_atom[:, None], atom_legal, bond_legal)  # [B, width]

        current = torch.where(is_atom, x.atoms[chains, slot], x.bonds[chains, row, col])
        alternatives = legal.clone()
        alternatives[chains, current] = False  # the current graph's energy is already in the state
        chain_of, value_of = alternatives.nonzero(as_tuple=True)  # one row per other legal value
        candidates = set_sites(
            x.atoms[chain_of], x.bonds[chain_of], is_atom[chain_of], slot[chain_of], row[chain_of], col[chain_of], value_of
        )
        where = f"graph_gibbs.step {state.step + 1}"
        energies = state.energy[:, None].repeat(1, width)
        if chain_of.numel() > 0:
            with torch.no_grad():
                values = energy(candidates, None if c is None else c[chain_of])
            energies[chain_of, value_of] = checked_values(values, chain_of.shape[0], where)
        logits = (-inverse_temperature * energies).masked_fill(~legal, float("-inf"))
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
        info = step_info(
            space,
            new_x,
            new_energy,
            acceptance_rate=torch.ones_like(new_energy),
            extra={"site_changed": changed.to(new_energy.dtype)},
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
