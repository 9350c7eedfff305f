"""The relational graph energy: invariances, the one-hot path, conditioning and bad inputs."""

import pytest
import torch
import torch.nn.functional as F

from structebm.chem.convert import smiles_to_dense
from structebm.chem.features import ChemistryFeatures
from structebm.chem.dense import DenseMolGraph
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.data.molecules import load_smiles
from structebm.energies.graph import HasGraphOneHotEnergy, RelationalGraphEnergy

NUM_TYPES = len(QM9_VOCABULARY)


@pytest.fixture(scope="module")
def qm9_graphs() -> DenseMolGraph:
    smiles = load_smiles("qm9")  # the data root as the library resolves it
    return smiles_to_dense(smiles[5000:5128], QM9_VOCABULARY)


def permute_slots(graph: DenseMolGraph, generator: torch.Generator) -> DenseMolGraph:
    """Apply an independent random slot permutation to every graph of the batch."""
    batch_size, n = graph.nodes.shape
    perm = torch.argsort(torch.rand(batch_size, n, generator=generator), dim=1)
    atoms = graph.nodes.gather(1, perm)
    bonds = graph.edges.gather(1, perm[:, :, None].expand(-1, -1, n)).gather(2, perm[:, None, :].expand(-1, n, -1))
    return DenseMolGraph.from_tensors(atoms, bonds, NUM_TYPES)


def make_energy(seed: int = 0, chemistry: bool = False, **kwargs) -> RelationalGraphEnergy:
    torch.manual_seed(seed)
    features = ChemistryFeatures(QM9_VOCABULARY) if chemistry else None
    return RelationalGraphEnergy(NUM_TYPES, 3, hidden=32, num_layers=3, features=features, **kwargs)


@pytest.mark.parametrize("readout, chemistry", [("sum", False), ("mean", False), ("sum", True)])
def test_energy_is_invariant_under_slot_permutations(qm9_graphs, readout, chemistry):
    energy = make_energy(readout=readout, chemistry=chemistry)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        reference = energy(qm9_graphs)
        for _ in range(3):
            permuted = permute_slots(qm9_graphs, generator)
            assert not torch.equal(permuted.nodes, qm9_graphs.nodes)
            torch.testing.assert_close(energy(permuted), reference, rtol=1e-5, atol=1e-5)
    assert reference.shape == (qm9_graphs.batch_size,) and reference.std() > 0


@pytest.mark.parametrize("chemistry", [False, True])
def test_energy_ignores_extra_empty_slots(qm9_graphs, chemistry):
    energy = make_energy(chemistry=chemistry)
    n = qm9_graphs.max_nodes
    atoms = F.pad(qm9_graphs.nodes, (0, 4))
    bonds = F.pad(qm9_graphs.edges, (0, 4, 0, 4))
    padded = DenseMolGraph.from_tensors(atoms, bonds, NUM_TYPES)
    with torch.no_grad():
        torch.testing.assert_close(energy(padded), energy(qm9_graphs), rtol=1e-5, atol=1e-5)
    assert padded.max_nodes == n + 4


@pytest.mark.parametrize("chemistry", [False, True])
def test_one_hot_energy_equals_forward_and_is_differentiable(qm9_graphs, chemistry):
    energy = make_energy(condition_dim=2, chemistry=chemistry)
    c = torch.randn(qm9_graphs.batch_size, 2, generator=torch.Generator().manual_seed(2))
    atoms = F.one_hot(qm9_graphs.nodes, NUM_TYPES + 1).float().requires_grad_(True)
    bonds = F.one_hot(qm9_graphs.edges, 4).float().requires_grad_(True)
    values = energy.graph_one_hot_energy(atoms, bonds, c)
    torch.testing.assert_close(values, energy(qm9_graphs, c), rtol=1e-6, atol=1e-6)
    atom_grad, bond_grad = torch.autograd.grad(values.sum(), (atoms, bonds))
    assert atom_grad.abs().sum() > 0 and bond_grad.abs().sum() > 0
    # A relaxed input gives a different, finite energy.
    relaxed = energy.graph_one_hot_energy(atoms.detach() * 0.7 + 0.1, bonds.detach() * 0.8 + 0.05, c)
    assert torch.isfinite(relaxed).all() and not torch.allclose(relaxed, values.detach())
    assert isinstance(energy, HasGraphOneHotEnergy)


def test_condition_changes_the_energy_and_is_checked(qm9_graphs):
    energy = make_energy(condition_dim=3)
    c = torch.zeros(qm9_graphs.batch_size, 3)
    with torch.no_grad():
        assert not torch.allclose(energy(qm9_graphs, c), energy(qm9_graphs, c + 1.0))
    with pytest.raises(ValueError, match=r"c must be a float tensor \[128, 3\]"):
        energy(qm9_graphs)
    with pytest.raises(ValueError, match="condition_dim=None"):
        make_energy()(qm9_graphs, c)


def test_spectral_norm_option_and_gradients_reach_parameters(qm9_graphs):
    energy = make_energy(spectral_norm=True)
    energy(qm9_graphs).mean().backward()
    grads = [p.grad for p in energy.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_bad_inputs_give_clear_errors(qm9_graphs):
    energy = make_energy()
    with pytest.raises(TypeError, match="expected a DenseGraph"):
        energy(qm9_graphs.nodes)
    atoms = qm9_graphs.nodes.clone()
    atoms[3, 0] = NUM_TYPES + 1
    too_large = DenseMolGraph(atoms, qm9_graphs.edges, qm9_graphs.mask)
    with pytest.raises(ValueError, match=f"node values must lie in 0..{NUM_TYPES}"):
        energy(too_large)
    wrong_shape = DenseMolGraph(qm9_graphs.nodes, qm9_graphs.edges[:, :5], qm9_graphs.mask)
    with pytest.raises(ValueError, match=r"edges \[B, N, N\]"):
        energy(wrong_shape)
    atoms = F.one_hot(qm9_graphs.nodes, NUM_TYPES + 1).float()
    with pytest.raises(ValueError, match="nodes_one_hot must be"):
        energy.graph_one_hot_energy(atoms[..., :-1], F.one_hot(qm9_graphs.edges, 4).float())
    with pytest.raises(ValueError, match="edges_one_hot must be"):
        energy.graph_one_hot_energy(atoms, F.one_hot(qm9_graphs.edges, 4).float()[..., :3])
    with pytest.raises(TypeError, match="floating point"):
        energy.graph_one_hot_energy(atoms.long(), F.one_hot(qm9_graphs.edges, 4))
    with pytest.raises(ValueError, match="num_edge_types"):
        RelationalGraphEnergy(NUM_TYPES, 0)
    with pytest.raises(TypeError, match="features must be"):
        RelationalGraphEnergy(NUM_TYPES, 3, features=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="readout"):
        RelationalGraphEnergy(NUM_TYPES, 3, readout="max")
