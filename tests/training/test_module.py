"""EBMModule: every valid (energy, objective, sampler) trains through the same code path."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

from structebm.energies.base import MissingCapabilityError
from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.mlp import MLPEnergy
from structebm.energies.potts import PottsEnergy
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.objectives.exact_nll import ExactNLL
from structebm.objectives.nce import NCE
from structebm.objectives.noise import CategoricalNoise, GaussianNoise
from structebm.objectives.score_matching import DenoisingScoreMatching, SlicedScoreMatching
from structebm.samplers.chains import DataInit, ReplayBuffer
from structebm.samplers.gibbs import gibbs
from structebm.samplers.gwg import gibbs_with_gradients
from structebm.samplers.langevin import langevin
from structebm.samplers.mala import mala
from structebm.spaces import CategoricalSpace, ContinuousSpace
from structebm.training.finite_checks import TrainingDivergedError
from structebm.training.module import EBMModule
from tests.training.conftest import gaussian_data, loader, pcd_module, quiet_trainer

L, K = 4, 3


def potts_data(n: int = 256) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, K, (n, L), generator=generator)


def continuous_space() -> ContinuousSpace:
    return ContinuousSpace((2,), low=-5.0, high=5.0)


COMBINATIONS: dict[str, tuple[Callable[[], nn.Module], Callable[[], nn.Module], Callable[[], torch.Tensor]]] = {
    "mlp-cd-langevin": (
        lambda: MLPEnergy(2, hidden=(16,)),
        lambda: ContrastiveDivergence(langevin, DataInit(), 3, sampler_options={"step_size": 0.01}),
        gaussian_data,
    ),
    "mlp-pcd-mala": (
        lambda: MLPEnergy(2, hidden=(16,)),
        lambda: ContrastiveDivergence(mala, ReplayBuffer(continuous_space(), 128), 3, sampler_options={"step_size": 0.01}),
        gaussian_data,
    ),
    "mlp-nce": (lambda: MLPEnergy(2, hidden=(16,)), lambda: NCE(GaussianNoise((2,))), gaussian_data),
    "mlp-dsm": (lambda: MLPEnergy(2, hidden=(16,)), lambda: DenoisingScoreMatching(0.1), gaussian_data),
    "mlp-ssm": (lambda: MLPEnergy(2, hidden=(16,)), lambda: SlicedScoreMatching(), gaussian_data),
    "gaussian-exact-nll": (lambda: GaussianEnergy(torch.zeros(2), torch.eye(2)), ExactNLL, gaussian_data),
    "potts-pcd-gibbs": (
        lambda: PottsEnergy(L, K),
        lambda: ContrastiveDivergence(gibbs, ReplayBuffer(CategoricalSpace(L, K), 128), 2),
        potts_data,
    ),
    "potts-pcd-gwg": (
        lambda: PottsEnergy(L, K),
        lambda: ContrastiveDivergence(gibbs_with_gradients, ReplayBuffer(CategoricalSpace(L, K), 128), 2),
        potts_data,
    ),
    "potts-nce": (lambda: PottsEnergy(L, K), lambda: NCE(CategoricalNoise(L, K)), potts_data),
    "potts-exact-nll": (lambda: PottsEnergy(L, K), ExactNLL, potts_data),
}


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_every_valid_combination_trains_and_logs(name: str) -> None:
    make_energy, make_objective, make_data = COMBINATIONS[name]
    torch.manual_seed(0)
    module = EBMModule(make_energy(), make_objective())
    before = [p.detach().clone() for p in module.energy.parameters()]
    trainer = quiet_trainer(max_steps=3)
    trainer.fit(module, loader(make_data()))
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"])
    assert metrics["train/param_grad_norm"] > 0  # the parameters moved, so some gradient was non-zero
    after = list(module.energy.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after)), "parameters did not move"
    if isinstance(module.objective, ContrastiveDivergence):
        gap = metrics["train/energy_data"] - metrics["train/energy_negative"]  # the CD loss before regularisers
        torch.testing.assert_close(metrics["train/energy_gap"], gap, rtol=1e-4, atol=1e-5)
        rate = metrics["train/acceptance_rate"]
        if name in ("mlp-cd-langevin", "potts-pcd-gibbs"):  # unadjusted Langevin and Gibbs accept every move
            assert rate == 1.0, rate
        else:  # Metropolis-adjusted: some moves are refused, most are taken at these small steps
            assert 0.2 < rate < 1.0, rate


def test_missing_capability_fails_at_construction() -> None:
    with pytest.raises(MissingCapabilityError, match="ExactNLL.*HasLogPartition.*MLPEnergy"):
        EBMModule(MLPEnergy(2), ExactNLL())


def test_validation_logs_exact_nll_when_available() -> None:
    module = EBMModule(GaussianEnergy(torch.zeros(2), torch.eye(2)), ExactNLL())
    trainer = quiet_trainer(max_epochs=1)
    held_out = gaussian_data(n=50, seed=1)
    trainer.fit(module, loader(gaussian_data()), loader(held_out, len(held_out)))
    # validation ran after the last step: its NLL is that of the final Gaussian on the held-out points
    energy = module.energy
    with torch.no_grad():
        model = torch.distributions.MultivariateNormal(energy.mean, covariance_matrix=energy.covariance)
        expected_nll = -model.log_prob(held_out).mean()
        expected_energy = energy(held_out).mean()
    metrics = trainer.callback_metrics
    torch.testing.assert_close(metrics["val/nll"], expected_nll, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(metrics["val/energy_data"], expected_energy, rtol=1e-5, atol=1e-5)


class BlowsUpAfter(nn.Module):
    """An energy that returns NaN from its ``limit``-th call on."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.inner = MLPEnergy(2, hidden=(8,))
        self.calls = 0
        self.limit = limit

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        values = self.inner(x, c)
        return values * float("nan") if self.calls >= self.limit else values


