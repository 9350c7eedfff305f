"""Out-of-distribution detection: the area under the ROC curve of a score.

A detector gives every input a score :math:`s(x)`, **higher meaning more in-distribution**
(e.g. :math:`-E(x)` or :math:`\\max_y p(y \\mid x)`). The AUROC is the probability that a
random in-distribution input scores above a random out-of-distribution one, ties counting
half (the Mann–Whitney form):

.. math::
    \\mathrm{AUROC} = \\frac{1}{n_{\\text{in}} n_{\\text{out}}} \\sum_{i \\in \\text{in}} \\sum_{j \\in \\text{out}}
        \\Big( [s_i > s_j] + \\tfrac12 [s_i = s_j] \\Big)
      = \\frac{R_{\\text{in}} - n_{\\text{in}}(n_{\\text{in}} + 1)/2}{n_{\\text{in}} n_{\\text{out}}},

where :math:`R_{\\text{in}}` is the sum of the in-distribution inputs' ranks in the pooled
sample (tied scores share their mean rank). 1 is a perfect detector, 0.5 is chance.

A classifier with logits :math:`f(x) \\in \\mathbb{R}^K` (an energy :math:`E(x, y) = -f(x)[y]`)
at temperature :math:`T` gives two such scores (:func:`logit_scores`): the negative marginal
energy :math:`\\log \\sum_y e^{f(x)[y] / T}` (``"energy"``) and the confidence
:math:`\\max_y \\operatorname{softmax}(f(x) / T)_y` (``"max_prob"``); :func:`auroc_table` scores
every out-of-distribution set by every score.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

__all__ = ["midranks", "auroc", "logit_scores", "auroc_table"]


def midranks(values: Tensor) -> Tensor:
    """1-based ranks of ``values`` ``[N]`` in ascending order, tied values sharing their mean rank."""
    sorted_values, order = torch.sort(values.double())
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, dim=0).double()
    mean_rank_of_group = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(sorted_values)
    ranks[order] = mean_rank_of_group[inverse]
    return ranks


def _check_scores(scores: Tensor, name: str) -> Tensor:
    if not isinstance(scores, Tensor) or scores.dim() != 1 or scores.numel() == 0:
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"auroc: {name} must be a non-empty 1-D Tensor of scores, got {got}")
    if scores.is_complex() or scores.dtype == torch.bool:
        raise TypeError(f"auroc: {name} must be real-valued, got {scores.dtype}")
    if not torch.isfinite(scores.double()).all():
        raise ValueError(f"auroc: {name} has NaN or infinite scores")
    return scores.detach().double().cpu()


def auroc(in_distribution: Tensor, out_of_distribution: Tensor) -> float:
    """AUROC of separating in- from out-of-distribution inputs by a score (higher = more in-distribution).

    Shapes:
        - in_distribution: ``[n_in]``; out_of_distribution: ``[n_out]``
    """
    inside = _check_scores(in_distribution, "in_distribution")
    outside = _check_scores(out_of_distribution, "out_of_distribution")
    n_in, n_out = inside.numel(), outside.numel()
    ranks = midranks(torch.cat([inside, outside]))
    rank_sum_in = ranks[:n_in].sum().item()
    return (rank_sum_in - n_in * (n_in + 1) / 2) / (n_in * n_out)


def logit_scores(logits: Tensor, temperature: float = 1.0) -> dict[str, Tensor]:
    """``"energy"`` and ``"max_prob"`` scores ``[N]`` of logits ``[N, K]`` at ``temperature``."""
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        got = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logit_scores: logits must be a float Tensor [N, K], got {got}")
    if not temperature > 0:
        raise ValueError(f"logit_scores: temperature must be positive, got {temperature}")
    scaled = logits.detach() / temperature
    return {"energy": torch.logsumexp(scaled, dim=1), "max_prob": torch.softmax(scaled, dim=1).max(dim=1).values}


def auroc_table(
    inside: Mapping[str, Tensor], outside: Mapping[str, Mapping[str, Tensor]]
) -> dict[str, dict[str, float]]:
    """AUROC of every out-of-distribution set (``outside[set][score]``) against ``inside[score]``, by score."""
    table = {}
    for name, scores in outside.items():
        missing = sorted(set(inside) - set(scores))
        if missing:
            raise ValueError(f"auroc_table: set {name!r} lacks the scores {missing}")
        table[name] = {score: auroc(inside[score], scores[score]) for score in inside}
    return table
