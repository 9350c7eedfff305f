"""A relational graph neural network energy over dense graphs with any node and edge alphabet.

``E(G, c)`` for a :class:`~structebm.graphs.state.DenseGraph` ``G`` with node one-hots
``X ∈ R^{N × (K+1)}`` (channel 0 = empty slot) and edge one-hots ``A ∈ R^{N × N × (R+1)}``
(channel 0 = no edge), in the spirit of GraphEBM (Liu et al., "GraphEBM: Molecular Graph
Generation with Energy-Based Models", 2021):

.. math::
    h^{0}_i = W_{\\text{in}} [X_i, f_i], \\qquad
    h^{\\ell+1}_i = h^{\\ell}_i + \\sigma\\Bigl(\\operatorname{FiLM}_\\ell\\bigl(
        W^{\\ell}_0 h^{\\ell}_i + \\textstyle\\sum_{r=1}^{R} \\sum_j A_{ijr} W^{\\ell}_r h^{\\ell}_j, \\; c\\bigr)\\Bigr),

.. math::
    E(G, c) = \\operatorname{MLP}\\Bigl(\\tfrac{1}{Z} \\textstyle\\sum_i m_i h^{L}_i\\Bigr)
        + \\textstyle\\sum_g e^{\\rho_g} t_g(G), \\qquad
    m_i = 1 - X_{i0}, \\quad Z = 1 \\text{ (sum) or } \\max(1, \\textstyle\\sum_i m_i) \\text{ (mean)}.

An optional **feature module** (``features``, protocol :class:`GraphFeatures`) computes from the
one-hots extra node inputs :math:`f_i` and graph terms :math:`t_g(G)` that enter with learned
non-negative weights :math:`e^{\\rho_g}`. Structural features
(:class:`~structebm.energies.graph_structure.StructuralFeatures`: degrees, closed walks, i.e.
cycle counts) suit any graph; the chemistry features
(:class:`~structebm.chem.features.ChemistryFeatures`: valences, and as graph terms the valence
excess and the fragments beyond one) suit molecules: training data have those terms at zero, so
contrastive divergence raises their weights for as long as negatives break valences or fall
apart; the weights are learned, not imposed, and the samplers stay unconstrained.

Empty slots carry no edges and are left out of the readout (weight :math:`m_i = 0`), so the
energy is invariant under any permutation of the slots. :meth:`~RelationalGraphEnergy.forward`
evaluates the same network on the exact one-hot encoding, so
:meth:`~RelationalGraphEnergy.graph_one_hot_energy` equals it on exact one-hots and also accepts
relaxed (continuous) ones, differentiably (protocol :class:`HasGraphOneHotEnergy`, named apart
from the sequence capability ``one_hot_energy`` so that a sequence energy fails the graph check).

Message passing is dense (a batched matrix product over ``[B, N, N·R]`` adjacencies, see
:mod:`structebm.energies.graph_layers`) rather than sparse torch-geometric layers, for two
reasons. Gibbs-with-gradients and Langevin need the gradient in *every* edge entry, including
absent edges, which a sparse edge list does not hold. And on CPU the dense form is faster on
molecule-sized graphs than torch-geometric ``RGCNConv`` layers together with building their
sparse ``Batch`` (the measured figures are in ``docs/results/speed.md``).

Samplers take the energy and its gradient in both one-hot tensors from
:meth:`~RelationalGraphEnergy.graph_one_hot_energy_and_grad` (protocol
:class:`HasGraphOneHotEnergyGradient`): the chain rule written out
(:mod:`structebm.energies.graph_gradient`), which on exact graphs gathers the neighbours over
the edge list and keeps only the adjacency gradient dense.
"""

from __future__ import annotations

import math
from typing import Callable, Literal, Optional, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.energies.base import Energy
from structebm.energies.graph_gradient import graph_energy_and_grad
from structebm.energies.graph_layers import FeatureModulation, RelationalGraphConv, linear_layer
from structebm.graphs.state import DenseGraph

