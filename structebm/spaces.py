"""State spaces: what a state ``x`` looks like and how to draw uninformed noise in it.

A space knows the event shape of one state, its dtype and its legal values. It is used
by chain sources (start chains from noise), by noise distributions and by objectives to
check data early:

- :class:`ContinuousSpace` — real tensors of a fixed event shape, optionally inside a box
  ``low <= x <= high``. Noise is uniform in the box, standard normal when unbounded.
- :class:`CategoricalSpace` — integer sequences ``[B, L]`` with values in ``[0, K)``,
  optionally restricted by a mask of allowed states per site. Noise is uniform over the
  allowed states of each site, independently.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from structebm.finite import nonfinite_rows

__all__ = ["ContinuousSpace", "CategoricalSpace", "Space"]

Bound = Union[float, Sequence[float], Tensor, None]


def _as_bound(value: Bound, shape: tuple[int, ...], name: str) -> Optional[Tensor]:
    if value is None:
        return None
    bound = torch.as_tensor(value, dtype=torch.get_default_dtype())
    try:
        return torch.broadcast_to(bound, shape).clone()
    except RuntimeError:
        raise ValueError(
            f"ContinuousSpace: {name} of shape {tuple(bound.shape)} does not broadcast to the event shape {shape}"
        ) from None


class ContinuousSpace:
    """Real-valued states of event shape ``shape``, optionally confined to a box.

    Noise is drawn as

    .. math::
        x \\sim \\mathcal{U}[\\text{low}, \\text{high}] \\text{ (bounded)}, \\qquad
        x \\sim \\mathcal{N}(0, I) \\text{ (unbounded)}.

    Args:
        shape: event shape of one state, e.g. ``(2,)`` or ``(3, 32, 32)``.
        low: lower bound (scalar or broadcastable to ``shape``), or ``None``.
        high: upper bound, or ``None``. Give both bounds or neither.

    Shapes:
        - states: ``[B, *shape]``, floating point.
    """

    def __init__(self, shape: Sequence[int], low: Bound = None, high: Bound = None) -> None:
        self.shape = tuple(int(s) for s in shape)
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"ContinuousSpace: shape must have positive sizes, got {self.shape}")
        if (low is None) != (high is None):
            raise ValueError("ContinuousSpace: give both low and high (a box) or neither (unbounded)")
        self.low = _as_bound(low, self.shape, "low")
        self.high = _as_bound(high, self.shape, "high")
        if self.low is not None and not bool((self.low < self.high).all()):
            raise ValueError("ContinuousSpace: low must be strictly below high everywhere")
        self.dtype = torch.get_default_dtype()

    @property
    def bounded(self) -> bool:
        """Whether states live in a box."""
        return self.low is not None

    def noise(self, n: int, generator: torch.Generator, device: Optional[torch.device] = None) -> Tensor:
        """Draw ``n`` noise states ``[n, *shape]`` on ``device`` (default: the generator's)."""
        device = generator.device if device is None else torch.device(device)
        if self.low is None:
            return torch.randn((n, *self.shape), generator=generator, device=device, dtype=self.dtype)
        unit = torch.rand((n, *self.shape), generator=generator, device=device, dtype=self.dtype)
        low, high = self.low.to(device), self.high.to(device)
        return low + (high - low) * unit

    def validate(self, x: Tensor, where: str) -> None:
        """Raise ``ValueError`` naming ``where`` if ``x`` is not a batch of states of this space."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{where}: expected a Tensor of shape [B, {', '.join(map(str, self.shape))}], got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{where}: a continuous state must be floating point, got dtype {x.dtype}")
        if tuple(x.shape[1:]) != self.shape or x.dim() != len(self.shape) + 1:
            raise ValueError(f"{where}: expected shape [B, {', '.join(map(str, self.shape))}], got {tuple(x.shape)}")
        rows = nonfinite_rows(x)
        if rows:
            raise ValueError(f"{where}: NaN or infinite values in row(s) {rows}")
        if self.low is not None:
            low, high = self.low.to(x.device, x.dtype), self.high.to(x.device, x.dtype)
            outside = ((x < low) | (x > high)).reshape(x.shape[0], -1).any(dim=1)
            if outside.any():
                rows = outside.nonzero().flatten()[:8].tolist()
                raise ValueError(f"{where}: values outside the box [low, high] in row(s) {rows}")

    def __repr__(self) -> str:
        box = "" if self.low is None else f", low={self.low.min().item():g}.., high={self.high.max().item():g}.."
        return f"ContinuousSpace(shape={self.shape}{box})"


class CategoricalSpace:
    """Sequences of ``length`` sites, each taking one of ``num_states`` values.

    With a mask, site ``i`` may only take states ``k`` with ``mask[i, k]`` true (a ``[K]``
    mask applies to every site). Noise draws each site uniformly among its allowed states:

    .. math::
        x_i \\sim \\mathcal{U}\\{k : \\text{mask}_{ik}\\}, \\quad i = 1, \\dots, L.

    Args:
        length: number of sites ``L``.
        num_states: number of states ``K`` per site.
        mask: optional boolean ``[K]`` or ``[L, K]`` of allowed states; every site needs one.

    Shapes:
        - states: ``[B, L]``, integer dtype, values in ``[0, K)``.
    """

    def __init__(self, length: int, num_states: int, mask: Optional[Tensor] = None) -> None:
        if int(length) <= 0 or int(num_states) <= 1:
            raise ValueError(f"CategoricalSpace: need length >= 1 and num_states >= 2, got {length}, {num_states}")
        self.length, self.num_states = int(length), int(num_states)
        self.shape = (self.length,)
        self.dtype = torch.long
        self.mask: Optional[Tensor] = None
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool)
            if mask.shape not in ((self.num_states,), (self.length, self.num_states)):
                raise ValueError(
                    f"CategoricalSpace: mask must have shape ({self.num_states},) or ({self.length}, {self.num_states}), "
                    f"got {tuple(mask.shape)}"
                )
            mask = torch.broadcast_to(mask, (self.length, self.num_states)).clone()
            empty = ~mask.any(dim=1)
            if empty.any():
                raise ValueError(f"CategoricalSpace: mask allows no state at site(s) {empty.nonzero().flatten().tolist()}")
            self.mask = mask

    def noise(self, n: int, generator: torch.Generator, device: Optional[torch.device] = None) -> Tensor:
        """Draw ``n`` states ``[n, L]`` uniformly among the allowed states of each site."""
        device = generator.device if device is None else torch.device(device)
        if self.mask is None:
            return torch.randint(0, self.num_states, (n, self.length), generator=generator, device=device)
        # Uniform among allowed states: argmax of i.i.d. uniforms restricted to the mask.
        keys = torch.rand((n, self.length, self.num_states), generator=generator, device=device)
        keys = keys.masked_fill(~self.mask.to(device), -1.0)
        return keys.argmax(dim=-1)

    def validate(self, x: Tensor, where: str) -> None:
        """Raise ``ValueError`` naming ``where`` if ``x`` is not a batch of legal sequences."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{where}: expected a Tensor of shape [B, {self.length}], got {type(x).__name__}")
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{where}: a categorical state must have an integer dtype, got {x.dtype}")
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"{where}: expected shape [B, {self.length}], got {tuple(x.shape)}")
        outside = ((x < 0) | (x >= self.num_states)).any(dim=1)
        if outside.any():
            rows = outside.nonzero().flatten()[:8].tolist()
            raise ValueError(f"{where}: values outside [0, {self.num_states}) in row(s) {rows}")
        if self.mask is not None:
            allowed = self.mask.to(x.device).gather(1, x.t().long()).t()
            bad = (~allowed).any(dim=1)
            if bad.any():
                raise ValueError(f"{where}: states not allowed by the mask in row(s) {bad.nonzero().flatten()[:8].tolist()}")

    def __repr__(self) -> str:
        return f"CategoricalSpace(length={self.length}, num_states={self.num_states}, masked={self.mask is not None})"


Space = Union[ContinuousSpace, CategoricalSpace]
