"""Linear-chain CRF as an energy over label sequences, with exact inference.

The sampled variable is the label sequence ``y`` ``[B, T]``; the input sentence is the
condition ``c``. An emission model maps the input to emissions ``e = f(c)`` ``[B, T, K]``
(without one, ``c`` *is* the emissions), and with transitions ``A``, start ``π`` and end ``ω``:

.. math::
    E(y, c) = -\\Bigl(\\pi_{y_0} + \\sum_{t<L} e_t[y_t] + \\sum_{0<t<L} A_{y_{t-1} y_t} + \\omega_{y_{L-1}}\\Bigr),
    \\qquad p(y \\mid c) = e^{-E(y, c)} / Z(c).

The condition travels through the energy contract ``forward(y, c)`` as either the input
itself (every sequence has the full length ``T``) or a :class:`SequenceCondition` carrying
the input and a left-aligned mask ``[B, T]``; a ``(inputs, mask)`` tuple or a
``{"inputs", "mask"}`` dict is read the same way. Labels past a sequence's length are
ignored everywhere. Generic objectives work unchanged: exact NLL via :meth:`log_partition`,
Gibbs over ``y`` via :meth:`local_energy_deltas`, Gibbs-with-gradients via
:meth:`one_hot_energy`, NCE and CD via :meth:`forward`.

Forbidden transitions (e.g. BIO rules from
:func:`~structebm.structured.constraints.chunk_allowed_transitions`) have energy ``+inf``
in :meth:`forward` and probability zero in every inference routine.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from structebm.conditions import SequenceCondition
from structebm.energies.base import Energy
from structebm.structured import linear_chain
from structebm.structured.constraints import AllowedTransitions, apply_allowed, chunk_allowed_transitions

__all__ = ["SequenceCondition", "LinearChainCRF"]


class LinearChainCRF(Energy):
    """Linear-chain CRF energy ``E(y, c)`` over tag sequences ``y`` given an input ``c``.

    Args:
        num_tags: number of tags ``K``.
        emission_model: module mapping ``inputs`` to emissions ``[B, T, K]``; ``None`` means
            the condition's inputs are the emissions.
        allowed_transitions: ``[K, K]`` bool, ``[i, j]`` true when tag ``j`` may follow ``i``.
        allowed_start, allowed_end: ``[K]`` bool, tags a sequence may start / end with.
        forbidden_penalty: cost of a forbidden transition in :meth:`one_hot_energy`, where it
            must stay finite to keep gradients finite.
        init_scale: transitions, start and end start uniform in ``±init_scale``.

    Shapes:
        - y: ``[B, T]`` long; c: inputs or :class:`SequenceCondition` (mask ``[B, T]``)
        - forward / log_partition: ``[B]``; marginals: ``[B, T, K]``; argmax: ``[B, T]``;
          topk: ``[k, B, T]`` and energies ``[k, B]``; sample: ``[n, B, T]``;
          local_energy_deltas: ``[B, T, K]``; one_hot_energy: ``[B]``.
    """

    def __init__(
        self,
        num_tags: int,
        emission_model: Optional[nn.Module] = None,
        allowed_transitions: Optional[Tensor] = None,
        allowed_start: Optional[Tensor] = None,
        allowed_end: Optional[Tensor] = None,
        forbidden_penalty: float = 1e4,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"LinearChainCRF: num_tags must be a positive int, got {num_tags!r}")
        if forbidden_penalty <= 0:
            raise ValueError(f"LinearChainCRF: forbidden_penalty must be positive, got {forbidden_penalty}")
        self.num_tags = num_tags
        self.emission_model = emission_model
        self.forbidden_penalty = float(forbidden_penalty)
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-init_scale, init_scale))
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-init_scale, init_scale))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-init_scale, init_scale))
        self.constrained = any(m is not None for m in (allowed_transitions, allowed_start, allowed_end))
        masks = {
            "allowed_transitions": (allowed_transitions, (num_tags, num_tags)),
            "allowed_start": (allowed_start, (num_tags,)),
            "allowed_end": (allowed_end, (num_tags,)),
        }
        for name, (mask, shape) in masks.items():
            mask = torch.ones(shape, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
            if mask.dtype != torch.bool or tuple(mask.shape) != shape:
                raise ValueError(f"LinearChainCRF: {name} must be a bool tensor of shape {shape}, got {mask.dtype} {tuple(mask.shape)}")
            self.register_buffer(name, mask.clone())

    @classmethod
    def from_tag_names(
        cls, tags: Sequence[str], scheme: str = "BIO", emission_model: Optional[nn.Module] = None, **kwargs: Any
    ) -> "LinearChainCRF":
        """A CRF whose transitions obey the chunk scheme (``"BIO"`` or ``"BIOES"``) of ``tags``."""
        allowed = chunk_allowed_transitions(tags, scheme)
        return cls(len(tags), emission_model, allowed.transitions, allowed.start, allowed.end, **kwargs)

    @property
    def allowed(self) -> Optional[AllowedTransitions]:
        """The constraint masks, or ``None`` when every transition is allowed."""
        if not self.constrained:
            return None
        return AllowedTransitions(self.allowed_transitions, self.allowed_start, self.allowed_end)

    def potentials(self, c: Any, where: str = "LinearChainCRF") -> tuple[Tensor, Optional[Tensor]]:
        """Emissions ``[B, T, K]`` and mask ``[B, T]`` (or ``None``) of a condition."""
        if c is None:
            raise ValueError(f"{where}: the condition c (the input sequence, or a SequenceCondition) is required")
        if isinstance(c, SequenceCondition):
            inputs, mask = c.inputs, c.mask
            if c.encoded:
                return self._checked_emissions(inputs, where, "the encoded condition"), mask
        elif isinstance(c, dict):
            if "inputs" not in c:
                raise KeyError(f"{where}: a dict condition needs key 'inputs' (and optionally 'mask'), got {sorted(c)}")
            inputs, mask = c["inputs"], c.get("mask")
        elif isinstance(c, tuple) and len(c) == 2:
            inputs, mask = c
        else:
            inputs, mask = c, None
        if self.emission_model is None:
            return self._checked_emissions(inputs, where, "the condition"), mask
        return self._checked_emissions(self.emission_model(inputs), where, "the emission model"), mask

    def _checked_emissions(self, emissions: Any, where: str, source: str) -> Tensor:
        if not isinstance(emissions, Tensor) or emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            got = tuple(emissions.shape) if isinstance(emissions, Tensor) else type(emissions).__name__
            raise ValueError(f"{where}: {source} gave emissions of shape {got}, expected [B, T, {self.num_tags}]")
        return emissions

    def encode_condition(self, c: Any) -> SequenceCondition:
        """The condition with its emissions computed: ``SequenceCondition(emissions [B, T, K], mask,
        encoded=True)``, which every method reads without running the emission model again
        (:class:`~structebm.energies.base.HasConditionEncoder`)."""
        emissions, mask = self.potentials(c, "LinearChainCRF.encode_condition")
        return SequenceCondition(emissions, mask, encoded=True)

    def _check_labels(self, y: Tensor, emissions: Tensor, where: str) -> None:
        if not isinstance(y, Tensor) or y.shape != emissions.shape[:2]:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"{where}: labels y must have shape {tuple(emissions.shape[:2])} (as the condition), got {got}")

    def forward(self, y: Tensor, c: Any = None) -> Tensor:
        emissions, mask = self.potentials(c, "LinearChainCRF.forward")
        self._check_labels(y, emissions, "LinearChainCRF.forward")
        return -linear_chain.sequence_score(emissions, self.transitions, self.start, self.end, y, mask, self.allowed)

    def energies_given_condition(self, y: Tensor, c: Any = None) -> Tensor:
        """Energies ``[B, M]`` of ``M`` labellings ``y [B, M, T]`` of each input, its emissions computed once
        (:class:`~structebm.energies.base.HasSharedCondition`)."""
        emissions, mask = self.potentials(c, "LinearChainCRF.energies_given_condition")
        batch_size, length, _ = emissions.shape
        if not isinstance(y, Tensor) or y.dim() != 3 or (y.shape[0], y.shape[2]) != (batch_size, length):
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(
                f"LinearChainCRF.energies_given_condition: labels must have shape [{batch_size}, M, {length}], got {got}"
            )
        per_input = y.shape[1]
        repeated_mask = None if mask is None else mask.repeat_interleave(per_input, 0)
        scores = linear_chain.sequence_score(
            emissions.repeat_interleave(per_input, 0), self.transitions, self.start, self.end,
            y.reshape(batch_size * per_input, length), repeated_mask, self.allowed,
        )
        return -scores.reshape(batch_size, per_input)

    def log_partition(self, c: Any = None) -> Tensor:
        emissions, mask = self.potentials(c, "LinearChainCRF.log_partition")
        return linear_chain.log_partition(emissions, self.transitions, self.start, self.end, mask, self.allowed)

    def marginals(self, c: Any = None) -> Tensor:
        emissions, mask = self.potentials(c, "LinearChainCRF.marginals")
        return linear_chain.marginals(emissions, self.transitions, self.start, self.end, mask, self.allowed)

    def edge_marginals(self, c: Any = None) -> Tensor:
        """``p(y_{t-1} = i, y_t = j | c)`` ``[B, T-1, K, K]`` (zero past each length)."""
        emissions, mask = self.potentials(c, "LinearChainCRF.edge_marginals")
        return linear_chain.marginals(emissions, self.transitions, self.start, self.end, mask, self.allowed, edges=True)[1]

    def argmax(self, c: Any = None) -> Tensor:
        emissions, mask = self.potentials(c, "LinearChainCRF.argmax")
        return linear_chain.viterbi(emissions, self.transitions, self.start, self.end, mask, self.allowed)[1]

    def topk(self, c: Any, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` lowest-energy labellings ``[k, B, T]`` and their energies ``[k, B]`` (``+inf`` if fewer exist)."""
        emissions, mask = self.potentials(c, "LinearChainCRF.topk")
        scores, tags = linear_chain.topk(emissions, self.transitions, self.start, self.end, k, mask, self.allowed)
        return tags, -scores

    def sample(self, c: Any, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        emissions, mask = self.potentials(c, "LinearChainCRF.sample")
        return linear_chain.sample(emissions, self.transitions, self.start, self.end, n, mask, self.allowed, generator)

    def _constrained_potentials(self) -> tuple[Tensor, Tensor, Tensor]:
        return apply_allowed(self.transitions, self.start, self.end, self.allowed)

    def local_energy_deltas(self, y: Tensor, c: Any = None) -> Tensor:
        """``E(y with y_t := k) - E(y)`` in closed form: the terms that touch position ``t``.

        .. math::
            \\phi_t(k) = e_t[k] + [t=0]\\pi_k + [t>0]A_{y_{t-1}k} + [t<L-1]A_{k y_{t+1}} + [t=L-1]\\omega_k,
            \\qquad \\Delta_t(k) = -(\\phi_t(k) - \\phi_t(y_t)).

        Past each length the delta is 0; a change into a forbidden transition gives ``+inf``.
        """
        emissions, mask = self.potentials(c, "LinearChainCRF.local_energy_deltas")
        self._check_labels(y, emissions, "LinearChainCRF.local_energy_deltas")
        batch_size, length, num_tags = emissions.shape
        lengths = linear_chain.chain_lengths(mask, batch_size, length, emissions.device, "LinearChainCRF.local_energy_deltas")
        valid = torch.arange(length, device=emissions.device)[None, :] < lengths[:, None]
        y = y.long().masked_fill(~valid, 0)
        if ((y < 0) | (y >= num_tags)).any():
            raise ValueError(f"LinearChainCRF.local_energy_deltas: labels outside [0, {num_tags}) inside the mask")
        transitions, start, end = self._constrained_potentials()
        local = emissions.clone()
        local[:, 0] = local[:, 0] + start
        local[:, 1:] = local[:, 1:] + transitions[y[:, :-1]]
        has_next = valid[:, 1:, None]
        local[:, :-1] = local[:, :-1] + torch.where(has_next, transitions.t()[y[:, 1:]], 0.0)
        is_last = (torch.arange(length, device=emissions.device)[None, :] == (lengths - 1)[:, None])[:, :, None]
        local = local + torch.where(is_last, end, 0.0)
        current = local.gather(2, y[:, :, None])
        deltas = torch.where(local == current, 0.0, current - local)
        return deltas.masked_fill(~valid[:, :, None], 0.0)

    def site_colours(self, length: int) -> Tensor:
        """Even positions colour 0, odd positions colour 1 ``[length]``: a position interacts only
        with its two neighbours (:class:`~structebm.energies.base.HasSiteColouring`)."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"LinearChainCRF.site_colours: length must be a positive int, got {length!r}")
        return torch.arange(length, device=self.transitions.device) % 2

    def one_hot_energy(self, y_one_hot: Tensor, c: Any = None) -> Tensor:
        """Energy of (relaxed) one-hot labels ``[B, T, K]``, differentiable in them.

        .. math::
            E(h, c) = -\\Bigl(\\langle\\pi, h_0\\rangle + \\sum_{t<L}\\langle e_t, h_t\\rangle
            + \\sum_{0<t<L} h_{t-1}^\\top A h_t + \\langle\\omega, h_{L-1}\\rangle\\Bigr)

        Forbidden transitions cost ``forbidden_penalty`` here instead of ``+inf``; on exact
        one-hot inputs of allowed labellings this equals :meth:`forward`.
        """
        emissions, mask = self.potentials(c, "LinearChainCRF.one_hot_energy")
        if not isinstance(y_one_hot, Tensor) or y_one_hot.shape != emissions.shape:
            got = tuple(y_one_hot.shape) if isinstance(y_one_hot, Tensor) else type(y_one_hot).__name__
            raise ValueError(f"LinearChainCRF.one_hot_energy: expected one-hot labels of shape {tuple(emissions.shape)}, got {got}")
        batch_size, length, _ = emissions.shape
        lengths = linear_chain.chain_lengths(mask, batch_size, length, emissions.device, "LinearChainCRF.one_hot_energy")
        valid = (torch.arange(length, device=emissions.device)[None, :] < lengths[:, None]).to(emissions.dtype)
        penalty = -self.forbidden_penalty
        transitions = self.transitions.masked_fill(~self.allowed_transitions, penalty)
        start = self.start.masked_fill(~self.allowed_start, penalty)
        end = self.end.masked_fill(~self.allowed_end, penalty)
        h = y_one_hot.to(emissions.dtype) * valid[:, :, None]
        emission_part = (emissions * h).sum(dim=(1, 2))
        transition_part = ((h[:, :-1] @ transitions) * h[:, 1:]).sum(dim=(1, 2))
        last = h[torch.arange(batch_size, device=h.device), lengths - 1]
        return -(h[:, 0] @ start + emission_part + transition_part + last @ end)
