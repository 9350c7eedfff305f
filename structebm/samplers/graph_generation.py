"""Generic graph generation from a graph energy: chains from fitted noise, and a persistent chain source.

Chains start from noise graphs of a :class:`~structebm.graphs.space.GraphSpace` and run ``T``
steps of a graph sampler targeting

.. math::
    p_\\theta(G) \\propto \\exp(-E_\\theta(G) / \\tau), \\qquad G_0 \\sim \\text{noise}, \\quad
    G_{t+1} \\sim K_\\theta(\\cdot \\mid G_t), \\quad \\text{sample} = G_T.

The noise is fitted to the training graphs (:func:`fitted_space`): node counts and node types
from the data module's ``node_prior()``, each pair of occupied slots an edge with the training
edge density (``edge_density()``). The data module is used through those methods and
``max_nodes``, ``num_node_types``, ``num_edge_types`` only (duck typing: this layer imports no
data module).

A YAML config cannot build a :class:`GraphSpace` with a fitted prior, so :class:`GraphChainBuffer`
takes the space's sizes and its noise is fitted later (:meth:`GraphChainBuffer.fit_noise`).
"""

from __future__ import annotations

import time
from typing import Any, Optional

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers.base import check_chain_finite
from structebm.samplers.graph_buffer import GraphReplayBuffer
from structebm.samplers.graph_sampler import GraphSamplerMethod, graph_sampler

__all__ = ["GraphChainBuffer", "fitted_space", "sample_graphs"]


class GraphChainBuffer(GraphReplayBuffer):
    """A :class:`~structebm.samplers.graph_buffer.GraphReplayBuffer` over ``GraphSpace(max_nodes, K, R)``.

    Its noise is uniform until :meth:`fit_noise` fits it.

    Shapes:
        - storage: nodes ``[capacity, N]``, edges ``[capacity, N, N]`` (``int8``)
    """

    def __init__(
        self, max_nodes: int, num_node_types: int = 1, num_edge_types: int = 1,
        capacity: int = 10000, reinit_prob: float = 0.05,
    ) -> None:
        super().__init__(GraphSpace(max_nodes, num_node_types, num_edge_types), capacity=capacity, reinit_prob=reinit_prob)

    def fit_noise(self, space: GraphSpace) -> None:
        """Restart from ``space``'s noise from now on (same capacity and alphabets)."""
        old = self.space
        same = (space.max_nodes, space.num_node_types, space.num_edge_types) == (old.max_nodes, old.num_node_types, old.num_edge_types)
        if not same:
            raise ValueError(f"GraphChainBuffer.fit_noise: the buffer holds graphs of {old}, got {space}")
        self.space = space


def fitted_space(datamodule: Any) -> GraphSpace:
    """The data module's graph space with noise fitted to its training graphs (see the module docstring)."""
    missing = [name for name in ("node_prior", "edge_density", "max_nodes") if not hasattr(datamodule, name)]
    if missing:
        raise ValueError(f"fitted_space: the data module {type(datamodule).__name__} has no {missing} (use GraphDataModule)")
    return GraphSpace(
        datamodule.max_nodes, datamodule.num_node_types, datamodule.num_edge_types,
        node_prior=datamodule.node_prior(), edge_prob=datamodule.edge_density(),
    )


@torch.no_grad()
def sample_graphs(
    energy: nn.Module, space: GraphSpace, num_samples: int, num_steps: int, generator: torch.Generator,
    method: GraphSamplerMethod = "gibbs_with_gradients", batch_size: int = 1000, progress: bool = False,
    c: Optional[Tensor] = None, **options: Any,
) -> DenseGraph:
    """``num_samples`` graphs, each the end of a ``num_steps``-step chain started from ``space.noise``.

    With a condition ``c [num_samples, P]`` chain ``m`` targets :math:`e^{-E(G, c_m) / \\tau}`.

    The energy is put in eval mode for sampling and restored afterwards; ``options`` go to
    :func:`~structebm.samplers.graph_sampler.graph_sampler` (``temperature``, ``constrained``,
    ``num_flips``, ...). ``progress`` shows a bar (tqdm, on stderr) over the sampler steps of all
    batches, with the chains done and the graphs finished per second.

    Shapes:
        - returns ``DenseGraph`` with nodes ``[num_samples, N]``, edges ``[num_samples, N, N]``
    """
    for name, value, least in (("num_samples", num_samples, 1), ("num_steps", num_steps, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"sample_graphs: {name} must be an int >= {least}, got {value!r}")
    if c is not None and (not isinstance(c, Tensor) or c.dim() != 2 or c.shape[0] != num_samples):
        got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
        raise ValueError(f"sample_graphs: c must be a tensor [num_samples={num_samples}, P], one condition per chain, got {got}")
    sampler = graph_sampler(energy, space, method=method, **options)
    was_training = energy.training
    energy.eval()
    pieces = []
    batches = -(-num_samples // batch_size)
    bar = tqdm(total=batches * num_steps, desc=f"sampling {num_samples} graphs", unit="step", disable=not progress)
    started = time.perf_counter()
    try:
        for begin in range(0, num_samples, batch_size):
            rows = None if c is None else c[begin: begin + batch_size]
            state = sampler.init(space.noise(min(batch_size, num_samples - begin), generator), rows)
            for _ in range(num_steps):
                state, _ = sampler.step(state, generator)
                bar.update(1)
            check_chain_finite(state, f"sample_graphs ({method})")
            pieces.append(state.x.detach())
            done = begin + pieces[-1].batch_size
            bar.set_postfix(chains=f"{done}/{num_samples}", graphs_per_s=f"{done / (time.perf_counter() - started):.1f}")
    finally:
        bar.close()
        energy.train(was_training)
    return DenseGraph.concatenate(pieces)
