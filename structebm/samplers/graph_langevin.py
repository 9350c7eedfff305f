"""Langevin dynamics on relaxed (dequantized) one-hot graphs, as in GraphEBM.

Liu et al., "GraphEBM: Molecular Graph Generation with Energy-Based Models", 2021. A graph of a
:class:`~structebm.graphs.space.GraphSpace` is relaxed to continuous tensors: nodes
:math:`X \\in \\mathbb{R}^{N \\times (K+1)}` and a symmetric edge tensor
:math:`B \\in \\mathbb{R}^{N \\times N \\times (R+1)}` whose free variables are the upper-triangle
entries :math:`U_{ij} = B_{ij} = B_{ji}` (``i < j``; the diagonal is fixed to "no edge"). Data are dequantized by uniform noise, :math:`X = \\text{onehot}(G) + s\\,u`,
:math:`u \\sim \\mathcal{U}[0, 1)` (:func:`dequantize`). One transition is an unadjusted
Langevin step on :math:`(X, U)`, projected onto the box ``bounds``:

.. math::
    X' = \\Pi\\bigl(X - \\epsilon \\nabla_X E + \\sigma \\xi\\bigr), \\qquad
    U'_{ij} = \\Pi\\bigl(U_{ij} - \\epsilon (\\nabla_{B_{ij}} E + \\nabla_{B_{ji}} E) + \\sigma \\xi_{ij}\\bigr),

with :math:`\\xi \\sim \\mathcal{N}(0, I)` and separate step size :math:`\\epsilon` and noise
scale :math:`\\sigma` (a tempered, short-run sampler as used to train EBMs, not an exact one).
The edge gradient is the gradient in the shared variable :math:`U_{ij}`, so symmetry holds
exactly. :func:`to_graph` rounds a relaxed graph to a :class:`DenseGraph` by argmax over
channels, then removes edges on empty slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor, nn

from structebm.energies.base import check_energy_output, require
from structebm.energies.graph import HasGraphOneHotEnergy
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers._graph_sites import check_space
from structebm.samplers._categorical import float_dtype_of
from structebm.samplers._diffusion import check_bounds, check_generator
from structebm.samplers.base import ChainDivergedError, ChainState, SamplingAlgorithm, StepInfo, check_positive

__all__ = ["RelaxedGraph", "dequantize", "to_graph", "graph_langevin", "DEFAULT_DEQUANTIZATION"]

DEFAULT_DEQUANTIZATION = 0.9
"""GraphEBM's dequantization scale ``s``; the default box is ``[0, 1 + s]``."""

_NAME = "graph_langevin"


@dataclass(frozen=True)
class RelaxedGraph:
    """A batch of relaxed one-hot graphs.

    Shapes:
        - nodes: ``[B, N, K + 1]`` float (channel 0 = empty slot)
        - edges: ``[B, N, N, R + 1]`` float, symmetric in the two node dimensions (channel 0 = no edge);
          samplers reset the diagonal to "no edge"
    """

    nodes: Tensor
    edges: Tensor

    @property
    def batch_size(self) -> int:
        return self.nodes.shape[0]


def _symmetric_edges(pairs: Tensor, num_nodes: int) -> Tensor:
    """Symmetric ``[B, N, N, R + 1]`` edges from upper-triangle values ``[B, P, R + 1]``; diagonal = no edge."""
    rows, cols = torch.triu_indices(num_nodes, num_nodes, offset=1, device=pairs.device)
    edges = pairs.new_zeros(pairs.shape[0], num_nodes, num_nodes, pairs.shape[2])
    edges[:, rows, cols] = pairs
    edges[:, cols, rows] = pairs
    diagonal = torch.arange(num_nodes, device=pairs.device)
    edges[:, diagonal, diagonal, 0] = 1.0
    return edges


def _upper(edges: Tensor) -> Tensor:
    rows, cols = torch.triu_indices(edges.shape[1], edges.shape[1], offset=1, device=edges.device)
    return edges[:, rows, cols]


