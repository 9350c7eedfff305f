"""Contrastive divergence: short-run (CD-k) and persistent (PCD) maximum likelihood.

The gradient of the negative log-likelihood of an energy-based model is a difference of
expectations under the data and under the model,

.. math::
    \\nabla_\\theta \\, \\mathrm{NLL} = \\mathbb{E}_{x^+ \\sim \\text{data}}[\\nabla_\\theta E_\\theta(x^+)]
    - \\mathbb{E}_{x^- \\sim p_\\theta}[\\nabla_\\theta E_\\theta(x^-)],

so the surrogate loss :math:`\\overline{E(x^+)} - \\overline{E(x^-)}` with detached
negatives :math:`x^-` has that gradient. Negatives come from ``num_steps`` transitions of a
sampler started by a chain source: :class:`~structebm.samplers.chains.DataInit` gives CD-k
(Hinton, 2002), :class:`~structebm.samplers.chains.ReplayBuffer` gives persistent CD
(Tieleman, 2008; with reinitialisation as in Du & Mordatch, 2019).

In a YAML config the sampler is a factory path plus its options, and the source a class::

    objective:
      class_path: structebm.objectives.contrastive.ContrastiveDivergence
      init_args:
        sampler_factory: structebm.samplers.langevin.langevin
        sampler_options: {step_size: 0.01, noise_scale: 0.005}
        num_steps: 20
        source:
          class_path: structebm.samplers.chains.ReplayBuffer
          init_args:
            space: {class_path: structebm.spaces.ContinuousSpace, init_args: {shape: [2]}}
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor, nn

from structebm.conditions import detach_condition, select_rows
from structebm.energies.base import batch_size_of, check_energy_output, encode_condition
from structebm.objectives.base import LossOutput, check_data, resolve_callable, split_batch
from structebm.objectives.regularizers import GradientPenaltyAt, energy_magnitude_penalty, gradient_penalty
from structebm.objectives.seeded import SeededObjective
from structebm.samplers.base import SamplingAlgorithm, StepInfo, check_chain_finite, donate
from structebm.samplers.chains import ChainSource

__all__ = ["ContrastiveDivergence"]

SamplerFactory = Callable[..., SamplingAlgorithm]


class ContrastiveDivergence(SeededObjective):
    """CD-k / persistent CD with optional energy-magnitude and gradient penalties.

    .. math::
        L = \\overline{E(x^+, c)} - \\overline{E(x^-, c)}
        + \\alpha (\\overline{E(x^+)^2} + \\overline{E(x^-)^2})
        + \\lambda \\overline{\\lVert \\nabla_x E(\\hat x, c) \\rVert^2}.

    Args:
        sampler_factory: ``factory(energy, **sampler_options) -> SamplingAlgorithm`` (e.g.
            :func:`~structebm.samplers.langevin.langevin`, a ``functools.partial`` of it, or
            its dotted import path as a string); called in :meth:`bind`.
        source: where chains start and end (``DataInit``, ``NoiseInit``, ``ReplayBuffer``).
        num_steps: sampler transitions per training step (``k``), at least 1.
        generator_seed: seed of the objective's generator (all negative-phase randomness).
        sampler_options: keyword arguments for ``sampler_factory``.
        energy_magnitude_weight: ``alpha`` (0 disables).
        gradient_penalty_weight: ``lambda`` (0 disables; continuous ``x`` only).
        gradient_penalty_at: ``"data"`` or ``"interpolates"`` between data and negatives.
        chains_per_example: ``M`` chains per data point, each started by the source from that
            point and its condition; the negative term averages their ``B M`` energies, which
            divides the variance of its estimate by up to ``M``. ``x`` must then be a tensor.

    Shapes:
        - batch: ``x [B, *event]`` or ``(x, c)``; negatives ``[B M, *event]``, rows ``M b … M b + M - 1``
          the chains of data point ``b``.
        - returns a scalar loss; metrics ``energy_data``, ``energy_negative``, ``energy_gap``,
          ``acceptance_rate``, ``sampler_grad_norm`` (where the sampler reports them),
          ``buffer/*`` (persistent sources), ``energy_magnitude``, ``gradient_penalty``.
    """

    def __init__(
        self,
        sampler_factory: Union[str, SamplerFactory],
        source: ChainSource,
        num_steps: int,
        generator_seed: int = 0,
        sampler_options: Optional[dict[str, Any]] = None,
        energy_magnitude_weight: float = 0.0,
        gradient_penalty_weight: float = 0.0,
        gradient_penalty_at: GradientPenaltyAt = "data",
        chains_per_example: int = 1,
    ) -> None:
        super().__init__(generator_seed)
        name = type(self).__name__
        if int(num_steps) < 1:
            raise ValueError(f"{name}: num_steps must be at least 1, got {num_steps}")
        if energy_magnitude_weight < 0 or gradient_penalty_weight < 0:
            raise ValueError(f"{name}: regulariser weights must be non-negative")
        if gradient_penalty_at not in ("data", "interpolates"):
            raise ValueError(f"{name}: gradient_penalty_at must be 'data' or 'interpolates', got {gradient_penalty_at!r}")
        if int(chains_per_example) != chains_per_example or chains_per_example < 1:
            raise ValueError(f"{name}: chains_per_example must be a positive integer, got {chains_per_example}")
        if chains_per_example > 1 and gradient_penalty_weight > 0 and gradient_penalty_at == "interpolates":
            raise ValueError(f"{name}: gradient_penalty_at='interpolates' pairs each data point with one negative; "
                             f"it needs chains_per_example=1, got {chains_per_example}")
        if not isinstance(source, ChainSource):
            raise TypeError(f"{name}: source must be a ChainSource (DataInit, NoiseInit, ReplayBuffer), got {type(source).__name__}")
        self.sampler_factory = resolve_callable(sampler_factory, "sampler_factory", name)
        self.sampler_options = dict(sampler_options or {})
        self.source = source
        self.num_steps = int(num_steps)
        self.energy_magnitude_weight = float(energy_magnitude_weight)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.gradient_penalty_at = gradient_penalty_at
        self.chains_per_example = int(chains_per_example)
        self._sampler: Optional[SamplingAlgorithm] = None
        self._bound_energy_id: Optional[int] = None

    def bind(self, energy: nn.Module) -> None:
        """Build the sampler for ``energy`` (which checks its capabilities) and place the generator."""
        sampler = self.sampler_factory(energy, **self.sampler_options)
        if not isinstance(sampler, SamplingAlgorithm):
            raise TypeError(f"{type(self).__name__}: sampler_factory returned {type(sampler).__name__}, not a SamplingAlgorithm")
        self._sampler = sampler
        self._bound_energy_id = id(energy)
        self.bind_generator(energy)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the bound sampler (closures do not pickle); it is rebuilt on first use."""
        state = super().__getstate__()
        return {**state, "_sampler": None, "_bound_energy_id": None}

    def sample_negatives(
        self, energy: nn.Module, x: Tensor, c: Optional[Tensor], encoded_c: Any = None
    ) -> tuple[Tensor, Optional[Tensor], dict[str, Tensor]]:
        """Run the chains for one batch; return detached negatives, their condition and sampler metrics.

        ``encoded_c`` is ``encode_condition(energy, c)`` when the caller has it. The chains run
        under the encoded form of their condition (detached: the sampler's gradients are in
        ``x`` only), and the returned condition is that encoded form, so that the negatives'
        energy is computed with the same encoder output as the data's.
        """
        if self._bound_energy_id != id(energy):
            self.bind(energy)
        generator = self.generator_for(x.device)
        start = self.source.start(x, c, generator)
        if start.c is c and encoded_c is not None:
            chain_c = encoded_c
        else:  # a persistent source's own conditions, or no encoding done by the caller
            chain_c = encode_condition(energy, start.c)
        state = self._sampler.init(start.x, detach_condition(chain_c))
        rates: list[Tensor] = []  # mean acceptance of each adjusted step
        unadjusted_steps = 0  # steps that accept every proposal (rate one, nothing to compute)
        info: Optional[StepInfo] = None
        for index in range(self.num_steps):
            state, info = self._sampler.step(donate(state) if index > 0 else state, generator)
            if info.always_accepted:
                unadjusted_steps += 1
            elif info.acceptance_rate is not None:
                rates.append(info.acceptance_rate.detach().float().mean())
        check_chain_finite(state, f"{type(self).__name__} negative phase")
        x_negative = state.x.detach()
        self.source.update(start, x_negative, None if state.energy is None else state.energy.detach())
        metrics: dict[str, Tensor] = {}
        if rates:
            metrics["acceptance_rate"] = (torch.stack(rates).sum() + unadjusted_steps) / (len(rates) + unadjusted_steps)
        elif unadjusted_steps:
            metrics["acceptance_rate"] = torch.ones((), device=x.device)
        if info is not None and info.grad_norm is not None:
            metrics["sampler_grad_norm"] = info.grad_norm.detach().float().mean()
        metrics.update({f"buffer/{k}": v for k, v in self.source.statistics().items()})
        return x_negative, chain_c, metrics

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        name = type(self).__name__
        x, c = split_batch(batch)
        if self.source.space is not None:  # the space's check includes the finiteness test of check_data
            self.source.space.validate(x, f"{name}: data batch")
        else:
            check_data(x, name)
        n = batch_size_of(x)
        encoded_c = encode_condition(energy, c)  # once: data, chains and negatives under one encoder output
        if self.chains_per_example == 1:
            x_negative, c_negative, metrics = self.sample_negatives(energy, x, c, encoded_c)
        else:
            if not isinstance(x, Tensor):
                raise TypeError(f"{name}: chains_per_example > 1 needs a tensor batch x, got {type(x).__name__}")
            rows = torch.arange(n, device=x.device).repeat_interleave(self.chains_per_example)
            x_negative, c_negative, metrics = self.sample_negatives(
                energy, x.index_select(0, rows), select_rows(c, rows), select_rows(encoded_c, rows)
            )
        energy_data = check_energy_output(energy(x, encoded_c), n, f"{name}: energy of the data batch")
        energy_negative = check_energy_output(
            energy(x_negative, c_negative), batch_size_of(x_negative), f"{name}: energy of the negatives"
        )
        mean_data, mean_negative = energy_data.mean(), energy_negative.mean()
        gap = mean_data - mean_negative
        loss = gap
        if self.energy_magnitude_weight > 0:
            magnitude = energy_magnitude_penalty(energy_data, energy_negative, self.energy_magnitude_weight)
            metrics["energy_magnitude"] = magnitude.detach()
            loss = loss + magnitude
        if self.gradient_penalty_weight > 0:
            penalty = gradient_penalty(
                energy, x, encoded_c, self.gradient_penalty_weight, self.gradient_penalty_at,
                x_negative, self.generator_for(x.device), where=name,
            )
            metrics["gradient_penalty"] = penalty.detach()
            loss = loss + penalty
        metrics.update(
            energy_data=mean_data.detach(),
            energy_negative=mean_negative.detach(),
            energy_gap=gap.detach(),
        )
        return LossOutput(loss, metrics)
