"""Tag-set recognition and the scores of chunk and plain tag sets, against hand counts."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from structebm.evaluation.tagging import chunk_scores, decode_tags, plain_tag_scores, tag_scheme, tagging_scores


@pytest.mark.parametrize(
    "tags, scheme",
    [
        (["O", "B-NP", "I-NP", "B-VP"], "BIO"),
        (["I-PER", "O", "I-LOC"], "BIO"),  # IOB1 uses only I- and O
        (["O", "B-NP", "I-NP", "E-NP", "S-VP"], "BIOES"),
        (["NOUN", "VERB", "ADJ", "PUNCT"], "plain"),
        (["NN", "B-NP", "O"], "plain"),  # a tag outside the scheme makes the set plain
        (["O"], "plain"),
        (["X-NP", "O"], "plain"),
        (["B-", "O"], "plain"),
    ],
)
def test_tag_scheme_is_recognised(tags, scheme):
    assert tag_scheme(tags) == scheme


def test_chunk_scores_count_whole_chunks():
    # gold chunks: NP[0:2], VP[2:3], NP[3:5]; predicted: NP[0:2] (right), VP[2:3] (right), NP[3:4] (wrong boundary)
    gold = [["B-NP", "I-NP", "B-VP", "B-NP", "I-NP"]]
    predicted = [["B-NP", "I-NP", "B-VP", "B-NP", "O"]]
    scores = chunk_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["token_accuracy"] == pytest.approx(4 / 5)
    assert scores["per_type"]["VP"]["f1-score"] == pytest.approx(1.0)
    assert scores["per_type"]["NP"]["f1-score"] == pytest.approx(0.5)


def test_plain_tag_scores_match_hand_counts():
    gold = [["NOUN", "VERB", "NOUN"], ["ADJ", "NOUN"]]
    predicted = [["NOUN", "NOUN", "NOUN"], ["ADJ", "VERB"]]
    scores = plain_tag_scores(gold, predicted)
    assert scores["token_accuracy"] == pytest.approx(3 / 5)
    noun = scores["per_tag"]["NOUN"]  # 3 gold, 3 predicted, 2 right
    assert (noun["precision"], noun["recall"], noun["support"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert noun["f1"] == pytest.approx(2 / 3)
    assert scores["per_tag"]["VERB"]["f1"] == 0.0  # 1 gold, 1 predicted, none right
    assert scores["per_tag"]["ADJ"]["f1"] == pytest.approx(1.0)
    assert scores["macro_f1"] == pytest.approx((noun["f1"] + 0.0 + 1.0) / 3)


def test_plain_tags_raise_no_warnings_and_chunk_tags_match_seqeval_scoring():
    gold = [["NOUN", "VERB"], ["DET", "NOUN"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = tagging_scores(gold, gold, "plain")
    assert scores["scheme"] == "plain" and scores["token_accuracy"] == 1.0 and scores["macro_f1"] == 1.0
    assert (scores["num_sentences"], scores["num_tokens"]) == (2, 4)
    chunk = tagging_scores([["B-NP", "I-NP"]], [["B-NP", "B-NP"]], "BIO")
    assert chunk["scheme"] == "BIO" and chunk["f1"] == pytest.approx(0.0) and chunk["token_accuracy"] == 0.5


def test_plain_scoring_does_not_import_seqeval():
    code = (
        "import sys\n"
        "from structebm.evaluation.tagging import tagging_scores\n"
        "tagging_scores([['NOUN']], [['NOUN']], 'plain')\n"
        "assert 'seqeval' not in sys.modules, 'seqeval was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="sentence 1 has 2 gold tags but 1 predicted"):
        plain_tag_scores([["A"], ["A", "B"]], [["A"], ["A"]])
    with pytest.raises(ValueError, match="no sentences"):
        chunk_scores([], [])
    with pytest.raises(ValueError, match="scheme must be one of"):
        tagging_scores([["A"]], [["A"]], "IOB")
    with pytest.raises(ValueError, match="labels outside"):
        decode_tags(torch.tensor([[0, 3]]), None, ["A", "B"])


def test_decode_tags_cuts_at_the_mask():
    labels = torch.tensor([[0, 1, 1], [1, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    assert decode_tags(labels, mask, ["A", "B"]) == [["A", "B", "B"], ["B"]]
