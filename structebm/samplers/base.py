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

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, NamedTuple, Optional, TypeVar

import torch
from torch import Tensor

__all__ = ["StepInfo", "SamplingAlgorithm", "ChainState", "run_chain", "ChainDivergedError", "check_chain_finite"]

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
    """

    x: Tensor
    c: Optional[Tensor]
    energy: Optional[Tensor]
    grad: Optional[Tensor] = None
    step: int = 0


@dataclass
class StepInfo:
    """Diagnostics of one transition; every field is per chain (``[B]``) or ``None``.

    Attributes:
        energy: energy after the step.
        grad_norm: L2 norm of ``∇ₓ E`` at the new state, where computed.
        acceptance_rate: MH acceptance probability of the proposal (1 for unadjusted rules).
        accepted: whether the proposal was accepted (MH rules only).
    """

    energy: Tensor
    grad_norm: Optional[Tensor] = None
    acceptance_rate: Optional[Tensor] = None
    accepted: Optional[Tensor] = None
    extra: dict[str, Tensor] = field(default_factory=dict)


class SamplingAlgorithm(NamedTuple, Generic[S]):
    """``init`` and ``step`` of one sampler, bound to an energy and settings."""

    init: Callable[..., S]
    step: Callable[[S, torch.Generator], tuple[S, StepInfo]]


def check_chain_finite(state: ChainState, sampler: str) -> None:
    """Raise :class:`ChainDivergedError` naming the sampler, step and chains if a chain blew up."""
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
    for _ in range(num_steps):
        state, info = algorithm.step(state, generator)
        if keep_infos or not infos:
            infos.append(info)
        else:
            infos[-1] = info
    return state.x, infos
