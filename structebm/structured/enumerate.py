"""Brute-force exact inference over tiny categorical state spaces.

A categorical state is a sequence ``x ∈ {0, …, K-1}^L``. When the number of
configurations ``K^L`` is small, everything is exact by listing all states in
lexicographic order (``x_0`` most significant):

.. math::
    \\operatorname{index}(x) = \\sum_{i=0}^{L-1} x_i K^{L-1-i}, \\qquad
    \\log Z = \\operatorname{logsumexp}_x \\bigl(-E(x)\\bigr), \\qquad
    \\mu_i(k) = \\sum_x p(x)\\,[x_i = k].

These helpers serve energies that offer exact inference on small spaces and tests that
compare samplers with the exact distribution (total-variation distance).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = [
    "MAX_ENUMERATION_STATES",
    "EnumerationTooLargeError",
    "check_categorical_states",
    "one_hot_states",
    "check_enumerable",
    "all_states",
    "state_index",
    "enumerate_energies",
    "log_partition_from_energies",
    "marginals_from_log_probs",
    "sample_from_log_probs",
    "empirical_distribution",
    "total_variation",
]

MAX_ENUMERATION_STATES: int = 2**18
"""Largest ``K^L`` the helpers accept (262 144 states)."""


class EnumerationTooLargeError(ValueError):
    """Raised when ``K^L`` exceeds the enumeration limit."""


def check_categorical_states(
    x: Tensor, num_states: Optional[int], length: Optional[int] = None, where: str = "state"
) -> None:
    """Check that ``x`` is an integer tensor ``[B, L]`` with values in ``[0, num_states)``.

    ``num_states=None`` checks only that values are non-negative; ``length=None`` accepts any
    ``L``. Raises a :class:`ValueError` (or :class:`TypeError` for a wrong type) naming the
    first offending ``(batch, site)`` position and its value.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a LongTensor [B, L], got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{where}: expected an integer tensor [B, L] of category indices, got dtype {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"{where}: expected shape [B, L], got {tuple(x.shape)}")
    if length is not None and x.shape[1] != length:
        raise ValueError(f"{where}: expected sequences of length {length}, got shape {tuple(x.shape)}")
    bad = (x < 0) if num_states is None else (x < 0) | (x >= num_states)
    if bad.any():
        b, i = bad.nonzero()[0].tolist()
        allowed = "[0, ∞)" if num_states is None else f"[0, {num_states})"
        raise ValueError(
            f"{where}: value {int(x[b, i])} at (batch {b}, site {i}) is outside {allowed}; "
            f"{int(bad.sum())} value(s) out of range in total"
        )


def one_hot_states(x: Tensor, num_states: int, dtype: Optional[torch.dtype] = None) -> Tensor:
    """Float one-hot encoding of (already checked) categorical states.

    Shapes:
        - x: ``[B, L]`` long in ``[0, K)``
        - returns: ``[B, L, K]`` of ``dtype`` (default dtype if ``None``)
    """
    categories = torch.arange(num_states, device=x.device)
    return (x.unsqueeze(-1) == categories).to(dtype or torch.get_default_dtype())


def check_enumerable(length: int, num_states: int, where: str, limit: int = MAX_ENUMERATION_STATES) -> int:
    """Return ``K^L``, or raise :class:`EnumerationTooLargeError` if it exceeds ``limit``."""
    if length < 1 or num_states < 1:
        raise ValueError(f"{where}: length and num_states must be positive, got L={length}, K={num_states}")
    size = num_states**length
    if size > limit:
        raise EnumerationTooLargeError(
            f"{where}: enumeration needs K**L = {num_states}**{length} = {size} states, above the limit of "
            f"{limit}; exact inference by enumeration is only for tiny models — use a sampler instead"
        )
    return size


def all_states(length: int, num_states: int, device: Optional[torch.device] = None) -> Tensor:
    """All ``K^L`` states in lexicographic order.

    Shapes:
        - returns: ``[K^L, L]`` long, row ``s`` is the state with :func:`state_index` ``s``.
    """
    size = check_enumerable(length, num_states, "all_states")
    index = torch.arange(size, device=device)
    place_values = num_states ** torch.arange(length - 1, -1, -1, device=device)
    return torch.div(index[:, None], place_values, rounding_mode="floor") % num_states


