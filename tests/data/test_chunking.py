"""Tests of the CoNLL-style tagging DataModule: columns, vocabularies, batches, checks."""

from __future__ import annotations

import pytest
import torch

from structebm.data.chunking import ChunkingDataModule, TaggedCondition, collate_columns, read_columns
from structebm.energies.crf import LinearChainCRF
from structebm.energies.emissions import TaggingEmissions
from structebm.objectives.base import split_batch

TRAIN = """Confidence NN B-NP
in IN B-PP
the DT B-NP
pound NN I-NP

He PRP B-NP
reckons VBZ B-VP
the DT B-NP
deficit NN I-NP
will MD B-VP

the DT B-NP
pound NN I-NP
"""
TEST = """The DT B-NP
euro NN I-NP
rose VBD B-VP
quickly RB B-ADVP
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN)
    (tmp_path / "test.txt").write_text(TEST)
    return str(tmp_path / "train.txt"), str(tmp_path / "test.txt")


def make_module(files, **kwargs) -> ChunkingDataModule:
    module = ChunkingDataModule(files[0], files[1], extra_columns={"pos": 1}, batch_size=2, **kwargs)
    module.setup()
    return module


def test_read_columns_keeps_every_column(files):
    sentences = read_columns(files[0], 0, -1, {"pos": 1})
    assert [len(s["words"]) for s in sentences] == [4, 5, 2]
    assert sentences[1]["pos"] == ["PRP", "VBZ", "DT", "NN", "MD"]
    assert sentences[1]["tags"][1] == "B-VP"


def test_vocabularies_come_from_training_and_tags_from_every_split(files):
    module = make_module(files)
    vocab = module.vocabularies
    assert vocab.words.itos[:2] == ["<pad>", "<unk>"] and vocab.words.itos[2] in ("the", "pound")
    assert "euro" not in vocab.words.stoi  # test words are unknown
    assert "B-ADVP" in module.tag_names  # test-only tag still has an index
    assert module.tag_names[0] == "B-NP"  # most frequent in training first
    test = module.datasets["test"][0]
    assert test["words"][1] == vocab.words.unknown_index
    assert test["pos"][3] == vocab.extras["pos"].unknown_index  # RB unseen in training


def test_batches_are_state_then_condition(files):
    module = make_module(files)
    y, c = split_batch(next(iter(module.train_dataloader())))
    assert isinstance(c, TaggedCondition)
    assert y.shape == c.mask.shape == c.inputs["words"].shape == c.inputs["pos"].shape
    assert c.inputs["chars"].shape[:2] == y.shape
    lengths = c.mask.sum(1)
    for row, n in enumerate(lengths.tolist()):
        assert (c.inputs["words"][row, :n] > 0).all() and (c.inputs["words"][row, n:] == 0).all()
        assert (y[row, n:] == 0).all()


def test_training_order_is_seeded_and_changes_per_epoch(files):
    def order(module, epoch):
        loader = module.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return [tuple(c.mask.sum(1).tolist()) for _, c in loader]

    first, second = make_module(files, seed=3), make_module(files, seed=3)
    assert order(first, 0) == order(second, 0)
    orders = {tuple(order(first, epoch)) for epoch in range(6)}
    assert len(orders) > 1


def test_condition_repeats_and_moves_keeping_its_type(files):
    module = make_module(files, pad_to_length=7)
    _, c = next(iter(module.test_dataloader()))
    assert c.mask.shape == (1, 7)
    repeated = c.repeat_interleave(3)
    assert isinstance(repeated, TaggedCondition) and repeated.batch_size == 3
    assert torch.equal(repeated.inputs["chars"][2], c.inputs["chars"][0])
    assert isinstance(c.to("cpu"), TaggedCondition)


def test_pad_to_length_too_short_is_an_error(files):
    module = make_module(files, pad_to_length=3)
    with pytest.raises(ValueError, match="more than pad_to_length=3"):
        next(iter(module.train_dataloader()))


def test_validation_split_and_caps(files):
    module = make_module(files, val_fraction=0.34, max_words=4, max_train_sentences=None)
    assert len(module.datasets["train"]) == 2 and len(module.datasets["val"]) == 1
    assert len(module.vocabularies.words) == 4


def test_model_size_checks_name_the_fix(files):
    module = make_module(files)
    num_tags = len(module.tag_names)
    with pytest.raises(ValueError, match=f"num_tags: {num_tags}"):
        module.check_model(LinearChainCRF(num_tags + 1))
    small = TaggingEmissions(num_tags, num_words=3, num_chars=50, extra_columns={"pos": 50})
    with pytest.raises(ValueError, match="'words' vocabulary"):
        module.check_model(LinearChainCRF(num_tags, small))


def test_bad_arguments(files):
    with pytest.raises(ValueError, match="both train_path and test_path"):
        ChunkingDataModule(files[0])
    with pytest.raises(ValueError, match="val_fraction"):
        ChunkingDataModule(*files, val_fraction=1.5)
    with pytest.raises(ValueError, match="empty batch"):
        collate_columns([])


def test_misaligned_rows_are_reported(tmp_path):
    (tmp_path / "bad.txt").write_text("a DT B-NP\nb NN\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_columns(tmp_path / "bad.txt", 0, -1, {"pos": 1})


def test_transition_constraints_must_fit_the_gold_tags(files):
    module = make_module(files)
    module.check_model(LinearChainCRF.from_tag_names(module.tag_names, "BIO"))
    shuffled = module.tag_names[::-1]  # a tag list in another order: B-NP -> I-NP becomes forbidden somewhere
    with pytest.raises(ValueError, match=r"the energy forbids .* list the tags in the data's order"):
        module.check_model(LinearChainCRF.from_tag_names(shuffled, "BIO"))
