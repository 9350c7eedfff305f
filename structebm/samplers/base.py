"""The sampler contract: a pair of functions, ``init`` and ``step``.

A :class:`SamplingAlgorithm` is built by a factory (``langevin(energy, ...)``,
``gibbs(energy, ...)`` ...) that binds an energy and the step rule's settings:

- ``init(x, c=None) -> state`` wraps a starting point (and its condition);
- ``step(state, generator) -> (state, info)`` makes one transition.

All randomness comes from the explicit :class:`torch.Generator`, so a seed reproduces a
chain on the same device. Samplers never leave gradients in the energy's parameters and
the ``x`` they return is detached. Diagnostics travel in :class:`StepInfo`, never in
mutable attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Generic, NamedTuple, Optional, TypeVar

import torch
from torch import Tensor, nn

from structebm.conditions import detach_condition
from structebm.energies.base import encode_condition
from structebm.finite import sums_are_finite

__all__ = ["StepInfo", "SamplingAlgorithm", "ChainState", "chain_condition", "donate", "run_chain", "ChainDivergedError", "check_chain_finite",
           "check_positive"]

S = TypeVar("S")


class ChainDivergedError(RuntimeError):
    """Raised when a chain's state or energy becomes non-finite."""


@dataclass
class ChainState:
    """The state every built-in sampler carries.

    Attributes:
        x: current sample ``[B, ...]`` (detached).
        c: the condition it is sampled under, or ``None``.
        energy: ``E(x, c)``, shape ``[B]``.
        grad: ``∇ₓ E(x, c)`` where the rule uses it (Langevin, MALA, GWG), else ``None``.
        step: number of transitions made so far.
        donated: the caller gives this state up: it will not read it (or hold its ``x``) again,
            so a step may write the next state into its tensors instead of allocating new ones
            (:func:`~structebm.samplers.langevin.langevin` does). Set by :func:`donate`, which
            :func:`run_chain` and the contrastive-divergence objective call on the states a step
            produced; never on a starting state, whose ``x`` shares the caller's memory.
    """

    x: Tensor
    c: Optional[Tensor]
    energy: Optional[Tensor]
    grad: Optional[Tensor] = None
    step: int = 0
    donated: bool = False


def chain_condition(energy: nn.Module, c: Any) -> Any:
    """The condition chains run under: ``c`` encoded once by the energy's encoder, if it has one
    (:class:`~structebm.energies.base.HasConditionEncoder`; a CRF's emissions), and detached, so
    that every step reuses the encoding and no step builds a graph through it."""
    with torch.no_grad():
        return detach_condition(encode_condition(energy, c))


def donate(state: S) -> S:
    """Mark ``state`` as given up by its caller (see :attr:`ChainState.donated`) and return it.

    Other state types are returned unchanged. Only call this on a state a step returned and
    that nobody else holds.
    """
    if isinstance(state, ChainState):
        state.donated = True
    return state


