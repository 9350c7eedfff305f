"""Exact inference for linear-chain CRFs: log-partition, marginals, Viterbi, top-k, sampling.

A labelling ``y ∈ {0, …, K-1}^L`` of a sequence of length ``L`` scores

.. math::
    s(y) = \\pi_{y_0} + \\sum_{t=0}^{L-1} e_t[y_t] + \\sum_{t=1}^{L-1} A_{y_{t-1} y_t} + \\omega_{y_{L-1}},
    \\qquad p(y) = \\exp(s(y)) / Z,

with emissions ``e`` ``[B, T, K]``, transitions ``A`` ``[K, K]`` (``A[i, j]``: tag ``j`` after
tag ``i``), start ``π`` and end ``ω`` ``[K]``. A left-aligned boolean ``mask`` ``[B, T]`` gives each
sequence its length ``L_b ≥ 1``; positions past it never change any result. Optional
:class:`~structebm.structured.constraints.AllowedTransitions` set forbidden potentials to
``-inf``; every routine then gives forbidden labellings probability zero.

``log Z`` runs the forward recursion in scaled probability space, one matrix product per
step with ``W = exp(A - max A)`` and ``ψ_t = exp(e_t - m_t)``, ``m_t = max_k e_t[k]``:

.. math::
    \\alpha_t = (\\hat\\alpha_{t-1} W) \\odot \\psi_t, \\quad s_t = \\textstyle\\sum_k \\alpha_t[k], \\quad
    \\hat\\alpha_t = \\alpha_t / s_t, \\qquad
    \\log Z = \\sum_{t<L} (\\log s_t + m_t) + (L-1)\\max A + \\log \\textstyle\\sum_k \\hat\\alpha_{L-1}[k] e^{\\omega_k}.

Its gradient, the marginals, comes from the scaled backward recursion
``g_t = ψ_t ⊙ β̂_t / s_t``, ``β̂_{t-1} = W g_t``: node marginals ``μ_t = α̂_t ⊙ β̂_t`` and edge
marginals ``ξ_t = (α̂_{t-1}^⊤ g_t) ⊙ W``, in a hand-written autograd function (no autograd
through ``T`` steps). Rows where a normaliser falls below :data:`UNDERFLOW_LIMIT` (extreme
potentials, where scaled arithmetic would lose precision) are recomputed in log space.
Normalisers are summed in float64, and taken only every few steps
(:func:`~structebm.structured._forward_backward.normalisation_interval`; any positive ``s_t``
keeps the recursions exact). Viterbi runs the max-plus recursion on values only and
recomputes the best predecessor along the chosen path while backtracking (all rows at
once); top-k keeps ``k`` scores per tag with back-pointers; sampling is forward filtering,
backward sampling from the same scaled messages, one uniform per draw and step.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from structebm.structured._forward_backward import (
    UNDERFLOW_LIMIT,
    LogPartition,
    log_space_marginals,
    scaled_backward,
    scaled_forward,
    select_rows,
)
from structebm.structured._potentials import chain_lengths, one_intra_op_thread, prepare
from structebm.structured._sampling import sample_log_space, sample_scaled
from structebm.structured.constraints import AllowedTransitions

__all__ = [
    "UNDERFLOW_LIMIT",
    "log_partition",
    "marginals",
    "viterbi",
    "topk",
    "sample",
    "sequence_score",
    "chain_lengths",
]


def log_partition(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    mask: Optional[Tensor] = None,
    allowed: Optional[AllowedTransitions] = None,
) -> Tensor:
    """``log Z = log Σ_y exp(s(y))`` per sequence, differentiable (gradient = marginals).

    Shapes:
        - emissions: ``[B, T, K]``; transitions: ``[K, K]``; start, end: ``[K]``; mask: ``[B, T]`` bool
        - returns: ``[B]`` (``-inf`` when the constraints allow no labelling)
    """
    chain = prepare(emissions, transitions, start, end, mask, allowed, "log_partition")
    return LogPartition.apply(chain.emissions.transpose(0, 1), chain.transitions, chain.start, chain.end, chain.lengths, chain.valid)


def marginals(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    mask: Optional[Tensor] = None,
    allowed: Optional[AllowedTransitions] = None,
    edges: bool = False,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """Node marginals ``p(y_t = k)`` and, with ``edges``, ``p(y_{t-1} = i, y_t = j)``; not differentiable.

    Shapes:
        - returns: node ``[B, T, K]`` (zero past each length); with ``edges`` also
          ``[B, T-1, K, K]`` whose entry ``t-1`` is the transition into position ``t``.
    """
    chain = prepare(emissions, transitions, start, end, mask, allowed, "marginals")
    with torch.no_grad(), one_intra_op_thread(chain.transitions.device):
        fwd = scaled_forward(chain)
        messages, node = scaled_backward(chain, fwd, torch.ones_like(fwd.log_z))
        edge = (fwd.alpha[:-1, :, :, None] * messages[1:, :, None, :]) * fwd.weights if edges else None
        if fwd.log_space_rows.any():
            rows = fwd.log_space_rows
            _, sub_node, sub_edge = log_space_marginals(select_rows(chain, rows))
            node[:, rows] = sub_node
            if edge is not None:
                edge[:, rows] = sub_edge[1:]
    if edge is None:
        return node.transpose(0, 1)
    return node.transpose(0, 1), edge.transpose(0, 1)


def _backtrack(back_pointers: Tensor, last: Tensor) -> Tensor:
    """Follow back-pointers ``[T, R, S]`` (identity past each length) from states ``last`` ``[R, M]``.

    Shapes:
        - returns: ``[T, R, M]``, the state at every position of each of the ``R·M`` paths.
    """
    path = [last]
    for pointers in reversed(back_pointers.unbind(0)[1:]):
        path.append(pointers.gather(1, path[-1]))
    return torch.stack(path[::-1])


def _best_predecessors(best: Tensor, transitions: Tensor, state: Tensor, valid: Tensor) -> Tensor:
    """Backtrack from the final states ``state`` ``[B]`` through max-plus values ``best`` ``[T, B, K]``.

    The best predecessor of ``y_t`` is recomputed from ``best[t-1]`` along the chosen path only
    (any maximiser lies on an optimal path); past its length a row keeps its last state. On
    the CPU the ``T`` small steps run in NumPy, whose per-call cost is a fraction of a tensor
    operation's.

    Shapes:
        - returns: ``[T, B]`` long, 0 past each length.
    """
    length = best.shape[0]
    if best.device.type == "cpu":
        if best.dtype not in (torch.float32, torch.float64):  # NumPy has no bfloat16: compare in float32
            best, transitions = best.float(), transitions.float()
        values, into = best.numpy(), transitions.t().numpy()
        current = state.numpy().copy()
        inside = valid.numpy()
        path = np.zeros((length, current.shape[0]), dtype=np.int64)
        path[length - 1] = current
        for t in range(length - 1, 0, -1):
            np.copyto(current, (values[t - 1] + into[current]).argmax(axis=1), where=inside[t])
            path[t - 1] = current
        return torch.from_numpy(path).masked_fill_(~valid, 0)
    into = transitions.t().contiguous()
    path = [state]
    for t in range(length - 1, 0, -1):
        state = torch.where(valid[t], (best[t - 1] + into[state]).argmax(dim=1), state)
        path.append(state)
    return torch.stack(path[::-1]).masked_fill_(~valid, 0)


def viterbi(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    mask: Optional[Tensor] = None,
    allowed: Optional[AllowedTransitions] = None,
) -> tuple[Tensor, Tensor]:
    """Best labelling ``argmax_y s(y)`` and its score.

    .. math::
        v_t[j] = \\max_i (v_{t-1}[i] + A_{ij}) + e_t[j], \\qquad
        y_{t-1} = \\operatorname{argmax}_i (v_{t-1}[i] + A_{i y_t}).

    The maximum over ``i`` runs over the outermost axis of a ``[K, B, K]`` buffer (an
    element-wise maximum of ``K`` contiguous slices), and no back-pointers are stored.

    Shapes:
        - returns: scores ``[B]`` and tags ``[B, T]`` long (0 past each length).
    """
    chain = prepare(emissions, transitions, start, end, mask, allowed, "viterbi")
    with torch.no_grad(), one_intra_op_thread(chain.transitions.device):
        length, batch_size, num_tags = chain.emissions.shape
        best = torch.empty((length, batch_size, num_tags), dtype=chain.transitions.dtype, device=chain.transitions.device)
        torch.add(chain.emissions[0], chain.start, out=best[0])
        candidates = torch.empty((num_tags, batch_size, num_tags), dtype=best.dtype, device=best.device)
        transitions_from = chain.transitions[:, None, :]  # [i, 1, j]
        steps, emission_steps = best.unbind(0), chain.emissions.unbind(0)
        for t in range(1, length):
            torch.add(steps[t - 1].t()[:, :, None], transitions_from, out=candidates)
            torch.amax(candidates, dim=0, out=steps[t])
            steps[t].add_(emission_steps[t])
        rows = torch.arange(batch_size, device=best.device)
        scores, state = (best[chain.lengths - 1, rows] + chain.end).max(dim=1)
        path = _best_predecessors(best, chain.transitions, state, chain.valid)
    return scores, path.t()


def _topk_step_full(previous: Tensor, transitions_into: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` best of all ``K·k`` candidates ``previous[b, i, r] + A[i, j]`` per ``(b, j)``.

    Shapes:
        - previous: ``[B, K, k]`` (ranks sorted, best first); transitions_into: ``[K, K]`` (``[j, i]``)
        - returns: values ``[B, K, k]`` and flat back-pointers ``i·k + r`` ``[B, K, k]``.
    """
    batch_size, num_tags, _ = previous.shape
    candidates = previous[:, None, :, :] + transitions_into[None, :, :, None]  # [B, j, i, r]
    return candidates.view(batch_size, num_tags, num_tags * k).topk(k, dim=2)


