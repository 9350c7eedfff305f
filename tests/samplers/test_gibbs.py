"""Gibbs sampling against exact distributions of small Potts / Ising models.

Why TV <= 0.05 is a fair tolerance: the final states of N independent chains (after
burn-in) are N iid draws from p if the sampler is right. For each state s, N·p̂_s is
Binomial(N, p_s), so |p̂_s - p_s| is about half-normal with mean sqrt(2/π)·sqrt(p_s(1-p_s)/N),
and the expected total variation is

    E[TV] ≈ ½ Σ_s sqrt(2 p_s (1-p_s) / (π N)) = Σ_s sqrt(p_s (1-p_s) / (2π N)),

about 0.014 for the 81-state Potts model with N = 30 000 and 0.022 for the 512-state
Ising lattice with N = 40 000 (computed in `expected_sampling_tv` and asserted below half
the tolerance). Its standard deviation is a few thousandths, so 0.05 is many SDs above
the noise, while a 15 % error in the inverse temperature already moves the exact
distribution by TV ≈ 0.08 (Potts) / 0.12 (Ising) — the negative control checks that the
test would see such an error.
"""

import math

import pytest
import torch

from structebm.energies.base import MissingCapabilityError
from structebm.energies.crf import LinearChainCRF
from structebm.energies.potts import PottsEnergy
from structebm.samplers.base import ChainDivergedError
from structebm.samplers.gibbs import gibbs
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


def final_states(algorithm, model, num_chains, num_steps, seed, mask_value=None):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.num_states, (num_chains, model.length), generator=generator)
    if mask_value is not None:
        x[:, 0] = mask_value
    state = algorithm.init(x)
    for _ in range(num_steps):
        state, info = algorithm.step(state, generator)
    return state.x, info


# (model, chains, sweeps): sweeps are several times the burn-in seen in a TV-vs-sweeps run
# (Potts: converged after ~5 sweeps; Ising: ~15 systematic / ~35 random).
CASES = {
    "potts-systematic": (random_potts, "systematic", 30000, 10),
    "potts-random": (random_potts, "random", 30000, 15),
    "ising-systematic": (lattice_ising, "systematic", 40000, 30),
    "ising-random": (lattice_ising, "random", 40000, 50),
    "ising-blocked": (lattice_ising, "blocked", 40000, 30),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gibbs_matches_exact_distribution(case):
    make_model, scan, num_chains, num_sweeps = CASES[case]
    model = make_model()
    p = exact_distribution(model)
    assert expected_sampling_tv(p, num_chains) < TV_TOLERANCE / 2
    x, info = final_states(gibbs(model, scan=scan), model, num_chains, num_sweeps, seed=1)
    empirical = empirical_distribution(x, model.num_states)
    tv = total_variation(p, empirical).item()
    assert tv <= TV_TOLERANCE, f"{case}: TV {tv:.4f}"
    # Negative control: the same samples are far from a model at 15 % lower inverse temperature.
    assert total_variation(exact_distribution(model, 0.85), empirical).item() > TV_TOLERANCE
    assert torch.equal(info.acceptance_rate, torch.ones(num_chains))


@pytest.mark.parametrize("scan", ["systematic", "random"])
def test_masked_sites_never_change_and_free_sites_follow_the_conditional(scan):
    model = random_potts()
    num_chains = 10000
    mask = torch.tensor([True, False, False, False])
    algorithm = gibbs(model, scan=scan, mask=mask)
    generator = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (num_chains, 4), generator=generator)
    x[:, 0] = 2
    state = algorithm.init(x)
    for _ in range(10):
        state, _ = algorithm.step(state, generator)
        assert (state.x[:, 0] == 2).all()
    # Conditional p(x_1..3 | x_0 = 2) over 27 states; expected TV <= sqrt(27/(2π·10^4)) ≈ 0.021.
    states = all_states(4, 3)
    p = exact_distribution(model)[states[:, 0] == 2]
    p = p / p.sum()
    empirical = empirical_distribution(state.x[:, 1:], 3)
    assert total_variation(p, empirical).item() <= TV_TOLERANCE


def test_per_chain_mask():
    model = random_potts()
    mask = torch.rand(64, 4, generator=torch.Generator().manual_seed(3)) < 0.5
    mask[0] = True  # a fully frozen chain
    x0 = torch.randint(0, 3, (64, 4), generator=torch.Generator().manual_seed(4))
    algorithm = gibbs(model, scan="random", mask=mask)
    state = algorithm.init(x0)
    generator = torch.Generator().manual_seed(5)
    for _ in range(5):
        state, _ = algorithm.step(state, generator)
    assert torch.equal(state.x[mask], x0[mask])
    assert (state.x[~mask] != x0[~mask]).any()


