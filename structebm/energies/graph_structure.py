"""Structural node features of (relaxed) one-hot graphs: degrees and short cycles.

A feature module for :class:`~structebm.energies.graph.RelationalGraphEnergy` (``features=``)
that suits any graph. Message passing alone cannot count cycles (two graphs with the same
degree sequence can look alike to it), so graph generators commonly feed such counts in. With
the (relaxed) adjacency of occupied slots,

.. math::
    W_{ij} = o_i o_j (1 - A_{ij0}) \\; (i \\ne j), \\qquad o_i = 1 - X_{i0},

the features of node ``i`` are

.. math::
    \\log\\bigl(1 + d_i\\bigr), \\quad \\log\\bigl(1 + \\tfrac12 (W^3)_{ii}\\bigr), \\quad
    \\log\\bigl(1 + (W^4)_{ii} - d_i^2 - \\textstyle\\sum_{j} W_{ij} (d_j - 1)\\bigr),

with :math:`d_i = \\sum_j W_{ij}`: the degree, the number of triangles through ``i`` and the
number of closed 4-walks through ``i`` that are 4-cycles, i.e. :math:`2 C_4(i)` on exact graphs
(:math:`(W^4)_{ii}` counts walks that go back and forth along one edge or two edges as well,
which the subtracted terms remove). The logarithms keep the scale moderate on larger graphs.
Every feature is a polynomial of ``W`` under the logarithm, hence differentiable in the one-hot
tensors, as Gibbs-with-gradients and Langevin need. No graph terms.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["StructuralFeatures"]


class StructuralFeatures(nn.Module):
    """Degree, triangle and 4-cycle counts per node (see the module docstring).

    Shapes:
        - nodes_one_hot ``[B, N, K+1]``, edges_one_hot ``[B, N, N, R+1]``
        - returns: node features ``[B, N, 3]`` and graph terms ``[B, 0]``
    """

    num_node_features = 3
    num_graph_terms = 0

    def forward(self, nodes_one_hot: Tensor, edges_one_hot: Tensor) -> tuple[Tensor, Tensor]:
        occupancy = 1.0 - nodes_one_hot[..., 0]
        num_nodes = occupancy.shape[1]
        off_diagonal = 1.0 - torch.eye(num_nodes, dtype=occupancy.dtype, device=occupancy.device)
        weights = (1.0 - edges_one_hot[..., 0]) * occupancy[:, :, None] * occupancy[:, None, :] * off_diagonal
        degree = weights.sum(dim=2)
        square = weights @ weights
        triangles = 0.5 * (square * weights).sum(dim=2)  # (W^3)_ii = sum_j (W^2)_ij W_ji
        walks4 = (square * square).sum(dim=2)  # (W^4)_ii = sum_j (W^2)_ij (W^2)_ji
        four_cycles = walks4 - degree.square() - (weights * (degree[:, None, :] - 1.0)).sum(dim=2)
        features = torch.stack([degree, triangles, four_cycles.clamp_min(0.0)], dim=-1)
        return torch.log1p(features) * occupancy[..., None], occupancy.new_zeros(occupancy.shape[0], 0)
