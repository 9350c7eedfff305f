"""Energy differences to every single-site neighbour of categorical and graph states.

A *site* is a position that holds one categorical value: a sequence position of ``x [B, L]``
(values ``0..K-1``), or, for a :class:`~structebm.graphs.state.DenseGraph` with ``N`` slots, a
node slot (values ``0..K``, ``0`` = empty) or one of the ``P = N(N-1)/2`` pairs ``i < j``
(values ``0..R``, ``0`` = no edge; :meth:`~structebm.graphs.space.GraphSpace.upper_pairs` order,
after the ``N`` slots). The neighbours of ``x`` are the states ``x_{s←v}`` that differ from it at
one site ``s``, in a *legal* value ``v`` (graphs: the structural rule of
:class:`~structebm.graphs.space.GraphSpace`: a slot is emptied only when it has no edge, an edge
joins occupied slots only). The rule is symmetric: ``y`` is a legal neighbour of ``x`` exactly
when ``x`` is one of ``y``, which objectives built on these differences rely on.

:func:`site_differences` returns, for ``S`` chosen sites per state and ``V`` values,

.. math::
    \\Delta_{b s v} = E(x^{(b)}_{s \\leftarrow v}) - E(x^{(b)}), \\qquad
    \\text{mask}_{b s v} = [v \\ne x^{(b)}_s \\text{ and legal}],

either **exactly** (the energies of the neighbours; an energy with ``local_energy_deltas``
gives those of a sequence at once) or to **first order** (``"gradient"``, as
Gibbs-with-gradients ranks moves): with the one-hot encoding ``X`` and
:math:`g = \\nabla_X E`, :math:`\\Delta_{sv} \\approx g_{sv} - g_{s x_s}` (an edge site's entry
appears twice in the symmetric ``[N, N]`` one-hot, so both gradients add). The first-order
form is exact for energies multilinear in the sites' one-hots (a Potts model) and an
approximation otherwise. Both are differentiable in the energy's parameters.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.energies.base import MissingCapabilityError, check_energy_output
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph

__all__ = ["Estimator", "SiteDifferences", "site_differences", "choose_sites", "num_sites_of", "graph_neighbours"]

Estimator = Literal["exact", "gradient"]


class SiteDifferences:
    """Differences to the neighbours at chosen sites.

    Attributes:
        deltas: ``[B, S, V]`` energy differences (arbitrary where ``mask`` is false).
        mask: ``[B, S, V]`` bool, the legal values other than the current one.
        energy: ``[B]`` energies of the states themselves.
        total_sites: sites per state (``L``, or ``N + P``), of which ``S`` were chosen.
    """

    def __init__(self, deltas: Tensor, mask: Tensor, energy: Tensor, total_sites: int) -> None:
        self.deltas, self.mask, self.energy, self.total_sites = deltas, mask, energy, total_sites


def num_sites_of(x: Any) -> int:
    """Sites per state: ``L`` for ``x [B, L]``, ``N + N(N-1)/2`` for a ``DenseGraph`` with ``N`` slots."""
    if isinstance(x, DenseGraph):
        n = x.max_nodes
        return n + n * (n - 1) // 2
    return int(x.shape[1])


def choose_sites(batch_size: int, total: int, count: Optional[int], generator: torch.Generator,
                 device: torch.device) -> Tensor:
    """``[B, S]`` site indices: all ``total`` sites (``count`` ``None`` or ``>= total``), or ``count``
    distinct ones per state, uniformly at random."""
    if count is None or count >= total:
        return torch.arange(total, device=device).expand(batch_size, total)
    scores = torch.rand(batch_size, total, generator=generator, device=generator.device).to(device)
    return scores.argsort(dim=1)[:, :count]


def _graph_space(energy: nn.Module, x: DenseGraph, where: str) -> GraphSpace:
    types = [getattr(energy, name, None) for name in ("num_node_types", "num_edge_types")]
    if not all(isinstance(t, int) for t in types):
        raise MissingCapabilityError(
            f"{where}: graph states need an energy declaring num_node_types and num_edge_types; "
            f"{type(energy).__name__} does not"
        )
    return GraphSpace(x.max_nodes, types[0], types[1])


def _graph_site_values(space: GraphSpace, x: DenseGraph) -> tuple[Tensor, Tensor]:
    """Current value ``[B, N + P]`` and legal values ``[B, N + P, V]`` of every site, ``V = max(K, R) + 1``."""
    width = max(space.num_node_values, space.num_edge_values)
    legal_nodes = space.legal_node_values(x, constrained=False)
    legal_edges = space.legal_edge_values(x, constrained=False)
    legal = torch.cat([F.pad(legal_nodes, (0, width - legal_nodes.shape[2])),
                       F.pad(legal_edges, (0, width - legal_edges.shape[2]))], dim=1)
    return torch.cat([x.nodes, space.pair_values(x)], dim=1), legal


def graph_neighbours(space: GraphSpace, x: DenseGraph, sites: Tensor) -> tuple[Tensor, Tensor, Tensor, DenseGraph]:
    """The legal single-site neighbours of graphs ``x`` at ``sites`` and where each belongs.

    Shapes:
        - sites: ``[B, S]`` site indices (``0..N-1`` slots, then pairs in ``upper_pairs`` order)
        - returns ``mask [B, S, V]`` (legal values other than the current one; ``V = max(K, R) + 1``)
          and, for each of its ``M`` true entries in row-major order, ``(b, s, v)`` as one ``[3, M]``
          long tensor, the graph index ``b [M]`` and the neighbours, a ``DenseGraph`` of ``M`` graphs
    """
    current, legal = _graph_site_values(space, x)
    current, legal = current.gather(1, sites), legal.gather(1, sites[:, :, None].expand(-1, -1, legal.shape[2]))
    mask = legal & (torch.arange(legal.shape[2], device=x.device) != current[:, :, None])
    b, s, v = mask.nonzero(as_tuple=True)
    site = sites[b, s]
    n = x.max_nodes
    rows, cols = space.upper_pairs(x.device)
    pair = (site - n).clamp_min(0)
    is_node = site < n
    slot = site.clamp_max(n - 1)
    nodes, edges = x.nodes[b].clone(), x.edges[b].clone()
    m = torch.arange(b.shape[0], device=x.device)
    nodes[m, slot] = torch.where(is_node, v, nodes[m, slot])
    r, q = rows[pair], cols[pair]
    edge_value = torch.where(is_node, edges[m, r, q], v)
    edges[m, r, q] = edge_value
    edges[m, q, r] = edge_value
    return mask, torch.stack([b, s, v]), b, DenseGraph(nodes, edges, nodes > 0)


def _exact_graph(energy: nn.Module, x: DenseGraph, c: Optional[Tensor], sites: Tensor, where: str) -> SiteDifferences:
    mask, index, b, neighbours = graph_neighbours(_graph_space(energy, x, where), x, sites)
    both = DenseGraph(torch.cat([x.nodes, neighbours.nodes]), torch.cat([x.edges, neighbours.edges]),
                      torch.cat([x.mask, neighbours.mask]))
    c_both = None if c is None else torch.cat([c, c[b]])
    values = check_energy_output(energy(both, c_both), both.batch_size, f"{where}: energy of the states and their neighbours")
    own, changed = values[: x.batch_size], values[x.batch_size:]
    deltas = torch.zeros(mask.shape, dtype=values.dtype, device=values.device).index_put(tuple(index), changed - own[b])
    return SiteDifferences(deltas, mask, own, num_sites_of(x))


def _gradient_graph(energy: nn.Module, x: DenseGraph, c: Optional[Tensor], sites: Tensor, where: str) -> SiteDifferences:
    if not callable(getattr(energy, "graph_one_hot_energy", None)):
        raise MissingCapabilityError(
            f"{where}: the gradient estimator on graphs needs graph_one_hot_energy(nodes_one_hot, edges_one_hot, c); "
            f"{type(energy).__name__} does not provide it"
        )
    space = _graph_space(energy, x, where)
    dtype = next((p.dtype for p in energy.parameters() if p.is_floating_point()), torch.get_default_dtype())
    nodes_one_hot, edges_one_hot = (t.requires_grad_(True) for t in space.one_hot(x, dtype))
    with torch.enable_grad():
        own = check_energy_output(energy.graph_one_hot_energy(nodes_one_hot, edges_one_hot, c), x.batch_size,
                                  f"{where}: energy")
        grad_nodes, grad_edges = torch.autograd.grad(own.sum(), (nodes_one_hot, edges_one_hot), create_graph=True)
    rows, cols = space.upper_pairs(x.device)
    grad_pairs = (grad_edges + grad_edges.transpose(1, 2))[:, rows, cols]
    width = max(space.num_node_values, space.num_edge_values)
    grads = torch.cat([F.pad(grad_nodes, (0, width - grad_nodes.shape[2])),
                       F.pad(grad_pairs, (0, width - grad_pairs.shape[2]))], dim=1)
    current, legal = _graph_site_values(space, x)
    deltas = grads - grads.gather(2, current[:, :, None])
    index = sites[:, :, None].expand(-1, -1, width)
    current, legal, deltas = current.gather(1, sites), legal.gather(1, index), deltas.gather(1, index)
    mask = legal & (torch.arange(width, device=x.device) != current[:, :, None])
    return SiteDifferences(deltas, mask, own, num_sites_of(x))


def _num_states(energy: nn.Module, x: Tensor, num_states: Optional[int], where: str) -> int:
    k = num_states if num_states is not None else getattr(energy, "num_states", None)
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"{where}: categorical states need num_states (K >= 2), given or declared by the energy; got {k!r}")
    if bool((x < 0).any()) or bool((x >= k).any()):
        raise ValueError(f"{where}: categorical values must lie in 0..{k - 1}, got values in {int(x.min())}..{int(x.max())}")
    return k


def _exact_sequence(energy: nn.Module, x: Tensor, c: Optional[Tensor], sites: Tensor, k: int, where: str) -> SiteDifferences:
    batch, length = x.shape
    index = sites[:, :, None].expand(-1, -1, k)
    mask = torch.arange(k, device=x.device) != x.gather(1, sites)[:, :, None]
    if callable(getattr(energy, "local_energy_deltas", None)):
        own = check_energy_output(energy(x, c), batch, f"{where}: energy")
        all_deltas = energy.local_energy_deltas(x, c)
        if all_deltas.shape != (batch, length, k):
            raise ValueError(f"{where}: local_energy_deltas returned {tuple(all_deltas.shape)}, expected {(batch, length, k)}")
        return SiteDifferences(all_deltas.gather(1, index), mask, own, length)
    b, s, v = mask.nonzero(as_tuple=True)
    neighbours = x[b].clone()
    neighbours[torch.arange(b.shape[0], device=x.device), sites[b, s]] = v
    c_both = None if c is None else torch.cat([c, c[b]])
    values = check_energy_output(energy(torch.cat([x, neighbours]), c_both), batch + b.shape[0],
                                 f"{where}: energy of the states and their neighbours")
    own = values[:batch]
    deltas = torch.zeros(mask.shape, dtype=values.dtype, device=values.device).index_put((b, s, v), values[batch:] - own[b])
    return SiteDifferences(deltas, mask, own, length)


def _gradient_sequence(energy: nn.Module, x: Tensor, c: Optional[Tensor], sites: Tensor, k: int, where: str) -> SiteDifferences:
    if not callable(getattr(energy, "one_hot_energy", None)):
        raise MissingCapabilityError(
            f"{where}: the gradient estimator needs one_hot_energy(x_one_hot, c) (HasOneHotEnergy); "
            f"{type(energy).__name__} does not provide it"
        )
    dtype = next((p.dtype for p in energy.parameters() if p.is_floating_point()), torch.get_default_dtype())
    one_hot = F.one_hot(x, k).to(dtype).requires_grad_(True)
    with torch.enable_grad():
        own = check_energy_output(energy.one_hot_energy(one_hot, c), x.shape[0], f"{where}: energy")
        (grad,) = torch.autograd.grad(own.sum(), one_hot, create_graph=True)
    deltas = grad - grad.gather(2, x[:, :, None])
    index = sites[:, :, None].expand(-1, -1, k)
    mask = torch.arange(k, device=x.device) != x.gather(1, sites)[:, :, None]
    return SiteDifferences(deltas.gather(1, index), mask, own, x.shape[1])


def site_differences(
    energy: nn.Module,
    x: Any,
    c: Optional[Tensor],
    sites: Tensor,
    estimator: Estimator = "exact",
    num_states: Optional[int] = None,
    where: str = "site_differences",
) -> SiteDifferences:
    """Energy differences to the legal neighbours of ``x`` at ``sites`` (see the module docstring).

    Args:
        energy: the energy; graphs need ``num_node_types`` and ``num_edge_types`` attributes.
        x: categorical states ``[B, L]`` (integer) or a ``DenseGraph``.
        c: condition (``[B, ...]``) or ``None``.
        sites: ``[B, S]`` site indices (:func:`choose_sites`).
        estimator: ``"exact"`` or ``"gradient"``.
        num_states: ``K`` of categorical states (default: the energy's ``num_states``).
        where: caller, for error messages.

    Shapes:
        - returns :class:`SiteDifferences` with ``deltas``, ``mask`` ``[B, S, V]`` (``V = K`` for
          sequences, ``max(K, R) + 1`` for graphs) and ``energy [B]``
    """
    if estimator not in ("exact", "gradient"):
        raise ValueError(f"{where}: estimator must be 'exact' or 'gradient', got {estimator!r}")
    if isinstance(x, DenseGraph):
        return (_exact_graph if estimator == "exact" else _gradient_graph)(energy, x, c, sites, where)
    if not isinstance(x, Tensor) or x.dim() != 2 or x.is_floating_point() or x.dtype == torch.bool:
        got = f"{type(x).__name__} {getattr(x, 'dtype', '')} {tuple(getattr(x, 'shape', ()))}"
        raise TypeError(f"{where}: needs categorical states, an integer tensor [B, L], or a DenseGraph; got {got}")
    k = _num_states(energy, x, num_states, where)
    x = x.long()
    return (_exact_sequence if estimator == "exact" else _gradient_sequence)(energy, x, c, sites, k, where)
