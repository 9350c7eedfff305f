"""Hand-written plain-torch reference loops for the Langevin / PCD speed benchmark.

These are the tightest reasonable versions of the two timed workloads, written with
nothing but ``torch``: an unadjusted Langevin (ULA) chain driven by
``torch.autograd.grad`` in a Python loop, and one persistent contrastive-divergence
(PCD) training step with a replay buffer held in a plain tensor. Every library in the
benchmark is compared against them, so they do no validation, keep no diagnostics and
update the state in place.

The Langevin transition is

.. math::
    x_{t+1} = x_t - \\epsilon \\nabla_x E(x_t) + \\sigma \\xi_t, \\qquad \\xi_t \\sim \\mathcal{N}(0, I),

and the PCD step draws chain starts from the buffer (each restarted from
:math:`\\mathcal{N}(0, I)` with probability :math:`\\rho`), runs ``K`` transitions,
minimises :math:`\\overline{E(x^+)} - \\overline{E(x^-)}` with one optimiser step and
writes the chain end points back to the slots they came from.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["PlainEnergy", "langevin_chain", "HandwrittenPCD"]

EnergyFunction = Callable[[Tensor], Tensor]


class PlainEnergy(nn.Module):
    """A network ``[B, D] -> [B, 1]`` used as an energy ``[B, D] -> [B]``, with no input checks.

    Shapes:
        - x: ``[B, D]``; output ``[B]``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x).squeeze(-1)


def langevin_chain(
    energy: EnergyFunction,
    x0: Tensor,
    step_size: float,
    noise_scale: float,
    num_steps: int,
    generator: torch.Generator,
) -> Tensor:
    """Run ``num_steps`` ULA transitions from ``x0``; return the detached end point.

    The noise of step ``t`` is one ``torch.randn`` draw of ``x``'s shape from
    ``generator``, the same draw order the library samplers use, so that chains started
    from the same seed can be compared number for number.

    Shapes:
        - x0: ``[B, *event]``; returns ``[B, *event]``.
    """
    x = x0.detach().clone()
    noise = torch.empty_like(x)
    for _ in range(num_steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
        x = x.detach()
        x.add_(grad, alpha=-step_size)
        noise.normal_(generator=generator)
        x.add_(noise, alpha=noise_scale)
    return x


class HandwrittenPCD:
    """One persistent-CD training step per call, written out in plain torch.

    Args:
        energy: the energy network ``[B, *event] -> [B]`` (an ``nn.Module``).
        optimizer: optimiser over ``energy``'s parameters.
        event_shape: shape of one state.
        capacity: number of replay-buffer slots.
        reinit_prob: probability ``rho`` that a chain restarts from ``N(0, I)``.
        step_size: Langevin step size ``epsilon``.
        noise_scale: Langevin noise scale ``sigma``.
        num_steps: Langevin transitions per training step ``K``.
        generator: source of every random number (buffer slots, restarts, chain noise); the buffer
            lives on its device.

    Shapes:
        - buffer: ``[capacity, *event]``, initialised from ``N(0, I)``.
        - ``step(x_data)`` takes ``[B, *event]`` and returns the detached scalar loss.
    """

    def __init__(
        self,
        energy: nn.Module,
        optimizer: torch.optim.Optimizer,
        event_shape: tuple[int, ...],
        capacity: int,
        reinit_prob: float,
        step_size: float,
        noise_scale: float,
        num_steps: int,
        generator: torch.Generator,
    ) -> None:
        self.energy = energy
        self.optimizer = optimizer
        self.reinit_prob = float(reinit_prob)
        self.step_size = float(step_size)
        self.noise_scale = float(noise_scale)
        self.num_steps = int(num_steps)
        self.generator = generator
        self.buffer = torch.randn((int(capacity), *event_shape), generator=generator, device=generator.device)

    def step(self, x_data: Tensor) -> Tensor:
        """Draw starts, run ``K`` Langevin steps, take one optimiser step, refill the buffer."""
        batch_size = x_data.shape[0]
        device = self.buffer.device
        slots = torch.randint(0, self.buffer.shape[0], (batch_size,), generator=self.generator, device=device)
        restart = torch.rand(batch_size, generator=self.generator, device=device) < self.reinit_prob
        x0 = self.buffer[slots]
        x0[restart] = torch.randn((int(restart.sum()), *x0.shape[1:]), generator=self.generator, device=device)
        x_negative = langevin_chain(
            self.energy, x0, self.step_size, self.noise_scale, self.num_steps, self.generator
        )
        loss = self.energy(x_data).mean() - self.energy(x_negative).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.buffer[slots] = x_negative
        return loss.detach()
