"""Noise distributions for noise-contrastive estimation.

Each is an :class:`torch.nn.Module` (parameters in buffers: checkpointed, moved by
``.to(device)``) with

- ``sample(n, generator) -> Tensor[n, *event]`` drawn on the buffers' device, and
- ``log_prob(x) -> Tensor[B]``, the exact normalised log-density (or log-mass).

Distributions built without parameters are *fitted to data*: ``needs_fit`` is true until
:meth:`fit` is called (NCE calls it with its first batch).

- :class:`GaussianNoise` — :math:`\\mathcal{N}(\\mu, s\\Sigma)` with full covariance.
- :class:`UniformNoise` — uniform in a box :math:`[\\text{low}, \\text{high}]`.
- :class:`CategoricalNoise` — independent sites, :math:`q(x) = \\prod_i \\pi_i(x_i)`.
"""

from __future__ import annotations

import math
from typing import Optional, Protocol, Sequence, Union, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = ["NoiseDistribution", "GaussianNoise", "UniformNoise", "CategoricalNoise"]


@runtime_checkable
class NoiseDistribution(Protocol):
    """What NCE needs from a noise distribution."""

    def sample(self, n: int, generator: torch.Generator) -> Tensor: ...

    def log_prob(self, x: Tensor) -> Tensor: ...


def _check_event(x: Tensor, shape: tuple[int, ...], where: str) -> None:
    if not isinstance(x, Tensor) or tuple(x.shape[1:]) != shape or x.dim() != len(shape) + 1:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{where}: expected a batch of shape [B, {', '.join(map(str, shape))}], got {got}")


