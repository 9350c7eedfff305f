"""Gibbs-with-gradients on dense graphs (Grathwohl et al., 2021).

Sites, legal values and the two targets (constrained or not) are those of
:mod:`structebm.samplers.graph_moves`. With the gradient :math:`g` of ``graph_one_hot_energy`` at
the exact one-hot encoding (for an edge site the sum of the gradients at ``(i, j)`` and
``(j, i)``), every legal single-site change ``s ← k`` is ranked by its first-order energy change
and a Metropolis–Hastings test corrects the proposal:

.. math::
    q(s, k \\mid G) \\propto [k \\ne G_s,\\ k \\text{ legal}] \\,
    \\exp\\bigl(-\\tfrac{1}{2T} (g_{s k} - g_{s G_s})\\bigr), \\qquad
    α = \\min\\Bigl(1, e^{(E(G) - E(G')) / T} \\frac{q(G \\mid G')}{q(G' \\mid G)}\\Bigr),

where the temperature :math:`T` (``temperature``, default 1) tempers the target to
:math:`e^{-E / T}` as for :func:`~structebm.samplers.graph_moves.graph_gibbs`; state and
reported energies stay untempered.

With ``num_flips = n`` a proposal is a path of ``n`` changes drawn with the gradient at ``G``
and the reverse path is scored with the gradient at ``G'`` (an exact MH move on state and
path; :mod:`structebm.samplers._path_proposal`, shared with the sequence sampler). The reverse
proposal uses the same legality masks, and a legal move's reverse is legal, so the chain stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from structebm.energies.base import require
from structebm.energies.graph import HasGraphOneHotEnergy, HasGraphOneHotEnergyGradient
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers._categorical import float_dtype_of
from structebm.samplers._graph_sites import check_shape, check_space, check_start, set_sites, step_info
from structebm.samplers._path_proposal import propose_and_accept
from structebm.samplers.base import ChainDivergedError, ChainState, SamplingAlgorithm, StepInfo, check_positive

__all__ = ["GraphGWGState", "graph_gibbs_with_gradients"]


@dataclass
class GraphGWGState(ChainState):
    """:class:`~structebm.samplers.base.ChainState` with the proposal at ``x`` kept for the next step.

    Attributes:
        proposal: the proposal's log-probabilities ``[B, S]`` at ``x`` under ``grad`` and the
            chains with no legal change ``[B]``. A step computes it at its proposal anyway (for the
            reverse move), so where the step accepts, the next step's proposal costs nothing; where
            it rejects, the old one stands. ``None``: computed when needed.
    """

    proposal: Optional[tuple[Tensor, Tensor]] = None


class _SiteGradient:
    """Layout of the flat site vector ``[B, S]``, ``S = N(K+1) + P(R+1)``: node sites, then edge sites."""

    def __init__(self, space: GraphSpace, inverse_temperature: float, constrained: bool) -> None:
        self.space = space
        self.inverse_temperature = inverse_temperature
        self.constrained = constrained
        self.node_part = space.max_nodes * space.num_node_values
        self.size = self.node_part + space.num_pairs * space.num_edge_values

    def of(
        self, energy: nn.Module, x: DenseGraph, c: Optional[Tensor], dtype: torch.dtype, where: str
    ) -> tuple[Tensor, Tensor]:
        """Energy ``[B]`` and its gradient in the one-hot value of every site ``[B, S]``."""
        if isinstance(energy, HasGraphOneHotEnergyGradient):
            with record_function("gwg.energy_and_grad"):
                values, node_grad, edge_grad = energy.graph_one_hot_energy_and_grad(*self.space.one_hot(x, dtype), c, x.edges)
                check_shape(values, x.batch_size, where)
        else:
            with torch.enable_grad():
                with record_function("gwg.energy_forward"):
                    nodes_one_hot, edges_one_hot = (t.requires_grad_(True) for t in self.space.one_hot(x, dtype))
                    values = energy.graph_one_hot_energy(nodes_one_hot, edges_one_hot, c)
                    check_shape(values, x.batch_size, where)
                with record_function("gwg.energy_backward"):
                    node_grad, edge_grad = torch.autograd.grad(values.sum(), (nodes_one_hot, edges_one_hot))
        with record_function("gwg.site_gradient"):
            upper, lower = self.pair_entries(x.device)
            flat = edge_grad.flatten(1, 2)
            pair_grad = flat.index_select(1, upper) + flat.index_select(1, lower)  # g_ij + g_ji
            grad = torch.cat([node_grad.flatten(1), pair_grad.flatten(1)], dim=1)
        if not (torch.isfinite(values).all() and torch.isfinite(grad).all()):
            raise ChainDivergedError(f"{where}: the one-hot energy or its gradient is not finite; regularise the energy")
        return values.detach(), grad.detach()

    def pair_entries(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """Flat indices ``i N + j`` and ``j N + i`` ``[P]`` of the edge sites ``i < j`` (row-major order)."""
        rows, cols = self.space.upper_pairs(device)
        return rows * self.space.max_nodes + cols, cols * self.space.max_nodes + rows

    @record_function("gwg.proposal")
    def proposal_log_probs(self, grad: Tensor, z: DenseGraph) -> tuple[Tensor, Tensor]:
        """Log-probabilities ``[B, S]`` of every legal change of ``z`` and the chains with none ``[B]``."""
        space = self.space
        parts = (  # (gradient [B, sites, values], values held [B, sites], legal values [B, sites, values])
            (grad[:, : self.node_part].view(z.batch_size, space.max_nodes, space.num_node_values), z.nodes,
             space.legal_node_values(z, self.constrained)),
            (grad[:, self.node_part :].view(z.batch_size, space.num_pairs, space.num_edge_values), space.pair_values(z),
             space.legal_edge_values(z, self.constrained)),
        )
        logits, allowed = [], []
        for part_grad, held, legal in parts:
            change = part_grad - part_grad.gather(2, held[:, :, None])  # first-order change g_sk - g_s,held
            logits.append((-0.5 * self.inverse_temperature * change).flatten(1))
            values = torch.arange(part_grad.shape[2], device=held.device)
            allowed.append((legal & (values != held[:, :, None])).flatten(1))
        allowed = torch.cat(allowed, dim=1)
        logits = torch.cat(logits, dim=1)
        immovable = ~allowed.any(dim=1)
        logits = logits.masked_fill_(~allowed, float("-inf"))
        logits = logits.masked_fill_(immovable[:, None], 0.0)  # dummy proposal; such chains always reject
        return torch.log_softmax(logits, dim=1), immovable

    @record_function("gwg.apply_change")
    def apply(self, z: DenseGraph, choice: Tensor) -> tuple[DenseGraph, Tensor]:
        """Graphs with the flat change ``choice [B]`` applied, and the flat index of the reverse change."""
        node_values, edge_values = self.space.num_node_values, self.space.num_edge_values
        rows, cols = self.space.upper_pairs(z.device)
        is_node = choice < self.node_part
        slot = torch.div(choice, node_values, rounding_mode="floor").clamp(max=self.space.max_nodes - 1)
        edge_index = (choice - self.node_part).clamp(min=0)
        pair = torch.div(edge_index, edge_values, rounding_mode="floor")
        row, col = rows[pair], cols[pair]
        value = torch.where(is_node, choice % node_values, edge_index % edge_values)
        chains = torch.arange(z.batch_size, device=z.device)
        old = torch.where(is_node, z.nodes[chains, slot], z.edges[chains, row, col])
        reverse = torch.where(is_node, slot * node_values + old, self.node_part + pair * edge_values + old)
        return set_sites(z.nodes, z.edges, is_node, slot, row, col, value), reverse


def graph_gibbs_with_gradients(
    energy: nn.Module,
    space: GraphSpace,
    constrained: bool = False,
    num_flips: int = 1,
    temperature: float = 1.0,
) -> SamplingAlgorithm:
    """Build a Gibbs-with-gradients sampler over all node and edge sites (see the module docstring).

    Args:
        energy: an energy with ``graph_one_hot_energy(nodes_one_hot, edges_one_hot, c) -> [B]``.
        space: the graph space (capacity ``N``, alphabets, constraints).
        constrained: put zero proposal mass on changes that break a constraint of ``space``.
        num_flips: single-site changes per proposal; one step is one MH test of that path. Where every
            site is binary (one node type, one edge type) an even ``num_flips`` keeps the parity of the
            number of nonzero sites, so the chain cannot reach half of the space: use an odd one there.
        temperature: sample :math:`e^{-E / T}` (a positive finite float; 1 is the energy's own target).

    Returns:
        ``SamplingAlgorithm(init, step)``. ``state.grad`` is the gradient of the energy in the
        one-hot value of every site, ``[B, N(K+1) + P(R+1)]`` (node sites first, then edge sites
        ``i < j`` in row-major order). ``StepInfo`` has ``energy``, ``acceptance_rate`` (MH
        probability), ``accepted``, ``grad_norm`` and ``extra["valid"]``.

    Shapes:
        - x: ``DenseGraph`` nodes ``[B, N]``, edges ``[B, N, N]``; c: ``None`` or ``[B, ...]``
        - state.x: ``DenseGraph``; info fields: ``[B]``
    """
    name = "graph_gibbs_with_gradients"
    require(energy, HasGraphOneHotEnergy, name)
    if isinstance(num_flips, bool) or not isinstance(num_flips, int) or num_flips < 1:
        raise ValueError(f"{name}: num_flips must be a positive int, got {num_flips!r}")
    space = check_space(energy, space, name)
    layout = _SiteGradient(space, 1.0 / check_positive(temperature, "temperature", name), constrained)
    dtype = float_dtype_of(energy)

    def init(x: DenseGraph, c: Optional[Tensor] = None) -> ChainState:
        check_start(space, x, c, constrained, f"{name}.init")
        x = x.clone()
        values, grad = layout.of(energy, x, c, dtype, f"{name}.init")
        return GraphGWGState(x=x, c=c, energy=values, grad=grad, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        x, c = state.x, state.c
        if state.grad is None or state.grad.shape != (x.batch_size, layout.size):
            raise ValueError(f"{name}.step: the state was not made by this sampler's init")
        where = f"{name}.step {state.step + 1}"
        move = propose_and_accept(
            x, state.energy, state.grad, num_flips, layout.inverse_temperature, layout.proposal_log_probs,
            layout.apply, lambda z: layout.of(energy, z, c, dtype, where), generator,
            state.proposal if isinstance(state, GraphGWGState) else None,
        )
        with record_function("gwg.accept_reject"):
            new_x = move.proposal.where(move.accepted, x)
            new_energy = torch.where(move.accepted, move.energy, state.energy)
            new_grad = torch.where(move.accepted[:, None], move.grad, state.grad)
            (x_log_probs, x_stuck), (proposal_log_probs, proposal_stuck) = move.log_probs_at_x, move.log_probs_at_proposal
            proposal = (
                torch.where(move.accepted[:, None], proposal_log_probs, x_log_probs),
                torch.where(move.accepted, proposal_stuck, x_stuck),
            )
        new_state = GraphGWGState(x=new_x, c=c, energy=new_energy, grad=new_grad, step=state.step + 1, proposal=proposal)
        with record_function("gwg.step_info"):
            info = step_info(
                space, new_x, new_energy, grad_norm=new_grad.norm(dim=1), acceptance_rate=move.acceptance_rate,
                accepted=move.accepted,
            )
        return new_state, info

    return SamplingAlgorithm(init, step)