def dequantize(
    graph: DenseGraph, space: GraphSpace, generator: torch.Generator, scale: float = DEFAULT_DEQUANTIZATION
) -> RelaxedGraph:
    """One-hot encode ``graph`` and add ``scale · U[0, 1)`` noise (symmetric on edges, none on the diagonal)."""
    space.validate(graph, "dequantize")
    scale = float(scale)
    if not scale >= 0.0:
        raise ValueError(f"dequantize: scale must be >= 0, got {scale}")
    nodes, edges = space.one_hot(graph)
    device = nodes.device
    nodes = nodes + scale * torch.rand(nodes.shape, generator=generator, device=device, dtype=nodes.dtype)
    pairs = _upper(edges)
    pairs = pairs + scale * torch.rand(pairs.shape, generator=generator, device=device, dtype=pairs.dtype)
    return RelaxedGraph(nodes, _symmetric_edges(pairs, graph.max_nodes))


def to_graph(relaxed: RelaxedGraph) -> DenseGraph:
    """Round to a :class:`DenseGraph`: argmax node and edge channels, drop edges on empty slots."""
    nodes = relaxed.nodes.argmax(dim=-1)
    values = _upper(relaxed.edges).argmax(dim=-1)
    num_nodes = nodes.shape[1]
    rows, cols = torch.triu_indices(num_nodes, num_nodes, offset=1, device=nodes.device)
    edges = nodes.new_zeros(nodes.shape[0], num_nodes, num_nodes)
    occupied = nodes > 0
    values = values * (occupied[:, rows] & occupied[:, cols])
    edges[:, rows, cols] = values
    edges[:, cols, rows] = values
    return DenseGraph(nodes, edges, occupied)


def _check_relaxed(x: RelaxedGraph, space: GraphSpace, bounds: Optional[tuple[float, float]], where: str) -> None:
    n, values, edge_values = space.max_nodes, space.num_node_values, space.num_edge_values
    nodes, edges = x.nodes, x.edges
    if not all(isinstance(t, Tensor) and t.is_floating_point() for t in (nodes, edges)):
        raise TypeError(f"{where}: a RelaxedGraph needs floating-point nodes and edges tensors")
    if nodes.dim() != 3 or nodes.shape[1:] != (n, values) or edges.shape != (nodes.shape[0], n, n, edge_values):
        raise ValueError(
            f"{where}: expected nodes [B, {n}, {values}] and edges [B, {n}, {n}, {edge_values}], "
            f"got {tuple(nodes.shape)} and {tuple(edges.shape)}"
        )
    finite = torch.isfinite(nodes.flatten(1)).all(dim=1) & torch.isfinite(edges.flatten(1)).all(dim=1)
    if not finite.all():
        raise ValueError(f"{where}: NaN or infinite values in graph(s) {(~finite).nonzero().flatten()[:8].tolist()}")
    asymmetric = (edges != edges.transpose(1, 2)).flatten(1).any(dim=1)
    if asymmetric.any():
        raise ValueError(f"{where}: edges must be symmetric (graph(s) {asymmetric.nonzero().flatten()[:8].tolist()})")
    if bounds is not None:
        outside = torch.cat([nodes.flatten(1), _upper(edges).flatten(1)], dim=1)
        outside = ((outside < bounds[0]) | (outside > bounds[1])).any(dim=1)
        if outside.any():
            bad = outside.nonzero().flatten()[:8].tolist()
            raise ValueError(f"{where}: values outside bounds {bounds} in graph(s) {bad}")