def _topk_step_pruned(previous: Tensor, transitions_into: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """As :func:`_topk_step_full`, over the ``k`` predecessors with the best rank-0 candidates only.

    Every candidate of a predecessor ``i`` is at most its rank-0 one, so a predecessor outside
    the ``k`` best by rank 0 has ``k`` candidates at least as good elsewhere: ``k·k``
    candidates per ``(b, j)`` instead of ``K·k``.
    """
    batch_size, num_tags, _ = previous.shape
    heads = previous[:, None, :, 0] + transitions_into[None]  # [B, j, i]
    chosen = heads.topk(k, dim=2).indices  # [B, j, k] predecessors
    ranks = previous.gather(1, chosen.reshape(batch_size, num_tags * k, 1).expand(-1, -1, k)).view(batch_size, num_tags, k, k)
    links = transitions_into.expand(batch_size, -1, -1).gather(2, chosen)  # [B, j, k]
    values, index = (ranks + links[..., None]).view(batch_size, num_tags, k * k).topk(k, dim=2)
    predecessor = chosen.gather(2, torch.div(index, k, rounding_mode="floor"))
    return values, predecessor * k + index % k


def topk(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    k: int,
    mask: Optional[Tensor] = None,
    allowed: Optional[AllowedTransitions] = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` best labellings, best first (k-best max-plus recursion over ``K·k`` candidates).

    Where fewer than ``k`` labellings are allowed, the surplus entries have score ``-inf``.

    Shapes:
        - returns: scores ``[k, B]`` and tags ``[k, B, T]`` long (0 past each length).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"topk: k must be a positive int, got {k!r}")
    chain = prepare(emissions, transitions, start, end, mask, allowed, "topk")
    with torch.no_grad(), one_intra_op_thread(chain.transitions.device):
        length, batch_size, num_tags = chain.emissions.shape
        best = torch.full((length, batch_size, num_tags, k), float("-inf"), dtype=chain.transitions.dtype, device=chain.transitions.device)
        back_pointers = torch.zeros((length, batch_size, num_tags, k), dtype=torch.long, device=best.device)
        best[0, :, :, 0] = chain.emissions[0] + chain.start
        step = _topk_step_pruned if num_tags > 2 * k else _topk_step_full
        transitions_into = chain.transitions.t().contiguous()  # [j, i]
        for t in range(1, length):
            values, back_pointers[t] = step(best[t - 1], transitions_into, k)
            torch.add(values, chain.emissions[t][:, :, None], out=best[t])
        rows = torch.arange(batch_size, device=best.device)
        final = (best[chain.lengths - 1, rows] + chain.end[:, None]).reshape(batch_size, num_tags * k)
        scores, last = final.topk(k, dim=1)  # [B, k] over flattened (state, rank)
        identity = torch.arange(num_tags * k, device=best.device).reshape(num_tags, k).expand_as(back_pointers)
        back_pointers = torch.where(chain.valid[:, :, None, None], back_pointers, identity)
        flat_paths = _backtrack(back_pointers.reshape(length, batch_size, num_tags * k), last)
        paths = torch.div(flat_paths, k, rounding_mode="floor").masked_fill_(~chain.valid[:, :, None], 0)
    return scores.t(), paths.permute(2, 1, 0)


def sample(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    n: int,
    mask: Optional[Tensor] = None,
    allowed: Optional[AllowedTransitions] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Exact draws ``y ~ p(y)`` by forward filtering, backward sampling.

    .. math::
        y_{L-1} \\sim \\alpha_{L-1} \\odot e^{\\omega}, \\qquad y_t \\mid y_{t+1} \\sim \\alpha_t \\odot e^{A_{\\cdot, y_{t+1}}}.

    The forward messages are the scaled ones of :func:`log_partition` (any per-step scale
    cancels in each draw) and every step inverts a cumulative sum with one uniform; rows
    whose scaled messages underflow are sampled in log space with Gumbel-max instead.

    Shapes:
        - returns: ``[n, B, T]`` long (0 past each length).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"sample: n must be a positive int, got {n!r}")
    chain = prepare(emissions, transitions, start, end, mask, allowed, "sample")
    with torch.no_grad(), one_intra_op_thread(chain.transitions.device):
        fwd = scaled_forward(chain)
        tags = sample_scaled(fwd, chain.lengths, n, generator)
        if fwd.log_space_rows.any():
            rows = fwd.log_space_rows
            tags[:, :, rows] = sample_log_space(select_rows(chain, rows), n, generator)
    return tags.permute(1, 2, 0)


def sequence_score(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    tags: Tensor,
    mask: Optional[Tensor] = None,
    allowed: Optional[AllowedTransitions] = None,
) -> Tensor:
    """Score ``s(y)`` of given labellings, differentiable in the potentials (``-inf`` if forbidden).

    Shapes:
        - tags: ``[B, T]`` integer in ``[0, K)`` (any value past each length); returns ``[B]``.
    """
    chain = prepare(emissions, transitions, start, end, mask, allowed, "sequence_score")
    length, batch_size, num_tags = chain.emissions.shape
    if not isinstance(tags, Tensor) or tags.shape != (batch_size, length) or tags.is_floating_point():
        got = f"{tags.dtype} {tuple(tags.shape)}" if isinstance(tags, Tensor) else type(tags).__name__
        raise ValueError(f"sequence_score: tags must be an integer tensor of shape ({batch_size}, {length}), got {got}")
    valid = chain.valid.t()
    tags = tags.long().masked_fill(~valid, 0)
    out_of_range = (tags < 0) | (tags >= num_tags)
    if out_of_range.any():
        b, t = out_of_range.nonzero()[0].tolist()
        raise ValueError(f"sequence_score: tag {int(tags[b, t])} at (batch {b}, position {t}) is outside [0, {num_tags})")
    zero = chain.transitions.new_zeros(())
    emission_part = torch.where(valid, chain.emissions.transpose(0, 1).gather(2, tags[:, :, None]).squeeze(2), zero).sum(1)
    transition_part = torch.where(valid[:, 1:], chain.transitions[tags[:, :-1], tags[:, 1:]], zero).sum(1)
    last = tags.gather(1, (chain.lengths - 1)[:, None]).squeeze(1)
    return chain.start[tags[:, 0]] + emission_part + transition_part + chain.end[last]
