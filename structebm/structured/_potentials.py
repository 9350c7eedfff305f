"""Checked linear-chain potentials in time-major layout, shared by every inference routine.

:func:`prepare` validates emissions ``[B, T, K]``, transitions ``[K, K]``, start and end ``[K]``
and a left-aligned mask ``[B, T]``, applies forbidden transitions (``-inf``) and returns a
:class:`Chain` with emissions as a ``[T, B, K]`` view in one common dtype.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, NamedTuple, Optional

import torch
from torch import Tensor

from structebm.finite import sums_are_finite
from structebm.structured.constraints import AllowedTransitions, apply_allowed, check_allowed

__all__ = ["Chain", "chain_lengths", "prepare", "finite_max", "one_intra_op_thread"]


class Chain(NamedTuple):
    """Checked potentials (constraints applied, one dtype) in time-major layout."""

    emissions: Tensor  # [T, B, K] view
    transitions: Tensor  # [K, K]
    start: Tensor  # [K]
    end: Tensor  # [K]
    lengths: Tensor  # [B] long
    valid: Tensor  # [T, B] bool


def chain_lengths(mask: Optional[Tensor], batch_size: int, length: int, device: torch.device, where: str) -> Tensor:
    """Lengths ``[B]`` of a left-aligned mask ``[B, T]``; every sequence must have length ≥ 1."""
    if mask is None:
        return torch.full((batch_size,), length, dtype=torch.long, device=device)
    if not isinstance(mask, Tensor) or mask.shape != (batch_size, length):
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"{where}: mask must have shape ({batch_size}, {length}), got {got}")
    mask = mask.to(device=device, dtype=torch.bool)
    lengths = mask.sum(dim=1)
    left_aligned = torch.arange(length, device=device)[None, :] < lengths[:, None]
    wrong = (mask != left_aligned).any(dim=1) | (lengths == 0)
    if wrong.any():
        rows = wrong.nonzero().flatten()[:8].tolist()
        raise ValueError(
            f"{where}: mask rows {rows} are not left-aligned with at least one position "
            "(each row must be True for its first L positions and False after)"
        )
    return lengths


def prepare(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    mask: Optional[Tensor],
    allowed: Optional[AllowedTransitions],
    where: str,
) -> Chain:
    if not isinstance(emissions, Tensor) or emissions.dim() != 3 or not emissions.is_floating_point():
        got = f"{emissions.dtype} {tuple(emissions.shape)}" if isinstance(emissions, Tensor) else type(emissions).__name__
        raise ValueError(f"{where}: emissions must be a float tensor [B, T, K], got {got}")
    batch_size, length, num_tags = emissions.shape
    if batch_size == 0 or length == 0 or num_tags == 0:
        raise ValueError(f"{where}: emissions has an empty dimension, shape {tuple(emissions.shape)}")
    for name, value, shape in (("transitions", transitions, (num_tags, num_tags)), ("start", start, (num_tags,)), ("end", end, (num_tags,))):
        if not isinstance(value, Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{where}: {name} must have shape {shape} for K={num_tags} tags, got {got}")
    if not sums_are_finite(emissions, transitions, start, end):  # -inf is allowed: look closer
        _check_no_nan_or_positive_infinity(emissions, transitions, start, end, where)
    if allowed is not None:
        check_allowed(allowed, num_tags, where)
    dtype = torch.promote_types(torch.promote_types(emissions.dtype, transitions.dtype), torch.promote_types(start.dtype, end.dtype))
    transitions, start, end = apply_allowed(transitions.to(dtype), start.to(dtype), end.to(dtype), allowed)
    lengths = chain_lengths(mask, batch_size, length, emissions.device, where)
    valid = torch.arange(length, device=emissions.device)[:, None] < lengths[None, :]
    return Chain(emissions.to(dtype).transpose(0, 1), transitions, start, end, lengths, valid)


def _check_no_nan_or_positive_infinity(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, where: str) -> None:
    """Reject NaN and ``+inf`` (``-inf``, a forbidden label or transition, is allowed), naming where."""
    for name, value in (("transitions", transitions), ("start", start), ("end", end)):
        if torch.isnan(value).any() or (value == float("inf")).any():
            raise ValueError(f"{where}: {name} contains NaN or +inf")
    bad = torch.isnan(emissions) | (emissions == float("inf"))
    if bad.any():
        b, t, k = bad.nonzero()[0].tolist()
        raise ValueError(f"{where}: emissions is NaN or +inf at (batch {b}, position {t}, tag {k})")


def finite_max(values: Tensor, dim: Optional[int] = None) -> Tensor:
    """Maximum (over ``dim`` with kept dims, or overall), with ``-inf`` replaced by 0 as a safe shift."""
    top = values.max() if dim is None else values.amax(dim=dim, keepdim=True)
    return top.masked_fill(top == float("-inf"), 0.0)


_thread_lock = threading.Lock()
_thread_users = 0
_saved_threads = 1


@contextlib.contextmanager
def one_intra_op_thread(device: torch.device) -> Iterator[None]:
    """Run a ``T``-step recursion on one intra-op thread (CPU only; restores the setting after).

    Each step works on ``[B, K]`` or ``[K, B, K]`` tensors, far too small for threads to pay:
    a threaded BLAS product of ``[32, 10] x [10, 10]`` takes microseconds on one thread but
    can wait milliseconds for a second one when other processes hold the cores. Nested and
    concurrent uses share one saved setting, restored when the last one leaves.
    """
    global _thread_users, _saved_threads
    if torch.device(device).type != "cpu":
        yield
        return
    with _thread_lock:
        if _thread_users == 0:
            _saved_threads = torch.get_num_threads()
            if _saved_threads > 1:
                torch.set_num_threads(1)
        _thread_users += 1
    try:
        yield
    finally:
        with _thread_lock:
            _thread_users -= 1
            if _thread_users == 0 and _saved_threads > 1:
                torch.set_num_threads(_saved_threads)
