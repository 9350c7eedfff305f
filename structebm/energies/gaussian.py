"""A multivariate Gaussian energy with exact score, log-partition and samples.

.. math::
    E(x) = \\tfrac12 (x - \\mu)^\\top P (x - \\mu), \\qquad P = L L^\\top,

    \\log Z = \\tfrac{D}{2} \\log 2\\pi - \\tfrac12 \\log\\det P
            = \\tfrac{D}{2} \\log 2\\pi - \\sum_i \\log L_{ii}.

The precision :math:`P` is parametrised by its Cholesky factor :math:`L`, lower triangular
with diagonal :math:`L_{ii} = \\exp(\\ell_i)`, so it stays positive definite whatever values
the unconstrained parameters take. Every quantity is exact, which makes this energy the
reference for samplers (known mean and covariance) and for objectives (known parameters
to recover).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from structebm.energies.base import Energy

__all__ = ["GaussianEnergy"]


class GaussianEnergy(Energy):
    """Unconditional Gaussian :math:`\\mathcal{N}(\\mu, P^{-1})` as an energy, with learnable ``μ`` and ``P``.

    Args:
        mean: :math:`\\mu`, shape ``[D]``.
        precision: :math:`P`, a symmetric positive definite ``[D, D]`` matrix.

    Shapes:
        - x: ``[B, D]``
        - forward: ``[B]``; score: ``[B, D]``; log_partition: ``[]``; sample: ``[n, D]``
    """

    def __init__(self, mean: Tensor, precision: Tensor) -> None:
        super().__init__()
        mean = torch.as_tensor(mean)
        precision = torch.as_tensor(precision, dtype=mean.dtype if mean.is_floating_point() else None)
        if mean.dim() != 1 or not mean.is_floating_point():
            raise ValueError(f"GaussianEnergy: mean must be a floating-point vector [D], got shape {tuple(mean.shape)}")
        dim = mean.shape[0]
        if precision.shape != (dim, dim):
            raise ValueError(f"GaussianEnergy: precision must have shape ({dim}, {dim}) to match mean, got {tuple(precision.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(precision).all()):
            raise ValueError("GaussianEnergy: mean and precision must be finite")
        if not torch.allclose(precision, precision.T, rtol=1e-5, atol=1e-6):
            raise ValueError("GaussianEnergy: precision must be symmetric")
        cholesky, info = torch.linalg.cholesky_ex(precision.to(mean.dtype))
        if info.item() != 0:
            raise ValueError("GaussianEnergy: precision must be positive definite (its Cholesky factorisation failed)")
        self.mean = nn.Parameter(mean.detach().clone())
        self.log_diagonal = nn.Parameter(cholesky.diagonal().log())
        self.off_diagonal = nn.Parameter(cholesky.tril(-1))

    @classmethod
    def from_covariance(cls, mean: Tensor, covariance: Tensor) -> "GaussianEnergy":
        """Build from a mean ``[D]`` and a symmetric positive definite covariance ``[D, D]``."""
        covariance = torch.as_tensor(covariance)
        return cls(mean, torch.linalg.inv(covariance))

    @property
    def dim(self) -> int:
        """The event dimension ``D``."""
        return self.mean.shape[0]

    def cholesky_factor(self) -> Tensor:
        """The lower-triangular :math:`L` with :math:`P = L L^\\top`, shape ``[D, D]``."""
        return self.off_diagonal.tril(-1) + torch.diag_embed(self.log_diagonal.exp())

    @property
    def precision(self) -> Tensor:
        """:math:`P = L L^\\top`, shape ``[D, D]``."""
        factor = self.cholesky_factor()
        return factor @ factor.T

    @property
    def covariance(self) -> Tensor:
        """:math:`\\Sigma = P^{-1}`, shape ``[D, D]``."""
        return torch.cholesky_inverse(self.cholesky_factor())

    def _check(self, x: Tensor, c: Optional[Tensor], where: str) -> None:
        if c is not None:
            raise ValueError(f"GaussianEnergy.{where}: this energy is unconditional; got a condition c")
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"GaussianEnergy.{where}: expected x of shape [B, {self.dim}], got {shape}")

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """:math:`E(x) = \\tfrac12 \\lVert L^\\top (x - \\mu) \\rVert^2`, shape ``[B]``."""
        self._check(x, c, "forward")
        whitened = (x - self.mean) @ self.cholesky_factor()
        return 0.5 * whitened.square().sum(dim=1)

    def score(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """:math:`-\\nabla_x E = -P (x - \\mu)`, shape ``[B, D]``."""
        self._check(x, c, "score")
        return (self.mean - x) @ self.precision

    def log_partition(self, c: Optional[Tensor] = None) -> Tensor:
        """:math:`\\log Z = \\tfrac{D}{2} \\log 2\\pi - \\sum_i \\ell_i`, a 0-d tensor."""
        if c is not None:
            raise ValueError("GaussianEnergy.log_partition: this energy is unconditional; got a condition c")
        return 0.5 * self.dim * math.log(2 * math.pi) - self.log_diagonal.sum()

    def sample(self, c: Optional[Tensor], n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Exact draws :math:`x = \\mu + L^{-\\top} z`, :math:`z \\sim \\mathcal{N}(0, I)`, shape ``[n, D]``."""
        if c is not None:
            raise ValueError("GaussianEnergy.sample: this energy is unconditional; got a condition c")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"GaussianEnergy.sample: n must be a positive integer, got {n!r}")
        with torch.no_grad():
            z = torch.randn(n, self.dim, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
            # Solve L^T y = z^T for y, so that y has covariance L^{-T} L^{-1} = P^{-1}.
            y = torch.linalg.solve_triangular(self.cholesky_factor().T, z.T, upper=True)
            return self.mean + y.T
