"""Building blocks of the relational graph energy: dense relational convolution and FiLM.

**Relational graph convolution** (Schlichtkrull et al., "Modeling Relational Data with Graph
Convolutional Networks", ESWC 2018), written for dense, possibly relaxed adjacency tensors
``A[b, i, j, r]`` (one channel per bond type ``r``):

.. math::
    h_i' = W_0 h_i + b + \\sum_{r=1}^{R} \\sum_{j} A_{ijr} \\, W_r h_j .

The sum over neighbours and bond types is one batched matrix product, which on molecules
(``N <= 38`` slots) is faster on CPU than sparse message passing and also takes relaxed,
fractional adjacencies, which Gibbs-with-gradients and Langevin on graphs differentiate.

**Feature-wise linear modulation** (Perez et al., "FiLM", AAAI 2018) injects a condition
vector ``c``:

.. math::
    \\operatorname{FiLM}(h, c) = (1 + \\gamma(c)) \\odot h + \\beta(c).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

__all__ = ["RelationalGraphConv", "FeatureModulation", "linear_layer"]


def linear_layer(in_features: int, out_features: int, spectral_norm: bool, bias: bool = True) -> nn.Linear:
    """A linear layer, optionally spectrally normalised (Miyato et al., 2018)."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    return add_spectral_norm(layer) if spectral_norm else layer


class RelationalGraphConv(nn.Module):
    """Dense relational graph convolution (see the module docstring).

    Args:
        in_features: node feature size of the input.
        out_features: node feature size of the output.
        num_relations: number of edge types ``R`` (adjacency channels).
        spectral_norm: spectrally normalise the self and relation weights.

    Shapes:
        - h: ``[B, N, in_features]``
        - adjacency: ``[B, N, N, R]`` (any real values; one-hot bond types for exact graphs)
        - output: ``[B, N, out_features]``
    """

    def __init__(self, in_features: int, out_features: int, num_relations: int, spectral_norm: bool = False) -> None:
        super().__init__()
        self.num_relations = num_relations
        self.out_features = out_features
        self.self_weight = linear_layer(in_features, out_features, spectral_norm, bias=True)
        self.relation_weight = linear_layer(in_features, num_relations * out_features, spectral_norm, bias=False)

    def forward(self, h: Tensor, adjacency: Tensor) -> Tensor:
        batch_size, num_nodes, _ = h.shape
        # messages[b, j, r, :] = W_r h_j, laid out as rows (j, r) so that one bmm sums over both.
        messages = self.relation_weight(h).reshape(batch_size, num_nodes * self.num_relations, self.out_features)
        neighbours = adjacency.reshape(batch_size, num_nodes, num_nodes * self.num_relations)
        return self.self_weight(h) + torch.bmm(neighbours, messages)


class FeatureModulation(nn.Module):
    """FiLM: scale and shift node features by functions of a condition vector.

    Args:
        condition_dim: size of ``c``.
        features: node feature size.

    Shapes:
        - h: ``[B, N, features]``; c: ``[B, condition_dim]``; output: ``[B, N, features]``
    """

    def __init__(self, condition_dim: int, features: int) -> None:
        super().__init__()
        self.projection = nn.Linear(condition_dim, 2 * features)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        scale, shift = self.projection(c).unsqueeze(1).chunk(2, dim=-1)
        return h * (1.0 + scale) + shift
