"""How far a stochastic objective's gradient is from a reference gradient: bias, variance, cosine.

On a model with an exact log-likelihood (a linear-chain CRF, a small Potts model) the exact
gradient ``g`` of the negative log-likelihood is known, and every sampling-based objective
(CD-k, persistent CD, NCE) gives an estimate ``ĝ`` of a gradient that should point the same
way. Over ``R`` independent repeats (fresh generator seeds, same data batch and parameters)
with mean ``ḡ`` and per-coordinate variance ``σ²``:

.. math::
    \\text{relative bias} = \\frac{\\sqrt{\\max(0, \\lVert ḡ - g \\rVert^2 - \\operatorname{tr}\\hat\\Sigma / R)}}{\\lVert g \\rVert},
    \\qquad \\text{relative std} = \\frac{\\sqrt{\\operatorname{tr}\\hat\\Sigma}}{\\lVert g \\rVert},

where subtracting ``tr Σ̂ / R`` removes the expected squared error of the mean itself (so a
bias below the resolution ``sqrt(tr Σ̂ / R) / ‖g‖`` reads as zero). An objective whose gradient
has its own scale (NCE) is better judged by its noise-to-signal ratio ``sqrt(tr Σ̂) / ‖ḡ‖``,
which no rescaling changes. Cosine similarities are
reported both of the mean (direction of the expected step) and, averaged, of single
estimates (direction of one training step).

The functions only call objectives (``forward(energy, batch) -> LossOutput``) and know no
energy family.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from structebm.objectives.base import Objective

__all__ = ["flat_gradient", "objective_gradient", "gradient_estimates", "gradient_agreement"]


def flat_gradient(loss: Tensor, parameters: list[Tensor]) -> Tensor:
    """``∇ loss`` with respect to ``parameters``, concatenated (zeros for unused ones). Shape ``[P]``."""
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten() for p, g in zip(parameters, grads)])


def objective_gradient(objective: Objective, energy: nn.Module, batch: Any, warmup_steps: int = 0) -> Tensor:
    """Gradient of ``objective(energy, batch).loss`` in the energy's parameters, after ``warmup_steps`` calls.

    The warm-up calls (no parameter update) age a persistent chain source to the state it
    would have after that many training steps at fixed parameters.
    """
    if warmup_steps < 0:
        raise ValueError(f"objective_gradient: warmup_steps must be non-negative, got {warmup_steps}")
    for _ in range(warmup_steps):
        with torch.no_grad():
            objective(energy, batch)
    parameters = [p for p in energy.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(f"objective_gradient: {type(energy).__name__} has no trainable parameters")
    return flat_gradient(objective(energy, batch).loss, parameters)


def gradient_estimates(
    make_objective: Callable[[int], Objective],
    energy: nn.Module,
    batch: Any,
    repeats: int,
    warmup_steps: int = 0,
    seed: int = 0,
    prepare: Optional[Callable[[Objective], None]] = None,
) -> Tensor:
    """``repeats`` independent gradient estimates, each from a fresh objective ``make_objective(seed + r)``.

    Args:
        make_objective: builds an objective from a generator seed.
        energy, batch: the fixed parameters and data every estimate uses.
        repeats: number of estimates ``R`` (at least 2).
        warmup_steps: objective calls before each estimate (buffer age for persistent CD).
        seed: seed of the first repeat.
        prepare: called on each bound objective before its estimate (e.g. to fit a learned ``log Z``).

    Shapes:
        - returns: ``[R, P]`` with ``P`` the number of trainable parameters of ``energy``.
    """
    if repeats < 2:
        raise ValueError(f"gradient_estimates: repeats must be at least 2 to estimate a variance, got {repeats}")
    rows = []
    for r in range(repeats):
        objective = make_objective(seed + r)
        objective.bind(energy)
        if prepare is not None:
            prepare(objective)
        rows.append(objective_gradient(objective, energy, batch, warmup_steps).detach())
    return torch.stack(rows)


def gradient_agreement(estimates: Tensor, reference: Tensor) -> dict[str, float]:
    """Cosine similarities, relative bias and relative standard deviation of ``estimates`` against ``reference``.

    Shapes:
        - estimates: ``[R, P]``; reference: ``[P]``.

    Returns ``cosine_of_mean``, ``mean_cosine`` (and its standard error ``mean_cosine_se``),
    ``relative_bias``, ``bias_resolution`` (``sqrt(tr Σ̂ / R) / ‖g‖``), ``relative_std`` and
    ``noise_to_signal`` (``sqrt(tr Σ̂) / ‖ḡ‖``, infinite for a zero mean).
    """
    if estimates.dim() != 2 or reference.shape != estimates.shape[1:] or estimates.shape[0] < 2:
        raise ValueError(
            f"gradient_agreement: need estimates [R >= 2, P] and reference [P], got {tuple(estimates.shape)} and {tuple(reference.shape)}"
        )
    estimates, reference = estimates.double(), reference.double()
    repeats = estimates.shape[0]
    norm = float(reference.norm())
    if norm == 0.0:
        raise ValueError("gradient_agreement: the reference gradient is zero; relative quantities are undefined")
    mean = estimates.mean(0)
    trace = float(estimates.var(0, unbiased=True).sum())
    squared_error = float((mean - reference).pow(2).sum())
    cosines = nn.functional.cosine_similarity(estimates, reference[None, :], dim=1)
    return {
        "cosine_of_mean": float(nn.functional.cosine_similarity(mean, reference, dim=0)),
        "mean_cosine": float(cosines.mean()),
        "mean_cosine_se": float(cosines.std(unbiased=True)) / math.sqrt(repeats),
        "relative_bias": math.sqrt(max(0.0, squared_error - trace / repeats)) / norm,
        "bias_resolution": math.sqrt(trace / repeats) / norm,
        "relative_std": math.sqrt(trace) / norm,
        "noise_to_signal": math.sqrt(trace) / float(mean.norm()) if float(mean.norm()) > 0 else math.inf,
    }
