"""Statistical helpers for tests: effective sample sizes and the tolerances they imply.

Tolerances are ``z`` standard errors, with the standard error computed from an effective
sample size (ESS). With ``z = 4`` a single comparison fails by chance with probability
about 6e-5 (two-sided normal tail), so a test making a few dozen comparisons passes for
almost every seed when the code is right, and fails when a bias exceeds a few standard
errors.

For ``n`` independent draws (for example the final states of ``n`` parallel chains after
burn-in) the ESS is ``n``. For one correlated series of length ``T`` it is
``T / τ`` with the integrated autocorrelation time

.. math::
    \\tau = 1 + 2 \\sum_{k \\ge 1} \\rho_k,

estimated with Geyer's initial positive sequence (Geyer, Statistical Science 1992): sum
the pairs :math:`\\rho_{2m} + \\rho_{2m+1}` while they stay positive.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "Z_SCORE",
    "autocorrelation",
    "integrated_autocorrelation_time",
    "effective_sample_size",
    "mean_tolerance",
    "gaussian_covariance_tolerance",
    "covariance_tolerance",
    "assert_within",
]

Z_SCORE = 4.0


def autocorrelation(series: Tensor) -> Tensor:
    """Normalised autocorrelation of each column of ``series [T, C]`` at lags ``0..T-1``, shape ``[T, C]``."""
    if series.dim() != 2 or series.shape[0] < 4:
        raise ValueError(f"autocorrelation expects a [T, C] series with T >= 4, got {tuple(series.shape)}")
    length = series.shape[0]
    centred = (series - series.mean(dim=0)).double()
    padded_length = 1 << (2 * length - 1).bit_length()
    spectrum = torch.fft.rfft(centred, n=padded_length, dim=0)
    autocovariance = torch.fft.irfft(spectrum * spectrum.conj(), n=padded_length, dim=0)[:length]
    return autocovariance / autocovariance[:1]


def integrated_autocorrelation_time(series: Tensor) -> Tensor:
    """Geyer's initial-positive-sequence estimate of ``τ`` for each column of ``series [T, C]``, shape ``[C]``."""
    rho = autocorrelation(series)
    pairs = rho[0 : rho.shape[0] - 1 : 2] + rho[1 : rho.shape[0] : 2]  # Γ_m = ρ_{2m} + ρ_{2m+1}
    positive_prefix = torch.cumprod((pairs > 0).double(), dim=0)  # 1 until the first non-positive pair
    return (-1.0 + 2.0 * (pairs * positive_prefix).sum(dim=0)).clamp_min(1.0 / series.shape[0])


def effective_sample_size(series: Tensor) -> Tensor:
    """``T / τ`` for each column of ``series [T, C]``, shape ``[C]``."""
    return series.shape[0] / integrated_autocorrelation_time(series)


def mean_tolerance(variance: Tensor, ess: float, z: float = Z_SCORE) -> Tensor:
    """``z`` standard errors of a sample mean: ``z · sqrt(Var[x] / ESS)`` (elementwise)."""
    return z * (variance / ess).sqrt()


def gaussian_covariance_tolerance(covariance: Tensor, ess: float, z: float = Z_SCORE) -> Tensor:
    """``z`` standard errors of each entry of a sample covariance of Gaussian draws, shape ``[D, D]``.

    For jointly Gaussian :math:`(x_i, x_j)`, Isserlis' theorem gives
    :math:`\\operatorname{Var}[(x_i - \\mu_i)(x_j - \\mu_j)] = \\Sigma_{ii}\\Sigma_{jj} + \\Sigma_{ij}^2`,
    so the sample covariance entry has standard error
    :math:`\\sqrt{(\\Sigma_{ii}\\Sigma_{jj} + \\Sigma_{ij}^2) / n}`.
    """
    diagonal = covariance.diagonal()
    return z * ((diagonal[:, None] * diagonal[None, :] + covariance.square()) / ess).sqrt()


def covariance_tolerance(samples: Tensor, ess: float, z: float = Z_SCORE) -> Tensor:
    """``z`` standard errors of each sample-covariance entry for any distribution, shape ``[D, D]``.

    Uses the empirical variance of the products :math:`(x_i - \\bar x_i)(x_j - \\bar x_j)`,
    which is what the sample covariance averages.
    """
    centred = samples - samples.mean(dim=0)
    products = centred[:, :, None] * centred[:, None, :]
    return z * (products.var(dim=0) / ess).sqrt()


def assert_within(actual: Tensor, expected: Tensor, tolerance: Tensor, what: str) -> None:
    """Assert ``|actual - expected| <= tolerance`` elementwise, reporting the worst ratio."""
    actual, expected, tolerance = (torch.as_tensor(t, dtype=torch.float64) for t in (actual, expected, tolerance))
    ratio = (actual - expected).abs() / tolerance
    worst = ratio.max().item()
    assert worst <= 1.0, (  # also fails on NaN
        f"{what}: off by {worst:.2f} tolerances\nactual=\n{actual}\nexpected=\n{expected}\ntolerance=\n{tolerance}"
    )
