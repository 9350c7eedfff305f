"""Energies that add up: a weighted sum of energies is a product of experts.

For energies :math:`E_1, \\dots, E_T` and positive weights :math:`w_t`,

.. math::
    E(x, c) = \\sum_{t=1}^{T} w_t \\, E_t(x, c_{[S_t]}), \\qquad
    p(x \\mid c) \\propto \\prod_{t} p_t(x \\mid c_{[S_t]})^{w_t},

where :math:`c_{[S_t]}` are the columns :math:`S_t` of the shared condition ``c [B, D]`` that
term :math:`t` reads (``condition_columns``; ``None``: the term is unconditional). Two
single-property conditional energies summed give a model of the two-property target; an
energy plus a property-guidance term (:class:`~structebm.energies.guidance.PropertyGuidance`)
steers samples toward a target property.

Each term keeps its capabilities: the sum has ``graph_one_hot_energy`` (graph
Gibbs-with-gradients), ``one_hot_energy`` (sequence Gibbs-with-gradients) or
``local_energy_deltas`` (sequence Gibbs) exactly when every term has it, each computed as the
weighted sum of the terms' own. ``EnergySum(...)`` returns an instance of the subclass with those
capabilities (one per combination, defined in this module, so the sum pickles), so the
samplers' capability checks see what the terms can do. The alphabets ``num_node_types`` /
``num_edge_types`` are those of the terms (which must agree).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from structebm.energies.base import Energy, batch_size_of

__all__ = ["EnergySum"]

_CAPABILITIES = ("graph_one_hot_energy", "one_hot_energy", "local_energy_deltas")


def _positive_weights(weights: Optional[Sequence[float]], count: int) -> Tensor:
    values = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(values) != count:
        raise ValueError(f"EnergySum: {len(values)} weights for {count} terms")
    bad = [w for w in values if not (math.isfinite(w) and w > 0)]
    if bad:
        raise ValueError(f"EnergySum: weights must be positive and finite, got {values}")
    return torch.tensor(values)


def _columns(columns: Optional[Sequence[Optional[Sequence[int]]]], terms: Sequence[nn.Module]) -> list[Optional[list[int]]]:
    """The checked condition columns of every term (``None`` = unconditional term)."""
    if columns is None:
        columns = [None] * len(terms)
    if len(columns) != len(terms):
        raise ValueError(f"EnergySum: condition_columns has {len(columns)} entries for {len(terms)} terms")
    checked: list[Optional[list[int]]] = []
    for index, (term, chosen) in enumerate(zip(terms, columns)):
        name = f"EnergySum: term {index} ({type(term).__name__})"
        declared = getattr(term, "condition_dim", "undeclared")
        if chosen is None:
            if isinstance(declared, int):
                raise ValueError(f"{name} is conditional (condition_dim={declared}) but condition_columns[{index}] is None")
            checked.append(None)
            continue
        chosen = [int(column) for column in chosen]
        if not chosen or min(chosen) < 0:
            raise ValueError(f"{name}: condition columns must be a non-empty list of column indices >= 0, got {chosen}")
        if declared is None:
            raise ValueError(f"{name} is unconditional (condition_dim=None) but reads condition columns {chosen}")
        if isinstance(declared, int) and declared != len(chosen):
            raise ValueError(f"{name} has condition_dim={declared} but reads {len(chosen)} condition columns {chosen}")
        checked.append(chosen)
    return checked


def _alphabet(terms: Sequence[nn.Module], name: str) -> Optional[int]:
    values = {getattr(term, name) for term in terms if isinstance(getattr(term, name, None), int)}
    if len(values) > 1:
        raise ValueError(f"EnergySum: the terms disagree on {name}: {sorted(values)}")
    return values.pop() if values else None


class EnergySum(Energy):
    """A weighted sum of energies, each reading its own columns of the condition (see the module docstring).

    Args:
        terms: the energies :math:`E_t` (``nn.Module`` s keeping the energy contract).
        weights: positive :math:`w_t` (default: all 1).
        condition_columns: for each term, the columns of ``c`` it reads, or ``None`` for an
            unconditional term (default: every term unconditional). A term that declares
            ``condition_dim`` must read that many columns.
        condition_dim: the width ``D`` of ``c`` (default: one past the largest column read;
            give it when ``c`` holds columns no term reads).

    Shapes:
        - forward: the terms' ``x``; c ``[B, D]`` float (or ``None`` when no term reads it); output ``[B]``
    """

    def __new__(
        cls,
        terms: Sequence[nn.Module] = (),
        weights: Optional[Sequence[float]] = None,
        condition_columns: Optional[Sequence[Optional[Sequence[int]]]] = None,
        condition_dim: Optional[int] = None,
    ) -> "EnergySum":
        """An instance of the subclass with the capabilities every term shares (``terms`` empty: a copy or unpickling)."""
        if cls is EnergySum:
            shared = tuple(name for name in _CAPABILITIES if terms and all(callable(getattr(t, name, None)) for t in terms))
            cls = _SUM_CLASSES[shared]
        return super().__new__(cls)

    def __init__(
        self,
        terms: Sequence[nn.Module],
        weights: Optional[Sequence[float]] = None,
        condition_columns: Optional[Sequence[Optional[Sequence[int]]]] = None,
        condition_dim: Optional[int] = None,
    ) -> None:
        super().__init__()
        terms = list(terms)
        if not terms or not all(isinstance(term, nn.Module) for term in terms):
            raise TypeError(f"EnergySum: terms must be a non-empty list of nn.Module energies, got {terms!r}")
        self.terms = nn.ModuleList(terms)
        self.register_buffer("weights", _positive_weights(weights, len(terms)))
        self.condition_columns = _columns(condition_columns, terms)
        widest = max((max(chosen) + 1 for chosen in self.condition_columns if chosen is not None), default=None)
        if condition_dim is not None and (widest is None or condition_dim < widest):
            raise ValueError(f"EnergySum: condition_dim={condition_dim} but the terms read columns up to {widest}")
        self.condition_dim = widest if condition_dim is None else int(condition_dim)
        for name in ("num_node_types", "num_edge_types"):
            value = _alphabet(terms, name)
            if value is not None:
                setattr(self, name, value)

    def term_conditions(self, c: Optional[Tensor], batch_size: int, where: str = "forward") -> list[Optional[Tensor]]:
        """The condition of each term: its columns of ``c [B, D]``, or ``None`` for an unconditional term."""
        name = f"EnergySum.{where}"
        if self.condition_dim is None:
            if c is not None:
                raise ValueError(f"{name}: got a condition c, but no term reads one (condition_columns are all None)")
            return [None] * len(self.terms)
        if not isinstance(c, Tensor) or c.shape != (batch_size, self.condition_dim) or not c.is_floating_point():
            got = f"{tuple(c.shape)} {c.dtype}" if isinstance(c, Tensor) else type(c).__name__
            reads = {index: chosen for index, chosen in enumerate(self.condition_columns) if chosen is not None}
            raise ValueError(
                f"{name}: c must be a float tensor [{batch_size}, {self.condition_dim}] (columns read by term: {reads}), got {got}"
            )
        return [None if chosen is None else c[:, chosen] for chosen in self.condition_columns]

    def _weighted(self, values: list[Tensor]) -> Tensor:
        total = values[0] * self.weights[0].to(values[0].dtype)
        for weight, value in zip(self.weights[1:], values[1:]):
            total = total + weight.to(value.dtype) * value
        return total

    def forward(self, x: Any, c: Optional[Tensor] = None) -> Tensor:
        conditions = self.term_conditions(c, batch_size_of(x))
        return self._weighted([term(x, ci) for term, ci in zip(self.terms, conditions)])


class _GraphOneHotSum:
    def graph_one_hot_energy(self, nodes_one_hot: Tensor, edges_one_hot: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """The weighted sum of the terms' ``graph_one_hot_energy`` (differentiable in both inputs)."""
        conditions = self.term_conditions(c, nodes_one_hot.shape[0], "graph_one_hot_energy")
        return self._weighted(
            [term.graph_one_hot_energy(nodes_one_hot, edges_one_hot, ci) for term, ci in zip(self.terms, conditions)]
        )


