"""Enumeration helpers checked against itertools and direct sums."""

import itertools
import math

import pytest
import torch

from structebm.structured.enumerate import (
    MAX_ENUMERATION_STATES,
    EnumerationTooLargeError,
    all_states,
    check_categorical_states,
    check_enumerable,
    empirical_distribution,
    enumerate_energies,
    log_partition_from_energies,
    marginals_from_log_probs,
    one_hot_states,
    sample_from_log_probs,
    state_index,
    total_variation,
)


def test_all_states_is_lexicographic_and_state_index_inverts_it():
    states = all_states(3, 3)
    expected = torch.tensor(list(itertools.product(range(3), repeat=3)))
    assert torch.equal(states, expected)
    assert torch.equal(state_index(states, 3), torch.arange(27))


def test_enumeration_limit_is_enforced_with_a_clear_message():
    assert check_enumerable(18, 2, "here") == 2**18 == MAX_ENUMERATION_STATES
    with pytest.raises(EnumerationTooLargeError, match=r"here: .*2\*\*19"):
        check_enumerable(19, 2, "here")
    with pytest.raises(EnumerationTooLargeError):
        all_states(12, 3)


def test_check_categorical_states_names_the_offending_position():
    x = torch.zeros(2, 4, dtype=torch.long)
    x[1, 2] = 5
    with pytest.raises(ValueError, match=r"value 5 at \(batch 1, site 2\)"):
        check_categorical_states(x, 3, where="test")
    with pytest.raises(TypeError, match="integer"):
        check_categorical_states(x.float(), 3)
    with pytest.raises(ValueError, match=r"shape \[B, L\]"):
        check_categorical_states(x[0], 3)
    with pytest.raises(ValueError, match="length 5"):
        check_categorical_states(x.clamp(max=1), 3, length=5)
    check_categorical_states(x, None)  # only non-negativity without K


def test_one_hot_states_matches_reference():
    x = torch.tensor([[0, 2, 1], [1, 1, 0]])
    assert torch.equal(one_hot_states(x, 3), torch.nn.functional.one_hot(x, 3).float())


def test_log_partition_and_marginals_match_direct_sums():
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(5, 3, generator=generator)  # an independent-site energy, used only as test input

    def energy_of_states(states):
        return -weights[states, torch.arange(3)].sum(1) * torch.ones(2, 1)  # [2, S]: two identical conditions

    energies = enumerate_energies(energy_of_states, 3, 5, chunk_size=7)
    assert energies.shape == (2, 125)
    log_z = log_partition_from_energies(energies)
    # Independent sites: Z = Π_i Σ_k exp(w_ik), marginals are per-site softmaxes.
    assert torch.allclose(log_z, torch.logsumexp(weights, dim=0).sum().expand(2), atol=1e-5)
    marginals = marginals_from_log_probs(-energies - log_z[:, None], 3, 5)
    assert torch.allclose(marginals, torch.softmax(weights, dim=0).T.expand(2, 3, 5), atol=1e-6)


def test_exact_samples_match_probabilities_in_total_variation():
    generator = torch.Generator().manual_seed(1)
    log_probs = torch.log_softmax(torch.randn(2, 16, generator=generator), dim=-1)
    draws = sample_from_log_probs(log_probs, 4, 2, 20000, generator)
    assert draws.shape == (20000, 2, 4)
    # Expected TV of N iid draws ≈ Σ_s sqrt(p_s(1-p_s)/(2πN)) <= sqrt(S/(2πN)) = 0.011 for S=16, N=20000;
    # 0.04 is far above that, and a swap of the two rows' distributions would give TV ~ 0.3.
    for row in range(2):
        tv = total_variation(log_probs[row].exp(), empirical_distribution(draws[:, row], 2))
        assert tv < 0.04, tv
    bound = math.sqrt(16 / (2 * math.pi * 20000))
    assert bound < 0.04 / 2


def test_empirical_distribution_and_total_variation():
    x = torch.tensor([[0, 1], [0, 1], [1, 1], [0, 0]])
    assert torch.equal(empirical_distribution(x, 2), torch.tensor([0.25, 0.5, 0.0, 0.25]))
    assert total_variation(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        total_variation(torch.ones(2), torch.ones(3))
