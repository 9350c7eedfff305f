"""AtomPrior: exact frequencies when fitted, its distribution when sampled, clear errors."""

import pytest
import torch

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.valence import is_valence_valid
from structebm.chem.vocab import get_vocabulary
from tests.stats import Z_SCORE


def test_fit_counts_atoms_and_types_exactly():
    atoms = torch.tensor([[1, 1, 2, 0], [3, 0, 0, 0], [1, 2, 0, 0], [1, 1, 1, 3]])
    prior = AtomPrior.fit(atoms, num_node_types=3)
    assert torch.allclose(prior.count_probs, torch.tensor([0.0, 0.25, 0.25, 0.25, 0.25]))
    # 10 atoms: six of type 1, two of type 2, two of type 3
    assert torch.allclose(prior.type_probs, torch.tensor([0.0, 6 / 10, 2 / 10, 2 / 10]))
    assert prior.max_nodes == 4 and prior.num_node_values == 4


def test_samples_follow_the_prior():
    prior = AtomPrior(torch.tensor([0.0, 0.1, 0.0, 0.3, 0.6]), torch.tensor([0.0, 0.7, 0.2, 0.1]))
    n = 20_000
    atoms = prior.sample(n, torch.Generator().manual_seed(0))
    assert atoms.shape == (n, 4) and atoms.dtype == torch.long
    counts = (atoms > 0).sum(dim=1)
    # occupied slots come first, then only empty ones
    assert torch.equal(atoms > 0, torch.arange(4)[None, :] < counts[:, None])
    for probs, draws in ((prior.count_probs, counts), (prior.type_probs, atoms[atoms > 0])):
        frequencies = torch.bincount(draws, minlength=probs.shape[0]).double() / draws.numel()
        tolerance = Z_SCORE * (probs.double() * (1 - probs.double()) / draws.numel()).sqrt()
        assert ((frequencies - probs.double()).abs() <= tolerance).all(), (frequencies, probs)
    assert torch.equal(atoms, prior.sample(n, torch.Generator().manual_seed(0)))
    assert prior.sample(0, torch.Generator()).shape == (0, 4)


def test_noise_with_a_fitted_prior_is_valid_and_looks_like_its_data():
    vocabulary = get_vocabulary("qm9")
    data = torch.zeros((4, vocabulary.max_atoms), dtype=torch.long)
    data[:, :9] = 1  # nine carbons
    data[0, 8] = 3  # one oxygen
    space = MolGraphSpace(vocabulary, connected_noise=True, atom_prior=AtomPrior.fit(data, len(vocabulary)))
    graphs = space.noise(300, torch.Generator().manual_seed(1))
    assert is_valence_valid(graphs, vocabulary).all()
    assert (graphs.num_nodes == 9).all()
    assert set(graphs.nodes.unique().tolist()) <= {1, 3}


def test_bad_priors_are_reported():
    with pytest.raises(ValueError, match="sum to 1"):
        AtomPrior(torch.tensor([0.5, 0.6]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="empty slot"):
        AtomPrior(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="no node"):
        AtomPrior.fit(torch.zeros((3, 4), dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        AtomPrior.fit(torch.tensor([[1, 3]]), 2)
    with pytest.raises(ValueError, match="node prior covers 4 slots"):
        MolGraphSpace(get_vocabulary("qm9"), atom_prior=AtomPrior.fit(torch.tensor([[1, 1, 0, 0]]), 8))
