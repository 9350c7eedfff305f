"""The relational graph energy and its gradient in every one-hot entry, by the chain rule.

Gibbs-with-gradients needs, at every step, :math:`E(G)` and :math:`\\nabla E` in the node one-hots
``X [B, N, K+1]`` and the edge one-hots ``A [B, N, N, R+1]`` of
:class:`~structebm.energies.graph.RelationalGraphEnergy`. Autograd records the whole network for
that and runs two batched products per layer backwards; written out, the gradient needs fewer
and larger products. With the relational convolution rewritten aggregate-first,

.. math::
    m^{\\ell}_{i r} = \\textstyle\\sum_j A_{ijr} h^{\\ell}_j, \\qquad
    u^{\\ell}_i = W^{\\ell}_0 h^{\\ell}_i + b^{\\ell} + \\textstyle\\sum_r W^{\\ell}_r m^{\\ell}_{i r}, \\qquad
    h^{\\ell+1}_i = h^{\\ell}_i + \\sigma\\bigl(\\operatorname{FiLM}_\\ell(u^{\\ell}_i, c)\\bigr),

(the same sum as :class:`~structebm.energies.graph_layers.RelationalGraphConv`), the backward pass
with :math:`\\delta^{\\ell}_i = \\partial E / \\partial u^{\\ell}_i` is

.. math::
    \\frac{\\partial E}{\\partial h^{\\ell}_j} = \\frac{\\partial E}{\\partial h^{\\ell+1}_j}
        + W^{\\ell\\top}_0 \\delta^{\\ell}_j + \\textstyle\\sum_{i, r} A_{ijr} W^{\\ell\\top}_r \\delta^{\\ell}_i,
    \\qquad
    \\frac{\\partial E}{\\partial A_{ijr}} = \\textstyle\\sum_\\ell (W^{\\ell\\top}_r \\delta^{\\ell}_i) \\cdot h^{\\ell}_j,

accumulated layer by layer.
The readout, the head and the embedding are differentiated by hand as well; the feature module
(:class:`~structebm.energies.graph.GraphFeatures`), whose terms carry straight-through
gradients, is differentiated by autograd, given the gradients in its outputs.

Only the SiLU activation (the energy's default) is written out; with any other activation, and
under autocast (mixed precision, whose per-operation casts autograd follows),
:func:`graph_energy_and_grad` uses autograd. Values and gradients are detached: this serves
samplers, not training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from structebm.energies.graph import RelationalGraphEnergy

__all__ = ["graph_energy_and_grad"]


def _silu_backward(grad: Tensor, pre: Tensor) -> Tensor:
    """``grad * silu'(pre)``."""
    return torch.ops.aten.silu_backward(grad, pre)


def _autograd_energy_and_grad(
    energy: "RelationalGraphEnergy", nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor]
) -> tuple[Tensor, Tensor, Tensor]:
    with torch.enable_grad():
        nodes = nodes_one_hot.detach().requires_grad_(True)
        edges = edges_one_hot.detach().requires_grad_(True)
        values = energy.graph_one_hot_energy(nodes, edges, c)
        node_grad, edge_grad = torch.autograd.grad(values.sum(), (nodes, edges))
    return values.detach(), node_grad, edge_grad


class _DenseAdjacency:
    """Aggregation over a dense (possibly relaxed) adjacency ``A [B, N, N, R]``: rows ``(i, r)``, columns ``j``."""

    def __init__(self, edges_one_hot: Tensor) -> None:
        batch_size, num_nodes, _, values = edges_one_hot.shape
        self.rows = edges_one_hot[..., 1:].permute(0, 1, 3, 2).reshape(batch_size, num_nodes * (values - 1), num_nodes)

    def aggregate(self, h: Tensor) -> Tensor:
        """``m [B, N R, H]``: ``m[b, (i, r)] = sum_j A[b, i, j, r] h[b, j]``."""
        return torch.bmm(self.rows, h)

    def transpose(self, d_m: Tensor, into: Tensor) -> Tensor:
        """``into + sum_{(i, r)} A[b, i, j, r] d_m[b, (i, r)]`` for every ``j``."""
        return torch.baddbmm(into, self.rows.transpose(1, 2), d_m)


class _EdgeList:
    """Aggregation over exact graphs ``edges [B, N, N]`` (values ``0..R``) through their edge list.

    A graph has few edges of the ``N^2 R`` adjacency entries, so gathering the neighbours'
    features costs far less than the dense product; the gradient in every adjacency entry is
    still the dense product of :func:`graph_energy_and_grad`.
    """

    def __init__(self, edges: Tensor, relations: int) -> None:
        batch, row, col = edges.nonzero(as_tuple=True)
        num_nodes = edges.shape[1]
        self.shape = (edges.shape[0], num_nodes * relations)
        self.source = batch * num_nodes + col  # flat node j
        self.target = (batch * num_nodes + row) * relations + edges[batch, row, col].long() - 1  # flat row (i, r)

    def aggregate(self, h: Tensor) -> Tensor:
        flat = h.reshape(-1, h.shape[-1])
        out = flat.new_zeros(self.shape[0] * self.shape[1], flat.shape[-1])
        return out.index_add_(0, self.target, flat.index_select(0, self.source)).view(*self.shape, -1)

    def transpose(self, d_m: Tensor, into: Tensor) -> Tensor:
        flat = d_m.reshape(-1, d_m.shape[-1])
        return into.reshape(-1, into.shape[-1]).index_add(0, self.source, flat.index_select(0, self.target)).view_as(into)


