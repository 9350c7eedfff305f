"""A weighted sum of named objectives, each applied to a *view* of one energy.

Some models are trained by several objectives at once, each seeing the same parameters in
another role. The energy contract ``forward(state, condition)`` fixes which argument is the
state, so a role is a *view*: a thin module wrapping the energy that reorders or restricts
its arguments (e.g. :class:`~structebm.energies.image_label.LabelGivenImage` and
:class:`~structebm.energies.image_label.ImageGivenLabel`). Each term names an objective, the
view it trains, the weight of its loss and how the batch maps into the view's
``(state, condition)`` order:

.. math::
    L(\\theta) = \\sum_{t} w_t \\, L_t\\big(V_t(E_\\theta), \\pi_t(\\text{batch})\\big),

with :math:`V_t` the view of term :math:`t` and :math:`\\pi_t` the reordering of the batch.
JEM (Grathwohl et al., ICLR 2020) on image–label pairs ``(x, y)`` is

.. math::
    L = \\underbrace{-\\log p_\\theta(y \\mid x)}_{\\text{ExactNLL on } (y, x)}
      + w \\, \\underbrace{\\big[\\overline{E(x^+ \\mid y)} - \\overline{E(x^- \\mid y)}\\big]}_{
        \\text{ContrastiveDivergence on } (x, y)}.

The trainer stays generic: ``EBMModule(energy=ClassifierEnergy(...), objective=Combined(...))``.
Views are built in :meth:`Combined.bind` and share the energy's parameters; they are not
registered as submodules, so the energy's weights are stored once in a checkpoint, while
each term's own state (replay buffers, generators) is saved under ``terms.<name>``.

In a YAML config::

    objective:
      class_path: structebm.objectives.combined.Combined
      init_args:
        terms:
          - class_path: structebm.objectives.combined.ObjectiveTerm
            init_args:
              name: classify
              objective: {class_path: structebm.objectives.exact_nll.ExactNLL}
              view: structebm.energies.image_label.LabelGivenImage
              batch_order: [1, 0]
          - class_path: structebm.objectives.combined.ObjectiveTerm
            init_args:
              name: generate
              weight: 1.0
              objective: {class_path: structebm.objectives.contrastive.ContrastiveDivergence, init_args: {...}}
              view: structebm.energies.image_label.ImageGivenLabel
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import nn

from structebm.objectives.base import LossOutput, Objective, resolve_callable

__all__ = ["ObjectiveTerm", "Combined", "reorder_batch"]

ViewFactory = Callable[[nn.Module], nn.Module]


def reorder_batch(batch: Any, order: Optional[Sequence[int]], where: str) -> Any:
    """``tuple(batch[i] for i in order)``; the batch unchanged when ``order`` is ``None``.

    Shapes:
        - batch: a tuple or list of per-example tensors (each ``[B, ...]``)
        - returns: a tuple of ``len(order)`` of them
    """
    if order is None:
        return batch
    if not isinstance(batch, (tuple, list)):
        raise TypeError(f"{where}: batch_order {list(order)} needs a tuple or list batch, got {type(batch).__name__}")
    outside = [i for i in order if not -len(batch) <= i < len(batch)]
    if outside:
        raise ValueError(f"{where}: batch_order {list(order)} refers to item(s) {outside} of a batch of {len(batch)} items")
    return tuple(batch[i] for i in order)


class ObjectiveTerm(nn.Module):
    """One named term of :class:`Combined`: an objective, the view it trains, its weight and batch order.

    Args:
        name: key of the term; its metrics are logged as ``<name>/<metric>``. Letters, digits
            and underscores only.
        objective: the objective of this term.
        view: callable ``view(energy) -> nn.Module`` (a view class) or its dotted import path;
            ``None`` trains the energy itself.
        weight: non-negative weight :math:`w_t` of the term's loss.
        batch_order: indices of the batch items that form this term's batch, e.g. ``[1, 0]``
            turns ``(x, y)`` into ``(y, x)``; ``None`` passes the batch unchanged.
    """

    def __init__(
        self,
        name: str,
        objective: Objective,
        view: Union[str, ViewFactory, None] = None,
        weight: float = 1.0,
        batch_order: Optional[Sequence[int]] = None,
    ) -> None:
        super().__init__()
        if not isinstance(name, str) or not name or not name.replace("_", "a").isalnum():
            raise ValueError(f"ObjectiveTerm: name must be a non-empty identifier (letters, digits, _), got {name!r}")
        where = f"ObjectiveTerm '{name}'"
        if not isinstance(objective, Objective):
            raise TypeError(f"{where}: objective must be an Objective, got {type(objective).__name__}")
        weight = float(weight)
        if not weight >= 0.0 or weight == float("inf"):
            raise ValueError(f"{where}: weight must be finite and non-negative, got {weight}")
        if batch_order is not None:
            batch_order = list(batch_order)
            if not batch_order or any(isinstance(i, bool) or not isinstance(i, int) for i in batch_order):
                raise ValueError(f"{where}: batch_order must be a non-empty list of integers, got {batch_order}")
        self.name = name
        self.objective = objective
        self.view_factory = None if view is None else resolve_callable(view, "view", where)
        self.weight = weight
        self.batch_order = batch_order

    def view_of(self, energy: nn.Module) -> nn.Module:
        """The view of ``energy`` this term trains (the energy itself without a view)."""
        if self.view_factory is None:
            return energy
        view = self.view_factory(energy)
        if not isinstance(view, nn.Module):
            raise TypeError(f"ObjectiveTerm '{self.name}': the view returned {type(view).__name__}, not an nn.Module")
        return view


class Combined(Objective):
    """Weighted sum of named objectives, each on its own view of one energy.

    .. math::
        L = \\sum_t w_t \\, L_t\\big(V_t(E), \\pi_t(\\text{batch})\\big).

    Args:
        terms: the terms (at least one, unique names).

    Shapes:
        - batch: whatever the data module yields; each term reorders it with its ``batch_order``.
        - returns a scalar loss; metrics ``<name>/loss`` (the unweighted term loss) and
          ``<name>/<metric>`` for every metric of every term.
    """

    def __init__(self, terms: Sequence[ObjectiveTerm]) -> None:
        super().__init__()
        terms = list(terms)
        if not terms:
            raise ValueError("Combined: needs at least one ObjectiveTerm")
        for term in terms:
            if not isinstance(term, ObjectiveTerm):
                raise TypeError(f"Combined: every term must be an ObjectiveTerm, got {type(term).__name__}")
        names = [term.name for term in terms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Combined: term names must be unique; repeated: {duplicates}")
        self.terms = nn.ModuleDict({term.name: term for term in terms})
        self._views: dict[str, nn.Module] = {}
        self._bound_energy_id: Optional[int] = None

    def bind(self, energy: nn.Module) -> None:
        """Build every term's view of ``energy`` and bind the term's objective to it."""
        views: dict[str, nn.Module] = {}
        for name, term in self.terms.items():
            view = term.view_of(energy)
            term.objective.bind(view)
            views[name] = view
        self._views = views
        self._bound_energy_id = id(energy)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the views (they hold the energy); they are rebuilt on first use."""
        state = super().__getstate__()
        return {**state, "_views": {}, "_bound_energy_id": None}

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:
        if self._bound_energy_id != id(energy):
            self.bind(energy)
        total: Optional[torch.Tensor] = None
        metrics: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            term_batch = reorder_batch(batch, term.batch_order, f"Combined term '{name}'")
            out = term.objective(self._views[name], term_batch)
            weighted = out.loss * term.weight
            total = weighted if total is None else total + weighted
            metrics[f"{name}/loss"] = out.loss.detach()
            metrics.update({f"{name}/{key}": value for key, value in out.metrics.items()})
        return LossOutput(total, metrics)
