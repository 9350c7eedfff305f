"""Gibbs and Gibbs-with-gradients on molecular graphs.

Exactness is checked on a graph space small enough to list: N = 3 slots, atom types C and O
(values 0..2) and bond orders 0..3. It holds 567 structurally consistent graphs, 204 of them
valence-valid. A pairwise energy (atom fields, bond fields and type-type-order couplings) is
written on one-hot tensors, so it has ``graph_one_hot_energy`` and equals ``forward`` on exact
one-hots.

Tolerance: the final states of n independent chains are n iid draws when the sampler is
exact, so E[TV] ≈ Σ_s sqrt(p_s (1 - p_s) / (2π n)). With n = 20 000 this is 0.013 for the
valence-valid target and 0.025 for the unconstrained one, asserted below half of the 0.05
tolerance. Tempering the energy by 0.85 moves the exact distribution by TV ≈ 0.11 from what
the chains reach, so the test can fail (negative control). The tempered cases (``temperature``
T ≠ 1, target ∝ e^{-E/T}) must also be told apart from the untempered target. Step counts are about 1.5-2x the
burn-in seen in TV-versus-steps runs. One case adds the chemistry features' violation terms
(valence excess, extra fragments; their eigenvalue gradients are large) to the energy.
Gibbs-with-gradients with two flips is left out of the
valence-aware cases: with few legal values per site its proposals nearly preserve a parity
of the state and it needs ~400 steps here (one or three flips mix in < 40).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.chem.convert import smiles_to_dense
from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.vocab import QM9_VOCABULARY, AtomType, AtomVocabulary
from structebm.data.molecules import load_smiles
from structebm.energies.base import MissingCapabilityError
from structebm.energies.graph import RelationalGraphEnergy
from structebm.energies.potts import PottsEnergy
from structebm.chem.features import ChemistryFeatures
from structebm.graphs.enumerate import all_graphs, graph_keys
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients
from structebm.samplers.graph_moves import graph_gibbs

TINY = AtomVocabulary("tiny", (AtomType("C"), AtomType("O")), max_atoms=3)
TINY_SPACE = MolGraphSpace(TINY)
QM9_SPACE = MolGraphSpace(QM9_VOCABULARY)
TV_TOLERANCE = 0.05
NUM_CHAINS = 20000


class PairwiseGraphEnergy(nn.Module):
    """E = Σ_i u[a_i] + Σ_{i<j} v[b_ij] + Σ_{i<j} W[a_i, b_ij, a_j], written on one-hot tensors."""

    def __init__(self, num_atom_types: int, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        values = num_atom_types + 1
        self.num_atom_types = num_atom_types
        self.atom_field = nn.Parameter(torch.randn(values, generator=generator))
        self.bond_field = nn.Parameter(torch.randn(4, generator=generator))
        self.coupling = nn.Parameter(torch.randn(values, 4, values, generator=generator))

    def graph_one_hot_energy(self, atoms: Tensor, bonds: Tensor, c=None) -> Tensor:
        batch_size, n, values = atoms.shape
        rows, cols = torch.triu_indices(n, n, offset=1)
        pair_bonds = bonds[:, rows, cols]
        left = (atoms[:, rows] @ self.coupling.reshape(values, -1)).reshape(batch_size, -1, 4, values)
        coupling = ((left * atoms[:, cols, None, :]).sum(-1) * pair_bonds).sum((1, 2))
        return (atoms @ self.atom_field).sum(1) + (pair_bonds @ self.bond_field).sum(1) + coupling

    def forward(self, graph: DenseMolGraph, c=None) -> Tensor:
        atoms = F.one_hot(graph.nodes, self.num_atom_types + 1).float()
        return self.graph_one_hot_energy(atoms, F.one_hot(graph.edges, 4).float(), c)


class PairwiseEnergyWithChemistry(PairwiseGraphEnergy):
    """The pairwise energy plus 1.5 × (valence excess) + 1.5 × (extra fragments) of ``ChemistryFeatures``."""

    def __init__(self, num_atom_types: int, seed: int) -> None:
        super().__init__(num_atom_types, seed)
        self.features = ChemistryFeatures(TINY)

    def graph_one_hot_energy(self, atoms: Tensor, bonds: Tensor, c=None) -> Tensor:
        _, graph_features = self.features(atoms, bonds)
        return super().graph_one_hot_energy(atoms, bonds, c) + 1.5 * graph_features.sum(dim=1)


def empirical_over(support: DenseMolGraph, samples: DenseMolGraph, space: MolGraphSpace) -> Tensor:
    """Frequencies of ``samples`` over ``support``; fails if a sample lies outside it."""
    support_keys, sample_keys = graph_keys(support, space), graph_keys(samples, space)
    order = torch.argsort(support_keys)
    position = torch.searchsorted(support_keys[order], sample_keys).clamp(max=len(order) - 1)
    assert torch.equal(support_keys[order][position], sample_keys), "a chain left the support of the target"
    return torch.bincount(order[position], minlength=len(order)).double() / samples.batch_size


CASES = {  # name: (sampler, valence_aware, num_flips, steps, chemistry features in the energy, temperature)
    "gibbs-valence-aware": ("gibbs", True, 1, 100, False, 1.0),
    "gibbs-unconstrained": ("gibbs", False, 1, 60, False, 1.0),
    "gwg-valence-aware": ("gwg", True, 1, 60, False, 1.0),
    "gwg-unconstrained": ("gwg", False, 1, 40, False, 1.0),
    "gwg-3-flips-valence-aware": ("gwg", True, 3, 40, False, 1.0),
    "gwg-unconstrained-chemistry": ("gwg", False, 1, 160, True, 1.0),
    "gibbs-valence-aware-hot": ("gibbs", True, 1, 100, False, 1.5),
    "gwg-valence-aware-hot": ("gwg", True, 1, 60, False, 1.5),
    "gwg-unconstrained-cold": ("gwg", False, 1, 80, False, 0.8),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_the_exact_distribution_of_a_tiny_graph_space(case):
    kind, valence_aware, num_flips, num_steps, chemistry, temperature = CASES[case]
    energy = (PairwiseEnergyWithChemistry if chemistry else PairwiseGraphEnergy)(len(TINY), seed=0)
    support = all_graphs(TINY_SPACE, valence_aware)
    assert support.batch_size == (204 if valence_aware else 567)
    with torch.no_grad():
        support_energy = energy(support)
    p = torch.softmax(-support_energy.double() / temperature, 0)
    assert (p * (1 - p) / (2 * math.pi * NUM_CHAINS)).sqrt().sum() < TV_TOLERANCE / 2
    if kind == "gibbs":
        algorithm = graph_gibbs(energy, TINY_SPACE, constrained=valence_aware, temperature=temperature)
    else:
        algorithm = graph_gibbs_with_gradients(
            energy, TINY_SPACE, constrained=valence_aware, num_flips=num_flips, temperature=temperature
        )
    generator = torch.Generator().manual_seed(1)
    state = algorithm.init(MolGraphSpace(TINY, valid_noise=valence_aware).noise(NUM_CHAINS, generator))
    acceptance, accepted, rates, variances = [], [], [], []
    for _ in range(num_steps):
        state, info = algorithm.step(state, generator)
        acceptance.append(info.acceptance_rate.mean())
        if kind == "gwg":
            accepted.append(info.accepted.float().sum())
            rates.append(info.acceptance_rate.sum())
            variances.append((info.acceptance_rate * (1 - info.acceptance_rate)).sum())
    empirical = empirical_over(support, state.x, TINY_SPACE)
    tv = 0.5 * (empirical - p).abs().sum().item()
    assert tv <= TV_TOLERANCE, f"{case}: TV {tv:.4f}"
    for wrong_temperature in (temperature / 0.85, 1.0) if temperature != 1.0 else (1 / 0.85,):
        wrong = torch.softmax(-support_energy.double() / wrong_temperature, 0)
        assert 0.5 * (empirical - wrong).abs().sum().item() > TV_TOLERANCE, f"indistinguishable from T = {wrong_temperature}"
    with torch.no_grad():
        torch.testing.assert_close(state.energy, energy(state.x))
    if kind == "gwg":
        assert 0.2 < torch.stack(acceptance).mean() < 0.99
        assert info.accepted.dtype == torch.bool
        # Each proposal is accepted with its reported probability: the accepted count over all chains
        # and steps is a sum of Bernoulli(rate) coins, within 5 standard deviations of the summed rates.
        excess = (torch.stack(accepted).sum() - torch.stack(rates).sum()).abs()
        assert excess <= 5 * torch.stack(variances).sum().sqrt(), f"{case}: accepted count off the rates by {excess:.1f}"


@pytest.fixture(scope="module")
def qm9_graphs() -> DenseMolGraph:
    try:
        smiles = load_smiles("qm9")  # the data root the library resolves: $STRUCTEBM_DATA or the user cache
    except Exception as error:  # noqa: BLE001 - any failure to resolve the file means no data here
        pytest.fail(f"QM9 is needed by the graph move tests (set STRUCTEBM_DATA): {error}")
    return smiles_to_dense(smiles[5000:5064], QM9_VOCABULARY)


def qm9_energy() -> RelationalGraphEnergy:
    torch.manual_seed(0)
    return RelationalGraphEnergy(len(QM9_VOCABULARY), 3, hidden=32, num_layers=2)


def build(kind: str, energy: nn.Module, valence_aware: bool):
    if kind == "gibbs":
        return graph_gibbs(energy, QM9_SPACE, constrained=valence_aware)
    return graph_gibbs_with_gradients(energy, QM9_SPACE, constrained=valence_aware, num_flips=2)


@pytest.mark.parametrize("kind", ["gibbs", "gwg"])
def test_valence_aware_moves_keep_real_molecules_valid(qm9_graphs, kind):
    """150 steps from QM9 molecules: structure and valences stay legal; unconstrained moves do break valences."""
    space, energy = MolGraphSpace(QM9_VOCABULARY), qm9_energy()
    for valence_aware in (True, False):
        algorithm = build(kind, energy, valence_aware)
        state, generator = algorithm.init(qm9_graphs), torch.Generator().manual_seed(2)
        valid_fraction = []
        for _ in range(150):
            state, info = algorithm.step(state, generator)
            space.validate(state.x, f"{kind} step {state.step}")  # symmetric, zero diagonal, no bond to an empty slot
            valid_fraction.append(info.extra["valid"].mean())
            assert torch.equal(info.extra["valid"].bool(), space.is_valid(state.x))
        if valence_aware:
            assert min(valid_fraction) == 1.0
        else:
            assert min(valid_fraction) < 0.5
        assert (state.x.edges != qm9_graphs.edges).any() and (state.x.nodes != qm9_graphs.nodes).any()
    with torch.no_grad():
        torch.testing.assert_close(state.energy, energy(state.x), rtol=1e-4, atol=1e-4)
    assert all(p.grad is None for p in energy.parameters())


@pytest.mark.parametrize("kind", ["gibbs", "gwg"])
def test_reproducible_under_a_seed_and_detached(qm9_graphs, kind):
    energy = qm9_energy()
    finals = []
    for seed in (3, 3, 4):
        algorithm = build(kind, energy, True)
        state, generator = algorithm.init(qm9_graphs), torch.Generator().manual_seed(seed)
        for _ in range(10):
            state, _ = algorithm.step(state, generator)
        finals.append(state.x)
    assert torch.equal(finals[0].edges, finals[1].edges) and torch.equal(finals[0].nodes, finals[1].nodes)
    assert not (torch.equal(finals[0].edges, finals[2].edges) and torch.equal(finals[0].nodes, finals[2].nodes))
    assert not state.energy.requires_grad and (state.grad is None or not state.grad.requires_grad)


def test_conditional_energy_gets_the_condition_of_each_chain(qm9_graphs):
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(len(QM9_VOCABULARY), 3, hidden=16, num_layers=1, condition_dim=2)
    c = torch.randn(qm9_graphs.batch_size, 2, generator=torch.Generator().manual_seed(5))
    for kind in ("gibbs", "gwg"):
        algorithm = build(kind, energy, True)
        state, generator = algorithm.init(qm9_graphs, c), torch.Generator().manual_seed(6)
        for _ in range(5):
            state, _ = algorithm.step(state, generator)
        with torch.no_grad():
            torch.testing.assert_close(state.energy, energy(state.x, c), rtol=1e-4, atol=1e-4)


def test_bad_inputs_give_clear_errors(qm9_graphs):
    energy = qm9_energy()
    gibbs = graph_gibbs(energy, QM9_SPACE)
    asymmetric = qm9_graphs.edges.clone()
    asymmetric[0, 0, 1] = 3 - asymmetric[0, 0, 1]
    with pytest.raises(ValueError, match=r"graph_gibbs.init: DenseGraph: graph 0 has an asymmetric adjacency: edges\[0, 1\]"):
        gibbs.init(DenseMolGraph(qm9_graphs.nodes, asymmetric, qm9_graphs.mask))
    with pytest.raises(ValueError, match="edges must be"):
        gibbs.init(DenseMolGraph(qm9_graphs.nodes, qm9_graphs.edges[:, :, :4], qm9_graphs.mask))
    with pytest.raises(TypeError, match="expected a DenseGraph"):
        gibbs.init(qm9_graphs.nodes)
    with pytest.raises(ValueError, match="c must be None or a tensor with batch size 64"):
        gibbs.init(qm9_graphs, torch.zeros(3, 2))
    over = MolGraphSpace(QM9_VOCABULARY, valid_noise=False).noise(32, torch.Generator().manual_seed(7))
    with pytest.raises(ValueError, match=r"constrained sampling needs valid start graphs, but graph\(s\) \[0, "):
        graph_gibbs_with_gradients(energy, QM9_SPACE, constrained=True).init(over)
    graph_gibbs(energy, QM9_SPACE, constrained=False).init(over)  # fine without valence rules
    with pytest.raises(ValueError, match="sites must be one of"):
        graph_gibbs(energy, QM9_SPACE, sites="rings")
    with pytest.raises(ValueError, match="num_flips must be a positive int"):
        graph_gibbs_with_gradients(energy, QM9_SPACE, num_flips=0)
    for temperature in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="graph_gibbs: temperature must be finite and > 0"):
            graph_gibbs(energy, QM9_SPACE, temperature=temperature)
        with pytest.raises(ValueError, match="graph_gibbs_with_gradients: temperature must be finite and > 0"):
            graph_gibbs_with_gradients(energy, QM9_SPACE, temperature=temperature)
    for temperature in (True, "1"):
        with pytest.raises(TypeError, match="graph_gibbs: temperature must be a number"):
            graph_gibbs(energy, QM9_SPACE, temperature=temperature)
        with pytest.raises(TypeError, match="graph_gibbs_with_gradients: temperature must be a number"):
            graph_gibbs_with_gradients(energy, QM9_SPACE, temperature=temperature)
    with pytest.raises(ValueError, match="the energy has num_node_types=8 but the space has 2"):
        graph_gibbs(energy, TINY_SPACE)
    with pytest.raises(TypeError, match="space must be a GraphSpace, got AtomVocabulary"):
        graph_gibbs(energy, QM9_VOCABULARY)
    with pytest.raises(MissingCapabilityError, match="HasGraphOneHotEnergy"):
        graph_gibbs_with_gradients(nn.Linear(2, 1), QM9_SPACE)
    # a sequence energy has one_hot_energy, not the graph capability: refused when the sampler is built
    with pytest.raises(MissingCapabilityError, match="HasGraphOneHotEnergy"):
        graph_gibbs_with_gradients(PottsEnergy(4, 3), QM9_SPACE)


def test_gibbs_site_choice_restricts_what_changes(qm9_graphs):
    energy = qm9_energy()
    for sites, frozen in (("nodes", "edges"), ("edges", "nodes")):
        algorithm = graph_gibbs(energy, QM9_SPACE, sites=sites)
        state, generator = algorithm.init(qm9_graphs), torch.Generator().manual_seed(8)
        for _ in range(30):
            state, info = algorithm.step(state, generator)
        assert torch.equal(getattr(state.x, frozen), getattr(qm9_graphs, frozen))
        assert not torch.equal(getattr(state.x, sites), getattr(qm9_graphs, sites))
        assert ((info.extra["site_changed"] == 0) | (info.extra["site_changed"] == 1)).all()
