"""Maximum mean discrepancy between two samples with a Gaussian (RBF) kernel.

Gretton et al. (2012), unbiased estimator:

.. math::
    \\widehat{\\mathrm{MMD}}^2 = \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(x_i, x_j)
        + \\frac{1}{n(n-1)} \\sum_{i \\ne j} k(y_i, y_j)
        - \\frac{2}{mn} \\sum_{i, j} k(x_i, y_j),
    \\qquad k(a, b) = \\exp\\!\\left(-\\frac{\\lVert a - b \\rVert^2}{2 h^2}\\right).

The unbiased estimate can be slightly negative when the two samples come from the same
distribution; it is returned as it is, not clipped.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = ["mmd_rbf", "median_bandwidth"]


def median_bandwidth(x: Tensor, y: Tensor, max_points: int = 2000) -> float:
    """Median pairwise distance of the pooled sample (on at most ``max_points`` points)."""
    pooled = torch.cat([x, y]).flatten(1)[:max_points].double()
    dists = torch.cdist(pooled, pooled)
    return dists[torch.triu(torch.ones_like(dists, dtype=torch.bool), diagonal=1)].median().item()


def mmd_rbf(x: Tensor, y: Tensor, bandwidth: Union[None, float, Sequence[float]] = None) -> float:
    """Unbiased MMD² between samples ``x [m, *]`` and ``y [n, *]`` with an RBF kernel.

    Args:
        x, y: samples (flattened after the first dimension); each needs at least 2 rows.
        bandwidth: kernel width ``h``, or several widths whose kernels are summed;
            the median heuristic when ``None``.
    """
    if x.ndim < 2 or y.ndim < 2 or x.shape[1:] != y.shape[1:]:
        raise ValueError(f"mmd_rbf needs two samples [m, *] and [n, *] with equal event shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("mmd_rbf needs at least two points in each sample")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("mmd_rbf: the samples contain NaN or infinite values")
    if bandwidth is None:
        widths = [median_bandwidth(x, y)]
    elif isinstance(bandwidth, (int, float)):
        widths = [float(bandwidth)]
    else:
        widths = [float(h) for h in bandwidth]
    if not widths or min(widths) <= 0:
        raise ValueError(f"mmd_rbf: bandwidths must be positive, got {bandwidth}")
    x, y = x.flatten(1).double(), y.flatten(1).double()
    m, n = x.shape[0], y.shape[0]

    def kernel_sum(a: Tensor, b: Tensor) -> Tensor:
        squared = torch.cdist(a, b).square()
        return sum(torch.exp(-squared / (2 * h * h)).sum() for h in widths)

    k = len(widths)  # each kernel is 1 on the diagonal
    k_xx = (kernel_sum(x, x) - k * m) / (m * (m - 1))
    k_yy = (kernel_sum(y, y) - k * n) / (n * (n - 1))
    k_xy = kernel_sum(x, y) / (m * n)
    return (k_xx + k_yy - 2 * k_xy).item()
