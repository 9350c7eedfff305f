"""The graph space of molecules over an atom vocabulary: a :class:`GraphSpace` with the valence constraint.

A state is a :class:`~structebm.chem.dense.DenseMolGraph` with ``N = vocabulary.max_atoms``
slots, atom values ``0..A`` (``A = len(vocabulary)``, ``0`` = empty slot) and bond orders
``0..3`` on the ``P = N(N-1)/2`` pairs. The only constraint is
:class:`~structebm.chem.valence.ValenceConstraint`, so ``constrained=True`` in a graph sampler
means "valence-aware": the target is :math:`e^{-E(G)} [G \\text{ valence-valid}]`.

Noise is that of :class:`~structebm.graphs.space.GraphSpace`: atoms uniform on ``0..A`` (or from
an :class:`~structebm.chem.atom_prior.AtomPrior`), bonds between occupied slots uniform on
``0..3`` and, with ``valid_noise``, made valence-valid by
:func:`~structebm.chem.valence.correct_valence` (no charge changes). With ``connected_noise``
the bonds are a random single-bond tree within every atom's maximum valence
(:func:`~structebm.graphs.random.random_tree_edges`): one valence-valid fragment.
"""

from __future__ import annotations

from typing import Optional

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.dense import MAX_BOND_ORDER
from structebm.chem.valence import ValenceConstraint
from structebm.chem.vocab import AtomVocabulary
from structebm.graphs.space import GraphSpace

__all__ = ["MolGraphSpace"]


class MolGraphSpace(GraphSpace):
    """Dense molecular graphs over ``vocabulary`` with ``vocabulary.max_atoms`` slots.

    Args:
        vocabulary: the atom types (``K = len(vocabulary)``) and the slot count ``N``.
        valid_noise: make noise graphs valence-valid (see the module docstring).
        connected_noise: draw noise bonds as random trees, which are connected and valence-valid.
        atom_prior: draw the atoms of noise graphs from this prior instead of uniformly.

    Shapes:
        - as :class:`GraphSpace` with ``K = A`` and ``R = 3``
    """

    def __init__(
        self, vocabulary: AtomVocabulary, valid_noise: bool = True, connected_noise: bool = False,
        atom_prior: Optional[AtomPrior] = None,
    ) -> None:
        if not isinstance(vocabulary, AtomVocabulary):
            raise TypeError(f"MolGraphSpace: vocabulary must be an AtomVocabulary, got {type(vocabulary).__name__}")
        if len(vocabulary) < 1:
            raise ValueError(f"MolGraphSpace: vocabulary {vocabulary.name!r} has no atom types")
        self.vocabulary = vocabulary
        self.valence = ValenceConstraint(vocabulary)
        super().__init__(
            vocabulary.max_atoms, len(vocabulary), MAX_BOND_ORDER, constraints=[self.valence], node_prior=atom_prior,
            tree_noise=connected_noise, tree_capacity=self.valence.max_valence, valid_noise=valid_noise,
        )

    def __repr__(self) -> str:
        return f"MolGraphSpace({self.vocabulary.name!r})"
