"""Graphs as a state space: dense graph batches, graph spaces with pluggable constraints, noise, conversions.

- :class:`~structebm.graphs.state.DenseGraph` — ``nodes [B, N]`` (0 = empty, ``1..K`` types),
  ``edges [B, N, N]`` (symmetric, 0 = none, ``1..R`` types), ``mask [B, N]``;
- :class:`~structebm.graphs.space.GraphSpace` — capacity, alphabets, legal single-site moves,
  noise for chain starts;
- :mod:`~structebm.graphs.constraints` — the :class:`GraphConstraint` protocol, :class:`MaxDegree`,
  :class:`NodeCountBounds`;
- :class:`~structebm.graphs.prior.NodePrior` and :func:`~structebm.graphs.prior.edge_density` —
  noise fitted to training graphs;
- :mod:`~structebm.graphs.convert` — networkx and PyTorch Geometric conversions (imported on use).

This layer imports no other structebm layer; molecules are one instance of it
(:mod:`structebm.chem.graph_space`).
"""

from structebm.graphs.constraints import GraphConstraint, MaxDegree, NodeCountBounds
from structebm.graphs.prior import NodePrior, edge_density
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph

__all__ = ["DenseGraph", "GraphSpace", "GraphConstraint", "MaxDegree", "NodeCountBounds", "NodePrior", "edge_density"]
