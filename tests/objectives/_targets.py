"""Shared targets for the objective tests: a 2-D Gaussian and a small Potts model, with exact KLs."""

import itertools
import math

import torch

from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.potts import PottsEnergy

TRUE_MEAN = torch.tensor([1.0, -0.5])
TRUE_COVARIANCE = torch.tensor([[1.0, 0.6], [0.6, 2.0]])
POTTS_LENGTH, POTTS_STATES = 4, 3




def gaussian_target() -> GaussianEnergy:
    return GaussianEnergy.from_covariance(TRUE_MEAN, TRUE_COVARIANCE)


def gaussian_data(n: int, seed: int = 0) -> torch.Tensor:
    return gaussian_target().sample(None, n, torch.Generator().manual_seed(seed))


def standard_gaussian_model() -> GaussianEnergy:
    return GaussianEnergy(torch.zeros(2), torch.eye(2))


def gaussian_kl(mean0: torch.Tensor, cov0: torch.Tensor, mean1: torch.Tensor, cov1: torch.Tensor) -> float:
    """KL(N(mean0, cov0) || N(mean1, cov1)) in closed form."""
    precision1 = torch.linalg.inv(cov1)
    diff = mean1 - mean0
    dim = mean0.shape[0]
    value = torch.trace(precision1 @ cov0) + diff @ precision1 @ diff - dim + torch.logdet(cov1) - torch.logdet(cov0)
    return 0.5 * float(value)


def kl_from_target_to_gaussian_model(model: GaussianEnergy) -> float:
    with torch.no_grad():
        return gaussian_kl(TRUE_MEAN, TRUE_COVARIANCE, model.mean, model.covariance)


def potts_target(seed: int = 3) -> PottsEnergy:
    return PottsEnergy(POTTS_LENGTH, POTTS_STATES, init_std=0.6, generator=torch.Generator().manual_seed(seed))


def potts_data(target: PottsEnergy, n: int, seed: int = 0) -> torch.Tensor:
    return target.sample(None, n, torch.Generator().manual_seed(seed))


def all_potts_states() -> torch.Tensor:
    """Every state of the small Potts space, ``[K^L, L]``, listed independently of the library."""
    return torch.tensor(list(itertools.product(range(POTTS_STATES), repeat=POTTS_LENGTH)))


def potts_log_probs(model: PottsEnergy) -> torch.Tensor:
    """Exact log p of every state by brute-force enumeration (independent of ``log_partition``)."""
    with torch.no_grad():
        negative_energies = -model(all_potts_states())
        return negative_energies - torch.logsumexp(negative_energies, 0)


def potts_kl(target: PottsEnergy, model: PottsEnergy) -> float:
    """KL(target || model) by enumeration."""
    log_p, log_q = potts_log_probs(target), potts_log_probs(model)
    return float((log_p.exp() * (log_p - log_q)).sum())


def potts_marginals(model: PottsEnergy) -> torch.Tensor:
    probs = potts_log_probs(model).exp()
    one_hot = torch.nn.functional.one_hot(all_potts_states(), POTTS_STATES).float()
    return torch.einsum("s,slk->lk", probs, one_hot)


def uniform_potts_kl(target: PottsEnergy) -> float:
    """KL(target || uniform) = log K^L - H(target)."""
    log_p = potts_log_probs(target)
    return POTTS_LENGTH * math.log(POTTS_STATES) + float((log_p.exp() * log_p).sum())