class StepInfo:
    r"""Diagnostics of one transition; every field is per chain (``[B]``) or ``None``.

    Attributes:
        energy: energy of the state the diagnostics describe.
        grad_norm: L2 norm of ``∇ₓ E`` at that state, where computed.
        acceptance_rate: MH acceptance probability of the proposal (1 for unadjusted rules).
        accepted: whether the proposal was accepted (MH rules only).
        extra: further per-chain diagnostics of a sampler, by name.

    Diagnostics nobody reads should cost nothing in a hot loop, so two fields can be given
    lazily: ``grad=`` (instead of ``grad_norm``) keeps the gradient ``[B, *event]`` and its norm
    :math:`\lVert \nabla_x E \rVert_2` per chain is computed on first access of ``grad_norm``;
    ``always_accepted=True`` stands for an ``acceptance_rate`` of ones, made on first access.
    """

    __slots__ = ("energy", "accepted", "extra", "_grad_norm", "_grad", "_acceptance_rate", "_always_accepted")

    def __init__(
        self,
        energy: Tensor,
        grad_norm: Optional[Tensor] = None,
        acceptance_rate: Optional[Tensor] = None,
        accepted: Optional[Tensor] = None,
        extra: Optional[dict[str, Tensor]] = None,
        *,
        grad: Optional[Tensor] = None,
        always_accepted: bool = False,
    ) -> None:
        if grad is not None and grad_norm is not None:
            raise ValueError("StepInfo: give grad_norm or grad (its norm is taken on access), not both")
        if always_accepted and acceptance_rate is not None:
            raise ValueError("StepInfo: give acceptance_rate or always_accepted=True, not both")
        self.energy = energy
        self.accepted = accepted
        self.extra = {} if extra is None else extra
        self._grad_norm = grad_norm
        self._grad = grad
        self._acceptance_rate = acceptance_rate
        self._always_accepted = always_accepted

    @property
    def grad_norm(self) -> Optional[Tensor]:
        if self._grad_norm is None and self._grad is not None:
            grad = self._grad
            self._grad_norm = torch.linalg.vector_norm(grad.reshape(grad.shape[0], -1), dim=1)
            self._grad = None
        return self._grad_norm

    @property
    def always_accepted(self) -> bool:
        """Whether the step is unadjusted (every proposal accepted), so its acceptance rate is one."""
        return self._always_accepted

    @property
    def acceptance_rate(self) -> Optional[Tensor]:
        if self._acceptance_rate is None and self._always_accepted:
            self._acceptance_rate = torch.ones_like(self.energy)
        return self._acceptance_rate

    def __repr__(self) -> str:
        fields = {"energy": self.energy, "grad_norm": self.grad_norm, "acceptance_rate": self.acceptance_rate,
                  "accepted": self.accepted, "extra": self.extra}
        return "StepInfo(" + ", ".join(f"{name}={value!r}" for name, value in fields.items()) + ")"


class SamplingAlgorithm(NamedTuple, Generic[S]):
    """``init`` and ``step`` of one sampler, bound to an energy and settings."""

    init: Callable[..., S]
    step: Callable[[S, torch.Generator], tuple[S, StepInfo]]


def check_chain_finite(state: ChainState, sampler: str) -> None:
    """Raise :class:`ChainDivergedError` naming the sampler, step and chains if a chain blew up.

    One summed reduction decides the common case (see :mod:`structebm.finite`); only a
    non-finite sum runs the per-chain test.
    """
    checked = [t for t in (state.energy, state.x) if isinstance(t, Tensor)]
    if sums_are_finite(*checked):
        return
    if state.energy is not None:
        bad = ~torch.isfinite(state.energy)
    else:  # a lazily evaluated state: only x is known
        bad = torch.zeros(state.x.shape[0], dtype=torch.bool, device=state.x.device)
    if isinstance(state.x, Tensor) and state.x.is_floating_point():
        bad = bad | ~torch.isfinite(state.x.flatten(1)).all(dim=1)
    if bad.any():
        idx = bad.nonzero().flatten()[:8].tolist()
        raise ChainDivergedError(
            f"{sampler}: chain(s) {idx} diverged at step {state.step} (non-finite state or energy); "
            "lower the step size, clip gradients, or regularise the energy magnitude"
        )


def check_positive(value: float, name: str, where: str) -> float:
    """Return ``value`` as a float if it is finite and strictly positive.

    A ``TypeError`` names ``where`` and ``name`` when ``value`` is not a number (``bool`` included), a
    ``ValueError`` when it is zero, negative, infinite or NaN. Step sizes, noise scales and the
    temperature :math:`T` of a tempered target :math:`e^{-E / T}` all pass through here.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where}: {name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {name} must be finite and > 0, got {value}")
    return float(value)


def run_chain(
    algorithm: SamplingAlgorithm,
    x0: Any,
    num_steps: int,
    generator: torch.Generator,
    c: Optional[Tensor] = None,
    keep_infos: bool = False,
) -> tuple[Any, list[StepInfo]]:
    """Run ``num_steps`` transitions from ``x0`` and return the final detached sample.

    Returns the last ``x`` and, if ``keep_infos``, the info of every step (else only the last).
    """
    state = algorithm.init(x0, c)
    infos: list[StepInfo] = []
    for index in range(num_steps):
        state, info = algorithm.step(donate(state) if index > 0 else state, generator)
        if keep_infos or not infos:
            infos.append(info)
        else:
            infos[-1] = info
    return state.x, infos