__all__ = ["RelationalGraphEnergy", "HasGraphOneHotEnergy", "HasGraphOneHotEnergyGradient", "GraphFeatures"]

Readout = Literal["sum", "mean"]


@runtime_checkable
class HasGraphOneHotEnergy(Protocol):
    """Energy of a graph given as (relaxed) one-hot node and edge tensors.

    ``graph_one_hot_energy(nodes_one_hot [B, N, K+1], edges_one_hot [B, N, N, R+1], c) -> [B]``
    is differentiable in both inputs and equals ``forward(graph, c)`` on exact one-hots.
    """

    def graph_one_hot_energy(self, nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class HasGraphOneHotEnergyGradient(Protocol):
    """The energy of exact or relaxed one-hot graphs and its gradients in both, from one evaluation.

    ``graph_one_hot_energy_and_grad(nodes_one_hot, edges_one_hot, c, edges)`` returns detached
    ``(E [B], dE/d nodes_one_hot [B, N, K+1], dE/d edges_one_hot [B, N, N, R+1])``, the values that
    autograd gives for ``graph_one_hot_energy(...).sum()``, up to rounding. ``edges [B, N, N]``, when
    given, are the exact graphs that ``edges_one_hot`` encodes (an energy may use them to go faster).
    """

    def graph_one_hot_energy_and_grad(
        self, nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor] = None, edges: Optional[Tensor] = None
    ) -> tuple[Tensor, Tensor, Tensor]: ...


@runtime_checkable
class GraphFeatures(Protocol):
    """A feature module: extra node inputs and graph terms from (relaxed) one-hot graphs.

    Shapes:
        - call: nodes_one_hot ``[B, N, K+1]``, edges_one_hot ``[B, N, N, R+1]``
          -> node features ``[B, N, num_node_features]``, graph terms ``[B, num_graph_terms]``
    """

    num_node_features: int
    num_graph_terms: int

    def __call__(self, nodes_one_hot: Tensor, edges_one_hot: Tensor) -> tuple[Tensor, Tensor]: ...


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"RelationalGraphEnergy: {name} must be a positive int, got {value!r}")
    return value