def test_non_finite_energy_stops_training_and_says_where() -> None:
    module = EBMModule(BlowsUpAfter(limit=4), DenoisingScoreMatching(0.1))
    with pytest.raises(TrainingDivergedError, match=r"training step 3 \(epoch 0, batch 3\).*not finite"):
        quiet_trainer(max_steps=10).fit(module, loader(gaussian_data()))


class InfiniteGradient(nn.Module):
    """Finite energy whose parameter gradient is infinite: d/dw sqrt(w) at w = 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.inner = MLPEnergy(2, hidden=(8,))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(x, c) + self.w.sqrt()


def test_non_finite_gradient_names_the_parameter() -> None:
    module = EBMModule(InfiniteGradient(), NCE(GaussianNoise((2,))))
    with pytest.raises(TrainingDivergedError, match=r"training step 0.*non-finite gradient in energy\.w"):
        quiet_trainer(max_steps=2).fit(module, loader(gaussian_data()))


def test_diverging_sampler_chain_is_reported_with_the_step() -> None:
    # Langevin on a quadratic energy with a huge step multiplies x by about -1e6 per step:
    # the energy overflows float32 within a few steps.
    objective = ContrastiveDivergence(langevin, DataInit(), 10, sampler_options={"step_size": 1e6})
    module = EBMModule(GaussianEnergy(torch.zeros(2), torch.eye(2)), objective)
    with pytest.raises(TrainingDivergedError, match=r"training step 0.*diverged"):
        quiet_trainer(max_steps=2).fit(module, loader(gaussian_data()))


def test_nan_in_data_is_a_clear_error() -> None:
    data = gaussian_data()
    data[70, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values in row"):
        quiet_trainer(max_steps=5).fit(pcd_module(), loader(data, 64, 0))


def test_wrong_data_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        quiet_trainer(max_steps=1).fit(pcd_module(), loader(gaussian_data(dim=3)))
