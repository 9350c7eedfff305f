"""torchebm 0.8.9 configured like the benchmark's Langevin chain and PCD step.

torchebm writes its Langevin rule as an Euler–Maruyama step of
:math:`dx = -\\nabla E\\,dt + \\sqrt{2D}\\,dW` with diffusion :math:`D = s^2`
(``s`` = its ``noise_scale``):

.. math::
    x_{t+1} = x_t - \\epsilon \\nabla_x E(x_t) + \\sqrt{2 s^2 \\epsilon}\\, \\xi_t ,

so a noise standard deviation :math:`\\sigma` corresponds to
:math:`s = \\sigma / \\sqrt{2 \\epsilon}`. The PCD step goes through its
:class:`torchebm.losses.ContrastiveDivergence` with ``persistent=True`` and the energy
regulariser switched off. Differences from the other implementations (documented in the
benchmark notes): its buffer starts at :math:`\\mathcal{N}(0, 0.01^2)`, is read with
stratified indices and written FIFO, and instead of restarting chains from noise it
perturbs ``new_sample_ratio`` of the starts with :math:`\\mathcal{N}(0, 0.01^2)` noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchebm.core import BaseModel
from torchebm.losses import ContrastiveDivergence
from torchebm.samplers import LangevinDynamics

__all__ = ["TorchEBMEnergy", "torchebm_sampler", "torchebm_chain", "TorchEBMPCD"]


class TorchEBMEnergy(BaseModel):
    """A plain energy network ``[B, *event] -> [B]`` presented as a torchebm model."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)


def torchebm_sampler(model: TorchEBMEnergy, step_size: float, noise_scale: float, device: str = "cpu") -> LangevinDynamics:
    """torchebm's Langevin sampler on ``device`` with gradient step ``step_size`` and noise std ``noise_scale``."""
    diffusion_scale = noise_scale / math.sqrt(2.0 * step_size)
    return LangevinDynamics(model, step_size=step_size, noise_scale=diffusion_scale, device=device)


def torchebm_chain(sampler: LangevinDynamics, x0: Tensor, num_steps: int, generator: torch.Generator) -> Tensor:
    """Run ``num_steps`` transitions from ``x0`` through ``sampler.sample``.

    Shapes:
        - x0: ``[B, *event]``; returns ``[B, *event]``.
    """
    return sampler.sample(x=x0.clone(), n_steps=num_steps, generator=generator)


class TorchEBMPCD:
    """One PCD training step per call through torchebm's contrastive-divergence loss.

    Args:
        model: the torchebm energy.
        optimizer: optimiser over ``model``'s parameters.
        capacity: replay-buffer size.
        new_sample_ratio: torchebm's fraction of perturbed chain starts.
        step_size: Langevin step size.
        noise_scale: Langevin noise standard deviation.
        num_steps: Langevin transitions per training step ``K``.
        generator: source of every random number of the loss and its sampler; the loss runs on its device.

    Shapes:
        - ``step(x_data)`` takes ``[B, *event]`` and returns the detached scalar loss.
    """

    def __init__(
        self,
        model: TorchEBMEnergy,
        optimizer: torch.optim.Optimizer,
        capacity: int,
        new_sample_ratio: float,
        step_size: float,
        noise_scale: float,
        num_steps: int,
        generator: torch.Generator,
    ) -> None:
        self.optimizer = optimizer
        self.generator = generator
        self.loss = ContrastiveDivergence(
            model=model,
            sampler=torchebm_sampler(model, step_size, noise_scale, str(generator.device)),
            k_steps=num_steps,
            persistent=True,
            buffer_size=capacity,
            init_steps=0,
            new_sample_ratio=new_sample_ratio,
            energy_reg_weight=0.0,
            device=generator.device,
        )

    def step(self, x_data: Tensor) -> Tensor:
        """Loss (buffer draw, chains, buffer write), backward, one optimiser step."""
        loss, _ = self.loss(x_data, generator=self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()
