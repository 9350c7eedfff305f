"""Graphs as a state space: dense graph batches, graph spaces with pluggable constraints, noise, conversions.

The layer (imports no other structebm layer, no RDKit):

- :class:`~structebm.graphs.state.DenseGraph` — ``nodes [B, N]`` (0 = empty, ``1..K`` types),
  ``edges [B, N, N]`` (symmetric, zero diagonal, 0 = none, ``1..R`` types), ``mask [B, N]``;
  ``validate(K, R)`` names the graph and the problem;
- :class:`~structebm.graphs.space.GraphSpace` — capacity, alphabets, legal single-site moves
  (``legal_node_values`` / ``legal_edge_values`` with ``constrained``), ``noise`` for chain starts;
- :mod:`~structebm.graphs.constraints` — the :class:`GraphConstraint` protocol (brute-force
  legality from ``is_valid``), :class:`MaxDegree`, :class:`NodeCountBounds`;
- :class:`~structebm.graphs.prior.NodePrior` and :func:`~structebm.graphs.prior.edge_density` —
  noise fitted to training graphs; :func:`~structebm.graphs.random.random_tree_edges` — tree noise;
- :mod:`~structebm.graphs.enumerate` — every graph of a small space and its exact distribution;
- :func:`~structebm.graphs.components.soft_component_count` — differentiable component count;
- :mod:`~structebm.graphs.convert` — networkx and PyTorch Geometric conversions (imported on use).

Built on it: the samplers :func:`~structebm.samplers.graph_moves.graph_gibbs`,
:func:`~structebm.samplers.graph_gwg.graph_gibbs_with_gradients`,
:func:`~structebm.samplers.graph_langevin.graph_langevin` (all take a ``GraphSpace``; ``constrained=True``
keeps moves inside its constraints), the YAML factory
:func:`~structebm.samplers.graph_sampler.graph_sampler`, the chain sources
:class:`~structebm.samplers.graph_buffer.GraphNoiseInit` and
:class:`~structebm.samplers.graph_buffer.GraphReplayBuffer`, and the energy
:class:`~structebm.energies.graph.RelationalGraphEnergy` (capability ``graph_one_hot_energy``,
optional feature modules such as :class:`~structebm.energies.graph_structure.StructuralFeatures`).
Molecules are one instance: :class:`~structebm.chem.graph_space.MolGraphSpace` is a ``GraphSpace``
with :class:`~structebm.chem.valence.ValenceConstraint`.
"""

from structebm.graphs.constraints import GraphConstraint, MaxDegree, NodeCountBounds
from structebm.graphs.prior import NodePrior, edge_density
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph

__all__ = ["DenseGraph", "GraphSpace", "GraphConstraint", "MaxDegree", "NodeCountBounds", "NodePrior", "edge_density"]
