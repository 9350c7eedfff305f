"""Shared pieces of the graph samplers: argument checks, single-site edits and step diagnostics.

Used by :mod:`structebm.samplers.graph_moves` (Gibbs) and
:mod:`structebm.samplers.graph_gwg` (Gibbs-with-gradients); see
:mod:`structebm.graphs.space` for the sites (node slots and pairs) and their legal values.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import check_energy_output
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers.base import ChainDivergedError, StepInfo

__all__ = ["SiteKind", "check_space", "check_start", "check_shape", "checked_values", "set_sites", "pad_columns",
           "step_info"]

SiteKind = Literal["nodes", "edges", "nodes_and_edges"]


def check_space(energy: nn.Module, space: GraphSpace, where: str, least_nodes: int = 2) -> GraphSpace:
    """``space`` after checking it is a :class:`GraphSpace` whose alphabets match the energy's declared ones."""
    if not isinstance(space, GraphSpace):
        raise TypeError(f"{where}: space must be a GraphSpace, got {type(space).__name__}")
    if space.max_nodes < least_nodes:
        raise ValueError(f"{where}: graph moves need at least {least_nodes} slots, the space has max_nodes={space.max_nodes}")
    for name in ("num_node_types", "num_edge_types"):
        declared = getattr(energy, name, None)
        if isinstance(declared, int) and declared != getattr(space, name):
            raise ValueError(f"{where}: the energy has {name}={declared} but the space has {getattr(space, name)}")
    return space


def check_start(space: GraphSpace, x: DenseGraph, c: Optional[Tensor], constrained: bool, where: str) -> None:
    """Check start graphs (and with ``constrained`` their validity) and the condition's batch size."""
    space.validate(x, where)
    if c is not None and (not isinstance(c, Tensor) or c.dim() < 1 or c.shape[0] != x.batch_size):
        got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
        raise ValueError(f"{where}: c must be None or a tensor with batch size {x.batch_size} first, got {got}")
    if constrained:
        space.check_valid(x, where)


def check_shape(values: Tensor, count: int, where: str) -> None:
    """Raise the contract's error when the energy did not return a ``Tensor[count]``."""
    if not isinstance(values, Tensor) or values.shape != (count,):
        check_energy_output(values, count, where)


def checked_values(values: Tensor, count: int, where: str) -> Tensor:
    """Detached energies ``[count]``; a non-finite value stops the chain."""
    check_shape(values, count, where)
    if not torch.isfinite(values).all():
        raise ChainDivergedError(f"{where}: the energy is not finite for some graph(s); regularise the energy magnitude")
    return values.detach()


def set_sites(
    nodes: Tensor, edges: Tensor, is_node: Tensor, slot: Tensor, row: Tensor, col: Tensor, value: Tensor
) -> DenseGraph:
    """Copy of the graphs with one site per row set to ``value`` (node ``slot`` or edge ``(row, col)``)."""
    index = torch.arange(nodes.shape[0], device=nodes.device)
    nodes, edges = nodes.clone(), edges.clone()
    nodes[index, slot] = torch.where(is_node, value, nodes[index, slot])
    edge_value = torch.where(is_node, edges[index, row, col], value)
    edges[index, row, col] = edge_value
    edges[index, col, row] = edge_value
    return DenseGraph(nodes, edges, nodes > 0)


def pad_columns(mask: Tensor, width: int) -> Tensor:
    """``[B, K]`` bool mask padded with ``False`` columns to ``[B, width]``."""
    return torch.cat([mask, mask.new_zeros(mask.shape[0], width - mask.shape[1])], dim=1)


def step_info(
    space: GraphSpace, x: DenseGraph, values: Tensor, extra: Optional[dict[str, Tensor]] = None, **fields: Tensor
) -> StepInfo:
    """``StepInfo`` with ``extra["valid"]`` (1.0 where ``x`` satisfies every constraint of the space) added."""
    extra = {"valid": space.is_valid(x).to(values.dtype), **(extra or {})}
    return StepInfo(energy=values, extra=extra, **fields)
