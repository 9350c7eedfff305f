"""Langevin on relaxed one-hot graphs: stationary law of a Gaussian energy, symmetry, rounding, errors.

Statistical test: with the quadratic energy E = (λ/2)‖X - μ‖² + (λ/2) Σ_{i≠j} ‖B_ij - μ‖², every
atom coordinate is an independent Gaussian of precision κ = λ, and every bond pair variable
U_ij (which appears as both B_ij and B_ji) one of precision κ = 2λ. The unadjusted step
u' = u - εκ(u - μ) + sqrt(2ε) ξ is an AR(1) process with stationary mean μ and variance
2 / (κ (2 - εκ)). After 100 steps (contraction 0.9^100 < 1e-4) the n = chains × coordinates
values are independent draws, so the mean has standard error sqrt(var / n) and the sample
variance sqrt(2 / (n - 1)) · var; we allow 4 standard errors (tests/stats.py). Averaging the two
bond gradients instead of adding them would give the bond pairs the atom variance (1.05 instead
of 0.56), about 80 standard errors away.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.vocab import QM9_VOCABULARY, AtomType, AtomVocabulary
from structebm.energies.base import MissingCapabilityError
from structebm.energies.graph import RelationalGraphEnergy
from structebm.samplers.graph_langevin import RelaxedGraph, dequantize, graph_langevin, to_graph
from tests.stats import Z_SCORE, assert_within

TINY = AtomVocabulary("tiny", (AtomType("C"), AtomType("O")), max_atoms=3)
TINY_SPACE = MolGraphSpace(TINY)
QM9_SPACE = MolGraphSpace(QM9_VOCABULARY)


class QuadraticOneHotEnergy(nn.Module):
    """E = (λ/2) Σ (X - μ)² + (λ/2) Σ_{i≠j} (B_ij - μ)² (diagonal bonds excluded)."""

    def __init__(self, num_atom_types: int, precision: float, centre: float) -> None:
        super().__init__()
        self.num_atom_types, self.precision, self.centre = num_atom_types, precision, centre

    def graph_one_hot_energy(self, atoms: Tensor, bonds: Tensor, c=None) -> Tensor:
        off_diagonal = 1.0 - torch.eye(atoms.shape[1])[None, :, :, None]
        atom_term = (atoms - self.centre).square().sum((1, 2))
        bond_term = ((bonds - self.centre).square() * off_diagonal).sum((1, 2, 3))
        return 0.5 * self.precision * (atom_term + bond_term)

    def forward(self, graph: DenseMolGraph, c=None) -> Tensor:
        atoms = F.one_hot(graph.nodes, self.num_atom_types + 1).float()
        return self.graph_one_hot_energy(atoms, F.one_hot(graph.edges, 4).float(), c)


def test_stationary_law_of_a_gaussian_energy_with_shared_bond_variables():
    precision, centre, step_size, num_chains = 1.0, 0.3, 0.1, 2000
    energy = QuadraticOneHotEnergy(len(TINY), precision, centre)
    algorithm = graph_langevin(energy, TINY_SPACE, step_size, math.sqrt(2 * step_size), bounds=None)
    generator = torch.Generator().manual_seed(0)
    state = algorithm.init(MolGraphSpace(TINY).noise(num_chains, generator))
    for _ in range(100):
        state, info = algorithm.step(state, generator)
    rows, cols = torch.triu_indices(3, 3, offset=1)
    samples = {"atoms": state.x.nodes.flatten(), "bond pairs": state.x.edges[:, rows, cols].flatten()}
    for name, kappa in (("atoms", precision), ("bond pairs", 2 * precision)):
        values, variance = samples[name], 2.0 / (kappa * (2.0 - step_size * kappa))
        n = values.numel()
        assert_within(values.mean(), torch.tensor(centre), Z_SCORE * math.sqrt(variance / n), f"{name} mean")
        assert_within(values.var(), torch.tensor(variance), Z_SCORE * variance * math.sqrt(2 / (n - 1)), f"{name} variance")
    assert torch.equal(info.acceptance_rate, torch.ones(num_chains)) and info.grad_norm.shape == (num_chains,)


def test_steps_keep_bonds_symmetric_with_a_fixed_diagonal_and_round_to_legal_graphs():
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(len(QM9_VOCABULARY), 3, hidden=16, num_layers=2)
    space = MolGraphSpace(QM9_VOCABULARY)
    generator = torch.Generator().manual_seed(1)
    start = dequantize(space.noise(64, generator), QM9_SPACE, generator)
    algorithm = graph_langevin(energy, QM9_SPACE, step_size=0.05, noise_scale=0.1)
    state = algorithm.init(start)
    diagonal = torch.arange(9)
    for _ in range(20):
        state, info = algorithm.step(state, generator)
        bonds = state.x.edges
        assert torch.equal(bonds, bonds.transpose(1, 2))
        assert torch.equal(bonds[:, diagonal, diagonal], F.one_hot(torch.zeros(64, 9, dtype=torch.long), 4).float())
        assert state.x.nodes.min() >= 0.0 and state.x.nodes.max() <= 1.9 and bonds.min() >= 0.0 and bonds.max() <= 1.9
        graph = to_graph(state.x)
        space.validate(graph, "to_graph")  # symmetric, zero diagonal, no bond to an empty slot
        assert torch.equal(info.extra["valid"].bool(), space.is_valid(graph))
    with torch.no_grad():
        torch.testing.assert_close(state.energy, energy.graph_one_hot_energy(state.x.nodes, state.x.edges))
    assert all(p.grad is None for p in energy.parameters()) and not state.grad.requires_grad


def test_dequantize_then_round_is_the_identity_and_descent_reaches_a_target_graph():
    space = MolGraphSpace(QM9_VOCABULARY)
    generator = torch.Generator().manual_seed(2)
    graphs = space.noise(32, generator)
    relaxed = dequantize(graphs, QM9_SPACE, generator, scale=0.9)
    rounded = to_graph(relaxed)
    assert torch.equal(rounded.nodes, graphs.nodes) and torch.equal(rounded.edges, graphs.edges)
    assert not torch.equal(relaxed.nodes, space.one_hot(graphs)[0])
    # The linear energy -<X, 2·target - 1> has its minimum in the unit box at the target's one-hot corner.
    target_atoms, target_bonds = (2.0 * t - 1.0 for t in space.one_hot(graphs[:1]))

    class TowardsTarget(nn.Module):
        def graph_one_hot_energy(self, atoms: Tensor, bonds: Tensor, c=None) -> Tensor:
            return -(atoms * target_atoms).sum((1, 2)) - (bonds * target_bonds).sum((1, 2, 3))

    algorithm = graph_langevin(TowardsTarget(), QM9_SPACE, step_size=0.2, noise_scale=0.05, bounds=(0.0, 1.0))
    state = algorithm.init(space.noise(16, generator))
    for _ in range(30):
        state, _ = algorithm.step(state, generator)
    final = to_graph(state.x)
    assert torch.equal(final.nodes, graphs.nodes[:1].expand(16, -1))
    assert torch.equal(final.edges, graphs.edges[:1].expand(16, -1, -1))


def test_reproducible_under_a_seed():
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(len(TINY), 3, hidden=8, num_layers=1)
    start = MolGraphSpace(TINY).noise(16, torch.Generator().manual_seed(3))
    finals = []
    for seed in (4, 4, 5):
        algorithm = graph_langevin(energy, TINY_SPACE, step_size=0.1, noise_scale=0.1)
        state, generator = algorithm.init(start), torch.Generator().manual_seed(seed)
        for _ in range(5):
            state, _ = algorithm.step(state, generator)
        finals.append(state.x.edges)
    assert torch.equal(finals[0], finals[1]) and not torch.equal(finals[0], finals[2])


def test_bad_inputs_give_clear_errors():
    energy = RelationalGraphEnergy(len(TINY), 3, hidden=8, num_layers=1)
    algorithm = graph_langevin(energy, TINY_SPACE, step_size=0.1, noise_scale=0.1)
    start = dequantize(MolGraphSpace(TINY).noise(4, torch.Generator().manual_seed(6)), TINY_SPACE, torch.Generator())
    asymmetric = start.edges.clone()
    asymmetric[0, 0, 1, 2] += 0.1
    with pytest.raises(ValueError, match=r"graph_langevin.init: edges must be symmetric \(graph\(s\) \[0\]\)"):
        algorithm.init(RelaxedGraph(start.nodes, asymmetric))
    with pytest.raises(ValueError, match=r"expected nodes \[B, 3, 3\] and edges \[B, 3, 3, 4\]"):
        algorithm.init(RelaxedGraph(start.nodes[:, :2], start.edges))
    with pytest.raises(ValueError, match="outside bounds"):
        algorithm.init(RelaxedGraph(start.nodes + 5.0, start.edges))
    nan_atoms = start.nodes.clone()
    nan_atoms[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values in graph\(s\) \[1\]"):
        algorithm.init(RelaxedGraph(nan_atoms, start.edges))
    with pytest.raises(TypeError, match="DenseGraph or RelaxedGraph"):
        algorithm.init(start.nodes)
    with pytest.raises(ValueError, match="noise_scale must be a finite number >= 0"):
        graph_langevin(energy, TINY_SPACE, step_size=0.1, noise_scale=-1.0)
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        graph_langevin(energy, TINY_SPACE, step_size=0.0, noise_scale=0.1)
    with pytest.raises(MissingCapabilityError, match="HasGraphOneHotEnergy"):
        graph_langevin(nn.Linear(2, 1), TINY_SPACE, step_size=0.1, noise_scale=0.1)
