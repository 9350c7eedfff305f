"""Contrastive divergence (CD-k and persistent CD): it learns, it is reproducible, it fails clearly."""

import functools

import pytest
import torch
from jsonargparse import ArgumentParser
from torch import nn

from structebm.energies.base import EnergyOutputError, MissingCapabilityError
from structebm.energies.potts import PottsEnergy
from structebm.objectives.base import Objective
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.samplers.chains import DataInit, NoiseInit, ReplayBuffer
from structebm.samplers.gibbs import gibbs
from structebm.samplers.langevin import langevin
from structebm.samplers.mala import mala
from structebm.spaces import CategoricalSpace, ContinuousSpace
from tests.objectives._targets import (
    POTTS_LENGTH,
    POTTS_STATES,
    gaussian_data,
    kl_from_target_to_gaussian_model,
    potts_data,
    potts_kl,
    potts_target,
    standard_gaussian_model,
)

# "Clearly below": training must cut the exact KL to the target at least 20-fold. The floor
# left by n = 2000 data points is about d / (2n) (0.008 for the 32-parameter Potts model,
# 0.001 for the 5-parameter Gaussian), far below 1/20 of the initial KL (0.88 and 0.72); the
# remaining room absorbs the bias of short chains and minibatch noise. A sign error or a
# gradient leaking through the negatives makes the KL grow instead.
REQUIRED_REDUCTION = 20.0


