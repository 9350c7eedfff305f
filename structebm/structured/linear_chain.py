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
Normalisers are summed in float64. Viterbi runs the max-plus recursion on values only and
recomputes the best predecessor along the chosen path while backtracking (all rows at
once); top-k keeps ``k`` scores per tag with back-pointers; sampling is forward filtering,
backward sampling.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch
from torch import Tensor

from structebm.structured.constraints import AllowedTransitions, apply_allowed, check_allowed

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

UNDERFLOW_LIMIT: dict[torch.dtype, float] = {torch.float16: 1e-3, torch.bfloat16: 1e-3, torch.float32: 1e-20, torch.float64: 1e-200}
"""Smallest per-step normaliser ``s_t`` trusted in scaled arithmetic, per dtype."""


class _Chain(NamedTuple):
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


def _prepare(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    mask: Optional[Tensor],
    allowed: Optional[AllowedTransitions],
    where: str,
) -> _Chain:
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
        if torch.isnan(value).any() or (value == float("inf")).any():
            raise ValueError(f"{where}: {name} contains NaN or +inf")
    if not torch.isfinite(emissions).all():
        bad = torch.isnan(emissions) | (emissions == float("inf"))
        if bad.any():
            b, t, k = bad.nonzero()[0].tolist()
            raise ValueError(f"{where}: emissions is NaN or +inf at (batch {b}, position {t}, tag {k})")
    if allowed is not None:
        check_allowed(allowed, num_tags, where)
    dtype = torch.promote_types(torch.promote_types(emissions.dtype, transitions.dtype), torch.promote_types(start.dtype, end.dtype))
    transitions, start, end = apply_allowed(transitions.to(dtype), start.to(dtype), end.to(dtype), allowed)
    lengths = chain_lengths(mask, batch_size, length, emissions.device, where)
    valid = torch.arange(length, device=emissions.device)[:, None] < lengths[None, :]
    return _Chain(emissions.to(dtype).transpose(0, 1), transitions, start, end, lengths, valid)


def _finite_max(values: Tensor, dim: Optional[int] = None) -> Tensor:
    """Maximum (over ``dim`` with kept dims, or overall), with ``-inf`` replaced by 0 as a safe shift."""
    top = values.max() if dim is None else values.amax(dim=dim, keepdim=True)
    return top.masked_fill(top == float("-inf"), 0.0)


class _Scaled(NamedTuple):
    alpha: Tensor  # [T, B, K] normalised forward messages, zero where invalid or log-space rows
    ratio: Tensor  # [T, B, K] ψ_t / s_t, zero where invalid
    weights: Tensor  # [K, K] exp(A - max A)
    end_weights: Tensor  # [K] exp(ω - max ω)
    final: Tensor  # [B] Σ_k α̂_{L-1}[k] exp(ω_k - max ω)
    log_z: Tensor  # [B]
    log_space_rows: Tensor  # [B] bool, rows computed in log space


def _scaled_forward(chain: _Chain) -> _Scaled:
    length, batch_size, num_tags = chain.emissions.shape
    psi = torch.empty((length, batch_size, num_tags), dtype=chain.transitions.dtype, device=chain.transitions.device)
    psi.copy_(chain.emissions)
    psi[0] += chain.start
    shift = _finite_max(psi, dim=2)  # [T, B, 1]
    psi.sub_(shift).exp_()
    trans_shift = _finite_max(chain.transitions)
    weights = (chain.transitions - trans_shift).exp()
    end_shift = _finite_max(chain.end)
    end_weights = (chain.end - end_shift).exp()

    alpha = torch.empty_like(psi)
    norms = torch.empty((length, batch_size, 1), dtype=psi.dtype, device=psi.device)
    alpha_steps, psi_steps, norm_steps = alpha.unbind(0), psi.unbind(0), norms.unbind(0)
    torch.sum(psi_steps[0], dim=1, keepdim=True, out=norm_steps[0])
    torch.div(psi_steps[0], norm_steps[0], out=alpha_steps[0])
    for previous, current, psi_t, norm_t in zip(alpha_steps, alpha_steps[1:], psi_steps[1:], norm_steps[1:]):
        torch.mm(previous, weights, out=current)
        current.mul_(psi_t)
        torch.sum(current, dim=1, keepdim=True, out=norm_t)
        current.div_(norm_t)

    rows = torch.arange(batch_size, device=psi.device)
    final = alpha[chain.lengths - 1, rows] @ end_weights
    norms = norms.squeeze(2)
    tiny = UNDERFLOW_LIMIT.get(psi.dtype, 1e-20)
    log_space_rows = (chain.valid & ~(norms >= tiny)).any(dim=0) | ~(final >= tiny)
    log_steps = torch.where(chain.valid, norms.double().log() + shift.squeeze(2).double(), 0.0).sum(dim=0)
    log_z = log_steps + final.double().log() + (chain.lengths - 1).double() * float(trans_shift) + float(end_shift)
    log_z = log_z.to(psi.dtype)
    unused = (~chain.valid | log_space_rows[None, :])[:, :, None]
    if log_space_rows.any():
        log_z[log_space_rows] = _log_space_forward(_select_rows(chain, log_space_rows))[1]
    ratio = psi.div_(norms[:, :, None]).masked_fill_(unused, 0.0)
    alpha.masked_fill_(unused, 0.0)
    return _Scaled(alpha, ratio, weights, end_weights, final, log_z, log_space_rows)


