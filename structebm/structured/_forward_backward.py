"""Forward–backward in scaled probability space, with a log-space fallback, and ``log Z`` as an autograd function.

The recursions are those of :mod:`structebm.structured.linear_chain` (see its module
documentation for the maths): :func:`scaled_forward` gives normalised forward messages and
``log Z``; :func:`scaled_backward` the backward messages and node marginals; rows whose
normaliser underflows (below :data:`UNDERFLOW_LIMIT`) are recomputed by
:func:`log_space_forward` / :func:`log_space_marginals`. :class:`LogPartition` returns
``log Z`` and uses the marginals as its gradient, so no autograd graph spans the ``T`` steps.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from structebm.structured._potentials import Chain, finite_max, one_intra_op_thread

__all__ = ["UNDERFLOW_LIMIT", "Scaled", "normalisation_interval", "scaled_forward", "scaled_backward", "select_rows", "log_space_forward", "log_space_marginals", "LogPartition"]

UNDERFLOW_LIMIT: dict[torch.dtype, float] = {torch.float16: 1e-3, torch.bfloat16: 1e-3, torch.float32: 1e-20, torch.float64: 1e-200}
"""Smallest per-step normaliser ``s_t`` trusted in scaled arithmetic, per dtype."""


class Scaled(NamedTuple):
    alpha: Tensor  # [T, B, K] normalised forward messages, zero where invalid or log-space rows
    ratio: Tensor  # [T, B, K] ψ_t / s_t, zero where invalid
    weights: Tensor  # [K, K] exp(A - max A)
    end_weights: Tensor  # [K] exp(ω - max ω)
    final: Tensor  # [B] Σ_k α̂_{L-1}[k] exp(ω_k - max ω)
    log_z: Tensor  # [B]
    log_space_rows: Tensor  # [B] bool, rows computed in log space


def normalisation_interval(dtype: torch.dtype, num_tags: int) -> int:
    """Steps between two normalisations of the forward messages (``s_t = 1`` at the others).

    Any positive ``s_t`` keeps the recursions exact; normalising less often saves two
    operations per step. Between normalisations the message sum changes by at most a factor
    ``K`` per step upwards (``W, ψ ≤ 1``), so ``r`` steps with ``K^r ≤ 10^{17}`` cannot
    overflow in float32 or float64, and a sum that fell into the subnormal range within a
    block still ends it below :data:`UNDERFLOW_LIMIT` and sends its row to log space.
    Half precision normalises every step.
    """
    if dtype not in (torch.float32, torch.float64):
        return 1
    return max(1, min(8, int(17 / math.log10(max(num_tags, 2)))))


def scaled_forward(chain: Chain) -> Scaled:
    length, batch_size, num_tags = chain.emissions.shape
    psi = torch.empty((length, batch_size, num_tags), dtype=chain.transitions.dtype, device=chain.transitions.device)
    psi.copy_(chain.emissions)
    psi[0] += chain.start
    shift = finite_max(psi, dim=2)  # [T, B, 1]
    psi.sub_(shift).exp_()
    trans_shift = finite_max(chain.transitions)
    weights = (chain.transitions - trans_shift).exp()
    end_shift = finite_max(chain.end)
    end_weights = (chain.end - end_shift).exp()

    alpha = torch.empty_like(psi)
    norms = torch.ones((length, batch_size, 1), dtype=psi.dtype, device=psi.device)
    alpha_steps, psi_steps, norm_steps = alpha.unbind(0), psi.unbind(0), norms.unbind(0)
    torch.sum(psi_steps[0], dim=1, keepdim=True, out=norm_steps[0])
    torch.div(psi_steps[0], norm_steps[0], out=alpha_steps[0])
    block = normalisation_interval(psi.dtype, num_tags)
    for t in range(1, length):
        current = alpha_steps[t]
        torch.mm(alpha_steps[t - 1], weights, out=current)
        current.mul_(psi_steps[t])
        if t % block == 0:
            torch.sum(current, dim=1, keepdim=True, out=norm_steps[t])
            current.div_(norm_steps[t])

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
        log_z[log_space_rows] = log_space_forward(select_rows(chain, log_space_rows))[1]
    ratio = psi.div_(norms[:, :, None]).masked_fill_(unused, 0.0)
    alpha.masked_fill_(unused, 0.0)
    return Scaled(alpha, ratio, weights, end_weights, final, log_z, log_space_rows)


def scaled_backward(chain: Chain, fwd: Scaled, row_weights: Tensor) -> tuple[Tensor, Tensor]:
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


def select_rows(chain: Chain, rows: Tensor) -> Chain:
    return chain._replace(emissions=chain.emissions[:, rows], lengths=chain.lengths[rows], valid=chain.valid[:, rows])


def log_space_forward(chain: Chain) -> tuple[Tensor, Tensor]:
    """Log forward messages ``[T, B, K]`` (held constant past each length) and ``log Z`` ``[B]``."""
    log_alpha = torch.empty(chain.emissions.shape, dtype=chain.transitions.dtype, device=chain.transitions.device)
    log_alpha[0] = chain.emissions[0] + chain.start
    for t in range(1, log_alpha.shape[0]):
        step = torch.logsumexp(log_alpha[t - 1][:, :, None] + chain.transitions, dim=1) + chain.emissions[t]
        log_alpha[t] = torch.where(chain.valid[t][:, None], step, log_alpha[t - 1])
    return log_alpha, torch.logsumexp(log_alpha[-1] + chain.end, dim=1)


def log_space_marginals(chain: Chain) -> tuple[Tensor, Tensor, Tensor]:
    """Log-space forward–backward: ``log Z`` ``[B]``, node ``[T, B, K]``, edge ``[T, B, K, K]`` marginals.

    Edge entry ``t`` is the transition into position ``t`` (entry 0 is zero).
    """
    log_alpha, log_z = log_space_forward(chain)
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


class LogPartition(torch.autograd.Function):
    """``log Z`` with the forward–backward algorithm as its backward pass (both on one intra-op thread)."""

    @staticmethod
    def forward(ctx, emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor, valid: Tensor) -> Tensor:  # type: ignore[override]
        chain = Chain(emissions.transpose(0, 1), transitions, start, end, lengths, valid)
        with one_intra_op_thread(emissions.device):
            fwd = scaled_forward(chain)
        ctx.chain, ctx.fwd = chain, fwd
        return fwd.log_z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_log_z: Tensor):  # type: ignore[override]
        chain, fwd = ctx.chain, ctx.fwd
        with one_intra_op_thread(grad_log_z.device):
            return LogPartition._gradients(chain, fwd, grad_log_z)

    @staticmethod
    def _gradients(chain: Chain, fwd: Scaled, grad_log_z: Tensor) -> tuple:
        messages, node = scaled_backward(chain, fwd, grad_log_z)
        length, batch_size, num_tags = node.shape
        flat_alpha = fwd.alpha[:-1].reshape(-1, num_tags)
        grad_transitions = (flat_alpha.t() @ messages[1:].reshape(-1, num_tags)) * fwd.weights
        if fwd.log_space_rows.any():
            rows = fwd.log_space_rows
            _, sub_node, sub_edge = log_space_marginals(select_rows(chain, rows))
            weight = grad_log_z[rows]
            node[:, rows] = sub_node * weight[None, :, None]
            grad_transitions = grad_transitions + (sub_edge * weight[None, :, None, None]).sum(dim=(0, 1))
        rows = torch.arange(batch_size, device=node.device)
        grad_end = node[chain.lengths - 1, rows].sum(dim=0)
        return node.transpose(0, 1), grad_transitions, node[0].sum(dim=0), grad_end, None, None