def graph_energy_and_grad(
    energy: "RelationalGraphEnergy", nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor] = None,
    edges: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``E [B]`` and its gradients in ``nodes_one_hot [B, N, K+1]`` and ``edges_one_hot [B, N, N, R+1]``.

    The values autograd gives for ``graph_one_hot_energy(...).sum()``, up to rounding (see the
    module docstring); all three outputs are detached. ``c`` is checked as
    :meth:`~structebm.energies.graph.RelationalGraphEnergy.graph_one_hot_energy` checks it.
    ``edges [B, N, N]`` (integer edge values), when given, must be the exact graphs whose
    encoding ``edges_one_hot`` is; the aggregation then runs over their edge list.
    """
    written_out = all(type(module) is nn.SiLU for module in (energy.activation, energy.head[1]))
    if not written_out or torch.is_autocast_enabled(nodes_one_hot.device.type):  # mixed precision: autograd's casts
        return _autograd_energy_and_grad(energy, nodes_one_hot, edges_one_hot, c)
    batch_size, num_nodes, num_values = nodes_one_hot.shape
    relations = energy.num_edge_types
    c = energy._checked_condition(c, batch_size, "graph_energy_and_grad")
    with torch.no_grad():
        adjacency = _DenseAdjacency(edges_one_hot) if edges is None else _EdgeList(edges, relations)
        if energy.features is None:
            inputs = nodes_one_hot
        else:
            with torch.enable_grad():
                feature_nodes = nodes_one_hot.detach().requires_grad_(True)
                feature_edges = edges_one_hot.detach().requires_grad_(True)
                node_features, graph_terms = energy.features(feature_nodes, feature_edges)
            inputs = torch.cat([nodes_one_hot, node_features.detach()], dim=-1)
        h = energy.embedding(inputs)
        layers = []  # (h, pre-activation, FiLM scale + 1, W_0, W_r side by side [out, R * in])
        for index, convolution in enumerate(energy.convolutions):
            hidden = h.shape[-1]
            relation_weight = convolution.relation_weight.weight  # [R * out, in], rows (r, out)
            out_features = convolution.out_features
            stacked = relation_weight.view(relations, out_features, hidden).transpose(0, 1).reshape(out_features, relations * hidden)
            messages = adjacency.aggregate(h).view(batch_size, num_nodes, relations * hidden)
            pre = convolution.self_weight(h) + F.linear(messages, stacked)
            gain = None
            if energy.modulations is not None:
                scale, shift = energy.modulations[index].projection(c).unsqueeze(1).chunk(2, dim=-1)
                gain = 1.0 + scale
                pre = pre * gain + shift
            layers.append((h, pre, gain, convolution.self_weight.weight, stacked))
            h = h + F.silu(pre)
        occupancy = 1.0 - nodes_one_hot[..., 0]  # [B, N]
        pooled = (occupancy[..., None] * h).sum(dim=1)
        count = occupancy.sum(dim=1, keepdim=True)
        if energy.readout == "mean":
            pooled = pooled / count.clamp_min(1.0)
        first, last = energy.head[0], energy.head[2]
        head_pre = first(pooled)
        values = last(F.silu(head_pre)).squeeze(-1)

        # backward: gradient of sum_b E_b
        d_pooled = _silu_backward(last.weight.expand(batch_size, -1), head_pre) @ first.weight  # [B, H]
        node_grad = torch.zeros_like(nodes_one_hot)
        if energy.readout == "mean":
            denominator = count.clamp_min(1.0)
            d_pooled = d_pooled / denominator
            d_count = -(d_pooled * pooled).sum(dim=1, keepdim=True) * (count >= 1.0)  # clamp_min passes where count >= 1
            node_grad[..., 0] -= d_count
        d_h = occupancy[..., None] * d_pooled[:, None, :]
        node_grad[..., 0] -= (h * d_pooled[:, None, :]).sum(dim=-1)
        d_adjacency = h.new_zeros(batch_size, num_nodes * relations, num_nodes)  # rows (i, r), columns j
        for h_in, pre, gain, self_weight, stacked in reversed(layers):
            delta = _silu_backward(d_h, pre)
            if gain is not None:
                delta = delta * gain
            d_message = (delta @ stacked).view(batch_size, num_nodes * relations, -1)  # [B, N R, in]
            d_h = adjacency.transpose(d_message, d_h + delta @ self_weight)
            d_adjacency.baddbmm_(d_message, h_in.transpose(1, 2))
        d_inputs = d_h @ energy.embedding.weight  # [B, N, K+1 (+ features)]
        node_grad += d_inputs[..., :num_values]
        edge_grad = None
        if energy.features is not None:
            outputs, grads = [node_features], [d_inputs[..., num_values:]]
            if energy.term_log_weight is not None:
                term_weights = energy.term_log_weight.exp()
                values = values + graph_terms.detach() @ term_weights
                outputs.append(graph_terms)
                grads.append(term_weights.expand_as(graph_terms))
            with torch.enable_grad():
                feature_node_grad, feature_edge_grad = torch.autograd.grad(
                    outputs, (feature_nodes, feature_edges), grads, allow_unused=True
                )
            if feature_node_grad is not None:
                node_grad += feature_node_grad
            if feature_edge_grad is not None:  # written into below: a fresh, dense tensor
                edge_grad = feature_edge_grad.contiguous()
        if edge_grad is None:
            edge_grad = torch.zeros_like(edges_one_hot)
        edge_grad[..., 1:] += d_adjacency.view(batch_size, num_nodes, relations, num_nodes).permute(0, 1, 3, 2)
    return values, node_grad, edge_grad
