"""A per-class replay buffer whose restarts are partly drawn from a Gaussian fitted to each class.

For class ``k`` with training images :math:`x_1, \\dots, x_{n_k}` (flattened to ``D`` values)
the buffer fits

.. math::
    \\mu_k = \\frac{1}{n_k} \\sum_i x_i, \\qquad
    \\Sigma_k = \\frac{1}{n_k - 1} \\sum_i (x_i - \\mu_k)(x_i - \\mu_k)^\\top + \\epsilon I
    = L_k L_k^\\top,

and a restarted class-``k`` chain starts from

.. math::
    x_0 = \\begin{cases}
        \\operatorname{clamp}_{[-1, 1]}(\\mu_k + L_k z), \\; z \\sim \\mathcal{N}(0, I_D)
            & \\text{w.p. } f \\\\
        \\text{uniform noise of the space} & \\text{otherwise,}
    \\end{cases}

with ``f = gaussian_fraction``; chains that do not restart start from their stored state as in
:class:`~structebm.samplers.chains.ReplayBuffer`. The Gaussian draws are smooth, low-contrast
blobs shaped like the class (JEM++'s "informative initialisation", Yang & Ji, ICCV 2021):
negatives that start there teach the energy to rise on blurry, grey images, and the chains
reach the data manifold in fewer steps.
"""

from __future__ import annotations


import torch
from torch import Tensor

from structebm.samplers.chains import ReplayBuffer
from structebm.spaces import ContinuousSpace

__all__ = ["ClassGaussianReplayBuffer"]


class ClassGaussianReplayBuffer(ReplayBuffer):
    """Per-class replay buffer whose restarts are partly drawn from a Gaussian fitted to each class.

    A restarted chain of class ``k`` starts, with probability ``gaussian_fraction``, from
    :math:`\\mathcal{N}(\\mu_k, \\Sigma_k)` (mean and full covariance of the class-``k`` training
    images, clamped to ``[-1, 1]``), else from uniform noise as in :class:`ReplayBuffer`.

    Args:
        space: the image space (``[-1, 1]`` box).
        images: training images ``[N, *space.shape]`` in ``[-1, 1]``.
        labels: their classes ``[N]`` in ``[0, num_classes)``.
        num_classes: number of classes (every class must have at least two images).
        gaussian_fraction: probability that a restart is drawn from the class Gaussian.
        capacity, reinit_prob: as in :class:`ReplayBuffer`.
        jitter: :math:`\\epsilon`, added to the covariance diagonal before the Cholesky factorisation.

    Shapes:
        - ``class_mean``: ``[num_classes, D]``, ``class_factor``: ``[num_classes, D, D]``
          (lower-triangular :math:`L_k`), ``D = prod(space.shape)``; both float32 buffers.
        - ``initial`` returns ``x0 [B, *space.shape]`` and ``index [B]`` as in :class:`ReplayBuffer`.
    """

    def __init__(
        self, space: ContinuousSpace, images: Tensor, labels: Tensor, num_classes: int, gaussian_fraction: float,
        capacity: int = 10_000, reinit_prob: float = 0.05, jitter: float = 1e-3,
    ) -> None:
        super().__init__(space, capacity=capacity, reinit_prob=reinit_prob, num_classes=num_classes)
        if not 0.0 <= gaussian_fraction <= 1.0:
            raise ValueError(f"ClassGaussianReplayBuffer: gaussian_fraction must lie in [0, 1], got {gaussian_fraction}")
        self.gaussian_fraction = float(gaussian_fraction)
        flat = images.reshape(images.shape[0], -1).double()
        means, factors = [], []
        for k in range(num_classes):
            members = flat[labels == k]
            if members.shape[0] < 2:
                raise ValueError(f"ClassGaussianReplayBuffer: class {k} has {members.shape[0]} images, needs at least 2")
            centred = members - members.mean(dim=0)
            covariance = centred.T @ centred / (members.shape[0] - 1)
            covariance.diagonal().add_(jitter)
            means.append(members.mean(dim=0))
            factors.append(torch.linalg.cholesky(covariance))
        self.register_buffer("class_mean", torch.stack(means).float())
        self.register_buffer("class_factor", torch.stack(factors).float())

    def restart(self, x0: Tensor, restarts: Tensor, index: Tensor, generator: torch.Generator) -> None:
        """Restart the rows ``restarts`` of ``x0`` in place: uniform noise, then a fraction from the class Gaussians."""
        super().restart(x0, restarts, index, generator)
        gaussian = torch.rand(restarts.numel(), generator=generator, device=x0.device) < self.gaussian_fraction
        chosen = restarts[gaussian]
        classes = index[chosen] // self.slots_per_group
        for k in classes.unique().tolist():
            rows = chosen[classes == k]
            z = torch.randn((rows.numel(), self.class_mean.shape[1]), generator=generator, device=x0.device)
            draws = self.class_mean[k] + z @ self.class_factor[k].T
            x0[rows] = draws.clamp(-1.0, 1.0).reshape(rows.numel(), *self.space.shape).to(x0.dtype)