def graph_langevin(
    energy: nn.Module,
    space: GraphSpace,
    step_size: float,
    noise_scale: float,
    bounds: Optional[tuple[float, float]] = (0.0, 1.0 + DEFAULT_DEQUANTIZATION),
) -> SamplingAlgorithm:
    """Build the GraphEBM-style Langevin sampler on relaxed graphs (see the module docstring).

    Args:
        energy: an energy with ``graph_one_hot_energy(nodes_one_hot, edges_one_hot, c) -> [B]``.
        space: the graph space (capacity ``N``, alphabets ``K`` and ``R``).
        step_size: :math:`\\epsilon`.
        noise_scale: :math:`\\sigma` (``0`` gives gradient descent).
        bounds: ``(low, high)`` box every relaxed value is clamped into, or ``None``.

    Returns:
        ``SamplingAlgorithm(init, step)``. ``init`` takes a :class:`DenseGraph` (exact one-hot
        start) or a :class:`RelaxedGraph` (e.g. from :func:`dequantize`); ``state.x`` is a
        :class:`RelaxedGraph` (round it with :func:`to_graph`). ``state.grad`` is the gradient
        in the free variables, ``[B, N(K+1) + P(R+1)]`` (nodes, then pairs ``i < j``).
        ``StepInfo`` has ``energy``, ``grad_norm``, ``acceptance_rate`` (ones) and
        ``extra["valid"]`` (1.0 where ``to_graph`` of the new state satisfies the space's constraints).

    Shapes:
        - state.x.nodes ``[B, N, K + 1]``, state.x.edges ``[B, N, N, R + 1]``; info fields ``[B]``
    """
    require(energy, HasGraphOneHotEnergy, _NAME)
    step_size = check_positive(step_size, "step_size", _NAME)
    if isinstance(noise_scale, bool) or not isinstance(noise_scale, (int, float)) or not 0.0 <= noise_scale < float("inf"):
        raise ValueError(f"{_NAME}: noise_scale must be a finite number >= 0, got {noise_scale!r}")
    bounds = check_bounds(bounds, _NAME)
    space = check_space(energy, space, _NAME, least_nodes=1)
    dtype = float_dtype_of(energy)
    node_size = space.max_nodes * space.num_node_values

    def energy_and_grad(x: RelaxedGraph, c: Optional[Tensor], where: str) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            nodes = x.nodes.detach().requires_grad_(True)
            edges = x.edges.detach().requires_grad_(True)
            values = energy.graph_one_hot_energy(nodes, edges, c)
            if not isinstance(values, Tensor) or values.shape != (x.batch_size,):
                check_energy_output(values, x.batch_size, where)
            node_grad, edge_grad = torch.autograd.grad(values.sum(), (nodes, edges))
        grad = torch.cat([node_grad.flatten(1), (_upper(edge_grad) + _upper(edge_grad.transpose(1, 2))).flatten(1)], dim=1)
        bad = ~(torch.isfinite(values) & torch.isfinite(grad).all(dim=1))
        if bad.any():
            raise ChainDivergedError(
                f"{where}: energy or gradient not finite for chain(s) {bad.nonzero().flatten()[:8].tolist()}; "
                "lower the step size or regularise the energy magnitude"
            )
        return values.detach(), grad

    def init(x: Union[DenseGraph, RelaxedGraph], c: Optional[Tensor] = None) -> ChainState:
        where = f"{_NAME}.init"
        if isinstance(x, DenseGraph):
            space.validate(x, where)
            x = RelaxedGraph(*space.one_hot(x, dtype))
        elif isinstance(x, RelaxedGraph):
            _check_relaxed(x, space, bounds, where)
            pairs = _upper(x.edges.detach().to(dtype))
            x = RelaxedGraph(x.nodes.detach().to(dtype).clone(), _symmetric_edges(pairs, space.max_nodes))
        else:
            raise TypeError(f"{where}: expected a DenseGraph or RelaxedGraph, got {type(x).__name__}")
        values, grad = energy_and_grad(x, c, where)
        return ChainState(x=x, c=c, energy=values, grad=grad, step=0)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, StepInfo]:
        where = f"{_NAME}.step {state.step + 1}"
        x = state.x
        check_generator(generator, x.nodes, where)
        free = torch.cat([x.nodes.flatten(1), _upper(x.edges).flatten(1)], dim=1)
        noise = torch.randn(free.shape, generator=generator, device=free.device, dtype=free.dtype)
        free = free - step_size * state.grad + float(noise_scale) * noise
        if bounds is not None:
            free = free.clamp(bounds[0], bounds[1])
        nodes = free[:, :node_size].reshape(x.nodes.shape)
        pairs = free[:, node_size:].reshape(x.batch_size, space.num_pairs, space.num_edge_values)
        new_x = RelaxedGraph(nodes, _symmetric_edges(pairs, space.max_nodes))
        values, grad = energy_and_grad(new_x, state.c, where)
        new_state = ChainState(x=new_x, c=state.c, energy=values, grad=grad, step=state.step + 1)
        info = StepInfo(
            energy=values,
            grad_norm=grad.norm(dim=1),
            acceptance_rate=torch.ones_like(values),
            extra={"valid": space.is_valid(to_graph(new_x)).to(values.dtype)},
        )
        return new_state, info

    return SamplingAlgorithm(init, step)
