"""Dense molecular graphs: :class:`~structebm.graphs.state.DenseGraph` batches read as molecules.

A batch of ``B`` molecules with at most ``N`` heavy atoms each is a ``DenseGraph`` whose

* ``nodes [B, N]`` are ``0`` (empty slot) or ``1..A``, an index into an
  :class:`~structebm.chem.vocab.AtomVocabulary`;
* ``edges [B, N, N]`` are bond orders ``0`` (none), ``1`` single, ``2`` double, ``3`` triple
  (kekulized: no aromatic bond type), so ``R = MAX_BOND_ORDER = 3`` edge types.

``DenseMolGraph`` is the same class under the name the molecule code reads best with.
"""

from __future__ import annotations

from structebm.graphs.state import DenseGraph

__all__ = ["DenseMolGraph", "MAX_BOND_ORDER"]

MAX_BOND_ORDER = 3
"""Edge types of a molecular graph: single, double and triple bonds."""

DenseMolGraph = DenseGraph
