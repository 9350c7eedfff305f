"""Condition types shared by energies and data: a batch of sequences and their mask.

A condition ``c`` travels with the state through the energy contract ``forward(x, c)``.
For label sequences the condition is the input sentence, which needs a mask when the
sentences have different lengths. :class:`SequenceCondition` holds both and behaves like
a batch: it can be indexed by rows and moved to a device. It lives below every layer, so
that data modules build it and energies read it without one importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from torch import Tensor

__all__ = ["SequenceCondition", "detach_condition", "select_rows"]


def _index_batch(value: Any, index: Any) -> Any:
    if isinstance(value, Tensor):
        return value[index]
    if isinstance(value, dict):
        return {key: _index_batch(item, index) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_index_batch(item, index) for item in value)
    raise TypeError(f"SequenceCondition: cannot index inputs of type {type(value).__name__}")


def _move(value: Any, device: Any, non_blocking: bool) -> Any:
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {key: _move(item, device, non_blocking) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_move(item, device, non_blocking) for item in value)
    return value


@dataclass
class SequenceCondition:
    """The input of a batch of sequences and their left-aligned mask.

    Attributes:
        inputs: what the emission model takes (a tensor, or a dict / tuple of tensors with
            batch first), or the emissions ``[B, T, K]`` themselves when there is no model.
        mask: ``[B, T]`` bool, true on the first ``L_b`` positions of row ``b``; ``None`` = full.
        encoded: true when ``inputs`` are already what the energy's encoder made of the input
            (a CRF's emissions ``[B, T, K]``, from ``encode_condition``), so it is not run again.
    """

    inputs: Any
    mask: Optional[Tensor] = None
    encoded: bool = False

    @property
    def batch_size(self) -> int:
        if self.mask is not None:
            return int(self.mask.shape[0])
        first = self.inputs
        while isinstance(first, (dict, tuple, list)):
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        return int(first.shape[0])

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: Any) -> "SequenceCondition":
        """The rows ``index`` (int list, slice, bool or long tensor) of the batch."""
        mask = None if self.mask is None else self.mask[index]
        return SequenceCondition(_index_batch(self.inputs, index), mask, self.encoded)

    def to(self, device: Any, non_blocking: bool = False) -> "SequenceCondition":
        """The same condition with every tensor on ``device`` (dtypes unchanged)."""
        mask = None if self.mask is None else self.mask.to(device, non_blocking=non_blocking)
        return SequenceCondition(_move(self.inputs, device, non_blocking), mask, self.encoded)

    def detach(self) -> "SequenceCondition":
        """The same condition with every tensor cut from the autograd graph."""
        return SequenceCondition(detach_condition(self.inputs), self.mask, self.encoded)


def detach_condition(c: Any) -> Any:
    """``c`` with every tensor in it detached: a tensor, a :class:`SequenceCondition`, or a
    dict / tuple / list of them; anything else (``None``, numbers, strings) is returned as is."""
    if isinstance(c, (Tensor, SequenceCondition)):
        return c.detach()
    if isinstance(c, dict):
        return {key: detach_condition(item) for key, item in c.items()}
    if isinstance(c, (tuple, list)):
        return type(c)(detach_condition(item) for item in c)
    return c


def select_rows(c: Any, index: Tensor) -> Any:
    """Rows ``index`` (a long tensor ``[M]``) of a batch of conditions: a tensor, a
    :class:`SequenceCondition` or any batch indexable by a long tensor, a dict / tuple / list of
    them, or ``None``. Repeating each of ``B`` rows ``M`` times is
    ``select_rows(c, torch.arange(B).repeat_interleave(M))``."""
    if c is None:
        return None
    if isinstance(c, Tensor):
        return c.index_select(0, index.to(c.device))
    if isinstance(c, dict):
        return {key: select_rows(value, index) for key, value in c.items()}
    if isinstance(c, (tuple, list)):
        return type(c)(select_rows(value, index) for value in c)
    if not hasattr(c, "__getitem__"):
        raise TypeError(f"select_rows: cannot select rows of a condition of type {type(c).__name__}; give a tensor or an indexable batch")
    return c[index]
