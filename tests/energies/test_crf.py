"""LinearChainCRF energy: the contract, its capabilities, and agreement with forward()."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from structebm.energies.base import (
    HasArgmax,
    HasExactSample,
    HasLocalMoves,
    HasLogPartition,
    HasMarginals,
    HasOneHotEnergy,
    check_energy_output,
)
from structebm.energies.crf import LinearChainCRF, SequenceCondition
from structebm.objectives.base import split_batch


def make_crf(seed, num_tags=3, constrained=False, emission_model=None):
    torch.manual_seed(seed)
    if constrained:
        crf = LinearChainCRF.from_tag_names(["O", "B-X", "I-X"][:num_tags], "BIO", emission_model, init_scale=1.0)
    else:
        crf = LinearChainCRF(num_tags, emission_model, init_scale=1.0)
    return crf.double()


def make_condition(seed, batch, length, num_tags):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, length, num_tags, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length
    return SequenceCondition(emissions, torch.arange(length)[None, :] < lengths[:, None])


def test_has_every_capability():
    crf = LinearChainCRF(3)
    for capability in (HasLogPartition, HasMarginals, HasArgmax, HasExactSample, HasLocalMoves, HasOneHotEnergy):
        assert isinstance(crf, capability), capability.__name__


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 4), st.booleans())
def test_energy_normalises_with_log_partition(seed, length, constrained):
    crf = make_crf(seed, constrained=constrained)
    c = make_condition(seed, 2, length, 3)
    log_z = crf.log_partition(c)
    for b in range(2):
        n = int(c.mask[b].sum())
        labellings = torch.tensor(list(itertools.product(range(3), repeat=n)))
        padded = torch.zeros(len(labellings), length, dtype=torch.long)
        padded[:, :n] = labellings
        energies = crf(padded, c[[b] * len(labellings)])
        assert torch.isclose(torch.logsumexp(-energies, 0), log_z[b], atol=1e-10)
        best = crf.argmax(c[[b]])
        assert torch.isclose(crf(best, c[[b]])[0], energies.min(), atol=1e-10)
        tags, top_energies = crf.topk(c[[b]], 2)
        assert tags.shape == (2, 1, length)
        expected = torch.sort(energies).values[:2]
        torch.testing.assert_close(top_energies[: len(expected), 0], expected, atol=1e-10, rtol=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 5), st.booleans())
def test_local_energy_deltas_match_forward(seed, length, constrained):
    crf = make_crf(seed, constrained=constrained)
    c = make_condition(seed, 3, length, 3)
    y = crf.sample(c, 1, torch.Generator().manual_seed(seed))[0]  # allowed labellings
    deltas = crf.local_energy_deltas(y, c)
    base = crf(y, c)
    assert deltas.shape == (3, length, 3)
    for t in range(length):
        for k in range(3):
            moved = y.clone()
            moved[:, t] = k
            expected = torch.where(c.mask[:, t], crf(moved, c) - base, torch.zeros_like(base))
            torch.testing.assert_close(deltas[:, t, k], expected, atol=1e-10, rtol=0)


def test_forbidden_moves_cost_infinity():
    crf = make_crf(0, constrained=True)
    c = make_condition(0, 1, 4, 3)
    c.mask[:] = True
    y = torch.tensor([[1, 2, 2, 0]])  # B-X I-X I-X O
    deltas = crf.local_energy_deltas(y, c)
    assert deltas[0, 0, 2] == float("inf")  # I-X cannot start a sequence
    assert deltas[0, 3, 2].isfinite()  # I-X after I-X is allowed
    assert deltas[0, 1, 0] == float("inf")  # B-X O I-X: I-X after O is forbidden
    assert deltas[0, 2, 0].isfinite()  # B-X I-X O O is allowed
    assert crf(torch.tensor([[0, 2, 2, 0]]), c)[0] == float("inf")


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 5), st.booleans())
def test_one_hot_energy_matches_forward_and_is_differentiable(seed, length, constrained):
    crf = make_crf(seed, constrained=constrained)
    c = make_condition(seed, 4, length, 3)
    y = crf.sample(c, 1, torch.Generator().manual_seed(seed))[0]
    one_hot = nn.functional.one_hot(y, 3).double().requires_grad_(True)
    values = crf.one_hot_energy(one_hot, c)
    torch.testing.assert_close(values, crf(y, c), atol=1e-10, rtol=0)
    (grad,) = torch.autograd.grad(values.sum(), one_hot)
    assert torch.isfinite(grad).all()
    assert (grad[~c.mask] == 0).all()


def test_emission_model_and_batch_formats():
    model = nn.Linear(4, 3).double()
    crf = make_crf(1, emission_model=model)
    features = torch.randn(2, 5, 4, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    y = torch.randint(0, 3, (2, 5))
    reference = crf(y, SequenceCondition(features, mask))
    assert torch.equal(crf(y, (features, mask)), reference)
    assert torch.equal(crf(y, {"inputs": features, "mask": mask}), reference)
    x, c = split_batch({"x": y, "c": SequenceCondition(features, mask)})
    check_energy_output(crf(x, c), 2, "test")
    # The NLL gradient reaches the emission model and the transitions.
    loss = (crf(y, c) + crf.log_partition(c)).mean()
    loss.backward()
    assert model.weight.grad is not None and crf.transitions.grad.abs().sum() > 0
    assert len(c) == 2 and c[1:].mask.shape == (1, 5)
    moved = c.to("cpu")
    assert moved.mask.dtype == torch.bool and torch.equal(moved.inputs, features)


def test_marginals_sample_and_shapes():
    crf = make_crf(2)
    c = make_condition(2, 3, 4, 3)
    node = crf.marginals(c)
    assert node.shape == (3, 4, 3)
    torch.testing.assert_close(node.sum(-1), c.mask.double())
    edges = crf.edge_marginals(c)
    torch.testing.assert_close(edges.sum((-1, -2)), c.mask[:, 1:].double())
    draws = crf.sample(c, 5, torch.Generator().manual_seed(0))
    assert draws.shape == (5, 3, 4) and (draws[:, ~c.mask] == 0).all()


def test_bad_inputs_give_clear_errors():
    crf = LinearChainCRF(3)
    with pytest.raises(ValueError, match="condition c"):
        crf(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected \[B, T, 3\]"):
        crf.log_partition(torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="labels y must have shape"):
        crf(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="allowed_transitions"):
        LinearChainCRF(3, allowed_transitions=torch.ones(2, 2, dtype=torch.bool))


def test_energies_given_condition_equal_the_energies_of_repeated_inputs():
    g = torch.Generator().manual_seed(4)
    model = LinearChainCRF(3).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(generator=g)
    emissions = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(5)[None, :] < torch.tensor([5, 3])[:, None]
    labellings = torch.randint(0, 3, (2, 4, 5), generator=g)
    shared = model.energies_given_condition(labellings, (emissions, mask))
    repeated = model(labellings.reshape(8, 5), (emissions.repeat_interleave(4, 0), mask.repeat_interleave(4, 0)))
    torch.testing.assert_close(shared, repeated.reshape(2, 4))
    (grad_shared,) = torch.autograd.grad(shared.sum(), emissions)
    (grad_repeated,) = torch.autograd.grad(repeated.sum(), emissions)
    torch.testing.assert_close(grad_shared, grad_repeated)
    with pytest.raises(ValueError, match=r"labels must have shape \[2, M, 5\]"):
        model.energies_given_condition(labellings[:, 0], (emissions, mask))
