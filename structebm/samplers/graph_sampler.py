"""One factory for the graph samplers, usable from YAML as a ``sampler_factory``.

:class:`~structebm.objectives.contrastive.ContrastiveDivergence` calls
``sampler_factory(energy, **sampler_options)``. A YAML config cannot pass a
:class:`~structebm.graphs.space.GraphSpace` object through ``sampler_options``, so
:func:`graph_sampler` also builds one from plain numbers::

    sampler_factory: structebm.samplers.graph_sampler.graph_sampler
    sampler_options: {max_nodes: 20, method: gibbs_with_gradients, max_degree: 6, constrained: true}

The alphabets default to the energy's ``num_node_types`` and ``num_edge_types``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from torch import nn

from structebm.graphs.constraints import MaxDegree, NodeCountBounds
from structebm.graphs.space import GraphSpace
from structebm.samplers.base import SamplingAlgorithm
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients
from structebm.samplers.graph_moves import graph_gibbs

__all__ = ["GraphSamplerMethod", "graph_sampler", "graph_space_of"]

GraphSamplerMethod = Literal["gibbs", "gibbs_with_gradients"]


def graph_space_of(
    energy: nn.Module,
    max_nodes: int,
    num_node_types: Optional[int] = None,
    num_edge_types: Optional[int] = None,
    max_degree: Optional[int] = None,
    min_nodes: Optional[int] = None,
) -> GraphSpace:
    """A :class:`GraphSpace` with the energy's alphabets (unless given) and optional ready-made constraints."""
    num_node_types = num_node_types if num_node_types is not None else getattr(energy, "num_node_types", None)
    num_edge_types = num_edge_types if num_edge_types is not None else getattr(energy, "num_edge_types", None)
    if num_node_types is None or num_edge_types is None:
        raise ValueError(
            "graph_sampler: pass num_node_types and num_edge_types, or use an energy with those int attributes"
        )
    constraints = []
    if max_degree is not None:
        constraints.append(MaxDegree(max_degree))
    if min_nodes is not None:
        constraints.append(NodeCountBounds(min_nodes, max_nodes))
    return GraphSpace(max_nodes, num_node_types, num_edge_types, constraints=constraints)


def graph_sampler(
    energy: nn.Module,
    space: Optional[GraphSpace] = None,
    method: GraphSamplerMethod = "gibbs_with_gradients",
    constrained: bool = False,
    max_nodes: Optional[int] = None,
    num_node_types: Optional[int] = None,
    num_edge_types: Optional[int] = None,
    max_degree: Optional[int] = None,
    min_nodes: Optional[int] = None,
    **options: Any,
) -> SamplingAlgorithm:
    """Graph Gibbs or Gibbs-with-gradients over ``space`` (or the space the numbers describe).

    Args:
        energy: the graph energy.
        space: the graph space; if ``None`` it is built by :func:`graph_space_of` from the rest.
        method: ``"gibbs"`` or ``"gibbs_with_gradients"``.
        constrained: restrict moves to the space's constraints.
        max_nodes, num_node_types, num_edge_types, max_degree, min_nodes: describe the space when
            ``space`` is ``None``.
        options: for :func:`~structebm.samplers.graph_moves.graph_gibbs` (``sites``, ``temperature``) or
            :func:`~structebm.samplers.graph_gwg.graph_gibbs_with_gradients` (``num_flips``, ``temperature``).
    """
    if space is None:
        if max_nodes is None:
            raise ValueError("graph_sampler: pass a GraphSpace as space, or at least max_nodes")
        space = graph_space_of(energy, max_nodes, num_node_types, num_edge_types, max_degree, min_nodes)
    elif any(v is not None for v in (max_nodes, num_node_types, num_edge_types, max_degree, min_nodes)):
        raise ValueError("graph_sampler: pass either space or the numbers that describe one, not both")
    if method == "gibbs":
        return graph_gibbs(energy, space, constrained=constrained, **options)
    if method == "gibbs_with_gradients":
        return graph_gibbs_with_gradients(energy, space, constrained=constrained, **options)
    raise ValueError(f"graph_sampler: method must be 'gibbs' or 'gibbs_with_gradients', got {method!r}")