def _train(objective: ContrastiveDivergence, energy: nn.Module, data, steps: int = 300, batch: int = 200, lr: float = 0.05):
    objective.bind(energy)
    optimizer = torch.optim.Adam(energy.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    order = torch.Generator().manual_seed(0)
    x, c = data if isinstance(data, tuple) else (data, None)
    for _ in range(steps):
        rows = torch.randint(0, x.shape[0], (batch,), generator=order)
        optimizer.zero_grad()
        out = objective(energy, x[rows] if c is None else (x[rows], c[rows]))
        out.loss.backward()
        optimizer.step()
        schedule.step()
    return out


@pytest.mark.parametrize(
    "make_source, num_steps",
    [(DataInit, 5), (lambda: ReplayBuffer(ContinuousSpace((2,)), capacity=1000, reinit_prob=0.05), 10)],
    ids=["cd5", "pcd10"],
)
def test_langevin_cd_and_pcd_fit_a_gaussian(make_source, num_steps):
    source = make_source()
    model = standard_gaussian_model()
    initial_kl = kl_from_target_to_gaussian_model(model)
    objective = ContrastiveDivergence(langevin, source, num_steps, sampler_options={"step_size": 0.05})
    out = _train(objective, model, gaussian_data(2000))
    assert kl_from_target_to_gaussian_model(model) < initial_kl / REQUIRED_REDUCTION
    metrics = out.metrics
    assert metrics["energy_gap"].item() == pytest.approx((metrics["energy_data"] - metrics["energy_negative"]).item(), abs=1e-6)
    assert metrics["energy_gap"].item() == pytest.approx(out.loss.item(), abs=1e-6)  # no penalty terms: loss is the gap
    assert metrics["acceptance_rate"].item() == 1.0  # unadjusted Langevin accepts every move
    assert metrics["sampler_grad_norm"].item() > 0
    if isinstance(source, ReplayBuffer):
        assert metrics["buffer/fill"].item() == pytest.approx(source.filled.float().mean().item())
        assert metrics["buffer/fill"] > 0.9
        # The last draw restarted 200 chains, each from noise with probability 0.05:
        # the fraction is k / 200 and within 4 standard errors (4 * sqrt(0.05 * 0.95 / 200) ≈ 0.062) of 0.05.
        fraction = metrics["buffer/reinit_fraction"].item()
        assert fraction * 200 == pytest.approx(round(fraction * 200)) and abs(fraction - 0.05) < 0.062


@pytest.mark.parametrize(
    "make_source",
    [DataInit, lambda: ReplayBuffer(CategoricalSpace(POTTS_LENGTH, POTTS_STATES), capacity=500, reinit_prob=0.05)],
    ids=["cd1", "pcd1"],
)
def test_gibbs_cd_and_pcd_fit_a_potts_model(make_source):
    source = make_source()
    target = potts_target()
    model = PottsEnergy(POTTS_LENGTH, POTTS_STATES)
    initial_kl = potts_kl(target, model)
    _train(ContrastiveDivergence(functools.partial(gibbs, scan="random"), source, 1), model, potts_data(target, 2000))
    assert potts_kl(target, model) < initial_kl / REQUIRED_REDUCTION


class _ClassMeans(nn.Module):
    """E(x, c) = 1/2 ||x - m_c||^2: a class-conditional Gaussian with learnable means."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.zeros(num_classes, dim))

    def forward(self, x, c=None):
        return 0.5 * (x - self.means[c]).pow(2).sum(1)


def test_per_class_pcd_learns_each_class_from_its_own_chains():
    true_means = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    generator = torch.Generator().manual_seed(1)
    c = torch.randint(0, 3, (600,), generator=generator)
    x = true_means[c] + torch.randn(600, 2, generator=generator)
    buffer = ReplayBuffer(ContinuousSpace((2,)), capacity=300, reinit_prob=0.05, num_classes=3)
    model = _ClassMeans(3, 2)
    _train(ContrastiveDivergence(langevin, buffer, 10, sampler_options={"step_size": 0.1}), model, (x, c), batch=100)
    # ~200 points per class: se of a class mean is 1/sqrt(200) = 0.07 per coordinate; 0.5 is
    # about 7 se, room for the minibatch noise of the annealed optimiser.
    assert (model.means.detach() - true_means).abs().max() < 0.5
    owner = torch.arange(buffer.capacity) // buffer.slots_per_group
    for k in range(3):
        stored = buffer.storage[buffer.filled & (owner == k)]
        nearest = (stored[:, None, :] - true_means[None]).norm(dim=-1).argmin(1)
        assert (nearest == k).float().mean() > 0.9, f"class {k}'s chains drifted to other classes"


def test_loss_is_the_energy_gap_with_detached_negatives_and_no_parameter_gradients_from_sampling():
    model = standard_gaussian_model()
    x = gaussian_data(16)
    objective = ContrastiveDivergence(langevin, NoiseInit(ContinuousSpace((2,))), 3, generator_seed=4,
                                      sampler_options={"step_size": 0.1})
    objective.bind(model)
    out = objective(model, x)
    assert all(p.grad is None for p in model.parameters()), "sampling left gradients in the parameters"
    twin = ContrastiveDivergence(langevin, NoiseInit(ContinuousSpace((2,))), 3, generator_seed=4,
                                 sampler_options={"step_size": 0.1})
    negatives, _, _ = twin.sample_negatives(model, x, None)
    assert not negatives.requires_grad
    expected = model(x).mean() - model(negatives).mean()
    assert torch.allclose(out.loss, expected)
    grads = torch.autograd.grad(out.loss, list(model.parameters()))
    expected_grads = torch.autograd.grad(expected, list(model.parameters()))
    assert all(torch.allclose(a, b) for a, b in zip(grads, expected_grads))


def test_regularisers_add_to_the_loss():
    model = standard_gaussian_model()
    x = gaussian_data(16)
    kwargs = dict(sampler_factory=langevin, num_steps=2, sampler_options={"step_size": 0.1}, generator_seed=7)
    plain = ContrastiveDivergence(source=DataInit(), **kwargs)(model, x)
    regularised = ContrastiveDivergence(
        source=DataInit(), energy_magnitude_weight=0.1, gradient_penalty_weight=0.5,
        gradient_penalty_at="interpolates", **kwargs,
    )(model, x)
    extra = regularised.metrics["energy_magnitude"] + regularised.metrics["gradient_penalty"]
    assert regularised.metrics["energy_magnitude"] > 0 and regularised.metrics["gradient_penalty"] > 0
    assert torch.allclose(regularised.loss, plain.loss + extra, atol=1e-6)


def test_same_seed_same_loss_and_generator_state_round_trip():
    def build():
        source = ReplayBuffer(ContinuousSpace((2,)), capacity=64)
        return ContrastiveDivergence(langevin, source, 3, generator_seed=11, sampler_options={"step_size": 0.1})

    model = standard_gaussian_model()
    x = gaussian_data(32)
    first, second = build(), build()
    assert torch.equal(first(model, x).loss, second(model, x).loss)
    saved_buffer = {k: v.clone() for k, v in first.state_dict().items()}
    saved_generator = first.generator_state()
    expected = first(model, x).loss
    resumed = build()
    resumed.load_state_dict(saved_buffer)
    resumed.load_generator_state(saved_generator)
    assert torch.equal(resumed(model, x).loss, expected)


def test_builds_from_a_yaml_style_config():
    parser = ArgumentParser()
    parser.add_argument("--objective", type=Objective)
    config = parser.parse_object({"objective": {
        "class_path": "structebm.objectives.contrastive.ContrastiveDivergence",
        "init_args": {
            "sampler_factory": "structebm.samplers.langevin.langevin",
            "sampler_options": {"step_size": 0.05},
            "num_steps": 2,
            "source": {
                "class_path": "structebm.samplers.chains.ReplayBuffer",
                "init_args": {"space": {"class_path": "structebm.spaces.ContinuousSpace", "init_args": {"shape": [2]}},
                              "capacity": 32},
            },
        },
    }})
    objective = parser.instantiate(config).objective
    assert isinstance(objective, ContrastiveDivergence) and objective.sampler_factory is langevin
    out = objective(standard_gaussian_model(), gaussian_data(8))
    assert torch.isfinite(out.loss)


def test_bad_input_is_named():
    model = standard_gaussian_model()
    space = ContinuousSpace((2,), low=-5.0, high=5.0)
    objective = ContrastiveDivergence(langevin, ReplayBuffer(space, capacity=16), 1, sampler_options={"step_size": 0.1})
    x = gaussian_data(4)
    x[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"ContrastiveDivergence: .* row\(s\) \[1\]"):
        objective(model, x)
    with pytest.raises(ValueError, match=r"ContrastiveDivergence: data batch: expected shape \[B, 2\]"):
        objective(model, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="num_steps"):
        ContrastiveDivergence(langevin, DataInit(), 0)
    with pytest.raises(ValueError, match="cannot import sampler_factory"):
        ContrastiveDivergence("structebm.samplers.nowhere.sampler", DataInit(), 1)
    with pytest.raises(TypeError, match="source must be a ChainSource"):
        ContrastiveDivergence(langevin, space, 1)
    with pytest.raises(MissingCapabilityError, match="HasLocalMoves"):
        ContrastiveDivergence(gibbs, DataInit(), 1).bind(standard_gaussian_model())

    class WrongShape(nn.Module):
        def forward(self, x, c=None):
            return 0.5 * x.pow(2)

    with pytest.raises(EnergyOutputError, match=r"shape \(4, 2\)"):
        ContrastiveDivergence(langevin, DataInit(), 1, sampler_options={"step_size": 0.1})(WrongShape(), torch.zeros(4, 2))


def test_acceptance_rate_metric_averages_the_steps_of_the_chain():
    """ULA accepts every proposal, so its metric is exactly one; for MALA it is the mean over the
    K steps of each step's mean acceptance probability, recomputed here from the same chain."""
    model = standard_gaussian_model()
    data = gaussian_data(64)
    ula = ContrastiveDivergence(langevin, DataInit(), 4, generator_seed=3, sampler_options={"step_size": 0.05})
    ula.bind(model)
    assert ula(model, data).metrics["acceptance_rate"].item() == 1.0

    options = {"step_size": 0.5}
    adjusted = ContrastiveDivergence(mala, DataInit(), 4, generator_seed=3, sampler_options=options)
    adjusted.bind(model)
    reported = adjusted(model, data).metrics["acceptance_rate"]
    sampler = mala(model, **options)
    generator = torch.Generator().manual_seed(3)
    state, rates = sampler.init(data), []
    for _ in range(4):
        state, info = sampler.step(state, generator)
        rates.append(info.acceptance_rate.mean())
    expected = torch.stack(rates).mean()
    assert 0.0 < expected < 1.0
    assert torch.allclose(reported, expected)
