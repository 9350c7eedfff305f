"""Graph Gibbs and Gibbs-with-gradients against the exact distribution of a space small enough to list.

The space has 4 slots, one node type and two edge values (no edge / edge): 113 structurally
consistent graphs, 90 of them with every degree at most 2 (``MaxDegree(2)``). The energy is a
random pairwise energy over node and edge one-hots plus a degree term,

    E(G) = Σ_i u[x_i] + Σ_{i<j} W[x_i, e_ij, x_j] + c Σ_i deg_i²,

written on one-hot tensors, so it has ``graph_one_hot_energy`` and equals ``forward`` on exact
one-hots; the degree term makes the first-order estimates of Gibbs-with-gradients inexact. Its
scale spreads the target over about 20 graphs (inverse Simpson index).

Tolerance: the final states of n independent chains are n iid draws from the target when the
sampler is exact, so E[TV] ≈ Σ_s sqrt(p_s (1 - p_s) / (2π n)). With n = 20 000 chains this is
asserted to be below half of the 0.05 tolerance before the chains run. The negative control: the
same samples are compared with the exact distribution at a wrong temperature (1.4 T); that one
must be more than 0.05 away, so the test can fail. Step counts are about twice the burn-in seen
in TV-versus-steps runs.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.graphs.constraints import MaxDegree
from structebm.graphs.enumerate import all_graphs, exact_distribution, graph_keys
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients
from structebm.samplers.graph_moves import graph_gibbs

NUM_CHAINS = 20000
TV_TOLERANCE = 0.05
WRONG_TEMPERATURE_FACTOR = 1.4
SPACE = GraphSpace(4, 1, 1)
BOUNDED = GraphSpace(4, 1, 1, constraints=[MaxDegree(2)])


class PairwiseDegreeEnergy(nn.Module):
    """Node fields, type-edge-type couplings and a squared-degree term, on one-hot tensors."""

    def __init__(self, space: GraphSpace, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        k, r = space.num_node_values, space.num_edge_values
        self.num_node_types, self.num_edge_types = space.num_node_types, space.num_edge_types
        self.node_field = nn.Parameter(0.5 * torch.randn(k, generator=generator))
        self.coupling = nn.Parameter(0.5 * torch.randn(k, r, k, generator=generator))
        self.degree_weight = 0.2

    def graph_one_hot_energy(self, nodes: Tensor, edges: Tensor, c=None) -> Tensor:
        batch_size, n, k = nodes.shape
        rows, cols = torch.triu_indices(n, n, offset=1)
        pairs = edges[:, rows, cols]  # [B, P, R+1]
        left = (nodes[:, rows] @ self.coupling.reshape(k, -1)).reshape(batch_size, -1, edges.shape[-1], k)
        coupling = ((left * nodes[:, cols, None, :]).sum(-1) * pairs).sum((1, 2))
        off_diagonal = 1.0 - torch.eye(n)
        degree = ((1.0 - edges[..., 0]) * off_diagonal).sum(2)
        return (nodes @ self.node_field).sum(1) + coupling + self.degree_weight * degree.square().sum(1)

    def forward(self, graph: DenseGraph, c=None) -> Tensor:
        nodes = F.one_hot(graph.nodes, self.num_node_types + 1).float()
        return self.graph_one_hot_energy(nodes, F.one_hot(graph.edges, self.num_edge_types + 1).float(), c)


def expected_tv(p: Tensor, n: int) -> float:
    return float((p * (1 - p) / (2 * math.pi * n)).sqrt().sum())


def empirical_over(support: DenseGraph, samples: DenseGraph, space: GraphSpace) -> Tensor:
    """Frequencies of ``samples`` over ``support``; fails if a sample lies outside it."""
    support_keys, sample_keys = graph_keys(support, space), graph_keys(samples, space)
    order = torch.argsort(support_keys)
    position = torch.searchsorted(support_keys[order], sample_keys).clamp(max=len(order) - 1)
    assert torch.equal(support_keys[order][position], sample_keys), "a chain left the support of the target"
    return torch.bincount(order[position], minlength=len(order)).double() / samples.batch_size


CASES = {  # name: (sampler, constrained, num_flips, steps, temperature)
    "gibbs": ("gibbs", False, 1, 240, 1.0),
    "gibbs-max-degree": ("gibbs", True, 1, 240, 1.0),
    "gwg": ("gwg", False, 1, 100, 1.0),
    "gwg-max-degree": ("gwg", True, 1, 100, 1.0),
    "gwg-3-flips-max-degree-hot": ("gwg", True, 3, 100, 1.5),
}
# An even number of flips is left out: every site here is binary, so a two-flip path changes zero
# or two sites and the parity of the number of occupied sites and edges never changes; such a
# chain is not irreducible on this space (see graph_gibbs_with_gradients).


def test_the_spaces_hold_the_counted_graphs():
    assert all_graphs(SPACE).batch_size == 1 + 4 + 6 * 2 + 4 * 8 + 64
    # on 4 labelled nodes 41 of the 64 edge sets keep every degree <= 2 (0, 1 or 2 edges; 3 edges but no star; 4-cycles)
    assert all_graphs(BOUNDED, constrained=True).batch_size == 113 - (64 - 41)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_the_exact_distribution(case):
    kind, constrained, num_flips, num_steps, temperature = CASES[case]
    space = BOUNDED if constrained else SPACE
    energy = PairwiseDegreeEnergy(space, seed=1)
    support = all_graphs(space, constrained)
    with torch.no_grad():
        energies = energy(support)
    exact = exact_distribution(energies, temperature)
    wrong = exact_distribution(energies, WRONG_TEMPERATURE_FACTOR * temperature)
    assert expected_tv(exact, NUM_CHAINS) < TV_TOLERANCE / 2

    if kind == "gibbs":
        algorithm = graph_gibbs(energy, space, constrained=constrained, temperature=temperature)
    else:
        algorithm = graph_gibbs_with_gradients(energy, space, constrained=constrained, num_flips=num_flips,
                                               temperature=temperature)
    generator = torch.Generator().manual_seed(1)
    state = algorithm.init(space.noise(NUM_CHAINS, generator))
    for _ in range(num_steps):
        state, info = algorithm.step(state, generator)
        if constrained:
            assert bool(info.extra["valid"].all()), "a constrained move left the valid set"
    empirical = empirical_over(support, state.x, space)
    tv = 0.5 * float((empirical - exact).abs().sum())
    tv_wrong = 0.5 * float((empirical - wrong).abs().sum())
    assert tv <= TV_TOLERANCE, f"{case}: TV {tv:.3f} to the exact distribution"
    assert tv_wrong > TV_TOLERANCE, f"{case}: TV {tv_wrong:.3f} to the wrong temperature; the test cannot tell them apart"
