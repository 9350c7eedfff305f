"""Ratio matching and pseudo-likelihood: zero expected gradient at the truth on enumerable
Potts and graph models, exact neighbour differences, unbiased site subsets, recovery of a
Potts model from samples, and clear errors."""

import math

import pytest
import torch
from torch import nn

from structebm.energies.base import MissingCapabilityError
from structebm.energies.graph import RelationalGraphEnergy
from structebm.energies.potts import PottsEnergy
from structebm.graphs.enumerate import all_graphs, exact_distribution
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.objectives.ratio_matching import RatioMatching
from structebm.objectives.site_differences import choose_sites, site_differences
from tests.objectives._targets import (
    POTTS_LENGTH,
    POTTS_STATES,
    all_potts_states,
    potts_data,
    potts_kl,
    potts_log_probs,
    potts_marginals,
    potts_target,
    uniform_potts_kl,
)

CRITERIA = ("ratio", "pseudo_likelihood")

# Ratio matching and pseudo-likelihood are consistent but less efficient than maximum likelihood;
# for couplings of the size used here (init_std 0.6) we take their asymptotic variance to be within
# a factor of 2 of the MLE's, as the NCE test does for NCE, so every standard error is sqrt(2) x.
EFFICIENCY_FACTOR = 2.0


class ForwardOnly(nn.Module):
    """A Potts energy seen only through ``forward`` (no local moves, no one-hot energy)."""

    def __init__(self, potts: PottsEnergy) -> None:
        super().__init__()
        self.potts, self.num_states = potts, potts.num_states

    def forward(self, x: torch.Tensor, c=None) -> torch.Tensor:
        return self.potts(x, c)


def _expected_gradient(objective: RatioMatching, energy: nn.Module, states, probs: torch.Tensor) -> torch.Tensor:
    """Exact E_p[grad of the per-state loss] over an enumerated space, flattened over parameters."""
    losses, _ = objective.example_losses(energy, states)
    grads = torch.autograd.grad((probs * losses).sum(), [p for p in energy.parameters() if p.requires_grad])
    return torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("estimator", ("exact", "gradient"))
def test_expected_gradient_vanishes_at_the_true_potts_model(criterion, estimator):
    target = potts_target().double()
    states = all_potts_states()
    probs = potts_log_probs(target).exp()
    objective = RatioMatching(criterion, estimator=estimator)
    objective.bind(target)
    at_truth = _expected_gradient(objective, target, states, probs)
    assert at_truth.abs().max() < 1e-10
    elsewhere = potts_target(seed=11).double()
    assert _expected_gradient(objective, elsewhere, states, probs).abs().max() > 1e-2


def _tiny_graph_energy(seed: int) -> tuple[GraphSpace, RelationalGraphEnergy]:
    torch.manual_seed(seed)
    space = GraphSpace(max_nodes=3, num_node_types=2, num_edge_types=2)
    energy = RelationalGraphEnergy(2, 2, hidden=8, num_layers=2).double()
    with torch.no_grad():
        for parameter in energy.parameters():
            parameter.mul_(3.0)  # a peaked distribution, far from uniform
    return space, energy


@pytest.mark.parametrize("criterion", CRITERIA)
def test_expected_gradient_vanishes_at_the_true_graph_energy(criterion):
    space, energy = _tiny_graph_energy(seed=0)
    graphs = all_graphs(space)
    with torch.no_grad():
        probs = exact_distribution(energy(graphs))
    objective = RatioMatching(criterion)
    assert _expected_gradient(objective, energy, graphs, probs).abs().max() < 1e-9
    uniform = torch.full_like(probs, 1.0 / probs.shape[0])
    assert _expected_gradient(objective, energy, graphs, uniform).abs().max() > 1e-2


def test_graph_differences_equal_brute_force_and_legal_values():
    space = GraphSpace(max_nodes=4, num_node_types=3, num_edge_types=2)
    torch.manual_seed(1)
    energy = RelationalGraphEnergy(3, 2, hidden=8, num_layers=2).double()
    x = space.noise(6, torch.Generator().manual_seed(2))
    sites = choose_sites(x.batch_size, 4 + 6, None, torch.Generator(), x.device)
    diff = site_differences(energy, x, None, sites)
    rows, cols = space.upper_pairs()
    legal_nodes, legal_edges = space.legal_node_values(x, False), space.legal_edge_values(x, False)
    with torch.no_grad():
        own = energy(x)
        for b in range(x.batch_size):
            for site in range(10):
                for value in range(4):
                    nodes, edges = x.nodes[b : b + 1].clone(), x.edges[b : b + 1].clone()
                    if site < 4:
                        legal = value < 4 and bool(legal_nodes[b, site, value]) and value != int(x.nodes[b, site])
                        nodes[0, site] = value
                    else:
                        r, q = int(rows[site - 4]), int(cols[site - 4])
                        legal = value < 3 and bool(legal_edges[b, site - 4, value]) and value != int(x.edges[b, r, q])
                        edges[0, r, q] = edges[0, q, r] = value if value < 3 else 0
                    assert bool(diff.mask[b, site, value]) == legal
                    if legal:
                        expected = energy(DenseGraph(nodes, edges, nodes > 0))[0] - own[b]
                        assert float(diff.deltas[b, site, value]) == pytest.approx(float(expected), abs=1e-10)


