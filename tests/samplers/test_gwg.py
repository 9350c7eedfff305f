"""Gibbs-with-gradients against exact distributions of small Potts / Ising models.

Tolerance: as in test_gibbs.py, the final states of N independent chains are N iid draws
when the sampler is right, so E[TV] ≈ Σ_s sqrt(p_s(1-p_s)/(2πN)) — about 0.014 for the
81-state Potts model (N = 30 000) and 0.022 for the 512-state Ising lattice (N = 40 000),
asserted below half of the 0.05 tolerance. A 15 % error in the inverse temperature moves
the exact distribution by TV ≈ 0.08 / 0.12 (negative control), and always accepting the
proposal (no MH correction) ends at TV ≈ 0.15 (Potts) / 0.27 (Ising) with 20 000 chains
and 100 steps, so the test has power.
"""

import math

import pytest
import torch

from structebm.energies.base import MissingCapabilityError
from structebm.energies.potts import PottsEnergy
from structebm.samplers.base import ChainDivergedError
from structebm.samplers.gwg import gibbs_with_gradients
from structebm.structured.enumerate import all_states, empirical_distribution, enumerate_energies, total_variation

TV_TOLERANCE = 0.05


def random_potts() -> PottsEnergy:
    return PottsEnergy(4, 3, init_std=0.7, generator=torch.Generator().manual_seed(0))


def lattice_ising() -> PottsEnergy:
    return PottsEnergy.ising((3, 3), coupling=0.5, field=0.2)


def exact_distribution(model: PottsEnergy, temperature_scale: float = 1.0) -> torch.Tensor:
    with torch.no_grad():
        energies = enumerate_energies(model, model.length, model.num_states)
    return torch.softmax(-energies * temperature_scale, dim=0)


def expected_sampling_tv(p: torch.Tensor, n: int) -> float:
    return (p * (1 - p) / (2 * math.pi * n)).sqrt().sum().item()


# (model, num_flips, chains, steps); steps are ~1.5-3x the burn-in seen in a TV-vs-steps run
# (Potts: ~10 steps; Ising with one flip: ~110 steps).
CASES = {
    "potts-1-flip": (random_potts, 1, 30000, 40),
    "potts-3-flips": (random_potts, 3, 30000, 30),
    "ising-1-flip": (lattice_ising, 1, 40000, 160),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gwg_matches_exact_distribution(case):
    make_model, num_flips, num_chains, num_steps = CASES[case]
    model = make_model()
    p = exact_distribution(model)
    assert expected_sampling_tv(p, num_chains) < TV_TOLERANCE / 2
    generator = torch.Generator().manual_seed(1)
    algorithm = gibbs_with_gradients(model, num_flips=num_flips)
    state = algorithm.init(torch.randint(0, model.num_states, (num_chains, model.length), generator=generator))
    acceptance, accepted, rates, variances = [], [], [], []
    for _ in range(num_steps):
        state, info = algorithm.step(state, generator)
        acceptance.append(info.acceptance_rate.mean())
        accepted.append(info.accepted.float().sum())
        rates.append(info.acceptance_rate.sum())
        variances.append((info.acceptance_rate * (1 - info.acceptance_rate)).sum())
    empirical = empirical_distribution(state.x, model.num_states)
    tv = total_variation(p, empirical).item()
    assert tv <= TV_TOLERANCE, f"{case}: TV {tv:.4f}"
    assert total_variation(exact_distribution(model, 0.85), empirical).item() > TV_TOLERANCE
    # A rejecting, still-moving sampler: the MH test matters (not always 1) but does not freeze chains.
    assert 0.2 < torch.stack(acceptance).mean() < 0.99
    assert info.accepted.dtype == torch.bool and info.grad_norm.shape == (num_chains,)
    # Each proposal is accepted with its reported probability: the accepted count over all chains
    # and steps is a sum of Bernoulli(rate) coins, within 5 standard deviations of the summed rates.
    excess = (torch.stack(accepted).sum() - torch.stack(rates).sum()).abs()
    assert excess <= 5 * torch.stack(variances).sum().sqrt(), f"{case}: accepted count off the rates by {excess:.1f}"


@pytest.mark.parametrize("num_flips", [1, 2])
def test_masked_sites_never_change_and_free_sites_follow_the_conditional(num_flips):
    model = random_potts()
    num_chains = 10000
    algorithm = gibbs_with_gradients(model, num_flips=num_flips, mask=torch.tensor([True, False, False, False]))
    generator = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (num_chains, 4), generator=generator)
    x[:, 0] = 2
    state = algorithm.init(x)
    for _ in range(30):
        state, _ = algorithm.step(state, generator)
        assert (state.x[:, 0] == 2).all()
    # Conditional p(x_1..3 | x_0 = 2) over 27 states; expected TV <= sqrt(27/(2π·10^4)) ≈ 0.021.
    states = all_states(4, 3)
    p = exact_distribution(model)[states[:, 0] == 2]
    p = p / p.sum()
    assert total_variation(p, empirical_distribution(state.x[:, 1:], 3)).item() <= TV_TOLERANCE


