"""Chemistry features of molecular graphs against RDKit and the valence module, and their gradients."""

import pytest
import torch
import torch.nn.functional as F
from rdkit import Chem

from structebm.chem.convert import smiles_to_dense
from structebm.chem.dense import DenseMolGraph
from structebm.chem.valence import atom_valences, valence_excess
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.data.molecules import load_smiles
from structebm.energies.graph import RelationalGraphEnergy
from structebm.chem.features import ChemistryFeatures

NUM_TYPES = len(QM9_VOCABULARY)


def one_hots(graph: DenseMolGraph) -> tuple[torch.Tensor, torch.Tensor]:
    return F.one_hot(graph.nodes, NUM_TYPES + 1).double(), F.one_hot(graph.edges, 4).double()


@pytest.fixture(scope="module")
def qm9_graphs() -> DenseMolGraph:
    try:
        smiles = load_smiles("qm9")  # the data root the library resolves: $STRUCTEBM_DATA or the user cache
    except Exception as error:  # noqa: BLE001 - any failure to resolve the file means no data here
        pytest.fail(f"QM9 is needed by the chemistry feature tests (set STRUCTEBM_DATA): {error}")
    return smiles_to_dense(smiles[:512], QM9_VOCABULARY)


def test_features_of_real_molecules_match_their_valences_and_are_single_fragments(qm9_graphs):
    features = ChemistryFeatures("qm9").double()
    atom_features, graph_features = features(*one_hots(qm9_graphs))
    torch.testing.assert_close(atom_features[..., 0], atom_valences(qm9_graphs).double())
    assert (atom_features[..., 1] == 0).all() and (graph_features[:, 0] == 0).all()  # data never break a valence
    torch.testing.assert_close(graph_features[:, 1], torch.zeros(qm9_graphs.batch_size, dtype=torch.float64), atol=1e-6, rtol=0)


def test_fragment_count_and_excess_on_hand_made_graphs():
    smiles = ["C.C", "C.C.O", "CC(C)(C)C.N", "C1CC1.C1CC1.O"]
    graphs = smiles_to_dense(smiles, QM9_VOCABULARY)
    expected_fragments = [len(Chem.GetMolFrags(Chem.MolFromSmiles(s))) for s in smiles]
    _, graph_features = ChemistryFeatures("qm9").double()(*one_hots(graphs))
    torch.testing.assert_close(graph_features[:, 1], torch.tensor(expected_fragments, dtype=torch.float64) - 1, atol=1e-6, rtol=0)
    # Raise the C-C bond of ethanol to triple: the middle carbon then carries 3 + 1 bonds (allowed 4),
    # and to triple on a second neighbour too: an excess that the valence module also reports.
    ethanol = smiles_to_dense(["CC(C)O"], QM9_VOCABULARY)
    bonds = ethanol.edges.clone()
    for j in (0, 2):
        bonds[0, 1, j] = bonds[0, j, 1] = 3
    broken = DenseMolGraph.from_tensors(ethanol.nodes, bonds, NUM_TYPES)
    atom_features, graph_features = ChemistryFeatures("qm9").double()(*one_hots(broken))
    assert graph_features[0, 0] == valence_excess(broken, QM9_VOCABULARY).sum() == 3
    torch.testing.assert_close(atom_features[0, :, 1], valence_excess(broken, QM9_VOCABULARY)[0].double())


def test_features_are_differentiable_on_relaxed_graphs_with_repeated_eigenvalues():
    graphs = smiles_to_dense(["C.C.C.C", "CCO", "N"], QM9_VOCABULARY)  # four equal fragments; many empty slots
    atoms, bonds = one_hots(graphs)
    generator = torch.Generator().manual_seed(0)
    for relax in (0.0, 0.3):
        a = (atoms * (1 - relax) + relax * torch.rand(atoms.shape, generator=generator, dtype=torch.float64)).requires_grad_(True)
        b = (bonds * (1 - relax) + relax * torch.rand(bonds.shape, generator=generator, dtype=torch.float64))
        b = ((b + b.transpose(1, 2)) / 2).requires_grad_(True)
        atom_features, graph_features = ChemistryFeatures("qm9").double()(a, b)
        grads = torch.autograd.grad(atom_features.sum() + graph_features.sum(), (a, b))
        assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_vocabulary_must_match_the_energy():
    with pytest.raises(ValueError, match="expects 17 node types, but num_node_types is 8"):
        RelationalGraphEnergy(NUM_TYPES, 3, features=ChemistryFeatures("zinc250k"))
    with pytest.raises(ValueError, match="tau"):
        ChemistryFeatures("qm9", tau=0.0)


