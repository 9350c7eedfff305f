"""Ranking noise-contrastive estimation for conditional models (Ma & Collins, 2018).

For each data pair ``(y_0, c)`` draw ``K`` labellings ``y_1, …, y_K ~ q(· | c)`` from a
conditional noise and ask the model which of the ``K + 1`` is the data, with the noise's
log-probability as an offset:

.. math::
    L = -\\frac{1}{B} \\sum_b \\log \\frac{\\exp(-E(y_0, c) - \\log q(y_0 \\mid c))}
    {\\sum_{k=0}^{K} \\exp(-E(y_k, c) - \\log q(y_k \\mid c))}.

The normaliser ``Z(c)`` cancels inside the softmax, so no per-input normaliser is learned
and the estimate is consistent for any ``K ≥ 1`` and any noise with full support: at the
true parameters the expected gradient is zero (the softmax is then the Bayes posterior of
which labelling is the data). Its gradient,

.. math::
    \\nabla L = \\nabla E(y_0, c) - \\sum_{k=0}^{K} w_k \\nabla E(y_k, c), \\qquad
    w = \\operatorname{softmax}_k(-E(y_k, c) - \\log q(y_k \\mid c)),

is the exact negative log-likelihood gradient with the model expectation replaced by
self-normalised importance sampling from ``q``; it tends to the exact gradient as
``K → ∞``. With ``q = p_θ`` (a lagged copy refreshed every step) the weights are uniform
and the asymptotic variance is ``(1 + 1/K)`` times maximum likelihood's.

The objective needs only the energy's ``forward``; the noise brings exact sampling and
``log q`` (:class:`~structebm.objectives.conditional_noise.ConditionalNoise`). An energy that
scores many labellings of one input at once
(:class:`~structebm.energies.base.HasSharedCondition`, e.g. a CRF: emissions once per sentence)
and a noise with ``log_prob_given_condition`` are scored ``[B, K + 1]`` at a time instead of on
``B (K + 1)`` repeated inputs: the same loss for about ``1 / (K + 1)`` of the emission cost.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from structebm.conditions import select_rows
from structebm.energies.base import HasSharedCondition, batch_size_of, check_energy_output, encode_condition
from structebm.objectives.base import LossOutput, check_data, split_batch
from structebm.objectives.conditional_noise import ConditionalNoise
from structebm.objectives.seeded import SeededObjective

__all__ = ["RankingNCE"]


class RankingNCE(SeededObjective):
    """Conditional NCE in ranking form: pick the data labelling among ``num_noise`` noise draws.

    Args:
        noise: a :class:`~structebm.objectives.conditional_noise.ConditionalNoise`
            (``sample(c, n, generator)``, ``log_prob(y, c)``); if it has ``bind(energy)`` it is
            bound to the trained energy, and ``refresh(energy)`` is called once per step.
        num_noise: ``K``, noise labellings per data point (at least 1).
        generator_seed: seed of the generator drawing the noise.

    Shapes:
        - batch: ``(y, c)`` with ``y [B, *event]`` (or ``y`` alone for an unconditional noise);
          the energy scores ``B (K + 1)`` states in one call, ``c`` repeated row by row.
        - returns a scalar loss; metrics ``accuracy`` (data ranked first), ``energy_data``,
          ``energy_noise``, ``noise_nll`` (``-log q`` of the data), ``data_weight`` (mean ``w_0``).
    """

    def __init__(self, noise: nn.Module, num_noise: int = 4, generator_seed: int = 0) -> None:
        super().__init__(generator_seed)
        if not isinstance(noise, ConditionalNoise):
            raise TypeError(
                f"RankingNCE: noise must provide sample(c, n, generator) and log_prob(y, c); got {type(noise).__name__}"
            )
        if int(num_noise) != num_noise or num_noise < 1:
            raise ValueError(f"RankingNCE: num_noise must be a positive integer, got {num_noise}")
        self.noise = noise
        self.num_noise = int(num_noise)

    def bind(self, energy: nn.Module) -> None:
        """Bind the noise (a lagged copy takes its first copy here) and place the generator."""
        if hasattr(self.noise, "bind"):
            self.noise.bind(energy)
        self.bind_generator(energy)

    def draw_noise(self, y: Tensor, c: Any, generator: torch.Generator) -> Tensor:
        """``K`` noise labellings per data row, grouped by row: ``[B K, *event]``."""
        n, k = batch_size_of(y), self.num_noise
        event = tuple(y.shape[1:])
        if c is None:
            draws = self.noise.sample(None, n * k, generator)
            expected = (n * k, *event)
        else:
            draws = self.noise.sample(c, k, generator)
            expected = (k, n, *event)
        if not isinstance(draws, Tensor) or tuple(draws.shape) != expected:
            got = tuple(draws.shape) if isinstance(draws, Tensor) else type(draws).__name__
            raise ValueError(f"RankingNCE: noise.sample returned {got}, expected {expected}")
        if c is None:
            return draws.to(y.device)
        return draws.to(y.device).transpose(0, 1).reshape(n * k, *event)

    @staticmethod
    def _check_log_q(values: Any, shape: tuple[int, ...], where: str) -> Tensor:
        if not isinstance(values, Tensor) or tuple(values.shape) != shape:
            got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise ValueError(f"RankingNCE: noise.log_prob returned {got} for the {where}, expected {shape}")
        if not torch.isfinite(values).all():
            rows = (~torch.isfinite(values)).nonzero()[:, 0].unique()[:8].tolist()
            raise ValueError(f"RankingNCE: the {where} has zero probability under the noise in row(s) {rows}; the noise needs full support")
        return values

    def _log_q(self, y: Tensor, y_noise: Tensor, c: Any) -> Tensor:
        """``log q`` ``[B, K + 1]`` of the data (column 0) and of each row's noise draws ``[B K, *event]``."""
        n, k = batch_size_of(y), self.num_noise
        shared = getattr(self.noise, "log_prob_given_condition", None)
        if c is not None and shared is not None:
            labellings = torch.cat([y[:, None], y_noise.reshape(n, k, *y.shape[1:])], dim=1)
            values = shared(labellings, c)
            if values is not None:
                self._check_log_q(values[:, :1], (n, 1), "data batch")
                self._check_log_q(values[:, 1:], (n, k), "noise draws")
                return values
        c_noise = select_rows(c, torch.arange(n, device=y.device).repeat_interleave(k))
        data = self._check_log_q(self.noise.log_prob(y, c), (n,), "data batch")
        noise = self._check_log_q(self.noise.log_prob(y_noise, c_noise), (n * k,), "noise draws")
        return torch.cat([data[:, None], noise.reshape(n, k)], dim=1)

    def _energies(self, energy: nn.Module, y: Tensor, y_noise: Tensor, c: Any) -> Tensor:
        """Energies ``[B, K + 1]`` of the data (column 0) and of each row's noise draws."""
        n, k = batch_size_of(y), self.num_noise
        if c is not None and isinstance(energy, HasSharedCondition):
            labellings = torch.cat([y[:, None], y_noise.to(y.dtype).reshape(n, k, *y.shape[1:])], dim=1)
            values = energy.energies_given_condition(labellings, c)
            return check_energy_output(values.reshape(-1), n * (k + 1), "RankingNCE: energy of data and noise").reshape(n, k + 1)
        rows = torch.arange(n, device=y.device)
        conditions = None if c is None else select_rows(c, torch.cat([rows, rows.repeat_interleave(k)]))
        states = torch.cat([y, y_noise.to(y.dtype)])
        values = check_energy_output(energy(states, conditions), n * (k + 1), "RankingNCE: energy of data and noise")
        return torch.cat([values[:n, None], values[n:].reshape(n, k)], dim=1)

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        y, c = split_batch(batch)
        check_data(y, "RankingNCE")
        if hasattr(self.noise, "refresh"):
            self.noise.refresh(energy)
        with torch.no_grad():
            noise_encoding = getattr(self.noise, "encode_condition", None)
            c_noise = c if c is None or noise_encoding is None else noise_encoding(c)  # once for draws and log q
            y_noise = self.draw_noise(y, c_noise, self.generator_for(y.device))
            log_q = self._log_q(y, y_noise, c_noise)
        energies = self._energies(energy, y, y_noise, encode_condition(energy, c))  # [B, K + 1], data first
        logits = -energies - log_q.to(energies.dtype)
        log_weights = torch.log_softmax(logits, dim=1)
        loss = -log_weights[:, 0].mean()
        detached = logits.detach()
        return LossOutput(
            loss,
            {
                "accuracy": (detached[:, 0] >= detached[:, 1:].amax(dim=1)).float().mean(),
                "energy_data": energies[:, 0].detach().mean(),
                "energy_noise": energies[:, 1:].detach().mean(),
                "noise_nll": -log_q[:, 0].mean(),
                "data_weight": log_weights[:, 0].detach().exp().mean(),
            },
        )

