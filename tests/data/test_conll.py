"""CoNLL reader, vocabularies, padded batches, and the real CoNLL-2000 files."""

import gzip
import shutil

import pytest
import torch

from structebm.data._files import ChecksumError, data_root
from structebm.data.conll import (
    CONLL2000_FILES,
    ConllFormatError,
    TaggedSentences,
    build_vocabularies,
    collate_tagged,
    conll2000_path,
    load_conll2000,
    read_conll,
)
from structebm.energies.crf import LinearChainCRF
from structebm.objectives.base import split_batch

CONLL2000_STYLE = """-DOCSTART- -X- O

Confidence NN B-NP
in IN B-PP
the DT B-NP
# # I-NP


He PRP B-NP
reckons VBZ B-VP
"""

CONLLU_STYLE = """# sent_id = 1
# text = Don't go.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\t_\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\t_\t_\t0\troot\t_\t_
3.1\tgone\tgo\tVERB\t_\t_\t_\t_\t_\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tYes\tyes\tINTJ\t_\t_\t0\troot\t_\t_
"""


@pytest.mark.parametrize("compress", [False, True])
def test_reads_conll2000_style_plain_and_gzip(tmp_path, compress):
    path = tmp_path / ("train.txt.gz" if compress else "train.txt")
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(CONLL2000_STYLE)
    else:
        path.write_text(CONLL2000_STYLE)
    sentences = read_conll(path, word_column=0, tag_column=2)
    assert [s.words for s in sentences] == [["Confidence", "in", "the", "#"], ["He", "reckons"]]
    assert sentences[0].tags == ["B-NP", "B-PP", "B-NP", "I-NP"]
    assert read_conll(path, word_column=0, tag_column=1)[1].tags == ["PRP", "VBZ"]


def test_reads_conllu_skipping_comments_ranges_and_empty_nodes(tmp_path):
    path = tmp_path / "ud.conllu"
    path.write_text(CONLLU_STYLE)
    sentences = read_conll(path, word_column=1, tag_column=3)
    assert sentences[0].words == ["Do", "n't", "go", "."]
    assert sentences[0].tags == ["AUX", "PART", "VERB", "PUNCT"]
    assert sentences[1].words == ["Yes"] and len(sentences) == 2


def test_malformed_lines_are_all_listed_with_path_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a DT B-NP\nb NN\n\nc NN I-NP extra\nd NN I-NP\ne\n")
    with pytest.raises(ConllFormatError) as error:
        read_conll(path, word_column=0, tag_column=2)
    message = str(error.value)
    assert "3 malformed line(s)" in message
    for line in (2, 4, 6):
        assert f"{path}:{line}:" in message
    assert f"{path}:1:" not in message and f"{path}:5:" not in message


def test_vocabularies_dataset_and_collate_feed_the_crf(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL2000_STYLE)
    sentences = read_conll(path, word_column=0, tag_column=2)
    vocabularies = build_vocabularies(sentences, extra_tags=["B-VP", "I-VP"])
    assert vocabularies.words.itos[:2] == ["<pad>", "<unk>"] and vocabularies.words.index("unseen") == 1
    assert set(vocabularies.tags.itos) == {"B-NP", "B-PP", "I-NP", "B-VP", "I-VP"}
    with pytest.raises(KeyError, match="not in the vocabulary"):
        vocabularies.tags.index("B-ADJP")
    dataset = TaggedSentences(sentences, vocabularies)
    batch = collate_tagged([dataset[0], dataset[1]])
    x, c = split_batch(batch)
    assert x.shape == (2, 4) and c.mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert c.inputs["chars"].shape == (2, 4, len("Confidence"))
    assert (c.inputs["words"][1, 2:] == 0).all() and (x[1, 2:] == 0).all()
    assert vocabularies.tags.decode(x[0].tolist()) == ["B-NP", "B-PP", "B-NP", "I-NP"]

    class WordEmissions(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding(len(vocabularies.words), len(vocabularies.tags))

        def forward(self, inputs):
            return self.table(inputs["words"])

    crf = LinearChainCRF.from_tag_names(vocabularies.tags.itos, "BIO", WordEmissions())
    nll = crf(x, c) + crf.log_partition(c)
    assert nll.shape == (2,) and torch.isfinite(nll).all() and (nll > 0).all()


def test_real_conll2000_counts_and_checksum(monkeypatch):
    monkeypatch.setenv("STRUCTEBM_DATA", str(data_root()))
    monkeypatch.setenv("STRUCTEBM_OFFLINE", "1")
    expected = {"train": (8936, 211727), "test": (2012, 47377)}
    for split, (num_sentences, num_tokens) in expected.items():
        sentences = load_conll2000(split)
        assert len(sentences) == num_sentences
        assert sum(len(s.words) for s in sentences) == num_tokens
    first = load_conll2000("train")[0]
    assert first.words[:2] == ["Confidence", "in"] and first.tags[:2] == ["B-NP", "B-PP"]


def test_checksum_mismatch_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STRUCTEBM_OFFLINE", "1")
    target = tmp_path / CONLL2000_FILES["test"].relative_path
    target.parent.mkdir(parents=True)
    with gzip.open(data_root() / CONLL2000_FILES["test"].relative_path, "rt") as source, gzip.open(target, "wt") as copy:
        copy.write(source.read().replace("B-NP", "B-VP", 1))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        conll2000_path("test", root=tmp_path)
    shutil.rmtree(target.parent)
    with pytest.raises(FileNotFoundError, match="put test.txt.gz into"):
        conll2000_path("test", root=tmp_path)
