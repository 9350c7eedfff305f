"""Objectives encode a condition once per batch (one emission pass and one dropout mask per step),
samplers once per chain start."""

import pytest
import torch
from torch import nn

from structebm.conditions import SequenceCondition, detach_condition, select_rows
from structebm.energies.base import HasConditionEncoder, encode_condition
from structebm.energies.crf import LinearChainCRF
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.objectives.conditional_noise import LaggedModelNoise
from structebm.objectives.exact_nll import ExactNLL
from structebm.objectives.ranking_nce import RankingNCE
from structebm.samplers.chains import DataInit
from structebm.samplers.gibbs import gibbs

NUM_TAGS, NUM_WORDS, LENGTH, BATCH = 4, 12, 7, 6


class _CountingEmissions(nn.Module):
    """Words -> dropout -> linear emissions ``[B, T, K]``, counting its forward passes."""

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        self.embed = nn.Embedding(NUM_WORDS, 8)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(8, NUM_TAGS)
        self.calls = 0

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.out(self.dropout(self.embed(words)))


def _crf_and_batch() -> tuple[LinearChainCRF, torch.Tensor, SequenceCondition]:
    torch.manual_seed(0)
    crf = LinearChainCRF(NUM_TAGS, _CountingEmissions(), init_scale=0.5)
    words = torch.randint(0, NUM_WORDS, (BATCH, LENGTH))
    lengths = torch.tensor([7, 5, 3, 7, 1, 6])
    mask = torch.arange(LENGTH)[None, :] < lengths[:, None]
    tags = torch.randint(0, NUM_TAGS, (BATCH, LENGTH))
    return crf, tags, SequenceCondition(words, mask)


def test_an_encoded_condition_gives_every_method_the_same_result():
    crf, tags, c = _crf_and_batch()
    crf.eval()
    assert isinstance(crf, HasConditionEncoder)
    encoded = crf.encode_condition(c)
    assert encoded.encoded and encoded.inputs.shape == (BATCH, LENGTH, NUM_TAGS)
    calls = crf.emission_model.calls
    torch.testing.assert_close(crf(tags, encoded), crf(tags, c))
    torch.testing.assert_close(crf.log_partition(encoded), crf.log_partition(c))
    torch.testing.assert_close(crf.local_energy_deltas(tags, encoded), crf.local_energy_deltas(tags, c))
    assert torch.equal(crf.argmax(encoded), crf.argmax(c))
    torch.testing.assert_close(crf(tags[1:3], encoded[1:3]), crf(tags[1:3], c[1:3]))
    assert crf.emission_model.calls == calls + 5  # only the raw conditions ran the emission model


def test_a_wrongly_shaped_encoded_condition_is_named():
    crf, tags, c = _crf_and_batch()
    bad = SequenceCondition(torch.zeros(BATCH, LENGTH, NUM_TAGS + 1), c.mask, encoded=True)
    with pytest.raises(ValueError, match="the encoded condition gave emissions of shape"):
        crf(tags, bad)


def test_detach_condition_cuts_the_graph_and_keeps_the_rest():
    crf, _, c = _crf_and_batch()
    encoded = crf.encode_condition(c)
    assert encoded.inputs.requires_grad
    detached = detach_condition({"a": encoded, "b": (encoded.inputs, 3), "c": None})
    assert not detached["a"].inputs.requires_grad and detached["a"].encoded and detached["a"].mask is c.mask
    assert not detached["b"][0].requires_grad and detached["b"][1] == 3 and detached["c"] is None


def test_encode_condition_passes_through_energies_without_an_encoder_and_missing_conditions():
    crf, _, c = _crf_and_batch()
    assert encode_condition(crf, None) is None
    plain = nn.Linear(2, 1)
    assert encode_condition(plain, c) is c


def test_exact_nll_under_dropout_is_the_nll_of_one_thinned_network():
    """Energy and log-partition share one dropout mask, so the loss is a true NLL: >= 0 per sentence."""
    crf, tags, c = _crf_and_batch()
    crf.train()
    torch.manual_seed(1)
    loss = ExactNLL()(crf, (tags, c)).loss
    assert crf.emission_model.calls == 1
    torch.manual_seed(1)
    encoded = crf.encode_condition(c)
    per_sentence = crf(tags, encoded) + crf.log_partition(encoded)
    torch.testing.assert_close(loss, per_sentence.mean())
    assert (per_sentence >= -1e-5).all()


