"""A fixed Gaussian mixture as an energy: a known multimodal target for sampler tests.

.. math::
    E(x) = -\\log \\sum_{k=1}^K w_k \\, \\mathcal{N}(x; \\mu_k, \\Sigma_k),

which is normalised, so :math:`\\log Z = 0`. Its mean and covariance are known in closed form:

.. math::
    \\bar\\mu = \\sum_k w_k \\mu_k, \\qquad
    \\operatorname{Cov}[x] = \\sum_k w_k \\left(\\Sigma_k + (\\mu_k - \\bar\\mu)(\\mu_k - \\bar\\mu)^\\top\\right).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from structebm.energies.base import Energy

__all__ = ["GaussianMixtureEnergy"]


class GaussianMixtureEnergy(Energy):
    """Mixture of ``K`` Gaussians in ``D`` dimensions with fixed weights, means and covariances.

    Args:
        weights: ``[K]`` positive mixture weights (normalised here).
        means: ``[K, D]`` component means.
        covariances: ``[K, D, D]`` full covariances, ``[K]`` isotropic variances, or a float
            variance shared by all components.

    Shapes:
        - x: ``[B, D]``
        - forward: ``[B]``; log_partition: ``[]``; sample: ``[n, D]``
    """

    def __init__(self, weights: Tensor, means: Tensor, covariances: Tensor | float) -> None:
        super().__init__()
        means = torch.as_tensor(means)
        if means.dim() != 2 or not means.is_floating_point():
            raise ValueError(f"GaussianMixtureEnergy: means must be a floating-point [K, D] tensor, got shape {tuple(means.shape)}")
        k, d = means.shape
        weights = torch.as_tensor(weights, dtype=means.dtype)
        if weights.shape != (k,) or not (weights > 0).all():
            raise ValueError(f"GaussianMixtureEnergy: weights must be {k} positive numbers, got {weights.tolist()}")
        covariances = torch.as_tensor(covariances, dtype=means.dtype)
        if covariances.dim() == 0:
            covariances = covariances.expand(k)
        if covariances.shape == (k,):
            if not (covariances > 0).all():
                raise ValueError("GaussianMixtureEnergy: isotropic variances must be positive")
            covariances = covariances.view(k, 1, 1) * torch.eye(d, dtype=means.dtype)
        if covariances.shape != (k, d, d):
            raise ValueError(f"GaussianMixtureEnergy: covariances must be [{k}, {d}, {d}], [{k}] or a float, got shape {tuple(covariances.shape)}")
        cholesky, info = torch.linalg.cholesky_ex(covariances)
        if (info != 0).any():
            raise ValueError(f"GaussianMixtureEnergy: covariance(s) {info.nonzero().flatten().tolist()} are not positive definite")
        self.register_buffer("log_weights", (weights / weights.sum()).log())
        self.register_buffer("means", means.clone())
        self.register_buffer("cholesky", cholesky)

    @property
    def dim(self) -> int:
        """The event dimension ``D``."""
        return self.means.shape[1]

    def component_log_densities(self, x: Tensor) -> Tensor:
        """:math:`\\log w_k + \\log \\mathcal{N}(x; \\mu_k, \\Sigma_k)`, shape ``[B, K]``."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"GaussianMixtureEnergy: expected x of shape [B, {self.dim}], got {shape}")
        centred = (x.unsqueeze(1) - self.means).unsqueeze(-1)  # [B, K, D, 1]
        whitened = torch.linalg.solve_triangular(self.cholesky, centred, upper=False).squeeze(-1)
        log_det = self.cholesky.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # half log det Σ_k
        return self.log_weights - log_det - 0.5 * self.dim * math.log(2 * math.pi) - 0.5 * whitened.square().sum(-1)

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """:math:`E(x) = -\\operatorname{logsumexp}_k (\\log w_k + \\log \\mathcal{N}(x; \\mu_k, \\Sigma_k))`."""
        if c is not None:
            raise ValueError("GaussianMixtureEnergy: this energy is unconditional; got a condition c")
        return -torch.logsumexp(self.component_log_densities(x), dim=1)

    def log_partition(self, c: Optional[Tensor] = None) -> Tensor:
        """The mixture density is normalised: :math:`\\log Z = 0`."""
        return self.means.new_zeros(())

    def mean(self) -> Tensor:
        """The mixture mean, shape ``[D]``."""
        return self.log_weights.exp() @ self.means

    def covariance(self) -> Tensor:
        """The mixture covariance, shape ``[D, D]``."""
        weights = self.log_weights.exp()
        spread = self.means - self.mean()
        within = torch.einsum("k,kij->ij", weights, self.cholesky @ self.cholesky.transpose(-1, -2))
        return within + torch.einsum("k,ki,kj->ij", weights, spread, spread)

    def sample(self, c: Optional[Tensor], n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Exact draws: a component by weight, then :math:`\\mu_k + L_k z`; shape ``[n, D]``."""
        if c is not None:
            raise ValueError("GaussianMixtureEnergy.sample: this energy is unconditional; got a condition c")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"GaussianMixtureEnergy.sample: n must be a positive integer, got {n!r}")
        which = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, 1, generator=generator, device=self.means.device, dtype=self.means.dtype)
        return self.means[which] + (self.cholesky[which] @ z).squeeze(-1)
