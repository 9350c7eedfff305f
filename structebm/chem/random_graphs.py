"""Random connected, valence-valid bond patterns: a starting distribution for graph chains.

Given the atoms of a batch of graphs, :func:`random_tree_bonds` joins the occupied slots of
each graph into a random tree of single bonds without exceeding any atom's maximum valence
:math:`v_{\\max}`. Slots are visited in order of decreasing :math:`v_{\\max}` (ties in random
order) and each visited atom is bonded to one atom drawn uniformly among the atoms already
visited that still have free valence,

.. math::
    \\text{parent}(s) \\sim \\mathcal{U}\\{\\, t \\text{ visited} : v_t < v_{\\max}(a_t) \\,\\}.

Visiting high-valence atoms first keeps free valence available: every atom with
:math:`v_{\\max} \\ge 2` adds at least one free bond end. Only when no visited atom has free
valence left (e.g. a graph made only of fluorine atoms) does a slot stay unbonded, so the
result is always valence-valid and connected whenever the atoms admit a tree in that order.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_tree_bonds"]


def random_tree_bonds(atoms: Tensor, max_valence: Tensor, generator: torch.Generator) -> Tensor:
    """Single-bond trees over the occupied slots of each graph (see the module docstring).

    Args:
        atoms: ``[B, N]`` atom values, 0 = empty slot.
        max_valence: ``[A + 1]`` maximum valence of each atom value (0 for the empty slot).
        generator: source of the random visiting order and parents; its device is used.

    Shapes:
        - returns: bonds ``[B, N, N]`` (long, symmetric, zero diagonal)
    """
    batch_size, num_slots = atoms.shape
    device = atoms.device
    capacity = max_valence.to(device)[atoms]
    occupied = atoms > 0
    tie_break = torch.rand((batch_size, num_slots), generator=generator, device=device)
    order = (capacity.to(tie_break.dtype) + 0.5 * tie_break).argsort(dim=1, descending=True)
    bonds = torch.zeros((batch_size, num_slots, num_slots), dtype=torch.long, device=device)
    free = capacity.clone()
    visited = torch.zeros_like(occupied)
    chains = torch.arange(batch_size, device=device)
    for position in range(num_slots):
        slot = order[:, position]
        is_atom = occupied[chains, slot]
        candidates = visited & (free > 0)
        score = torch.rand((batch_size, num_slots), generator=generator, device=device).masked_fill(~candidates, -1.0)
        parent = score.argmax(dim=1)
        join = is_atom & candidates.any(dim=1)
        b, p, s = chains[join], parent[join], slot[join]
        bonds[b, p, s] = 1
        bonds[b, s, p] = 1
        free[b, p] -= 1
        free[b, s] -= 1
        visited[chains, slot] = is_atom
    return bonds