class GaussianNoise(nn.Module):
    """Gaussian noise :math:`q = \\mathcal{N}(\\mu, s \\Sigma)` over flattened states.

    .. math::
        \\log q(x) = -\\tfrac12 \\lVert L^{-1}(x - \\mu) \\rVert^2 - \\sum_j \\log L_{jj}
        - \\tfrac{D}{2} \\log 2\\pi, \\qquad L L^\\top = s\\Sigma.

    Args:
        shape: event shape of one state.
        mean: :math:`\\mu` (``D`` values), or ``None`` to fit to data.
        covariance: :math:`\\Sigma` (``[D, D]``), or ``None`` to fit to data.
        covariance_scale: :math:`s`, widens (``> 1``) the noise relative to the given or fitted covariance.

    Shapes:
        - ``sample``: ``[n, *shape]``; ``log_prob``: ``[B, *shape] -> [B]``.
    """

    def __init__(
        self,
        shape: Sequence[int],
        mean: Optional[Union[Tensor, Sequence[float]]] = None,
        covariance: Optional[Union[Tensor, Sequence[Sequence[float]]]] = None,
        covariance_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        dim = math.prod(self.shape)
        if (mean is None) != (covariance is None):
            raise ValueError("GaussianNoise: give both mean and covariance, or neither (fit to data)")
        if covariance_scale <= 0:
            raise ValueError(f"GaussianNoise: covariance_scale must be positive, got {covariance_scale}")
        self.covariance_scale = float(covariance_scale)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale_tril", torch.eye(dim))
        self.register_buffer("fitted", torch.tensor(mean is not None))
        if mean is not None:
            self._set(torch.as_tensor(mean, dtype=torch.get_default_dtype()), torch.as_tensor(covariance, dtype=torch.get_default_dtype()))

    @property
    def needs_fit(self) -> bool:
        return not bool(self.fitted)

    def _set(self, mean: Tensor, covariance: Tensor) -> None:
        dim = self.mean.shape[0]
        if mean.shape != (dim,) or covariance.shape != (dim, dim):
            raise ValueError(
                f"GaussianNoise: need mean ({dim},) and covariance ({dim}, {dim}), "
                f"got {tuple(mean.shape)} and {tuple(covariance.shape)}"
            )
        factor, info = torch.linalg.cholesky_ex(self.covariance_scale * covariance)
        if info.item() != 0:
            raise ValueError("GaussianNoise: the covariance is not positive definite")
        self.mean.copy_(mean)
        self.scale_tril.copy_(factor)
        self.fitted.fill_(True)

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """Set :math:`\\mu, \\Sigma` to the sample mean and covariance of ``x`` (with a small ridge)."""
        _check_event(x, self.shape, "GaussianNoise.fit")
        if x.shape[0] < 2:
            raise ValueError("GaussianNoise.fit: need at least two data points")
        flat = x.detach().reshape(x.shape[0], -1).to(self.mean)
        centred = flat - flat.mean(0)
        covariance = centred.T @ centred / (flat.shape[0] - 1)
        ridge = 1e-6 * covariance.diagonal().mean().clamp_min(1e-12)
        self._set(flat.mean(0), covariance + ridge * torch.eye(flat.shape[1], device=flat.device, dtype=flat.dtype))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        eps = torch.randn((n, self.mean.shape[0]), generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return (self.mean + eps @ self.scale_tril.T).reshape(n, *self.shape)

    def log_prob(self, x: Tensor) -> Tensor:
        _check_event(x, self.shape, "GaussianNoise.log_prob")
        diff = (x.reshape(x.shape[0], -1) - self.mean).unsqueeze(-1)
        z = torch.linalg.solve_triangular(self.scale_tril, diff, upper=False).squeeze(-1)
        log_det = self.scale_tril.diagonal().log().sum()
        return -0.5 * z.pow(2).sum(-1) - log_det - 0.5 * z.shape[-1] * math.log(2 * math.pi)


class UniformNoise(nn.Module):
    """Uniform noise in the box :math:`[\\text{low}, \\text{high}]`; ``log q = -\\sum \\log(\\text{high} - \\text{low})`` inside, ``-inf`` outside.

    Args:
        shape: event shape of one state.
        low: lower bound (scalar or broadcastable to ``shape``).
        high: upper bound.

    Shapes:
        - ``sample``: ``[n, *shape]``; ``log_prob``: ``[B, *shape] -> [B]``.
    """

    def __init__(self, shape: Sequence[int], low: Union[float, Tensor], high: Union[float, Tensor]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        low_t = torch.broadcast_to(torch.as_tensor(low, dtype=torch.get_default_dtype()), self.shape).clone()
        high_t = torch.broadcast_to(torch.as_tensor(high, dtype=torch.get_default_dtype()), self.shape).clone()
        if not bool((low_t < high_t).all()):
            raise ValueError("UniformNoise: low must be strictly below high everywhere")
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        unit = torch.rand((n, *self.shape), generator=generator, device=self.low.device, dtype=self.low.dtype)
        return self.low + (self.high - self.low) * unit

    def log_prob(self, x: Tensor) -> Tensor:
        _check_event(x, self.shape, "UniformNoise.log_prob")
        inside = ((x >= self.low) & (x <= self.high)).reshape(x.shape[0], -1).all(dim=1)
        log_volume = (self.high - self.low).log().sum()
        return torch.where(inside, -log_volume, torch.full_like(log_volume, float("-inf"))).to(x.dtype)


class CategoricalNoise(nn.Module):
    """Independent categorical sites, :math:`q(x) = \\prod_{i=1}^{L} \\pi_i(x_i)`.

    When fitted, :math:`\\pi_i(k) = (n_{ik} + a) / (N + K a)` with counts :math:`n_{ik}`
    and pseudocount :math:`a`, so no state has zero mass.

    Args:
        length: number of sites ``L``.
        num_states: states per site ``K``.
        probs: ``[L, K]`` (or ``[K]`` shared) site probabilities, or ``None`` to fit to data.
        pseudocount: the additive smoothing :math:`a` used by :meth:`fit`.

    Shapes:
        - ``sample``: ``[n, L]`` (long); ``log_prob``: ``[B, L] -> [B]``.
    """

    def __init__(
        self,
        length: int,
        num_states: int,
        probs: Optional[Union[Tensor, Sequence[float], Sequence[Sequence[float]]]] = None,
        pseudocount: float = 1.0,
    ) -> None:
        super().__init__()
        self.length, self.num_states = int(length), int(num_states)
        if pseudocount <= 0:
            raise ValueError(f"CategoricalNoise: pseudocount must be positive, got {pseudocount}")
        self.pseudocount = float(pseudocount)
        self.register_buffer("log_probs", torch.full((self.length, self.num_states), -math.log(self.num_states)))
        self.register_buffer("fitted", torch.tensor(probs is not None))
        if probs is not None:
            probs = torch.broadcast_to(torch.as_tensor(probs, dtype=torch.get_default_dtype()), self.log_probs.shape)
            if (probs <= 0).any() or not torch.allclose(probs.sum(-1), torch.ones(self.length, dtype=probs.dtype), atol=1e-5):
                raise ValueError("CategoricalNoise: probs must be positive and sum to 1 over states at every site")
            self.log_probs.copy_(probs.log())

    @property
    def needs_fit(self) -> bool:
        return not bool(self.fitted)

    def _check(self, x: Tensor, where: str) -> None:
        _check_event(x, (self.length,), where)
        if x.is_floating_point() or ((x < 0) | (x >= self.num_states)).any():
            raise ValueError(f"{where}: expected integer states in [0, {self.num_states})")

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """Set the site probabilities to the smoothed frequencies in ``x``."""
        self._check(x, "CategoricalNoise.fit")
        counts = nn.functional.one_hot(x.long(), self.num_states).sum(0).to(self.log_probs)
        self.log_probs.copy_((counts + self.pseudocount).log() - math.log(x.shape[0] + self.num_states * self.pseudocount))
        self.fitted.fill_(True)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        draws = torch.multinomial(self.log_probs.exp(), n, replacement=True, generator=generator)
        return draws.T.contiguous()

    def log_prob(self, x: Tensor) -> Tensor:
        self._check(x, "CategoricalNoise.log_prob")
        return self.log_probs.T.gather(0, x.long()).sum(-1)
