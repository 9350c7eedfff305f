"""A multilayer-perceptron energy for continuous vectors (or flattened arrays).

.. math::
    E(x) = w^\\top h_L + b, \\qquad h_{l} = \\phi(W_l h_{l-1} + b_l), \\quad h_0 = \\operatorname{vec}(x).

A smooth activation (SiLU by default) keeps :math:`\\nabla_x E` smooth, which Langevin
samplers rely on. Optional spectral normalisation (Miyato et al., ICLR 2018) bounds each
layer's Lipschitz constant by one, a common stabiliser of EBM training.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as spectral_normalise

from structebm.energies.base import Energy

__all__ = ["MLPEnergy", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
}


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
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip([in_dim] + widths, widths + [1]):
            linear = nn.Linear(fan_in, fan_out)
            layers.append(spectral_normalise(linear) if spectral_norm else linear)
            layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """Energy of each batch element, shape ``[B]``."""
        if c is not None:
            raise ValueError("MLPEnergy: this energy is unconditional; got a condition c")
        if not isinstance(x, Tensor) or x.dim() < 2 or math.prod(x.shape[1:]) != self.in_dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"MLPEnergy: expected x of shape [B, {self.in_dim}] (or [B, *shape] with {self.in_dim} features), got {shape}")
        return self.net(x if x.dim() == 2 else x.reshape(x.shape[0], self.in_dim)).squeeze(-1)