def test_contrastive_divergence_runs_the_emission_model_once_per_step():
    """Ten blocked Gibbs sweeps, the data energy and the negatives' energy: one emission pass."""
    crf, tags, c = _crf_and_batch()
    crf.train()
    objective = ContrastiveDivergence(gibbs, DataInit(), num_steps=10, sampler_options={"scan": "blocked"})
    output = objective(crf, (tags, c))
    assert crf.emission_model.calls == 1
    output.loss.backward()
    assert crf.emission_model.out.weight.grad is not None


def test_contrastive_divergence_with_one_mask_has_no_gradient_where_negatives_equal_the_data():
    """With the data and negatives scored under the same emissions, positions where they agree
    cancel exactly: a chain that never moves gives a zero gradient despite dropout."""
    crf, tags, c = _crf_and_batch()
    crf.train()
    frozen = torch.ones(LENGTH, dtype=torch.bool)  # every site frozen: negatives = data
    objective = ContrastiveDivergence(
        gibbs, DataInit(), num_steps=1, sampler_options={"scan": "blocked", "mask": frozen}
    )
    objective(crf, (tags, c)).loss.backward()
    for parameter in crf.parameters():
        assert parameter.grad is None or torch.count_nonzero(parameter.grad) == 0


def test_several_chains_per_sentence_share_the_one_encoding_and_average_the_negative_term():
    crf, tags, c = _crf_and_batch()
    crf.train()
    objective = ContrastiveDivergence(
        gibbs, DataInit(), num_steps=3, sampler_options={"scan": "blocked"}, chains_per_example=4
    )
    negatives, chain_c, _ = objective.sample_negatives(crf, tags.repeat_interleave(4, 0), select_rows(c, torch.arange(BATCH).repeat_interleave(4)), None)
    assert negatives.shape == (4 * BATCH, LENGTH) and chain_c.inputs.shape == (4 * BATCH, LENGTH, NUM_TAGS)
    assert torch.equal(chain_c.mask, c.mask.repeat_interleave(4, 0))
    crf.emission_model.calls = 0
    output = objective(crf, (tags, c))
    assert crf.emission_model.calls == 1
    assert torch.isfinite(output.loss)


def test_several_chains_per_sentence_divide_the_variance_of_the_cd_gradient():
    """CD-1 from the data on an emission-free CRF: the M chains of a sentence are independent
    given its gold tags, so the variance of the estimate falls as 1/M (expected ratio 1/8 here;
    64 repeats put the measured ratio within a factor of about 1.5 of it)."""
    torch.manual_seed(0)
    crf = LinearChainCRF(NUM_TAGS, None, init_scale=1.0)
    emissions = 2.0 * torch.randn(BATCH, LENGTH, NUM_TAGS)
    tags = torch.randint(0, NUM_TAGS, (BATCH, LENGTH))

    def gradient_variance(chains: int) -> float:
        grads = []
        for seed in range(64):
            objective = ContrastiveDivergence(
                gibbs, DataInit(), num_steps=1, sampler_options={"scan": "blocked"},
                generator_seed=seed, chains_per_example=chains,
            )
            crf.zero_grad()
            objective(crf, (tags, emissions)).loss.backward()
            grads.append(crf.transitions.grad.flatten().clone())
        return torch.stack(grads).var(dim=0).sum().item()

    ratio = gradient_variance(8) / gradient_variance(1)
    assert 0.125 / 1.6 < ratio < 0.125 * 1.6, ratio


def test_chains_per_example_is_checked():
    with pytest.raises(ValueError, match="chains_per_example must be a positive integer"):
        ContrastiveDivergence(gibbs, DataInit(), num_steps=1, chains_per_example=0)
    with pytest.raises(ValueError, match="needs chains_per_example=1"):
        ContrastiveDivergence(gibbs, DataInit(), num_steps=1, chains_per_example=2,
                              gradient_penalty_weight=0.1, gradient_penalty_at="interpolates")


def test_gibbs_encodes_the_condition_once_per_chain_start():
    crf, tags, c = _crf_and_batch()
    crf.eval()
    sampler = gibbs(crf, scan="blocked")
    state = sampler.init(tags, c)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        state, _ = sampler.step(state, generator)
    assert crf.emission_model.calls == 1
    assert not state.c.inputs.requires_grad


def test_ranking_nce_runs_the_model_and_its_lagged_copy_once_each():
    crf, tags, c = _crf_and_batch()
    crf.train()
    noise = LaggedModelNoise(refresh_every=5)
    objective = RankingNCE(noise, num_noise=3)
    objective.bind(crf)
    crf.emission_model.calls = noise.energy.emission_model.calls = 0
    objective(crf, (tags, c)).loss.backward()
    assert crf.emission_model.calls == 1
    assert noise.energy.emission_model.calls == 1
