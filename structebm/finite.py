"""A finiteness test cheap enough for sampling and training loops.

If any element of a floating-point tensor is NaN or :math:`\\pm\\infty`, so is its sum;
a finite sum therefore proves every element finite with one reduction (and one device
sync), where the element-wise ``torch.isfinite(x).all()`` makes several passes and a
boolean copy of ``x``. The converse does not hold: finite values whose sum overflows give
an infinite sum, so a non-finite sum only means "look closer", and callers then run the
exact per-row test that names the offending rows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["sums_are_finite", "nonfinite_rows"]


def sums_are_finite(*tensors: Tensor) -> bool:
    """``True`` if the sum of every floating-point tensor given is finite (so all their elements are).

    Integer and boolean tensors are always finite and are skipped. Half-precision tensors are
    summed in float32, so that their sums overflow no sooner than single precision.
    ``False`` is inconclusive: it is also returned when finite values overflow the sum.
    """
    total = None
    for t in tensors:
        if not t.is_floating_point():
            continue
        s = t.sum(dtype=torch.float32) if t.element_size() < 4 else t.sum()
        total = s if total is None else total + s
    return total is None or math.isfinite(total.item())  # one sync; no further tensor op


def nonfinite_rows(x: Tensor, limit: int = 8) -> list[int]:
    """The first ``limit`` indices of the rows of ``x`` ``[B, *event]`` holding NaN or infinity.

    Empty when every value is finite; one summed reduction decides that in the common case,
    and only a non-finite sum runs the element-wise per-row test.
    """
    if sums_are_finite(x):
        return []
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
    return bad.nonzero().flatten()[:limit].tolist()