def test_reproducible_under_a_seed_and_leaves_no_gradients():
    model = random_potts()
    x0 = torch.randint(0, 3, (32, 4), generator=torch.Generator().manual_seed(6))
    runs = []
    for seed in (7, 7, 8):
        x, _ = final_states(gibbs(model), model, 32, 3, seed)
        runs.append(x)
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    state, info = gibbs(model).step(gibbs(model).init(x0), torch.Generator().manual_seed(0))
    assert not state.x.requires_grad and not state.energy.requires_grad and not info.energy.requires_grad
    assert all(parameter.grad is None for parameter in model.parameters())
    assert torch.allclose(state.energy, model(state.x).detach())


def test_invalid_construction_and_states():
    model = random_potts()
    with pytest.raises(MissingCapabilityError, match="HasLocalMoves"):
        gibbs(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="scan"):
        gibbs(model, scan="checkerboard")
    with pytest.raises(ValueError, match=r"value 3 at \(batch 1, site 2\)"):
        gibbs(model).init(torch.tensor([[0, 0, 0, 0], [0, 0, 3, 0]]))
    with pytest.raises(TypeError, match="integer"):
        gibbs(model).init(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="mask has shape"):
        gibbs(model, mask=torch.zeros(5, dtype=torch.bool)).init(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="bool"):
        gibbs(model, mask=torch.zeros(4)).init(torch.zeros(2, 4, dtype=torch.long))


def test_divergence_is_detected():
    model = random_potts()
    algorithm = gibbs(model)
    state = algorithm.init(torch.zeros(4, 4, dtype=torch.long))
    with torch.no_grad():
        model.fields[1, 1] = float("nan")
    with pytest.raises(ChainDivergedError, match="gibbs"):
        algorithm.step(state, torch.Generator().manual_seed(0))


def test_changed_fraction_is_the_fraction_of_sites_that_changed():
    model = random_potts()
    generator = torch.Generator().manual_seed(3)
    algorithm = gibbs(model, scan="random")
    state = algorithm.init(torch.randint(0, model.num_states, (500, model.length), generator=generator))
    new_state, info = algorithm.step(state, generator)
    expected = (new_state.x != state.x).float().mean(dim=1)
    assert torch.equal(info.extra["changed_fraction"], expected.to(info.extra["changed_fraction"].dtype))
    assert expected.sum() > 0, "a random-scan sweep of a random Potts model must change some sites"


def test_site_colours_never_put_coupled_sites_together():
    ising, potts = lattice_ising(), random_potts()
    checkerboard = ising.site_colours(9)
    assert checkerboard.tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert potts.site_colours(4).unique().numel() == 4  # all pairs coupled: one site per colour
    for model in (ising, potts):
        colours = model.site_colours(model.length)
        same = colours[:, None] == colours[None, :]
        assert not (same & model.coupling_pattern).any()


def test_blocked_gibbs_on_a_crf_matches_the_exact_conditional_distribution():
    """Two colours (even, odd positions) on a 3-tag CRF with a forbidden transition, one sentence of
    5 tokens and one of 3 (2 padded positions): every labelling is enumerated. The expected TV of
    20 000 chains is below 0.04 (asserted); 20 sweeps are many times the burn-in of a 5-site chain."""
    tags, length, chains = 3, 5, 20000
    allowed = torch.ones(tags, tags, dtype=torch.bool)
    allowed[2, 0] = False
    g = torch.Generator().manual_seed(0)
    model = LinearChainCRF(tags, allowed_transitions=allowed)
    with torch.no_grad():
        for parameter in (model.transitions, model.start, model.end):
            parameter.copy_(torch.randn(parameter.shape, generator=g))
    algorithm = gibbs(model, scan="blocked")
    for used in (5, 3):
        emissions = torch.randn(1, length, tags, generator=g)
        mask = (torch.arange(length) < used)[None]
        labellings = all_states(used, tags)
        padded = torch.cat([labellings, torch.zeros(len(labellings), length - used, dtype=torch.long)], 1)
        with torch.no_grad():
            p = torch.softmax(-model(padded, (emissions.expand(len(padded), -1, -1), mask.expand(len(padded), -1))), 0)
        assert expected_sampling_tv(p, chains) < 0.04
        state = algorithm.init(torch.zeros(chains, length, dtype=torch.long), (emissions.expand(chains, -1, -1), mask.expand(chains, -1)))
        for _ in range(20):
            state, _ = algorithm.step(state, g)
        empirical = empirical_distribution(state.x[:, :used], tags)
        assert total_variation(p, empirical).item() <= TV_TOLERANCE, f"{used} tokens"
        assert empirical[p == 0].sum() == 0  # no forbidden transition is ever drawn


def test_blocked_scan_needs_a_site_colouring():
    class NoColours(torch.nn.Module):
        def forward(self, x, c=None):
            return x.float().sum(1)

        def local_energy_deltas(self, x, c=None):
            return torch.zeros(*x.shape, 2)

    with pytest.raises(MissingCapabilityError, match="site_colours"):
        gibbs(NoColours(), scan="blocked")