class _OneHotSum:
    def one_hot_energy(self, x_one_hot: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """The weighted sum of the terms' ``one_hot_energy``."""
        conditions = self.term_conditions(c, x_one_hot.shape[0], "one_hot_energy")
        return self._weighted([term.one_hot_energy(x_one_hot, ci) for term, ci in zip(self.terms, conditions)])


class _LocalMovesSum:
    def local_energy_deltas(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """The weighted sum of the terms' ``local_energy_deltas`` ``[B, L, K]``."""
        conditions = self.term_conditions(c, x.shape[0], "local_energy_deltas")
        deltas = [term.local_energy_deltas(x, ci) for term, ci in zip(self.terms, conditions)]
        total = deltas[0] * self.weights[0].to(deltas[0].dtype)
        for weight, delta in zip(self.weights[1:], deltas[1:]):
            total = total + weight.to(delta.dtype) * delta
        return total


_MIXINS = {"graph_one_hot_energy": _GraphOneHotSum, "one_hot_energy": _OneHotSum, "local_energy_deltas": _LocalMovesSum}
_SUM_CLASSES: dict[tuple[str, ...], type] = {(): EnergySum}
for _size in range(1, len(_CAPABILITIES) + 1):
    for _shared in itertools.combinations(_CAPABILITIES, _size):
        _name = "EnergySumWith_" + "_".join(_shared)
        _class = type(_name, tuple(_MIXINS[capability] for capability in _shared) + (EnergySum,),
                      {"__module__": __name__, "__qualname__": _name, "__doc__": EnergySum.__doc__})
        globals()[_name] = _SUM_CLASSES[_shared] = _class
del _size, _shared, _name, _class