def state_index(x: Tensor, num_states: int) -> Tensor:
    """Lexicographic index of each state, the row of :func:`all_states` it equals.

    Shapes:
        - x: ``[B, L]`` long
        - returns: ``[B]`` long
    """
    check_categorical_states(x, num_states, where="state_index")
    check_enumerable(x.shape[1], num_states, "state_index")
    place_values = num_states ** torch.arange(x.shape[1] - 1, -1, -1, device=x.device)
    return (x.long() * place_values).sum(dim=1)


def enumerate_energies(
    energy_of_states: Callable[[Tensor], Tensor],
    length: int,
    num_states: int,
    device: Optional[torch.device] = None,
    chunk_size: int = 8192,
) -> Tensor:
    """Energies of all states, evaluated in chunks to bound memory.

    Args:
        energy_of_states: maps states ``[S_chunk, L]`` to energies ``[..., S_chunk]``
            (leading dimensions, e.g. one per condition, are kept).
        length, num_states: ``L`` and ``K``.
        device: where to build the states.
        chunk_size: states per call.

    Shapes:
        - returns: ``[..., K^L]``, ordered as :func:`all_states`.
    """
    states = all_states(length, num_states, device)
    chunks = [energy_of_states(chunk) for chunk in states.split(chunk_size)]
    return torch.cat(chunks, dim=-1)


def log_partition_from_energies(energies: Tensor) -> Tensor:
    """``log Z = logsumexp(-E)`` over the last dimension; differentiable.

    Shapes:
        - energies: ``[..., S]``
        - returns: ``[...]``
    """
    return torch.logsumexp(-energies, dim=-1)


def marginals_from_log_probs(log_probs: Tensor, length: int, num_states: int) -> Tensor:
    """Single-site marginals ``μ_i(k) = Σ_x p(x)[x_i = k]`` from enumerated log-probabilities.

    Shapes:
        - log_probs: ``[..., K^L]`` ordered as :func:`all_states`
        - returns: ``[..., L, K]``
    """
    check_enumerable(length, num_states, "marginals_from_log_probs")
    if log_probs.shape[-1] != num_states**length:
        raise ValueError(
            f"marginals_from_log_probs: expected {num_states}**{length} log-probabilities in the last "
            f"dimension, got shape {tuple(log_probs.shape)}"
        )
    # p is [..., K, K, ..., K] with one axis per site; site i's marginal sums out the others.
    probs = log_probs.exp().reshape(*log_probs.shape[:-1], *([num_states] * length))
    batch_dims = log_probs.dim() - 1
    site_marginals = []
    for site in range(length):
        other_axes = [batch_dims + a for a in range(length) if a != site]
        site_marginals.append(probs.sum(dim=other_axes) if other_axes else probs)
    return torch.stack(site_marginals, dim=-2)


def sample_from_log_probs(
    log_probs: Tensor, length: int, num_states: int, n: int, generator: Optional[torch.Generator] = None
) -> Tensor:
    """Exact draws from enumerated log-probabilities.

    Shapes:
        - log_probs: ``[S]`` or ``[B, S]`` with ``S = K^L``
        - returns: ``[n, L]`` or ``[n, B, L]`` long (sample dimension first)
    """
    if n < 1:
        raise ValueError(f"sample_from_log_probs: n must be a positive number of samples, got {n}")
    states = all_states(length, num_states, log_probs.device)
    probs = log_probs.detach().exp()
    flat = probs.reshape(-1, probs.shape[-1])
    idx = torch.multinomial(flat, n, replacement=True, generator=generator)  # [B', n]
    draws = states[idx.T]  # [n, B', L]
    return draws.reshape(n, *probs.shape[:-1], length)


def empirical_distribution(x: Tensor, num_states: int) -> Tensor:
    """Frequencies of each of the ``K^L`` states among the rows of ``x``.

    Shapes:
        - x: ``[N, L]`` long
        - returns: ``[K^L]`` float, sums to one, ordered as :func:`all_states`
    """
    index = state_index(x, num_states)
    counts = torch.bincount(index, minlength=num_states ** x.shape[1])
    return counts.to(torch.get_default_dtype()) / x.shape[0]


def total_variation(p: Tensor, q: Tensor) -> Tensor:
    """Total-variation distance ``½ Σ_s |p_s - q_s|`` over the last dimension.

    Shapes:
        - p, q: ``[..., S]``
        - returns: ``[...]``
    """
    if p.shape != q.shape:
        raise ValueError(f"total_variation: shapes differ, {tuple(p.shape)} vs {tuple(q.shape)}")
    return 0.5 * (p - q.to(p.dtype)).abs().sum(dim=-1)