def _scaled_backward(chain: _Chain, fwd: _Scaled, row_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Messages ``g_t`` and node marginals ``μ_t``, each row scaled by ``row_weights[b]``.

    Shapes:
        - row_weights: ``[B]``; returns ``g`` ``[T, B, K]`` and ``μ`` ``[T, B, K]`` (time-major).
    """
    length, batch_size, num_tags = fwd.alpha.shape
    scale = torch.where(fwd.log_space_rows, 0.0, row_weights / fwd.final)
    injected = torch.zeros_like(fwd.alpha)
    rows = torch.arange(batch_size, device=scale.device)
    injected[chain.lengths - 1, rows] = scale[:, None] * fwd.end_weights
    beta = injected
    messages = torch.empty_like(fwd.alpha)
    messages[0].zero_()
    weights_t = fwd.weights.t()
    beta_steps, message_steps, ratio_steps = beta.unbind(0), messages.unbind(0), fwd.ratio.unbind(0)
    for t in range(length - 1, 0, -1):
        torch.mul(ratio_steps[t], beta_steps[t], out=message_steps[t])
        beta_steps[t - 1].addmm_(message_steps[t], weights_t)
    return messages, fwd.alpha * beta


def _select_rows(chain: _Chain, rows: Tensor) -> _Chain:
    return chain._replace(emissions=chain.emissions[:, rows], lengths=chain.lengths[rows], valid=chain.valid[:, rows])


def _log_space_forward(chain: _Chain) -> tuple[Tensor, Tensor]:
    """Log forward messages ``[T, B, K]`` (held constant past each length) and ``log Z`` ``[B]``."""
    log_alpha = torch.empty(chain.emissions.shape, dtype=chain.transitions.dtype, device=chain.transitions.device)
    log_alpha[0] = chain.emissions[0] + chain.start
    for t in range(1, log_alpha.shape[0]):
        step = torch.logsumexp(log_alpha[t - 1][:, :, None] + chain.transitions, dim=1) + chain.emissions[t]
        log_alpha[t] = torch.where(chain.valid[t][:, None], step, log_alpha[t - 1])
    return log_alpha, torch.logsumexp(log_alpha[-1] + chain.end, dim=1)


def _log_space_marginals(chain: _Chain) -> tuple[Tensor, Tensor, Tensor]:
    """Log-space forward–backward: ``log Z`` ``[B]``, node ``[T, B, K]``, edge ``[T, B, K, K]`` marginals.

    Edge entry ``t`` is the transition into position ``t`` (entry 0 is zero).
    """
    log_alpha, log_z = _log_space_forward(chain)
    log_beta = torch.empty_like(log_alpha)
    log_beta[-1] = chain.end.expand_as(log_beta[-1])
    for t in range(log_alpha.shape[0] - 2, -1, -1):
        step = torch.logsumexp(chain.transitions + (chain.emissions[t + 1] + log_beta[t + 1])[:, None, :], dim=2)
        log_beta[t] = torch.where(chain.valid[t + 1][:, None], step, log_beta[t + 1])
    norm = log_z[None, :, None]
    node = (log_alpha + log_beta - norm).exp().nan_to_num(0.0) * chain.valid[:, :, None]
    edge = torch.zeros(node.shape + node.shape[-1:], dtype=node.dtype, device=node.device)
    if node.shape[0] > 1:
        edge_logits = (
            log_alpha[:-1, :, :, None] + chain.transitions + (chain.emissions[1:] + log_beta[1:])[:, :, None, :]
        )
        edge[1:] = (edge_logits - norm[..., None]).exp().nan_to_num(0.0) * chain.valid[1:, :, None, None]
    return log_z, node, edge


class _LogPartition(torch.autograd.Function):
    """``log Z`` with the forward–backward algorithm as its backward pass."""

    @staticmethod
    def forward(ctx, emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor, valid: Tensor) -> Tensor:  # type: ignore[override]
        chain = _Chain(emissions.transpose(0, 1), transitions, start, end, lengths, valid)
        fwd = _scaled_forward(chain)
        ctx.chain, ctx.fwd = chain, fwd
        return fwd.log_z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_log_z: Tensor):  # type: ignore[override]
        chain, fwd = ctx.chain, ctx.fwd
        messages, node = _scaled_backward(chain, fwd, grad_log_z)
        length, batch_size, num_tags = node.shape
        flat_alpha = fwd.alpha[:-1].reshape(-1, num_tags)
        grad_transitions = (flat_alpha.t() @ messages[1:].reshape(-1, num_tags)) * fwd.weights
        if fwd.log_space_rows.any():
            rows = fwd.log_space_rows
            _, sub_node, sub_edge = _log_space_marginals(_select_rows(chain, rows))
            weight = grad_log_z[rows]
            node[:, rows] = sub_node * weight[None, :, None]
            grad_transitions = grad_transitions + (sub_edge * weight[None, :, None, None]).sum(dim=(0, 1))
        rows = torch.arange(batch_size, device=node.device)
        grad_end = node[chain.lengths - 1, rows].sum(dim=0)
        return node.transpose(0, 1), grad_transitions, node[0].sum(dim=0), grad_end, None, None


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
    chain = _prepare(emissions, transitions, start, end, mask, allowed, "log_partition")
    return _LogPartition.apply(chain.emissions.transpose(0, 1), chain.transitions, chain.start, chain.end, chain.lengths, chain.valid)


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
    chain = _prepare(emissions, transitions, start, end, mask, allowed, "marginals")
    with torch.no_grad():
        fwd = _scaled_forward(chain)
        messages, node = _scaled_backward(chain, fwd, torch.ones_like(fwd.log_z))
        edge = (fwd.alpha[:-1, :, :, None] * messages[1:, :, None, :]) * fwd.weights if edges else None
        if fwd.log_space_rows.any():
            rows = fwd.log_space_rows
            _, sub_node, sub_edge = _log_space_marginals(_select_rows(chain, rows))
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

    Shapes:
        - returns: scores ``[B]`` and tags ``[B, T]`` long (0 past each length).
    """
    chain = _prepare(emissions, transitions, start, end, mask, allowed, "viterbi")
    with torch.no_grad():
        length, batch_size, num_tags = chain.emissions.shape
        emission_steps = chain.emissions.unbind(0)
        transitions_into = chain.transitions.t().contiguous()  # [j, i]: reduce over the contiguous dim
        best = [emission_steps[0] + chain.start]
        for emissions_t in emission_steps[1:]:
            best.append((best[-1][:, None, :] + transitions_into).amax(dim=2).add_(emissions_t))
        rows = torch.arange(batch_size, device=best[0].device)
        scores, state = (torch.stack(best)[chain.lengths - 1, rows] + chain.end).max(dim=1)
        # Backtrack: recompute the best predecessor of the chosen state only (any maximiser is
        # on an optimal path); past its length a row keeps its last state.
        path = [state]
        for t in range(length - 1, 0, -1):
            predecessor = (best[t - 1] + transitions_into[state]).argmax(dim=1)
            state = torch.where(chain.valid[t], predecessor, state)
            path.append(state)
        path = torch.stack(path[::-1]).masked_fill_(~chain.valid, 0)
    return scores, path.t()


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
    chain = _prepare(emissions, transitions, start, end, mask, allowed, "topk")
    with torch.no_grad():
        length, batch_size, num_tags = chain.emissions.shape
        best = torch.full((length, batch_size, num_tags, k), float("-inf"), dtype=chain.transitions.dtype, device=chain.transitions.device)
        back_pointers = torch.zeros((length, batch_size, num_tags, k), dtype=torch.long, device=best.device)
        best[0, :, :, 0] = chain.emissions[0] + chain.start
        for t in range(1, length):
            candidates = best[t - 1][:, :, None, :] + chain.transitions[None, :, :, None]  # [B, i, j, r]
            candidates = candidates.permute(0, 2, 1, 3).reshape(batch_size, num_tags, num_tags * k)
            values, back_pointers[t] = candidates.topk(k, dim=2)
            best[t] = values + chain.emissions[t][:, :, None]
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
    """Exact draws ``y ~ p(y)`` by forward filtering, backward sampling (Gumbel-max per step).

    .. math::
        y_{L-1} \\sim \\alpha_{L-1} \\odot e^{\\omega}, \\qquad y_t \\mid y_{t+1} \\sim \\alpha_t \\odot e^{A_{\\cdot, y_{t+1}}}.

    Shapes:
        - returns: ``[n, B, T]`` long (0 past each length).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"sample: n must be a positive int, got {n!r}")
    chain = _prepare(emissions, transitions, start, end, mask, allowed, "sample")
    with torch.no_grad():
        log_alpha, _ = _log_space_forward(chain)
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
    chain = _prepare(emissions, transitions, start, end, mask, allowed, "sequence_score")
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
