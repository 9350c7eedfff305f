"""The energy contract and its optional capabilities.

An energy is an :class:`torch.nn.Module` whose ``forward(x, c=None)`` returns one
scalar per batch element, ``E(x, c)`` with shape ``[B]``; lower means more probable:

.. math::
    p(x \\mid c) = \\frac{\\exp(-E(x, c))}{Z(c)}.

It is never a log-probability. Extra abilities are declared as
:class:`typing.Protocol` s; samplers and objectives call :func:`require` when they
are built, so a missing ability fails at construction with a message that names it.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from structebm.finite import sums_are_finite

__all__ = [
    "Energy",
    "MissingCapabilityError",
    "EnergyOutputError",
    "HasScore",
    "HasEnergyGradient",
    "HasLogPartition",
    "HasMarginals",
    "HasArgmax",
    "HasExactSample",
    "HasLocalMoves",
    "HasOneHotEnergy",
    "HasSharedCondition",
    "HasConditionEncoder",
    "encode_condition",
    "HasSiteColouring",
    "require",
    "check_energy_output",
    "score",
    "energy_and_gradient",
    "has_analytic_score",
    "has_analytic_gradient",
    "batch_size_of",
]


class MissingCapabilityError(TypeError):
    """Raised when a sampler or objective is built on an energy lacking a capability."""


class EnergyOutputError(ValueError):
    """Raised when an energy returns a tensor of the wrong shape or non-finite values."""


class Energy(nn.Module):
    """Base class for energies ``E(x, c) -> Tensor[B]``.

    Subclasses implement :meth:`forward`. Inheriting is optional: every sampler and
    objective accepts any ``nn.Module`` that keeps the contract.
    """

    def forward(self, x: Any, c: Optional[Tensor] = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


@runtime_checkable
class HasScore(Protocol):
    """Analytic score ``-∇ₓ E(x, c)``, same shape as ``x``."""

    def score(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class HasEnergyGradient(Protocol):
    """Energy and its gradient ``∇ₓ E(x, c)`` from one evaluation, without autograd's graph.

    ``energy_and_grad(x, c)`` returns ``(E [B], ∇ₓE [B, *event])`` with the values ``forward``
    and autograd would give. The gradient is a fresh tensor (callers may update it in place)
    and, while grad mode is on, differentiable in ``x`` and in the parameters, so score
    matching can train through it.
    """

    def energy_and_grad(self, x: Tensor, c: Optional[Tensor] = None) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class HasLogPartition(Protocol):
    """Exact ``log Z(c)``; shape ``[B]`` for a batch of conditions, or ``[]`` without ``c``."""

    def log_partition(self, c: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class HasMarginals(Protocol):
    """Exact single-site (or single-edge) marginals of ``p(x | c)``."""

    def marginals(self, c: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class HasArgmax(Protocol):
    """Exact mode ``argmin_x E(x, c)``."""

    def argmax(self, c: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class HasExactSample(Protocol):
    """Exact draws ``x ~ p(x | c)``."""

    def sample(
        self, c: Optional[Tensor], n: int, generator: Optional[torch.Generator] = None
    ) -> Tensor: ...


@runtime_checkable
class HasLocalMoves(Protocol):
    """Energy change of every single-site change of a categorical state.

    ``local_energy_deltas(x, c)[b, i, k] = E(x with x_i := k) - E(x)`` for ``x`` of
    shape ``[B, L]`` with values in ``[0, K)``; output shape ``[B, L, K]``.
    """

    def local_energy_deltas(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class HasOneHotEnergy(Protocol):
    """Energy of a categorical state given as (relaxed) one-hot vectors.

    ``one_hot_energy(x_one_hot, c)`` takes a float tensor ``[B, L, K]`` and returns ``[B]``;
    on exact one-hot inputs it equals ``forward(x.argmax(-1), c)``. It must be differentiable
    in ``x_one_hot``: Gibbs-with-gradients uses its gradient to rank single-site changes.
    """

    def one_hot_energy(self, x_one_hot: Tensor, c: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class HasSharedCondition(Protocol):
    """Energies of several states under one condition each, computing what depends on the condition once.

    ``energies_given_condition(x, c)[b, m] = E(x[b, m], c[b])`` for ``x`` of shape ``[B, M, *event]``
    and a batch of ``B`` conditions; output ``[B, M]``. A CRF computes its emissions once per
    sentence instead of once per labelling: objectives that score many labellings of one input
    (:class:`~structebm.objectives.ranking_nce.RankingNCE`) use it when it is there.
    """

    def energies_given_condition(self, x: Tensor, c: Any = None) -> Tensor: ...


@runtime_checkable
class HasConditionEncoder(Protocol):
    """An energy that reads its condition through an encoder whose output can be computed once.

    ``encode_condition(c)`` returns a condition ``c'`` that every method of the energy accepts in
    place of ``c`` with the same result, ``E(x, c') = E(x, c)``, without running the encoder
    again. An objective that evaluates the energy several times under one batch of conditions in
    a training step (data and negatives, the energy and its partition function, a sampler's
    chains) encodes once: it saves the encoder's passes, and in training mode every evaluation
    then sees the same dropout mask, so that all of them score under one network. A CRF's
    encoder is its emission model.
    """

    def encode_condition(self, c: Any) -> Any: ...


def encode_condition(energy: nn.Module, c: Any) -> Any:
    """``energy.encode_condition(c)`` when there is a condition and the energy has an encoder
    (:class:`~structebm.energies.base.HasConditionEncoder`), else ``c`` unchanged.

    Objectives call it once per batch and evaluate the energy under the result (one pass of the
    encoder, one dropout mask for every evaluation of the step); samplers call it once per chain
    start.
    """
    if c is None or not isinstance(energy, HasConditionEncoder):
        return c
    return energy.encode_condition(c)


@runtime_checkable
class HasSiteColouring(Protocol):
    """A colouring of the sites of a categorical state such that no two sites of one colour interact.

    ``site_colours(length)`` returns a long tensor ``[L]`` with values ``0..C-1`` such that
    ``E(x)`` has no term that depends on two sites of the same colour. Given the sites of all other
    colours, the sites of one colour are then independent, so a sampler may redraw all of them at
    once from their single-site conditionals (:func:`~structebm.samplers.gibbs.gibbs` with
    ``scan="blocked"``). A first-order chain needs two colours (even and odd positions), a
    lattice two (a checkerboard).
    """

    def site_colours(self, length: int) -> Tensor: ...


def require(energy: Any, capability: type, needed_by: str) -> None:
    """Fail early, naming the missing method, if ``energy`` lacks ``capability``."""
    if not isinstance(energy, capability):
        methods = [m for m in capability.__dict__ if not m.startswith("_")]
        raise MissingCapabilityError(
            f"{needed_by} needs an energy with {capability.__name__} "
            f"(method(s): {', '.join(methods)}); {type(energy).__name__} does not provide it."
        )


def batch_size_of(x: Any) -> int:
    """Batch size of a state: a tensor's first dimension, or ``x.num_graphs`` / ``len(x)``."""
    if isinstance(x, Tensor):
        return x.shape[0]
    if hasattr(x, "batch_size"):
        return int(x.batch_size)
    if hasattr(x, "num_graphs"):
        return int(x.num_graphs)
    return len(x)


def check_energy_output(energy_values: Tensor, batch_size: int, where: str) -> Tensor:
    """Check that an energy returned finite values of shape ``[batch_size]``.

    Args:
        energy_values: what the energy returned.
        batch_size: the number of states it was given.
        where: a short description of the call site, put into the error message.
    """
    if not isinstance(energy_values, Tensor):
        raise EnergyOutputError(f"{where}: the energy returned {type(energy_values).__name__}, expected a Tensor[B]")
    if energy_values.shape != (batch_size,):
        raise EnergyOutputError(
            f"{where}: the energy returned shape {tuple(energy_values.shape)}, expected ({batch_size},) — "
            "one scalar per batch element (did forward() forget to squeeze(-1) or sum over features?)"
        )
    if not sums_are_finite(energy_values) and not torch.isfinite(energy_values).all():
        bad = (~torch.isfinite(energy_values)).nonzero().flatten()[:8].tolist()
        raise EnergyOutputError(f"{where}: the energy is not finite at batch positions {bad}")
    return energy_values


def _owner(cls: type, name: str) -> Optional[type]:
    """The class in ``cls``'s method resolution order that defines ``name``, if any."""
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


@functools.lru_cache(maxsize=None)
def _has_own_derivative(cls: type, method: str) -> bool:
    """Whether ``cls`` has a callable ``method`` defined no higher up than its ``forward``.

    A subclass that overrides ``forward`` but inherits the derivative would get a derivative of
    the parent's energy, so such a class falls back to autograd. Cached per class: samplers ask
    at every step.
    """
    derivative_owner = _owner(cls, method)
    if derivative_owner is None or not callable(getattr(cls, method)):
        return False
    forward_owner = _owner(cls, "forward")
    return forward_owner is None or issubclass(derivative_owner, forward_owner)


def has_analytic_score(energy: nn.Module) -> bool:
    """Whether ``energy`` defines ``score`` (:class:`HasScore`) for its own ``forward``."""
    return _has_own_derivative(type(energy), "score")


def has_analytic_gradient(energy: nn.Module) -> bool:
    """Whether ``energy`` defines ``energy_and_grad`` (:class:`HasEnergyGradient`) for its own ``forward``."""
    return _has_own_derivative(type(energy), "energy_and_grad")


def energy_and_gradient(
    energy: nn.Module, x: Tensor, c: Optional[Tensor] = None, create_graph: bool = False
) -> tuple[Tensor, Tensor]:
    """Energy ``[B]`` and its gradient ``∇ₓE(x, c)`` ``[B, *event]``.

    An energy with :class:`HasEnergyGradient` computes both itself; otherwise autograd does.
    With ``create_graph`` the gradient stays differentiable (score matching); otherwise it is
    taken with respect to a detached copy of ``x``, so nothing leaks into ``x``'s graph.
    """
    if has_analytic_gradient(energy):
        if create_graph:
            with torch.enable_grad():
                return energy.energy_and_grad(x, c)
        with torch.no_grad():
            return energy.energy_and_grad(x.detach(), c)
    if not torch.is_grad_enabled():
        with torch.enable_grad():
            return energy_and_gradient(energy, x, c, create_graph)
    x_req = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
    values = energy(x_req, c)
    (grad,) = torch.autograd.grad(values.sum(), x_req, create_graph=create_graph)
    return values, grad


def score(energy: nn.Module, x: Tensor, c: Optional[Tensor] = None, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    """Energy and score ``-∇ₓ E(x, c)`` of a continuous state.

    Uses ``energy.score`` when the energy provides it, else ``energy.energy_and_grad``
    (:class:`HasEnergyGradient`), else autograd.

    Shapes:
        - x: ``[B, *event]``
        - returns: energy ``[B]``, score ``[B, *event]``
    """
    if has_analytic_score(energy):
        with torch.no_grad() if not create_graph else torch.enable_grad():
            values = energy(x, c)
        return values, energy.score(x, c)
    values, grad = energy_and_gradient(energy, x, c, create_graph)
    return values, grad.neg() if create_graph else grad.neg_()
