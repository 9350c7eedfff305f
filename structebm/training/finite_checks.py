"""Stop training loudly when a loss, metric or gradient is not finite, saying where.

EBM training diverges in recognisable ways — energies running off to ±∞, a sampler
step producing NaN, exploding parameter gradients. These checks turn each into a
:class:`TrainingDivergedError` that names the step and what went non-finite, instead
of letting NaN propagate silently into the parameters.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

__all__ = ["TrainingDivergedError", "check_finite_loss", "check_finite_gradients"]


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss, metric or gradient."""


def check_finite_loss(loss: Tensor, metrics: Mapping[str, Tensor | float], where: str) -> None:
    """Raise if the loss is not finite, listing the metrics that are not finite either."""
    if torch.isfinite(loss).all():
        return
    bad = [k for k, v in metrics.items() if not torch.isfinite(torch.as_tensor(v)).all()]
    detail = f"; non-finite metrics: {', '.join(bad)}" if bad else ""
    raise TrainingDivergedError(
        f"{where}: the loss is {loss.detach().flatten()[0].item()}{detail}. "
        "Typical fixes: a smaller sampler step size, gradient clipping, or an energy-magnitude regulariser."
    )


def check_finite_gradients(named_parameters: Iterable[tuple[str, nn.Parameter]], where: str) -> None:
    """Raise if any parameter gradient has NaN or infinity, naming up to five parameters."""
    bad = [name for name, p in named_parameters if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise TrainingDivergedError(f"{where}: non-finite gradient in {', '.join(bad[:5])}{more}")
