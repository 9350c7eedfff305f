"""The atom prior of molecular noise graphs: a :class:`~structebm.graphs.prior.NodePrior` over atom types.

``AtomPrior.fit(atoms [M, N], num_atom_types)`` gives the frequencies of the atom counts and
atom types of training molecules; noise graphs of a molecular graph space draw their atoms from it.
"""

from structebm.graphs.prior import NodePrior

__all__ = ["AtomPrior"]

AtomPrior = NodePrior
