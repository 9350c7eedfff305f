"""Backward sampling for linear chains, given forward messages (see :func:`structebm.structured.linear_chain.sample`).

:func:`sample_scaled` draws from the scaled probability-space messages of
:func:`~structebm.structured._forward_backward.scaled_forward` by inverting a cumulative sum;
:func:`sample_log_space` draws with Gumbel-max from log-space messages, for rows whose scaled
messages underflow.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from structebm.structured._forward_backward import Scaled, log_space_forward
from structebm.structured._potentials import Chain

__all__ = ["sample_scaled", "sample_log_space"]


def sample_scaled(fwd: Scaled, lengths: Tensor, n: int, generator: Optional[torch.Generator]) -> Tensor:
    """Backward sampling in probability space from scaled forward messages, one uniform per draw and step.

    ``y_t`` given ``y_{t+1}`` is drawn by inverting the cumulative sum of ``α̂_t ⊙ W_{·, y_{t+1}}``
    with ``u ∈ (0, 1]``, so zero-probability tags are never chosen.

    Shapes:
        - returns: ``[T, n, B]`` long (0 past each length).
    """
    length, batch_size, num_tags = fwd.alpha.shape
    device = fwd.alpha.device
    uniforms = 1.0 - torch.rand((length, n, batch_size, 1), generator=generator, device=device, dtype=fwd.alpha.dtype)
    last = lengths - 1
    tags = torch.zeros((length, n, batch_size), dtype=torch.long, device=device)
    following = torch.zeros((n, batch_size), dtype=torch.long, device=device)
    weights_into = fwd.weights.t()  # row j: weights of every tag followed by j
    for t in range(length - 1, -1, -1):
        link = torch.where((last == t)[None, :, None], fwd.end_weights, weights_into[following])
        cumulative = (link * fwd.alpha[t]).cumsum_(dim=2)
        below = cumulative < uniforms[t] * cumulative[:, :, -1:]
        choice = below.sum(dim=2).clamp_(max=num_tags - 1)
        following = torch.where((t <= last)[None, :], choice, 0)
        tags[t] = following
    return tags


def sample_log_space(chain: Chain, n: int, generator: Optional[torch.Generator]) -> Tensor:
    """Backward sampling from log-space forward messages with Gumbel-max (rows with extreme potentials).

    Shapes:
        - returns: ``[T, n, B]`` long (0 past each length).
    """
    log_alpha, _ = log_space_forward(chain)
    length, batch_size, num_tags = log_alpha.shape
    uniforms = torch.rand((length, n, batch_size, num_tags), generator=generator, device=log_alpha.device, dtype=log_alpha.dtype)
    gumbels = -torch.log(-torch.log(uniforms.clamp_(min=torch.finfo(log_alpha.dtype).tiny)))
    last = chain.lengths - 1
    tags = torch.zeros((length, n, batch_size), dtype=torch.long, device=log_alpha.device)
    following = torch.zeros((n, batch_size), dtype=torch.long, device=log_alpha.device)
    transitions_into = chain.transitions.t()  # row j: scores of every tag followed by j
    for t in range(length - 1, -1, -1):
        link = torch.where((last == t)[None, :, None], chain.end, transitions_into[following])
        choice = (log_alpha[t] + link + gumbels[t]).argmax(dim=2)
        tags[t] = torch.where((t <= last)[None, :], choice, 0)
        following = tags[t]
    return tags
