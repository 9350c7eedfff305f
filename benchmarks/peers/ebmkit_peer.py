"""ebmkit 0.16.0 (import name ``ebm``) configured like the benchmark's Langevin chain and PCD step.

ebmkit's unadjusted Langevin rule is the benchmark's own,

.. math::
    x_{t+1} = x_t - \\epsilon \\nabla_x E(x_t) + \\sigma \\xi_t ,

with ``step_size`` :math:`\\epsilon` and ``noise_scale`` :math:`\\sigma`; the sampler
freezes the network's parameters while it runs. PCD goes through
:class:`ebm.ContrastiveDivergence` with an :class:`ebm.ReplayBuffer` (uniform slots with
replacement, restart from :math:`\\mathcal{N}(0, I)` with probability ``reinit_prob``,
write-back to the drawn slots) and the energy regulariser off. ebmkit draws every random
number from torch's global generator (it takes no ``torch.Generator``), so callers seed it
with :func:`torch.manual_seed`.
"""

from __future__ import annotations

import torch
from ebm import ContrastiveDivergence, LangevinDynamics, ReplayBuffer
from torch import Tensor, nn

__all__ = ["ebmkit_sampler", "ebmkit_chain", "EbmkitPCD"]


def ebmkit_sampler(step_size: float, noise_scale: float, num_steps: int) -> LangevinDynamics:
    """ebmkit's ULA sampler with step ``step_size``, noise std ``noise_scale`` and ``num_steps`` transitions."""
    return LangevinDynamics(step_size=step_size, steps=num_steps, noise_scale=noise_scale)


def ebmkit_chain(sampler: LangevinDynamics, network: nn.Module, x0: Tensor) -> Tensor:
    """Run ``sampler.steps`` transitions from ``x0`` (noise from torch's global generator).

    Shapes:
        - x0: ``[B, *event]``; returns ``[B, *event]``.
    """
    return sampler.sample(network, x0)


class EbmkitPCD:
    """One PCD training step per call through ebmkit's contrastive-divergence loss.

    The step body is the one of ``ebm.Trainer.fit`` (loss, ``zero_grad``, backward,
    optimiser step) without its batch drawing and metric history.

    Args:
        network: the energy network ``[B, *event] -> [B]``.
        optimizer: optimiser over ``network``'s parameters.
        event_shape: shape of one state.
        capacity: replay-buffer size.
        reinit_prob: probability that a chain restarts from ``N(0, I)``.
        step_size: Langevin step size.
        noise_scale: Langevin noise standard deviation.
        num_steps: Langevin transitions per training step ``K``.

    Shapes:
        - ``step(x_data)`` takes ``[B, *event]`` and returns the detached scalar loss.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        event_shape: tuple[int, ...],
        capacity: int,
        reinit_prob: float,
        step_size: float,
        noise_scale: float,
        num_steps: int,
    ) -> None:
        self.network = network
        self.optimizer = optimizer
        buffer = ReplayBuffer(capacity, tuple(event_shape), reinit_prob=reinit_prob)
        self.loss = ContrastiveDivergence(
            ebmkit_sampler(step_size, noise_scale, num_steps), buffer=buffer, energy_reg=0.0
        )

    def step(self, x_data: Tensor) -> Tensor:
        """Loss (buffer draw, chains, buffer write-back), backward, one optimiser step."""
        out = self.loss(self.network, x_data)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        return out.loss.detach()
