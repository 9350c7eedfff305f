"""Tests of the tagging emission model: shapes, padding invariance, caching, errors, learning."""

from __future__ import annotations

import pytest
import torch

from structebm.energies.crf import LinearChainCRF, SequenceCondition
from structebm.energies.emissions import CharacterCNN, TaggingEmissions
from structebm.objectives.exact_nll import ExactNLL


def make_inputs(generator: torch.Generator, lengths=(5, 3), num_words=30, num_chars=12, num_pos=6, word_length=4):
    batch, length = len(lengths), max(lengths)
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    words = torch.randint(2, num_words, (batch, length), generator=generator) * mask
    chars = torch.randint(1, num_chars, (batch, length, word_length), generator=generator) * mask[:, :, None]
    pos = torch.randint(2, num_pos, (batch, length), generator=generator) * mask
    return {"words": words, "chars": chars, "pos": pos}, mask


def make_model(**kwargs) -> TaggingEmissions:
    options = dict(num_tags=4, num_words=30, num_chars=12, extra_columns={"pos": 6}, word_dim=8, char_dim=5,
                   char_filters=6, extra_dim=3, hidden=7, dropout=0.0, word_dropout=0.0)
    options.update(kwargs)
    return TaggingEmissions(**options)


def test_shapes_and_zero_padding():
    torch.manual_seed(0)
    inputs, mask = make_inputs(torch.Generator().manual_seed(0))
    emissions = make_model()(inputs)
    assert emissions.shape == (2, 5, 4)
    assert torch.all(emissions[~mask] == 0)
    assert torch.isfinite(emissions).all()


def test_padding_does_not_change_real_positions():
    """The same sentence alone and next to a longer one (more padding) gets the same emissions."""
    torch.manual_seed(0)
    model = make_model().eval()
    inputs, mask = make_inputs(torch.Generator().manual_seed(1), lengths=(3, 6))
    both = model(inputs)
    alone = model({k: v[:1, :3] for k, v in inputs.items()})
    torch.testing.assert_close(both[0, :3], alone[0], rtol=1e-5, atol=1e-6)


def test_character_cnn_ignores_character_padding():
    torch.manual_seed(0)
    cnn = CharacterCNN(10, 4, 5, 3)
    chars = torch.tensor([[[3, 4, 5, 0, 0]]])
    torch.testing.assert_close(cnn(chars), cnn(chars[:, :, :3]))


def test_word_dropout_only_in_training():
    torch.manual_seed(0)
    model = make_model(word_dropout=0.5).eval()
    inputs, _ = make_inputs(torch.Generator().manual_seed(3))
    torch.testing.assert_close(model(inputs), model(dict(inputs)))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i: i.pop("pos"), "lack the column"),
        (lambda i: i.__setitem__("words", i["words"] + 100), "embedding table has 30 rows"),
        (lambda i: i.__setitem__("pos", i["pos"][:, :2]), "expected \\[B, T\\]"),
        (lambda i: i.__setitem__("words", i["words"].float()), "integer tensor"),
        (lambda i: i.__setitem__("words", torch.zeros_like(i["words"])), "have no words"),
    ],
)
def test_bad_inputs_are_named(change, message):
    inputs, _ = make_inputs(torch.Generator().manual_seed(4))
    change(inputs)
    with pytest.raises(ValueError, match=message):
        make_model()(inputs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        make_model(dropout=1.0)
    with pytest.raises(ValueError, match="num_words"):
        make_model(num_words=0)
    with pytest.raises(ValueError, match="kernel_size"):
        CharacterCNN(5, 3, 3, 2)


def test_crf_learns_a_word_to_tag_rule():
    """Tag = (word id) mod 3 is learnable from words alone: exact NLL drives token accuracy to 1."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(5)
    model = make_model(num_tags=3, num_chars=0, extra_columns=None, hidden=16)
    crf = LinearChainCRF(3, model)
    lengths = torch.randint(2, 8, (64,), generator=generator)
    mask = torch.arange(8)[None, :] < lengths[:, None]
    words = torch.randint(2, 30, (64, 8), generator=generator) * mask
    tags = (words % 3) * mask
    condition = SequenceCondition({"words": words}, mask)
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.02)
    objective = ExactNLL()
    for _ in range(150):
        loss = objective(crf, (tags, condition)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    crf.eval()
    accuracy = (crf.argmax(condition) == tags)[mask].float().mean()
    assert accuracy == 1.0