class RelationalGraphEnergy(Energy):
    """Permutation-invariant relational GNN energy ``E(G, c) -> [B]`` (see the module docstring).

    Args:
        num_node_types: ``K`` (node values ``0..K``, 0 = empty slot).
        num_edge_types: ``R`` (edge values ``0..R``, 0 = no edge); each type has its own weights.
        hidden: node feature size.
        num_layers: number of relational convolutions.
        readout: ``"sum"`` or ``"mean"`` over occupied slots.
        features: an optional :class:`GraphFeatures` module (structural or chemistry features).
        condition_dim: size of the condition vector ``c`` (FiLM in every layer), or ``None``
            for an unconditional energy.
        activation: factory of the non-linearity.
        spectral_norm: spectrally normalise the convolution weights (a common EBM stabiliser).
        term_weight: starting value of every weight :math:`e^{\\rho_g}` of the feature module's
            graph terms (a prior: "one unit of the term costs this many nats"); training moves them.

    Shapes:
        - forward: ``DenseGraph`` with nodes ``[B, N]`` in ``0..K``, edges ``[B, N, N]`` in ``0..R``;
          c ``[B, condition_dim]``; output ``[B]``
        - graph_one_hot_energy: nodes ``[B, N, K+1]``, edges ``[B, N, N, R+1]``; output ``[B]``
    """

    def __init__(
        self,
        num_node_types: int,
        num_edge_types: int = 1,
        hidden: int = 128,
        num_layers: int = 4,
        readout: Readout = "sum",
        features: Optional[nn.Module] = None,
        condition_dim: Optional[int] = None,
        activation: Callable[[], nn.Module] = nn.SiLU,
        spectral_norm: bool = False,
        term_weight: float = 10.0,
    ) -> None:
        super().__init__()
        self.num_node_types = _positive_int(num_node_types, "num_node_types")
        self.num_edge_types = _positive_int(num_edge_types, "num_edge_types")
        _positive_int(hidden, "hidden")
        _positive_int(num_layers, "num_layers")
        bad_condition = isinstance(condition_dim, bool) or not isinstance(condition_dim, int) or condition_dim < 1
        if condition_dim is not None and bad_condition:
            raise ValueError(f"RelationalGraphEnergy: condition_dim must be a positive int or None, got {condition_dim!r}")
        if readout not in ("sum", "mean"):
            raise ValueError(f"RelationalGraphEnergy: readout must be 'sum' or 'mean', got {readout!r}")
        if features is not None and not isinstance(features, GraphFeatures):
            raise TypeError(
                f"RelationalGraphEnergy: features must be a module with num_node_features, num_graph_terms and "
                f"__call__(nodes_one_hot, edges_one_hot), got {type(features).__name__}"
            )
        expected = getattr(features, "num_node_values", None)
        if isinstance(expected, int) and expected != num_node_types + 1:
            raise ValueError(
                f"RelationalGraphEnergy: the feature module expects {expected - 1} node types, "
                f"but num_node_types is {num_node_types}"
            )
        if not term_weight > 0:
            raise ValueError(f"RelationalGraphEnergy: term_weight must be > 0, got {term_weight!r}")
        self.condition_dim = condition_dim
        self.readout = readout
        self.features = features
        extra_inputs = 0 if features is None else features.num_node_features
        num_terms = 0 if features is None else features.num_graph_terms
        self.embedding = nn.Linear(num_node_types + 1 + extra_inputs, hidden)
        # log-weights rho of the feature module's graph terms
        self.term_log_weight = nn.Parameter(torch.full((num_terms,), math.log(term_weight))) if num_terms else None
        self.convolutions = nn.ModuleList(
            RelationalGraphConv(hidden, hidden, num_edge_types, spectral_norm) for _ in range(num_layers)
        )
        self.modulations = (
            nn.ModuleList(FeatureModulation(condition_dim, hidden) for _ in range(num_layers))
            if condition_dim is not None
            else None
        )
        self.activation = activation()
        self.head = nn.Sequential(linear_layer(hidden, hidden, spectral_norm), activation(), nn.Linear(hidden, 1))

    def forward(self, x: DenseGraph, c: Optional[Tensor] = None) -> Tensor:
        if not isinstance(x, DenseGraph):
            raise TypeError(f"RelationalGraphEnergy.forward: expected a DenseGraph, got {type(x).__name__}")
        nodes, edges = x.nodes, x.edges
        if nodes.dim() != 2 or edges.shape != (*nodes.shape, nodes.shape[1]):
            raise ValueError(
                "RelationalGraphEnergy.forward: expected nodes [B, N] and edges [B, N, N], got "
                f"{tuple(nodes.shape)} and {tuple(edges.shape)}"
            )
        if bool(((nodes < 0) | (nodes > self.num_node_types)).any()):
            raise ValueError(f"RelationalGraphEnergy.forward: node values must lie in 0..{self.num_node_types}")
        if bool(((edges < 0) | (edges > self.num_edge_types)).any()):
            raise ValueError(f"RelationalGraphEnergy.forward: edge values must lie in 0..{self.num_edge_types}")
        dtype = self.embedding.weight.dtype
        nodes_one_hot = F.one_hot(nodes, self.num_node_types + 1).to(dtype)
        edges_one_hot = F.one_hot(edges, self.num_edge_types + 1).to(dtype)
        return self._energy(nodes_one_hot, edges_one_hot, self._checked_condition(c, nodes.shape[0], "forward"))

    def graph_one_hot_energy(self, nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """Energy of relaxed one-hot graphs (differentiable in both inputs)."""
        self._check_one_hots(nodes_one_hot, edges_one_hot, "graph_one_hot_energy")
        return self._energy(nodes_one_hot, edges_one_hot, self._checked_condition(c, nodes_one_hot.shape[0], "graph_one_hot_energy"))

    def graph_one_hot_energy_and_grad(
        self, nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor] = None, edges: Optional[Tensor] = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Energy ``[B]`` of (relaxed) one-hot graphs and its gradients in both inputs, detached
        (:func:`~structebm.energies.graph_gradient.graph_energy_and_grad`: the chain rule written out).
        ``edges [B, N, N]``: the exact graphs that ``edges_one_hot`` encodes, if it is exact."""
        self._check_one_hots(nodes_one_hot, edges_one_hot, "graph_one_hot_energy_and_grad")
        if edges is not None and (not isinstance(edges, Tensor) or edges.shape != edges_one_hot.shape[:3]):
            got = tuple(edges.shape) if isinstance(edges, Tensor) else type(edges).__name__
            raise ValueError(
                f"RelationalGraphEnergy.graph_one_hot_energy_and_grad: edges must be {list(edges_one_hot.shape[:3])}, got {got}"
            )
        return graph_energy_and_grad(self, nodes_one_hot, edges_one_hot, c, edges)

    def _check_one_hots(self, nodes_one_hot: Tensor, edges_one_hot: Tensor, name: str) -> None:
        where = f"RelationalGraphEnergy.{name}"
        if not isinstance(nodes_one_hot, Tensor) or not isinstance(edges_one_hot, Tensor):
            raise TypeError(f"{where}: nodes_one_hot and edges_one_hot must be tensors")
        if not nodes_one_hot.is_floating_point() or not edges_one_hot.is_floating_point():
            raise TypeError(f"{where}: one-hot inputs must be floating point, got {nodes_one_hot.dtype} and {edges_one_hot.dtype}")
        values = self.num_node_types + 1
        if nodes_one_hot.dim() != 3 or nodes_one_hot.shape[2] != values:
            raise ValueError(f"{where}: nodes_one_hot must be [B, N, {values}], got {tuple(nodes_one_hot.shape)}")
        batch_size, num_nodes, _ = nodes_one_hot.shape
        expected = (batch_size, num_nodes, num_nodes, self.num_edge_types + 1)
        if edges_one_hot.shape != expected:
            raise ValueError(f"{where}: edges_one_hot must be {list(expected)}, got {tuple(edges_one_hot.shape)}")

    def _checked_condition(self, c: Optional[Tensor], batch_size: int, where: str) -> Optional[Tensor]:
        if self.condition_dim is None:
            if c is not None:
                raise ValueError(f"RelationalGraphEnergy.{where}: got a condition c, but the energy has condition_dim=None")
            return None
        if not isinstance(c, Tensor) or c.shape != (batch_size, self.condition_dim) or not c.is_floating_point():
            got = f"{tuple(c.shape)} {c.dtype}" if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(
                f"RelationalGraphEnergy.{where}: c must be a float tensor [{batch_size}, {self.condition_dim}], got {got}"
            )
        return c

    def _energy(self, nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor]) -> Tensor:
        adjacency = edges_one_hot[..., 1:]
        if self.features is None:
            h = self.embedding(nodes_one_hot)
        else:
            node_features, graph_terms = self.features(nodes_one_hot, edges_one_hot)
            h = self.embedding(torch.cat([nodes_one_hot, node_features], dim=-1))
        for index, convolution in enumerate(self.convolutions):
            update = convolution(h, adjacency)
            if self.modulations is not None:
                update = self.modulations[index](update, c)
            h = h + self.activation(update)
        occupancy = 1.0 - nodes_one_hot[..., :1]
        pooled = (occupancy * h).sum(dim=1)
        if self.readout == "mean":
            pooled = pooled / occupancy.sum(dim=1).clamp_min(1.0)
        values = self.head(pooled).squeeze(-1)
        if self.term_log_weight is None:
            return values
        return values + graph_terms @ self.term_log_weight.exp()
