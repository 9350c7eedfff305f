"""Single-site moves on dense graphs: Gibbs (Gibbs-with-gradients is in :mod:`~structebm.samplers.graph_gwg`).

A graph of a :class:`~structebm.graphs.space.GraphSpace` has ``N`` node sites (values ``0..K``,
``0`` = empty slot) and ``P = N(N-1)/2`` edge sites ``i < j`` (values ``0..R``; the edge tensor
stays symmetric). Which values a site may take is decided by the space: never an edge on an
empty slot, and with ``constrained=True`` never a move that breaks one of the space's
constraints (for molecules: the valence rule). With constrained moves the target is
:math:`p(G) \\propto e^{-E(G, c)} \\, [G \\text{ valid}]` and chains must start from valid graphs;
otherwise it is :math:`e^{-E(G, c)}` over all structurally consistent graphs. A ``temperature`` :math:`T` tempers either target to
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

from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers._categorical import sample_categorical
from structebm.samplers._graph_sites import (
    SiteKind,
    check_space,
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
    space: GraphSpace,
    constrained: bool = False,
    sites: SiteKind = "nodes_and_edges",
    temperature: float = 1.0,
) -> SamplingAlgorithm:
    """Build a random-scan Gibbs sampler over node and edge values (see the module docstring).

    Args:
        energy: ``E(G, c) -> [B]`` on :class:`DenseGraph` batches.
        space: the graph space (capacity ``N``, alphabets, constraints).
        constrained: give zero probability to values that break a constraint of ``space``.
        sites: which sites are resampled: ``"nodes"``, ``"edges"`` or ``"nodes_and_edges"``.
        temperature: sample :math:`e^{-E / T}` (a positive finite float; 1 is the energy's own target).

    Returns:
        ``SamplingAlgorithm(init, step)``; one step resamples one site per chain with one energy
        call on the other legal values of the site (a few per chain). ``StepInfo`` has ``energy``,
        ``acceptance_rate`` (ones), ``extra["valid"]`` (1 where the graph satisfies the space's
        constraints; its mean is the valid fraction) and ``extra["site_changed"]`` (1 where the site's value changed).

    Shapes:
        - x: ``DenseGraph`` nodes ``[B, N]``, edges ``[B, N, N]``; c: ``None`` or ``[B, ...]``
        - state.x: ``DenseGraph``; info fields: ``[B]``
    """
    space = check_space(energy, space, "graph_gibbs")
    inverse_temperature = 1.0 / check_positive(temperature, "temperature", "graph_gibbs")
    n = space.max_nodes
    site_ranges = {"nodes": (0, n), "edges": (n, n + space.num_pairs), "nodes_and_edges": (0, n + space.num_pairs)}
    if sites not in site_ranges:
        raise ValueError(f"graph_gibbs: sites must be one of {sorted(site_ranges)}, got {sites!r}")
    first_site, end_site = site_ranges[sites]
    width = max(space.num_node_values, space.num_edge_values)

    def init(x: DenseGraph, c: Optional[Tensor] = None) -> ChainState:
        check_start(space, x, c, constrained, "graph_gibbs.init")
        x = x.clone()
        with torch.no_grad():
            values = checked_values(energy(x, c), x.batch_size, "graph_gibbs.init")
        return ChainState(x=x, c=c, energy=values, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        x, c = state.x, state.c
        device = x.device
        chains = torch.arange(x.batch_size, device=device)
        site = torch.randint(first_site, end_site, (x.batch_size,), generator=generator, device=device)
        is_node = site < n
        slot = site.clamp(max=n - 1)
        pair = (site - n).clamp(min=0)
        rows, cols = space.upper_pairs(device)
        row, col = rows[pair], cols[pair]
        node_legal = pad_columns(space.legal_node_values(x, constrained)[chains, slot], width)
        edge_legal = pad_columns(space.legal_edge_values(x, constrained)[chains, pair], width)
        legal = torch.where(is_node[:, None], node_legal, edge_legal)  # [B, width]

        current = torch.where(is_node, x.nodes[chains, slot], x.edges[chains, row, col])
        alternatives = legal.clone()
        alternatives[chains, current] = False  # the current graph's energy is already in the state
        chain_of, value_of = alternatives.nonzero(as_tuple=True)  # one row per other legal value
        candidates = set_sites(
            x.nodes[chain_of], x.edges[chain_of], is_node[chain_of], slot[chain_of], row[chain_of], col[chain_of], value_of
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
        nodes, edges = x.nodes.clone(), x.edges.clone()
        nodes[changed], edges[changed] = candidates.nodes[chosen], candidates.edges[chosen]
        new_x = DenseGraph(nodes, edges, nodes > 0)
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
