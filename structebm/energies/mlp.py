"""A multilayer-perceptron energy for continuous vectors (or flattened arrays).

.. math::
    E(x) = w^\\top h_L + b, \\qquad h_{l} = \\phi(z_l), \\quad z_l = W_l h_{l-1} + b_l, \\quad h_0 = \\operatorname{vec}(x).

A smooth activation (SiLU by default) keeps :math:`\\nabla_x E` smooth, which Langevin
samplers rely on. Optional spectral normalisation (Miyato et al., ICLR 2018) bounds each
layer's Lipschitz constant by one, a common stabiliser of EBM training.

The energy computes its own input gradient (:class:`~structebm.energies.base.HasEnergyGradient`)
by the chain rule, one forward pass and one backward sweep with no autograd graph:

.. math::
    g_L = w, \\qquad g_{l-1} = W_l^\\top \\big(\\phi'(z_l) \\odot g_l\\big), \\qquad \\nabla_x E = g_0,

with the kernels autograd would run (each activation's own backward kernel included), so the
gradient agrees with autograd's to rounding, and a Langevin step saves the graph's
book-keeping. The sweep is made of differentiable operators, so score matching
can train through it.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as spectral_normalise

from structebm.energies.base import Energy

__all__ = ["MLPEnergy", "ACTIVATIONS"]

_aten = torch.ops.aten


class _Activation(NamedTuple):
    """An activation module and its backward rule ``(grad_out, z, h) -> φ'(z) ⊙ grad_out``."""

    module: Callable[[], nn.Module]
    backward: Callable[[Tensor, Tensor, Tensor], Tensor]


_LEAKY_SLOPE = 0.2


def _silu_backward(grad_out: Tensor, z: Tensor, h: Tensor) -> Tensor:
    """``σ(z) (1 + z (1 - σ(z))) ⊙ grad_out``: PyTorch's fused kernel, or, while grad mode is on,
    the same formula in differentiable operators (the fused kernel has no derivative of its own)."""
    if not torch.is_grad_enabled():
        return _aten.silu_backward(grad_out, z)
    sigmoid = torch.sigmoid(z)
    return grad_out * sigmoid * (1 + z * (1 - sigmoid))


# The backward rules are PyTorch's own backward kernels for each module's default settings.
_ACTIVATIONS: dict[str, _Activation] = {
    "silu": _Activation(nn.SiLU, _silu_backward),
    "gelu": _Activation(nn.GELU, lambda g, z, h: _aten.gelu_backward(g, z)),
    "softplus": _Activation(nn.Softplus, lambda g, z, h: _aten.softplus_backward(g, z, 1.0, 20.0)),
    "tanh": _Activation(nn.Tanh, lambda g, z, h: _aten.tanh_backward(g, h)),
    "elu": _Activation(nn.ELU, lambda g, z, h: _aten.elu_backward(g, 1.0, 1, 1, False, z)),
    "relu": _Activation(nn.ReLU, lambda g, z, h: _aten.threshold_backward(g, z, 0)),
    "leaky_relu": _Activation(lambda: nn.LeakyReLU(_LEAKY_SLOPE), lambda g, z, h: _aten.leaky_relu_backward(g, z, _LEAKY_SLOPE, False)),
}

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {name: a.module for name, a in _ACTIVATIONS.items()}


class MLPEnergy(Energy):
    """Unconditional MLP energy ``[B, in_dim] -> [B]``; inputs ``[B, *shape]`` are flattened.

    Args:
        in_dim: number of input features (the product of ``shape`` for array inputs).
        hidden: widths of the hidden layers; ``()`` gives a linear energy.
        activation: one of :data:`ACTIVATIONS` (``"silu"``, ``"gelu"``, ``"softplus"``,
            ``"tanh"``, ``"elu"``, ``"relu"``, ``"leaky_relu"``).
        spectral_norm: apply spectral normalisation to every linear layer.

    Shapes:
        - x: ``[B, in_dim]`` or ``[B, *shape]`` with ``prod(shape) == in_dim``
        - output: ``[B]``
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (128, 128),
        activation: str = "silu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1:
            raise ValueError(f"MLPEnergy: in_dim must be a positive integer, got {in_dim!r}")
        widths = list(hidden)
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"MLPEnergy: hidden widths must be positive integers, got {widths}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLPEnergy: unknown activation '{activation}'; choose one of {', '.join(ACTIVATIONS)}")
        self.in_dim = in_dim
        self.activation = activation
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip([in_dim] + widths, widths + [1]):
            linear = nn.Linear(fan_in, fan_out)
            layers.append(spectral_normalise(linear) if spectral_norm else linear)
            layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers[:-1])
        self._linears = tuple(self.net[0::2])  # views of self.net for the chain rule
        self._activations = tuple(self.net[1::2])

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """Energy of each batch element, shape ``[B]``."""
        return self.net(self._flat_input(x, c)).squeeze(-1)

    def energy_and_grad(self, x: Tensor, c: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Energy ``[B]`` and its gradient ``∇ₓE`` (shape of ``x``) by the chain rule (module docs).

        Each layer's weight is read once, so a spectral-normalised layer runs its power
        iteration once per call, as in :meth:`forward`.
        """
        flat = self._flat_input(x, c)
        layers = self._linears
        weights = [layer.weight for layer in layers]
        backward = _ACTIVATIONS[self.activation].backward
        pre_activations: list[Tensor] = []
        activations: list[Tensor] = []
        h = flat
        for layer, weight, activation in zip(layers[:-1], weights[:-1], self._activations):
            z = F.linear(h, weight, layer.bias)
            h = activation(z)
            pre_activations.append(z)
            activations.append(h)
        values = F.linear(h, weights[-1], layers[-1].bias).squeeze(-1)
        grad = weights[-1].expand(flat.shape[0], -1)  # dE/dh_L, [B, width]
        for weight, z, h in zip(reversed(weights[:-1]), reversed(pre_activations), reversed(activations)):
            grad = backward(grad, z, h) @ weight
        if not pre_activations:  # a linear energy: the gradient is the weight row, copied out of the parameter
            grad = grad.clone(memory_format=torch.contiguous_format)
        return values, grad.reshape(x.shape)

    def _flat_input(self, x: Tensor, c: Optional[Tensor]) -> Tensor:
        """``x`` checked and flattened to ``[B, in_dim]``."""
        if c is not None:
            raise ValueError("MLPEnergy: this energy is unconditional; got a condition c")
        if not isinstance(x, Tensor) or x.dim() < 2 or math.prod(x.shape[1:]) != self.in_dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"MLPEnergy: expected x of shape [B, {self.in_dim}] (or [B, *shape] with {self.in_dim} features), got {shape}")
        return x if x.dim() == 2 else x.reshape(x.shape[0], self.in_dim)