def test_violation_weights_start_at_the_prior_and_are_trainable():
    energy = RelationalGraphEnergy(NUM_TYPES, 3, hidden=16, num_layers=1, features=ChemistryFeatures("qm9"), term_weight=3.0)
    torch.testing.assert_close(energy.term_log_weight.exp(), torch.full((2,), 3.0))
    assert energy.term_log_weight.requires_grad
    with pytest.raises(ValueError, match="term_weight"):
        RelationalGraphEnergy(NUM_TYPES, 3, features=ChemistryFeatures("qm9"), term_weight=0.0)


def test_first_order_estimate_of_joining_fragments_has_the_scale_of_the_true_change():
    # Two unbonded carbons: joining them lowers the fragment count by exactly 1. The first-order
    # estimate that Gibbs-with-gradients ranks moves by must have that scale (not -2 / tau = -200).
    graph = smiles_to_dense(["C.C"], QM9_VOCABULARY)
    atoms, bonds = one_hots(graph)
    bonds.requires_grad_(True)
    _, graph_features = ChemistryFeatures("qm9").double()(atoms, bonds)
    (grad,) = torch.autograd.grad(graph_features[0, 1], bonds)
    i, j = (graph.nodes[0] > 0).nonzero().flatten().tolist()
    estimate = sum(grad[0, a, b, 1] - grad[0, a, b, 0] for a, b in ((i, j), (j, i)))
    assert -4.0 <= float(estimate) <= -0.5


def _total_excess(graph: DenseMolGraph) -> float:
    return float(valence_excess(graph, QM9_VOCABULARY).sum())


def test_first_order_change_of_the_total_excess_is_exact_for_every_single_site_change():
    # A saturated and an over-valent molecule (O=C=O with an extra bond order on one oxygen is
    # built by hand): for every atom value and every bond order at every site, the first-order
    # estimate g_k - g_current of the total excess equals its true change.
    saturated = smiles_to_dense(["CC(=O)N"], QM9_VOCABULARY)
    over = smiles_to_dense(["O=C=O"], QM9_VOCABULARY)
    carbon = (over.nodes[0] == QM9_VOCABULARY.index("C", 0)).nonzero().flatten()[0]
    oxygen = (over.nodes[0] == QM9_VOCABULARY.index("O", 0)).nonzero().flatten()[0]
    over.edges[0, carbon, oxygen] = over.edges[0, oxygen, carbon] = 3
    features = ChemistryFeatures("qm9").double()
    for graph in (saturated, over):
        atoms, bonds = (t.requires_grad_(True) for t in one_hots(graph))
        _, graph_features = features(atoms, bonds)
        assert float(graph_features[0, 0]) == _total_excess(graph)
        atom_grad, bond_grad = torch.autograd.grad(graph_features[0, 0], (atoms, bonds))
        occupied = (graph.nodes[0] > 0).nonzero().flatten().tolist()
        for i in occupied:
            for value in range(1, NUM_TYPES + 1):
                changed = DenseMolGraph(graph.nodes.clone(), graph.edges, graph.mask)
                changed.nodes[0, i] = value
                estimate = atom_grad[0, i, value] - atom_grad[0, i, graph.nodes[0, i]]
                assert float(estimate) == pytest.approx(_total_excess(changed) - _total_excess(graph))
        for i in occupied:
            for j in occupied:
                if i >= j:
                    continue
                for order in range(4):
                    changed = DenseMolGraph(graph.nodes, graph.edges.clone(), graph.mask)
                    changed.edges[0, i, j] = changed.edges[0, j, i] = order
                    current = graph.edges[0, i, j]
                    estimate = sum(bond_grad[0, a, b, order] - bond_grad[0, a, b, current] for a, b in ((i, j), (j, i)))
                    assert float(estimate) == pytest.approx(_total_excess(changed) - _total_excess(graph))