def test_gradient_estimator_is_exact_on_a_potts_model():
    target = potts_target()
    x = potts_data(target, 64)
    sites = choose_sites(64, POTTS_LENGTH, None, torch.Generator(), x.device)
    exact = site_differences(target, x, None, sites, "exact")
    brute = site_differences(ForwardOnly(target), x, None, sites, "exact")
    first_order = site_differences(target, x, None, sites, "gradient")
    assert torch.equal(exact.mask, first_order.mask) and torch.equal(exact.mask, brute.mask)
    assert torch.allclose(exact.deltas * exact.mask, brute.deltas * brute.mask, atol=1e-5)
    assert torch.allclose(exact.deltas * exact.mask, first_order.deltas * first_order.mask, atol=1e-5)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_site_subsets_estimate_the_full_sum_without_bias(criterion):
    target = potts_target()
    x = potts_data(target, 8)
    energy = ForwardOnly(target)
    with torch.no_grad():
        full, _ = RatioMatching(criterion).example_losses(energy, x)
        subset = RatioMatching(criterion, num_sites=1, generator_seed=5)
        draws = subset.example_losses(energy, x.repeat(3000, 1))[0].view(3000, x.shape[0])  # own sites per row
    standard_error = draws.std(dim=0) / math.sqrt(draws.shape[0])
    assert ((draws.mean(dim=0) - full).abs() < 5 * standard_error + 1e-6).all()
    assert (draws.std(dim=0) > 0).all()  # the subsets really vary


@pytest.mark.parametrize("criterion", CRITERIA)
def test_recovers_a_potts_model_from_samples(criterion):
    n = 5000
    target = potts_target()
    x = potts_data(target, n)
    model = PottsEnergy(POTTS_LENGTH, POTTS_STATES)
    objective = RatioMatching(criterion)
    objective.bind(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 300)
    for _ in range(300):
        optimizer.zero_grad()
        objective(model, x).loss.backward()
        optimizer.step()
        schedule.step()
    # Marginals: binomial se <= 0.5 / sqrt(n), times sqrt(EFFICIENCY_FACTOR); 5 se.
    tolerance = 5 * math.sqrt(EFFICIENCY_FACTOR) * 0.5 / math.sqrt(n)
    assert (potts_marginals(PottsEnergy(POTTS_LENGTH, POTTS_STATES)) - potts_marginals(target)).abs().max() > tolerance
    assert (potts_marginals(model) - potts_marginals(target)).abs().max() < tolerance
    # Gauge-free: for the MLE 2n KL(target || fit) ~ chi-square(d), d = 32 free parameters; the
    # covariance here is at most EFFICIENCY_FACTOR x larger, so KL < factor * (d + 6 sqrt(2d)) / (2n).
    degrees = POTTS_LENGTH * (POTTS_STATES - 1) + math.comb(POTTS_LENGTH, 2) * (POTTS_STATES - 1) ** 2
    kl = potts_kl(target, model)
    assert kl < EFFICIENCY_FACTOR * (degrees + 6 * math.sqrt(2 * degrees)) / (2 * n)
    assert kl < 0.05 * uniform_potts_kl(target)


def test_metrics_and_loss_of_a_batch():
    target = potts_target()
    x = potts_data(target, 32)
    out = RatioMatching()(target, x)
    losses, _ = RatioMatching().example_losses(target, x)
    assert out.loss.item() == pytest.approx(losses.mean().item())
    deltas = target.local_energy_deltas(x)
    mask = torch.arange(POTTS_STATES) != x[:, :, None]
    assert out.metrics["neighbour_gap"].item() == pytest.approx(deltas[mask].mean().item(), rel=1e-5)
    assert out.metrics["data_below_neighbours"].item() == pytest.approx((deltas[mask] > 0).float().mean().item())
    assert out.metrics["energy_data"].item() == pytest.approx(target(x).mean().item(), rel=1e-5)


def test_rejects_bad_settings_and_input():
    with pytest.raises(ValueError, match="criterion"):
        RatioMatching("likelihood")
    with pytest.raises(ValueError, match="num_sites"):
        RatioMatching(num_sites=0)
    with pytest.raises(ValueError, match="estimator"):
        RatioMatching(estimator="taylor")
    with pytest.raises(MissingCapabilityError, match="one_hot_energy"):
        RatioMatching(estimator="gradient").bind(ForwardOnly(potts_target()))
    with pytest.raises(TypeError, match="integer tensor"):
        RatioMatching()(potts_target(), torch.zeros(4, POTTS_LENGTH))
    with pytest.raises(ValueError, match="0..2"):
        RatioMatching()(potts_target(), torch.full((4, POTTS_LENGTH), 3))
    graphs = GraphSpace(3, 2, 1).noise(2, torch.Generator().manual_seed(0))
    with pytest.raises(MissingCapabilityError, match="num_node_types"):
        RatioMatching()(ForwardOnly(potts_target()), graphs)