def test_per_chain_mask_and_fully_frozen_chains():
    model = random_potts()
    mask = torch.rand(64, 4, generator=torch.Generator().manual_seed(3)) < 0.5
    mask[0] = True
    x0 = torch.randint(0, 3, (64, 4), generator=torch.Generator().manual_seed(4))
    algorithm = gibbs_with_gradients(model, num_flips=2, mask=mask)
    state = algorithm.init(x0)
    generator = torch.Generator().manual_seed(5)
    for _ in range(10):
        state, info = algorithm.step(state, generator)
        assert not info.accepted[0] and info.acceptance_rate[0] == 0
    assert torch.equal(state.x[mask], x0[mask])
    assert (state.x[~mask] != x0[~mask]).any()


def test_reproducible_under_a_seed_and_leaves_no_gradients():
    model = random_potts()
    x0 = torch.randint(0, 3, (32, 4), generator=torch.Generator().manual_seed(6))
    finals = []
    for seed in (7, 7, 8):
        algorithm = gibbs_with_gradients(model, num_flips=2)
        state, generator = algorithm.init(x0), torch.Generator().manual_seed(seed)
        for _ in range(5):
            state, info = algorithm.step(state, generator)
        finals.append(state.x)
    assert torch.equal(finals[0], finals[1]) and not torch.equal(finals[0], finals[2])
    assert all(parameter.grad is None for parameter in model.parameters())
    for tensor in (state.x, state.energy, state.grad, info.energy, info.grad_norm, info.acceptance_rate):
        assert not tensor.requires_grad
    assert torch.allclose(state.energy, model(state.x).detach(), atol=1e-5)


def test_invalid_construction_and_states():
    model = random_potts()
    with pytest.raises(MissingCapabilityError, match="HasOneHotEnergy"):
        gibbs_with_gradients(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="num_flips"):
        gibbs_with_gradients(model, num_flips=0)
    with pytest.raises(ValueError, match=r"value 3 at \(batch 0, site 3\)"):
        gibbs_with_gradients(model).init(torch.tensor([[0, 0, 0, 3]]))
    with pytest.raises(ValueError, match="mask has shape"):
        gibbs_with_gradients(model, mask=torch.zeros(3, 4, dtype=torch.bool)).init(torch.zeros(2, 4, dtype=torch.long))

    class NoStateCount(torch.nn.Module):
        def one_hot_energy(self, x_one_hot, c=None):
            return x_one_hot.sum((1, 2))

    with pytest.raises(ValueError, match="num_states"):
        gibbs_with_gradients(NoStateCount())


def test_divergence_is_detected():
    model = random_potts()
    algorithm = gibbs_with_gradients(model)
    state = algorithm.init(torch.zeros(4, 4, dtype=torch.long))
    with torch.no_grad():
        model.coupling_weights.fill_(float("nan"))
    with pytest.raises(ChainDivergedError, match="gibbs_with_gradients"):
        algorithm.step(state, torch.Generator().manual_seed(0))
