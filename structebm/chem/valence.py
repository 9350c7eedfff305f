"""The valence rule on dense molecular graphs, as a graph constraint, and the standard valency correction.

A molecular graph is a :class:`~structebm.graphs.state.DenseGraph` whose node values index an
:class:`~structebm.chem.vocab.AtomVocabulary` and whose edge values are bond orders ``0..3``.
The valence of atom ``i`` is the sum of its bond orders to other heavy atoms,

.. math::
    v_i = \\sum_j \\mathrm{bonds}_{ij},

and the graph is valence-valid when :math:`v_i \\le v_{\\max}(\\mathrm{type}_i)` for every
atom, with :math:`v_{\\max}` the largest valence RDKit accepts for the element and charge
(:attr:`~structebm.chem.vocab.AtomType.max_valence`); implicit hydrogens fill the rest.
Because bonds are kekulized, this check agrees with RDKit sanitization.

:class:`ValenceConstraint` is this rule as a :class:`~structebm.graphs.constraints.GraphConstraint`
(the only place it is written): a move is legal iff no atom ends above its maximum valence,

.. math::
    \\text{atom } i \\leftarrow k: \\; v_i \\le v_{\\max}(k), \\qquad
    \\text{bond } (i, j) \\leftarrow r: \\; v_i - b_{ij} + r \\le v_{\\max}(a_i)
    \\;\\text{and}\\; v_j - b_{ij} + r \\le v_{\\max}(a_j),

and every other atom is within its valence. Its ``repair`` is the correction below without
charge changes, so valence-valid noise graphs come from the graph space itself.

**Valency correction** (the rule of MoFlow, Zang & Wang 2020, reused by GDSS, Jo et al. 2022):

1. *Charge*: a neutral N, O or S atom whose valence exceeds the neutral maximum by exactly
   one becomes the ``+1`` charged type when the vocabulary has it (``N`` with four bonds
   becomes ``N+``). MoFlow/GDSS apply this while adding bonds one by one; here it is applied
   once to the finished graph.
2. *Bonds*: while some atom is over-valent, take the atom with the largest excess (ties: the
   lowest slot), take its bond of highest order (ties: the lowest neighbour slot) and lower
   that order by one (a single bond is removed).

Every step lowers the total bond order, so the loop ends after at most
``sum(bonds) / 2`` steps; all graphs of a batch are corrected together.
"""

from __future__ import annotations

import torch
from torch import Tensor

from typing import TYPE_CHECKING, Optional, Union

from structebm.chem.dense import MAX_BOND_ORDER, DenseMolGraph
from structebm.chem.vocab import AtomVocabulary, get_vocabulary
from structebm.graphs.constraints import GraphConstraint, others_valid

if TYPE_CHECKING:
    from structebm.graphs.space import GraphSpace

__all__ = ["ValenceConstraint", "atom_valences", "valence_excess", "valence_violations", "is_valence_valid",
           "correct_valence"]

_CHARGEABLE_ELEMENTS = ("N", "O", "S")


def atom_valences(graph: DenseMolGraph) -> Tensor:
    """``[B, N]`` sum of bond orders of every slot (0 for empty slots)."""
    return graph.edges.sum(dim=2)


