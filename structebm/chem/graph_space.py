"""The state space of dense molecular graphs: legal states, legal single-site moves and noise.

A state is a :class:`~structebm.chem.dense.DenseMolGraph` with ``N = vocabulary.max_atoms``
slots. It has two kinds of **sites**:

- ``N`` atom sites, each taking a value in ``0..A`` (``0`` = empty slot);
- ``P = N(N-1)/2`` bond sites, one per pair ``i < j``, each taking a bond order in ``0..3``
  (the lower triangle mirrors the upper one).

A single-site move is **structurally legal** when the result still has no bond to an empty
slot: a slot can only be emptied when it has no bond, and a bond can only join two occupied
slots. A move is **valence-legal** when, in addition, no atom it touches ends above its
maximum valence. With valences :math:`v_i = \\sum_j b_{ij}` and the table
:math:`v_{\\max}` of the vocabulary (:math:`v_{\\max}(0) = 0`), the legal values are

.. math::
    \\text{atom } i \\leftarrow k: \\; v_i \\le v_{\\max}(k), \\qquad
    \\text{bond } (i, j) \\leftarrow r: \\; v_i - b_{ij} + r \\le v_{\\max}(a_i)
    \\;\\text{and}\\; v_j - b_{ij} + r \\le v_{\\max}(a_j).

Because :math:`v_{\\max}(0) = 0`, the same inequalities also encode the structural rule.
On a valence-valid graph the current value of every site is legal and every legal move
leads to a valence-valid graph whose reverse move is legal again, so samplers restricted to
valence-legal moves stay exact on the set of valence-valid graphs.

Noise (:meth:`MolGraphSpace.noise`) draws every atom slot uniformly from ``0..A`` (or, with an
``atom_prior``, the atoms from a :class:`~structebm.chem.atom_prior.AtomPrior` fitted to
training graphs: their atom counts and type frequencies) and every bond between two occupied slots uniformly from ``0..3``; with ``valid_noise`` the result is
then made valence-valid with :func:`~structebm.chem.valence.correct_valence` (no charge
changes), so valence-aware samplers can start from it. With ``connected_noise`` the bonds are
instead a random single-bond tree over the occupied slots
(:func:`~structebm.chem.random_graphs.random_tree_bonds`): every noise graph is then one
valence-valid fragment, a start from which chains need not first join pieces.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.dense import MAX_BOND_ORDER, DenseMolGraph
from structebm.chem.random_graphs import random_tree_bonds
from structebm.chem.valence import correct_valence
from structebm.chem.vocab import AtomVocabulary

__all__ = ["MolGraphSpace", "NUM_BOND_VALUES"]

NUM_BOND_VALUES = MAX_BOND_ORDER + 1
"""Values of one bond site: no bond, single, double, triple."""


class MolGraphSpace:
    """Dense molecular graphs over ``vocabulary`` with ``vocabulary.max_atoms`` slots.

    Args:
        vocabulary: the atom types (``A = len(vocabulary)``) and the slot count ``N``.
        valid_noise: make noise graphs valence-valid (see the module docstring).
        connected_noise: draw noise bonds as random trees, which are connected and valence-valid.
        atom_prior: draw the atoms of noise graphs from this prior instead of uniformly.

    Shapes:
        - states: ``DenseMolGraph`` with atoms ``[B, N]``, bonds ``[B, N, N]``
        - one-hot: atoms ``[B, N, A + 1]``, bonds ``[B, N, N, 4]``
        - legal values: atoms ``[B, N, A + 1]``, bonds ``[B, P, 4]`` (pairs in :meth:`upper_pairs` order)
    """

    def __init__(
        self, vocabulary: AtomVocabulary, valid_noise: bool = True, connected_noise: bool = False,
        atom_prior: Optional[AtomPrior] = None,
    ) -> None:
        if not isinstance(vocabulary, AtomVocabulary):
            raise TypeError(f"MolGraphSpace: vocabulary must be an AtomVocabulary, got {type(vocabulary).__name__}")
        if len(vocabulary) < 1:
            raise ValueError(f"MolGraphSpace: vocabulary {vocabulary.name!r} has no atom types")
        if atom_prior is not None and (
            atom_prior.max_atoms != vocabulary.max_atoms or atom_prior.num_atom_values != len(vocabulary) + 1
        ):
            raise ValueError(
                f"MolGraphSpace: the atom prior covers {atom_prior.max_atoms} slots and {atom_prior.num_atom_values - 1} "
                f"atom types, vocabulary {vocabulary.name!r} has {vocabulary.max_atoms} and {len(vocabulary)}"
            )
        self.atom_prior = atom_prior
        self.vocabulary = vocabulary
        self.valid_noise = bool(valid_noise)
        self.connected_noise = bool(connected_noise)
        self.max_atoms = vocabulary.max_atoms
        self.num_atom_values = len(vocabulary) + 1
        self.num_pairs = self.max_atoms * (self.max_atoms - 1) // 2
        self._max_valence = vocabulary.max_valence_table()

    def max_valence(self, device: torch.device) -> Tensor:
        """``[A + 1]`` maximum valence of each atom value (``0`` for an empty slot)."""
        return self._max_valence.to(device)

    def upper_pairs(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """Row and column indices ``[P]`` of the bond sites ``i < j`` (row-major order)."""
        rows, cols = torch.triu_indices(self.max_atoms, self.max_atoms, offset=1, device=device)
        return rows, cols

    def noise(self, n: int, generator: torch.Generator, device: Optional[torch.device] = None) -> DenseMolGraph:
        """Draw ``n`` random graphs (see the module docstring) on ``device`` (default: the generator's)."""
        device = generator.device if device is None else torch.device(device)
        if self.atom_prior is None:
            atoms = torch.randint(0, self.num_atom_values, (n, self.max_atoms), generator=generator, device=device)
        else:
            atoms = self.atom_prior.sample(n, generator, device)
        if self.connected_noise:
            return DenseMolGraph(atoms, random_tree_bonds(atoms, self._max_valence, generator), atoms > 0)
        upper = torch.randint(0, NUM_BOND_VALUES, (n, self.max_atoms, self.max_atoms), generator=generator, device=device)
        upper = upper.triu(diagonal=1)
        occupied = atoms > 0
        bonds = (upper + upper.transpose(1, 2)) * (occupied[:, :, None] & occupied[:, None, :])
        graph = DenseMolGraph(atoms, bonds, occupied)
        return correct_valence(graph, self.vocabulary, adjust_charges=False) if self.valid_noise else graph

    def validate(self, x: DenseMolGraph, where: str) -> None:
        """Raise ``TypeError`` / ``ValueError`` naming ``where`` if ``x`` is not a batch of legal graphs."""
        if not isinstance(x, DenseMolGraph):
            raise TypeError(f"{where}: expected a DenseMolGraph, got {type(x).__name__}")
        try:
            x.validate(len(self.vocabulary))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if x.max_atoms != self.max_atoms:
            raise ValueError(
                f"{where}: the graphs have {x.max_atoms} atom slots but vocabulary {self.vocabulary.name!r} "
                f"has max_atoms={self.max_atoms}"
            )

    def valence_valid(self, x: DenseMolGraph) -> Tensor:
        """``[B]`` bool: no atom is above its maximum valence (no structural re-check)."""
        return (x.bonds.sum(dim=2) <= self.max_valence(x.atoms.device)[x.atoms]).all(dim=1)

    def check_valence_valid(self, x: DenseMolGraph, where: str) -> None:
        """Raise ``ValueError`` naming the first over-valent graphs of ``x``."""
        valid = self.valence_valid(x)
        if not valid.all():
            bad = (~valid).nonzero().flatten()[:8].tolist()
            raise ValueError(
                f"{where}: valence-aware sampling needs valence-valid start graphs, but graph(s) {bad} have an "
                "atom above its maximum valence; repair them with structebm.chem.valence.correct_valence "
                "or sample with valence_aware=False"
            )

    def one_hot(self, x: DenseMolGraph, dtype: Optional[torch.dtype] = None) -> tuple[Tensor, Tensor]:
        """Exact one-hot encodings: atoms ``[B, N, A + 1]`` and bonds ``[B, N, N, 4]`` of ``dtype``."""
        dtype = torch.get_default_dtype() if dtype is None else dtype
        atoms = F.one_hot(x.atoms, self.num_atom_values).to(dtype)
        bonds = F.one_hot(x.bonds, NUM_BOND_VALUES).to(dtype)
        return atoms, bonds

    def pair_values(self, x: DenseMolGraph) -> Tensor:
        """``[B, P]`` bond order of every bond site."""
        rows, cols = self.upper_pairs(x.bonds.device)
        return x.bonds[:, rows, cols]

    def legal_atom_values(self, x: DenseMolGraph, valence_aware: bool) -> Tensor:
        """``[B, N, A + 1]`` bool: values each atom slot may take with everything else fixed."""
        device = x.atoms.device
        valence = x.bonds.sum(dim=2)[:, :, None]
        if valence_aware:
            return valence <= self.max_valence(device)[None, None, :]
        values = torch.arange(self.num_atom_values, device=device)
        return (values > 0)[None, None, :] | (valence == 0)

    def legal_bond_values(self, x: DenseMolGraph, valence_aware: bool) -> Tensor:
        """``[B, P, 4]`` bool: orders each bond site ``i < j`` may take with everything else fixed."""
        device = x.bonds.device
        rows, cols = self.upper_pairs(device)
        orders = torch.arange(NUM_BOND_VALUES, device=device)
        if not valence_aware:
            both_occupied = x.mask[:, rows] & x.mask[:, cols]
            return (orders == 0)[None, None, :] | both_occupied[:, :, None]
        max_valence = self.max_valence(device)[x.atoms]
        room = max_valence - x.bonds.sum(dim=2)  # free valence of every slot, [B, N]
        current = x.bonds[:, rows, cols]
        room_without_bond = torch.minimum(room[:, rows], room[:, cols]) + current  # [B, P]
        return orders[None, None, :] <= room_without_bond[:, :, None]
