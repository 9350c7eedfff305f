"""Noise-contrastive estimation (Gutmann & Hyvärinen, 2010).

NCE fits an unnormalised model by logistic regression of data against samples of a
known noise distribution :math:`q`. With :math:`\\nu` noise samples per data point and a
learned log-normaliser :math:`\\hat z \\approx \\log Z`, the classifier's logit is the log
odds of "data" under the model,

.. math::
    G(x) = -E(x, c) - \\hat z - \\log q(x) - \\log \\nu,

and the loss is the binary cross-entropy

.. math::
    L = -\\overline{\\log \\sigma(G(x^+))} - \\nu \\, \\overline{\\log \\sigma(-G(y))},
    \\qquad y \\sim q.

At the optimum :math:`\\exp(-E - \\hat z)` equals the data density, so NCE estimates the
normaliser too. ``learn_log_partition=False`` leaves :math:`\\hat z = 0` (the energy must then
absorb the normaliser, e.g. through a free bias). The scalar :math:`\\hat z` does not depend on
``c``: for conditional models, let the energy carry a per-condition offset.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from structebm.energies.base import batch_size_of, check_energy_output
from structebm.objectives.base import LossOutput, check_data, split_batch
from structebm.objectives.noise import NoiseDistribution
from structebm.objectives.seeded import SeededObjective

__all__ = ["NCE"]


class NCE(SeededObjective):
    """Noise-contrastive estimation with a learned log-partition.

    Args:
        noise: a noise distribution (:class:`~structebm.objectives.noise.GaussianNoise`,
            :class:`~structebm.objectives.noise.UniformNoise`,
            :class:`~structebm.objectives.noise.CategoricalNoise`, or any module with
            ``sample(n, generator)`` and ``log_prob(x)``); one with ``needs_fit`` true is
            fitted to the first data batch.
        learn_log_partition: learn :math:`\\hat z` as a parameter of this objective (the
            optimiser must include the objective's parameters).
        noise_ratio: :math:`\\nu`, a positive integer number of noise samples per data point.
        initial_log_partition: starting value of :math:`\\hat z`. For long sequences the
            default 0 can be hundreds of nats off; a good start is the noise's mean
            ``-log q`` on data, which makes the initial classifier unbiased.
        generator_seed: seed of the generator drawing noise samples.

    Shapes:
        - batch: ``x [B, *event]`` or ``(x, c)``; ``B * noise_ratio`` noise samples, each paired
          with a repeat of the data's ``c``.
        - returns a scalar loss; metrics ``accuracy``, ``energy_data``, ``energy_noise``,
          ``log_partition``.
    """

    def __init__(
        self,
        noise: nn.Module,
        learn_log_partition: bool = True,
        noise_ratio: int = 1,
        initial_log_partition: float = 0.0,
        generator_seed: int = 0,
    ) -> None:
        super().__init__(generator_seed)
        if not isinstance(noise, NoiseDistribution):
            raise TypeError(f"NCE: noise must provide sample(n, generator) and log_prob(x); got {type(noise).__name__}")
        if int(noise_ratio) != noise_ratio or noise_ratio < 1:
            raise ValueError(f"NCE: noise_ratio must be a positive integer, got {noise_ratio}")
        self.noise = noise
        self.noise_ratio = int(noise_ratio)
        if not math.isfinite(initial_log_partition):
            raise ValueError(f"NCE: initial_log_partition must be finite, got {initial_log_partition}")
        self.log_partition = nn.Parameter(
            torch.tensor(float(initial_log_partition)), requires_grad=bool(learn_log_partition)
        )

    def bind(self, energy: nn.Module) -> None:
        """NCE needs only ``forward``; place the generator on the energy's device."""
        self.bind_generator(energy)

    def logits(self, energy: nn.Module, x: Any, c: Any, where: str) -> tuple[Tensor, Tensor]:
        """Classifier logits ``G(x)`` and energies ``E(x, c)`` of a batch."""
        n = batch_size_of(x)
        values = check_energy_output(energy(x, c), n, f"NCE: energy of the {where}")
        log_q = self.noise.log_prob(x)
        if log_q.shape != (n,):
            raise ValueError(f"NCE: noise.log_prob returned shape {tuple(log_q.shape)} for the {where}, expected ({n},)")
        if not torch.isfinite(log_q).all():
            rows = (~torch.isfinite(log_q)).nonzero().flatten()[:8].tolist()
            raise ValueError(f"NCE: the {where} has zero density under the noise in row(s) {rows}; widen the noise")
        return -values - self.log_partition - log_q - math.log(self.noise_ratio), values

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        x, c = split_batch(batch)
        check_data(x, "NCE")
        if getattr(self.noise, "needs_fit", False):
            self.noise.fit(x)
        n = batch_size_of(x)
        generator = self.generator_for(x.device)
        y = self.noise.sample(n * self.noise_ratio, generator).to(x.device)
        c_noise = None if c is None else c.repeat_interleave(self.noise_ratio, dim=0)
        logit_data, energy_data = self.logits(energy, x, c, "data batch")
        logit_noise, energy_noise = self.logits(energy, y, c_noise, "noise samples")
        loss = -nn.functional.logsigmoid(logit_data).mean() - self.noise_ratio * nn.functional.logsigmoid(-logit_noise).mean()
        correct = torch.cat([logit_data > 0, logit_noise < 0]).float().mean()
        return LossOutput(
            loss,
            {
                "accuracy": correct.detach(),
                "energy_data": energy_data.detach().mean(),
                "energy_noise": energy_noise.detach().mean(),
                "log_partition": self.log_partition.detach().clone(),
            },
        )
