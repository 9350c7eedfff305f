"""MMD² with RBF kernels: the estimator's formula, its expectation, and bad input.

The population value for two isotropic Gaussians is known in closed form: for
:math:`x \\sim \\mathcal N(a, s^2 I_d)`, :math:`y \\sim \\mathcal N(b, t^2 I_d)` and the kernel
:math:`k(u, v) = e^{-\\lVert u - v \\rVert^2 / 2h^2}`,

.. math::
    \\mathbb E\\, k(x, y) = \\Bigl(\\frac{h^2}{h^2 + s^2 + t^2}\\Bigr)^{d/2}
        \\exp\\Bigl(-\\frac{\\lVert a - b \\rVert^2}{2 (h^2 + s^2 + t^2)}\\Bigr),

and :math:`\\mathrm{MMD}^2 = \\mathbb E k(x, x') + \\mathbb E k(y, y') - 2 \\mathbb E k(x, y)`.
The unbiased estimator's mean over independent replicates must lie within four standard
errors (estimated from the replicates themselves) of that value.
"""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from structebm.evaluation.mmd import median_bandwidth, mmd_rbf


def expected_kernel(a: torch.Tensor, b: torch.Tensor, s: float, t: float, h: float) -> float:
    d, spread = a.numel(), h * h + s * s + t * t
    return (h * h / spread) ** (d / 2) * math.exp(-float((a - b).square().sum()) / (2 * spread))


def population_mmd(a: torch.Tensor, b: torch.Tensor, s: float, t: float, h: float) -> float:
    return expected_kernel(a, a, s, s, h) + expected_kernel(b, b, t, t, h) - 2 * expected_kernel(a, b, s, t, h)


def test_matches_the_double_sum_of_its_definition():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(4, 3, generator=generator, dtype=torch.float64) + 1
    h = 0.7

    def k(u, v):
        return math.exp(-float((u - v).square().sum()) / (2 * h * h))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert mmd_rbf(x, y, h) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert mmd_rbf(x, y, [h, 2 * h]) == pytest.approx(mmd_rbf(x, y, h) + mmd_rbf(x, y, 2 * h), rel=1e-10)


@pytest.mark.parametrize("shift, s, t", [(0.0, 1.0, 1.0), (1.5, 1.0, 1.0), (0.0, 0.5, 1.0)])
def test_unbiased_for_gaussians(shift, s, t):
    d, h, n, replicates = 2, 1.0, 200, 30
    a, b = torch.zeros(d), torch.full((d,), shift / math.sqrt(d))
    generator = torch.Generator().manual_seed(1)
    estimates = [
        mmd_rbf(a + s * torch.randn(n, d, generator=generator, dtype=torch.float64),
                b + t * torch.randn(n, d, generator=generator, dtype=torch.float64), h)
        for _ in range(replicates)
    ]
    standard_error = statistics.stdev(estimates) / math.sqrt(replicates)
    truth = population_mmd(a, b, s, t, h)
    assert abs(statistics.fmean(estimates) - truth) < 4 * standard_error, (statistics.fmean(estimates), truth, standard_error)
    if shift == 0.0 and s == t:
        assert min(estimates) < 0  # unbiased, not clipped at zero


def test_median_bandwidth_of_points_on_a_line():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[3.0]])
    # pairwise distances 1, 3, 2: median 2
    assert median_bandwidth(x, y) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "x, y, bandwidth, message",
    [
        (torch.zeros(3, 2), torch.zeros(3, 3), 1.0, "equal event shapes"),
        (torch.zeros(1, 2), torch.zeros(3, 2), 1.0, "at least two points"),
        (torch.tensor([[0.0], [float("nan")]]), torch.zeros(3, 1), 1.0, "NaN or infinite"),
        (torch.zeros(3, 2), torch.ones(3, 2), 0.0, "bandwidths must be positive"),
        (torch.zeros(3, 2), torch.ones(3, 2), [], "bandwidths must be positive"),
    ],
)
def test_bad_input_is_named(x, y, bandwidth, message):
    with pytest.raises(ValueError, match=message):
        mmd_rbf(x, y, bandwidth)
