"""Property guidance: an energy term that pulls a graph's predicted property toward a target.

With a property regressor :math:`f` (a graph network with a scalar output, trained separately
to predict a normalised property) and a target :math:`c`,

.. math::
    E_{\\text{guide}}(G, c) = \\lambda \\, \\frac{(f(G) - c)^2}{2 \\sigma^2},

the Gaussian likelihood :math:`p(c \\mid G) = \\mathcal{N}(c; f(G), \\sigma^2)` raised to the power
:math:`\\lambda`. Added to an unconditional energy (:class:`~structebm.energies.composition.EnergySum`)
it gives :math:`p(G \\mid c) \\propto p(G) \\, p(c \\mid G)^{\\lambda}`. The regressor must be
differentiable in the one-hot graph (``graph_one_hot_energy``, e.g. an unconditional
:class:`~structebm.energies.graph.RelationalGraphEnergy` fitted by :func:`fit_graph_regressor`), so
Gibbs-with-gradients ranks its moves with the guidance term's gradient too.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import Energy, require
from structebm.energies.graph import HasGraphOneHotEnergy
from structebm.graphs.state import DenseGraph

__all__ = ["PropertyGuidance", "fit_graph_regressor"]


class PropertyGuidance(Energy):
    """:math:`\\lambda (f(G) - c)^2 / 2\\sigma^2` for a scalar graph regressor :math:`f` (see the module docstring).

    Args:
        regressor: ``f``: ``forward(graph) -> [B]`` and ``graph_one_hot_energy(nodes_one_hot,
            edges_one_hot) -> [B]``; its parameters are frozen here (it is trained apart).
        weight: :math:`\\lambda > 0`.
        sigma: :math:`\\sigma > 0`, the tolerated error of the regressor in the target's units.

    Shapes:
        - forward: ``DenseGraph`` ``[B, N]`` / ``[B, N, N]``, c ``[B, 1]`` float; output ``[B]``
        - graph_one_hot_energy: nodes ``[B, N, K+1]``, edges ``[B, N, N, R+1]``, c ``[B, 1]``; output ``[B]``
    """

    condition_dim = 1

    def __init__(self, regressor: nn.Module, weight: float = 1.0, sigma: float = 1.0) -> None:
        super().__init__()
        require(regressor, HasGraphOneHotEnergy, "PropertyGuidance (the regressor)")
        if getattr(regressor, "condition_dim", None) is not None:
            raise ValueError("PropertyGuidance: the regressor must be unconditional (condition_dim=None)")
        for name, value in (("weight", weight), ("sigma", sigma)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"PropertyGuidance: {name} must be a positive finite number, got {value!r}")
        self.regressor = regressor.requires_grad_(False)
        self.weight, self.sigma = float(weight), float(sigma)
        for name in ("num_node_types", "num_edge_types"):
            if isinstance(getattr(regressor, name, None), int):
                setattr(self, name, getattr(regressor, name))

    def _penalty(self, prediction: Tensor, c: Optional[Tensor], where: str) -> Tensor:
        batch_size = prediction.shape[0]
        if not isinstance(c, Tensor) or c.shape != (batch_size, 1) or not c.is_floating_point():
            got = f"{tuple(c.shape)} {c.dtype}" if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(f"PropertyGuidance.{where}: c must be the target, a float tensor [{batch_size}, 1]; got {got}")
        return self.weight * (prediction - c[:, 0].to(prediction.dtype)).square() / (2.0 * self.sigma**2)

    def forward(self, x: DenseGraph, c: Optional[Tensor] = None) -> Tensor:
        return self._penalty(self.regressor(x), c, "forward")

    def graph_one_hot_energy(self, nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """The guidance term of relaxed one-hot graphs (differentiable in both inputs)."""
        return self._penalty(self.regressor.graph_one_hot_energy(nodes_one_hot, edges_one_hot), c, "graph_one_hot_energy")


def fit_graph_regressor(
    regressor: nn.Module, graphs: DenseGraph, targets: Tensor, num_steps: int, generator: torch.Generator,
    batch_size: int = 128, lr: float = 1e-3,
) -> list[float]:
    """Fit ``regressor(graph) -> [B]`` to ``targets [M]`` by Adam on the squared error; return the loss of every step.

    .. math::
        \\min_\\phi \\; \\frac{1}{|b|} \\sum_{m \\in b} (f_\\phi(G_m) - y_m)^2, \\qquad b \\text{ a random batch}.
    """
    if targets.shape != (graphs.batch_size,):
        raise ValueError(f"fit_graph_regressor: targets must be [{graphs.batch_size}], got {tuple(targets.shape)}")
    optimizer = torch.optim.Adam(regressor.parameters(), lr=lr)
    regressor.train()
    losses = []
    for _ in range(num_steps):
        rows = torch.randint(0, graphs.batch_size, (batch_size,), generator=generator, device=generator.device)
        loss = (regressor(graphs[rows]) - targets[rows].to(torch.get_default_dtype())).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    regressor.eval()
    return losses
