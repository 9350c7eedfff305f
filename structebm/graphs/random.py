"""Random trees over the occupied slots: a connected starting distribution for graph chains.

Given the nodes of a batch of graphs and a degree capacity :math:`c(k)` of every node value
``k`` (for molecules: the maximum valence, since every tree edge is a single bond),
:func:`random_tree_edges` joins the occupied slots of each graph into a random tree of
type-1 edges without exceeding any node's capacity. Slots are visited in order of decreasing
capacity (ties in random order) and each visited node is joined to one node drawn uniformly
among the nodes already visited that still have free capacity,

.. math::
    \\text{parent}(s) \\sim \\mathcal{U}\\{\\, t \\text{ visited} : d_t < c(x_t) \\,\\}.

Visiting high-capacity nodes first keeps free capacity available: every node with
:math:`c \\ge 2` adds at least one free edge end. Only when no visited node has free capacity
left (e.g. a molecule made only of fluorine atoms) does a slot stay unjoined, so the result
never exceeds a capacity and is connected whenever the nodes admit a tree in that order.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_tree_edges"]


def random_tree_edges(nodes: Tensor, capacity: Tensor, generator: torch.Generator) -> Tensor:
    """Trees of type-1 edges over the occupied slots of each graph (see the module docstring).

    Args:
        nodes: ``[B, N]`` node values, 0 = empty slot.
        capacity: ``[K + 1]`` largest degree of each node value (entry 0 unused).
        generator: source of the random visiting order and parents; its device is used.

    Shapes:
        - returns: edges ``[B, N, N]`` (long, symmetric, zero diagonal)
    """
    batch_size, num_slots = nodes.shape
    device = nodes.device
    slot_capacity = capacity.to(device)[nodes]
    occupied = nodes > 0
    tie_break = torch.rand((batch_size, num_slots), generator=generator, device=device)
    order = (slot_capacity.to(tie_break.dtype) + 0.5 * tie_break).argsort(dim=1, descending=True)
    edges = torch.zeros((batch_size, num_slots, num_slots), dtype=torch.long, device=device)
    free = slot_capacity.clone()
    visited = torch.zeros_like(occupied)
    chains = torch.arange(batch_size, device=device)
    for position in range(num_slots):
        slot = order[:, position]
        is_node = occupied[chains, slot]
        candidates = visited & (free > 0)
        score = torch.rand((batch_size, num_slots), generator=generator, device=device).masked_fill(~candidates, -1.0)
        parent = score.argmax(dim=1)
        join = is_node & candidates.any(dim=1)
        b, p, s = chains[join], parent[join], slot[join]
        edges[b, p, s] = 1
        edges[b, s, p] = 1
        free[b, p] -= 1
        free[b, s] -= 1
        visited[chains, slot] = is_node
    return edges