class ValenceConstraint(GraphConstraint):
    """No atom above the maximum valence of its type (see the module docstring).

    Args:
        vocabulary: the atom vocabulary (or its registered name) giving :math:`v_{\\max}`.

    Shapes:
        - ``max_valence``: ``[A + 1]`` long (entry 0, the empty slot, is 0)
    """

    def __init__(self, vocabulary: Union[str, AtomVocabulary]) -> None:
        self.vocabulary = get_vocabulary(vocabulary) if isinstance(vocabulary, str) else vocabulary
        self.max_valence = self.vocabulary.max_valence_table()

    def __repr__(self) -> str:
        return f"ValenceConstraint({self.vocabulary.name!r})"

    def excess(self, x: DenseMolGraph) -> Tensor:
        """``[B, N]`` long: :math:`\\max(0, v_i - v_{\\max}(a_i))`."""
        return (atom_valences(x) - self.max_valence.to(x.device)[x.nodes]).clamp(min=0)

    def is_valid(self, x: DenseMolGraph) -> Tensor:
        return (self.excess(x) == 0).all(dim=1)

    def legal_node_values(self, x: DenseMolGraph, space: "GraphSpace") -> Tensor:
        over = self.excess(x) > 0
        others = (over.sum(dim=1, keepdim=True) - over.long()) == 0  # [B, N]
        fits = atom_valences(x)[:, :, None] <= self.max_valence.to(x.device)[None, None, :]
        return fits & others[:, :, None]

    def legal_edge_values(self, x: DenseMolGraph, space: "GraphSpace") -> Tensor:
        rows, cols = space.upper_pairs(x.device)
        room = self.max_valence.to(x.device)[x.nodes] - atom_valences(x)  # free valence, [B, N]
        current = x.edges[:, rows, cols]
        room_without_bond = torch.minimum(room[:, rows], room[:, cols]) + current  # [B, P]
        orders = torch.arange(space.num_edge_values, device=x.device)
        rest = others_valid(room < 0, rows, cols)
        return (orders[None, None, :] <= room_without_bond[:, :, None]) & rest[:, :, None]

    def repair(self, x: DenseMolGraph, space: "GraphSpace", generator: Optional[torch.Generator] = None) -> DenseMolGraph:
        """:func:`correct_valence` without charge changes."""
        return correct_valence(x, self.vocabulary, adjust_charges=False)


def valence_excess(graph: DenseMolGraph, vocabulary: AtomVocabulary) -> Tensor:
    """``[B, N]`` long: ``v_i - v_max(type_i)`` where positive, else 0 (and 0 on empty slots)."""
    graph.validate(len(vocabulary), MAX_BOND_ORDER)
    return ValenceConstraint(vocabulary).excess(graph) * graph.mask


def valence_violations(graph: DenseMolGraph, vocabulary: AtomVocabulary) -> Tensor:
    """``[B, N]`` bool: which atoms carry more bonds than their type allows."""
    return valence_excess(graph, vocabulary) > 0


def is_valence_valid(graph: DenseMolGraph, vocabulary: AtomVocabulary) -> Tensor:
    """``[B]`` bool: no atom of the graph is over-valent."""
    return ~valence_violations(graph, vocabulary).any(dim=1)


def _charge_table(vocabulary: AtomVocabulary, device: torch.device) -> Tensor:
    """``[A + 1]`` map from a neutral N/O/S type to its ``+1`` type (identity elsewhere)."""
    table = torch.arange(len(vocabulary) + 1, device=device)
    for element in _CHARGEABLE_ELEMENTS:
        if vocabulary.contains(element, 0) and vocabulary.contains(element, 1):
            table[vocabulary.index(element, 0)] = vocabulary.index(element, 1)
    return table


def correct_valence(graph: DenseMolGraph, vocabulary: AtomVocabulary, adjust_charges: bool = True) -> DenseMolGraph:
    """Return a valence-valid copy of ``graph`` (see the module docstring for the rule).

    Args:
        graph: the batch to correct; it is not modified.
        vocabulary: the atom vocabulary of ``graph.atoms``.
        adjust_charges: apply step 1 (``N`` with four bonds -> ``N+`` ...) before lowering bonds.

    Shapes:
        - input and output: ``atoms [B, N]``, ``bonds [B, N, N]``
    """
    graph.validate(len(vocabulary), MAX_BOND_ORDER)
    atoms = graph.nodes.clone()
    bonds = graph.edges.clone()
    max_valence = vocabulary.max_valence_table(atoms.device)
    if adjust_charges:
        charged = _charge_table(vocabulary, atoms.device)[atoms]
        one_over = (bonds.sum(dim=2) - max_valence[atoms]) == 1
        one_over_when_charged = bonds.sum(dim=2) <= max_valence[charged]
        atoms = torch.where(one_over & one_over_when_charged, charged, atoms)
    batch_index = torch.arange(atoms.shape[0], device=atoms.device)
    for _ in range(int(bonds.sum()) // 2 + 1):
        excess = (bonds.sum(dim=2) - max_valence[atoms]) * (atoms > 0)
        worst_excess, worst_atom = excess.max(dim=1)
        todo = worst_excess > 0
        if not todo.any():
            break
        rows = bonds[batch_index, worst_atom]
        neighbour = rows.argmax(dim=1)
        b, i, j = batch_index[todo], worst_atom[todo], neighbour[todo]
        bonds[b, i, j] -= 1
        bonds[b, j, i] -= 1
    return DenseMolGraph(atoms, bonds, atoms > 0)
