"""The relational graph energy's written-out gradient equals autograd's, on exact and relaxed one-hots."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from structebm.chem.features import ChemistryFeatures
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.energies.graph import HasGraphOneHotEnergyGradient, RelationalGraphEnergy
from structebm.energies.graph_structure import StructuralFeatures

NUM_TYPES = len(QM9_VOCABULARY)
BATCH, SLOTS = 6, 9


def random_graphs(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact graphs (nodes ``[B, N]``, symmetric edges ``[B, N, N]``) with an empty graph and a single atom."""
    nodes = torch.randint(0, NUM_TYPES + 1, (BATCH, SLOTS), generator=generator)
    nodes[0] = 0
    nodes[1, 1:] = 0
    upper = torch.randint(0, 4, (BATCH, SLOTS, SLOTS), generator=generator).triu(1)
    occupied = nodes > 0
    edges = (upper + upper.transpose(1, 2)) * (occupied[:, :, None] & occupied[:, None, :])
    return nodes, edges


def autograd_reference(energy, nodes_one_hot, edges_one_hot, c):
    nodes_one_hot = nodes_one_hot.clone().requires_grad_(True)
    edges_one_hot = edges_one_hot.clone().requires_grad_(True)
    values = energy.graph_one_hot_energy(nodes_one_hot, edges_one_hot, c)
    return (values.detach(), *torch.autograd.grad(values.sum(), (nodes_one_hot, edges_one_hot)))


FEATURES = {"none": lambda: None, "structural": StructuralFeatures, "chemistry": lambda: ChemistryFeatures(QM9_VOCABULARY)}


@pytest.mark.parametrize(
    "features, readout, condition_dim, spectral_norm",
    list(itertools.product(FEATURES, ("sum", "mean"), (None, 5), (False, True))),
)
def test_written_out_gradient_equals_autograd(features, readout, condition_dim, spectral_norm):
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(
        NUM_TYPES, 3, hidden=16, num_layers=3, readout=readout, features=FEATURES[features](),
        condition_dim=condition_dim, spectral_norm=spectral_norm,
    ).double().eval()
    assert isinstance(energy, HasGraphOneHotEnergyGradient)
    generator = torch.Generator().manual_seed(1)
    nodes, edges = random_graphs(generator)
    c = None if condition_dim is None else torch.randn(BATCH, condition_dim, generator=generator, dtype=torch.double)
    exact = (F.one_hot(nodes, NUM_TYPES + 1).double(), F.one_hot(edges, 4).double())
    relaxed = (
        torch.softmax(torch.randn(BATCH, SLOTS, NUM_TYPES + 1, generator=generator, dtype=torch.double), -1),
        torch.softmax(torch.randn(BATCH, SLOTS, SLOTS, 4, generator=generator, dtype=torch.double), -1),
    )
    cases = [(exact, None), (exact, edges), (relaxed, None)]  # edges: the aggregation over the edge list
    for (nodes_one_hot, edges_one_hot), edge_values in cases:
        expected = autograd_reference(energy, nodes_one_hot, edges_one_hot, c)
        got = energy.graph_one_hot_energy_and_grad(nodes_one_hot, edges_one_hot, c, edge_values)
        for name, a, b in zip(("energy", "node gradient", "edge gradient"), got, expected):
            assert not a.requires_grad
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=lambda m: f"{name}: {m}")


def test_other_activations_fall_back_to_autograd():
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(NUM_TYPES, 3, hidden=16, num_layers=2, activation=nn.Tanh).double()
    nodes, edges = random_graphs(torch.Generator().manual_seed(2))
    one_hots = (F.one_hot(nodes, NUM_TYPES + 1).double(), F.one_hot(edges, 4).double())
    for a, b in zip(energy.graph_one_hot_energy_and_grad(*one_hots, None, edges), autograd_reference(energy, *one_hots, None)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_bad_edges_are_named():
    energy = RelationalGraphEnergy(NUM_TYPES, 3, hidden=8, num_layers=1)
    nodes, edges = random_graphs(torch.Generator().manual_seed(3))
    one_hots = (F.one_hot(nodes, NUM_TYPES + 1).float(), F.one_hot(edges, 4).float())
    with pytest.raises(ValueError, match="graph_one_hot_energy_and_grad: edges must be"):
        energy.graph_one_hot_energy_and_grad(*one_hots, None, edges[:, :3])
