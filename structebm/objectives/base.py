"""The objective contract: ``forward(energy, batch) -> LossOutput``.

An objective is an :class:`torch.nn.Module` (so that state such as a replay buffer or a
learned ``log Z`` is saved in checkpoints) that turns an energy and a batch of data into
a scalar loss plus detached metrics. It checks the capabilities it needs in
``bind(energy)``, which the trainer calls once before training.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from torch import Tensor, nn

from structebm.finite import nonfinite_rows

__all__ = ["LossOutput", "Objective", "split_batch", "check_data", "resolve_callable"]


@dataclass
class LossOutput:
    """A scalar loss and metrics (floats or 0-d tensors, logged as they are)."""

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """Base class: subclasses implement :meth:`forward` and may override :meth:`bind`."""

    def bind(self, energy: nn.Module) -> None:
        """Check once, before training, that ``energy`` has every capability needed."""

    def forward(self, energy: nn.Module, batch: Any) -> LossOutput:  # pragma: no cover
        raise NotImplementedError


def split_batch(batch: Any) -> tuple[Any, Optional[Tensor]]:
    """Split a batch into data ``x`` and condition ``c``.

    Accepts ``x``; a ``(x, c)`` tuple or list (a 1-tuple means no condition); or a mapping
    with keys ``"x"`` and optionally ``"c"``.
    """
    if isinstance(batch, dict):
        if "x" not in batch:
            raise KeyError(f"a dict batch needs key 'x' (and optionally 'c'); got keys {sorted(batch)}")
        return batch["x"], batch.get("c")
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None
        if len(batch) == 2:
            return batch[0], batch[1]
        raise ValueError(f"a tuple batch must be (x,) or (x, c); got {len(batch)} items")
    return batch, None


def check_data(x: Any, where: str) -> None:
    """Reject floating-point data with NaN or infinity, naming the rows."""
    if isinstance(x, Tensor) and x.is_floating_point():
        rows = nonfinite_rows(x)
        if rows:
            raise ValueError(f"{where}: the data batch has NaN or infinite values in row(s) {rows}")


def resolve_callable(spec: Union[str, Callable[..., Any]], what: str, where: str) -> Callable[..., Any]:
    """Return ``spec`` if callable, else import the dotted path it names (as YAML configs give it).

    Args:
        spec: a callable, or a dotted import path such as ``"structebm.samplers.langevin.langevin"``.
        what: what the callable is, for error messages (e.g. ``"sampler_factory"``).
        where: the caller, for error messages.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or "." not in spec:
        raise TypeError(f"{where}: {what} must be a callable or a dotted import path, got {spec!r}")
    module_name, _, attribute = spec.rpartition(".")
    try:
        resolved = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{where}: cannot import {what} {spec!r}: {error}") from None
    if not callable(resolved):
        raise TypeError(f"{where}: {what} {spec!r} is not callable")
    return resolved
