"""Temperature scaling: post-hoc calibration of a classifier by one scalar fitted on held-out data.

Guo et al., "On calibration of modern neural networks", ICML 2017. The logits :math:`f(x)` are
divided by a temperature :math:`T > 0` chosen to minimise the negative log-likelihood of
held-out labelled data (never the test set),

.. math::
    T^\\star = \\arg\\min_{T > 0} \\; -\\frac{1}{N} \\sum_{i=1}^{N}
        \\log \\operatorname{softmax}\\bigl(f(x_i) / T\\bigr)_{y_i}.

For an energy :math:`E(x, y) = -f(x)[y]` this is the energy :math:`E / T`: the predicted class
(and so the accuracy) does not change, only the confidence. :math:`T > 1` softens an
over-confident model, :math:`T < 1` sharpens an under-confident one. The minimisation is over
:math:`\\log T` (unconstrained) with L-BFGS in double precision; the objective is convex in
:math:`1/T`, so the optimum is unique.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fit_temperature"]


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 200) -> float:
    """The temperature :math:`T^\\star` of the module docstring for held-out ``logits`` and ``labels``.

    Shapes:
        - logits: ``[N, K]`` float; labels: ``[N]`` integer in ``[0, K)``
    """
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() != 2 or logits.shape[0] == 0:
        got = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"fit_temperature: logits must be a non-empty float Tensor [N, K], got {got}")
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.shape != logits.shape[:1]:
        got = f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"fit_temperature: labels must be an integer Tensor ({logits.shape[0]},), got {got}")
    if ((labels < 0) | (labels >= logits.shape[1])).any():
        raise ValueError(f"fit_temperature: labels must lie in [0, {logits.shape[1]})")
    if not torch.isfinite(logits).all():
        raise ValueError("fit_temperature: logits must be finite")
    logits, labels = logits.detach().double().cpu(), labels.cpu()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp())
