"""Structural node features of a (relaxed) one-hot graph: degree and closed walks of length 3 and 4.

With :math:`A = \\sum_{r \\ge 1} E_{\\cdot\\cdot r}` the adjacency of any edge type (from the
edge one-hots :math:`E`, so the features are differentiable in relaxed one-hots), each node
gets

.. math::
    f_i = \\Bigl(\\frac{(A\\mathbf{1})_i}{s}, \\; \\frac{(A^3)_{ii}}{s^2}, \\; \\frac{(A^4)_{ii}}{s^3}\\Bigr),

the degree, twice the number of triangles through :math:`i`, and the closed 4-walks (4-cycles,
plus walks that go back and forth), scaled by powers of ``scale`` :math:`s`. A message-passing
energy cannot count triangles from degrees alone, yet triangles decide clustering
coefficients; these inputs hand them over. The module has no graph terms.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["StructuralFeatures"]


class StructuralFeatures(nn.Module):
    """Degree and closed 3- and 4-walk counts per node, for ``RelationalGraphEnergy(features=...)``.

    Args:
        scale: :math:`s` in the module docstring (about a typical degree).

    Shapes:
        - call: nodes_one_hot ``[B, N, K+1]``, edges_one_hot ``[B, N, N, R+1]``
          -> node features ``[B, N, 3]``, graph terms ``[B, 0]``
    """

    num_node_features = 3
    num_graph_terms = 0

    def __init__(self, scale: float = 5.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"StructuralFeatures: scale must be > 0, got {scale!r}")
        self.scale = float(scale)

    def forward(self, nodes_one_hot: Tensor, edges_one_hot: Tensor) -> tuple[Tensor, Tensor]:
        adjacency = edges_one_hot[..., 1:].sum(dim=-1)
        squared = adjacency @ adjacency
        degree = adjacency.sum(dim=-1)
        walks3 = (squared * adjacency).sum(dim=-1)  # (A^3)_ii = sum_j (A^2)_ij A_ji
        walks4 = (squared * squared).sum(dim=-1)  # (A^4)_ii = sum_j (A^2)_ij (A^2)_ji
        s = self.scale
        features = torch.stack([degree / s, walks3 / s**2, walks4 / s**3], dim=-1)
        return features, features.new_zeros(features.shape[0], 0)
