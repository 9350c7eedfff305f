"""benchmarks/chunking.py: each flag lands on its config key of the recipe, the budget is a step
count per method, crfsuite reads only the columns the neural model reads, and tiny runs (a few
sentences, a few steps) of the CoNLL-2000 chunking default and of a CoNLL-U part-of-speech
configuration report their scores.

The CoNLL-U files are written here: 24 training and 8 test sentences over a 6-word lexicon in
which every word has one UPOS tag (column 3) and the XPOS column (4) repeats it in lower case,
so a tagger that reads the UPOS column as the tag and the words alone as input can reach token
accuracy 1 on the test file, and one that read the wrong column could not.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from benchmarks import _recipe_runs, chunking
from benchmarks.peers.crfsuite_peer import sentence_features
from structebm.cli import build_cli
from structebm.data.conll import CONLL2000_FILES
from structebm.data._files import fetch_file

LEXICON = {"the": "DET", "a": "DET", "dog": "NOUN", "cat": "NOUN", "runs": "VERB", "sleeps": "VERB"}
POS = chunking.RECIPES / "pos_conll2000.yaml"


@pytest.fixture(scope="module")
def conll2000_available():
    try:
        for remote in CONLL2000_FILES.values():
            fetch_file(remote, None)
    except Exception as error:  # noqa: BLE001 - any failure to resolve the files means no data here
        pytest.fail(f"CoNLL-2000 is needed by the chunking benchmark test (set STRUCTEBM_DATA): {error}")


def write_conllu(path: Path, sentences: int, seed: int) -> Path:
    """``sentences`` determiner-noun-verb sentences in CoNLL-U, UPOS in column 3, XPOS in column 4."""
    chooser = random.Random(seed)
    blocks = []
    for number in range(sentences):
        words = [chooser.choice(["the", "a"]), chooser.choice(["dog", "cat"]), chooser.choice(["runs", "sleeps"])]
        lines = [f"# sent_id = {number}"]
        lines += [f"{i + 1}\t{w}\t{w}\t{LEXICON[w]}\t{LEXICON[w].lower()}\t_\t0\t_\t_\t_" for i, w in enumerate(words)]
        blocks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(blocks) + "\n")
    return path


@pytest.fixture()
def conllu_files(tmp_path):
    return write_conllu(tmp_path / "train.conllu", 24, 0), write_conllu(tmp_path / "test.conllu", 8, 1)


def built(args, method, workdir):
    """The CLI of ``method``, built (not trained) from the benchmark's arguments."""
    arguments, skipped = chunking.fit_arguments(chunking.method_configs(args, method), chunking.method_keys(args, method, workdir))
    assert not skipped
    return build_cli(arguments, run=False)


def test_without_flags_each_method_runs_its_recipe_for_its_thirty_minute_steps(tmp_path):
    args = chunking.parse_args(["--out", str(tmp_path / "r.json")])
    assert args.methods == ["exact_nll", "pcd", "nce", "binary_nce", "minilm", "crfsuite"]
    arguments, _ = chunking.fit_arguments(chunking.method_configs(args, "minilm"), chunking.method_keys(args, "minilm", tmp_path))
    recipes = chunking.RECIPES
    assert arguments == [
        "--config", str(recipes / "base.yaml"), "--config", str(recipes / "exact_nll.yaml"),
        "--config", str(recipes / "minilm.yaml"), "--seed_everything=0",
        f"--trainer.default_root_dir={tmp_path / 'minilm'}", f"--trainer.logger.init_args.save_dir={tmp_path / 'minilm'}",
        "--trainer.enable_progress_bar=true", "--trainer.max_steps=5460", f"--{_recipe_runs.TIMER}",
    ]
    assert chunking.budget_keys(args, "exact_nll") == ["trainer.max_steps=7112"]
    half = chunking.parse_args(["--out", str(tmp_path / "r.json"), "--budget-minutes", "15"])
    assert chunking.budget_keys(half, "exact_nll") == ["trainer.max_steps=3556"]
    assert chunking.budget_keys(half, "pcd") == ["trainer.max_steps=2494"]
    epochs = chunking.parse_args(["--out", str(tmp_path / "r.json"), "--epochs", "3"])
    assert chunking.budget_keys(epochs, "binary_nce") == ["trainer.max_epochs=3", "trainer.max_steps=-1"]
    assert "trainer.max_steps" not in " ".join(chunking.method_keys(args, "crfsuite", tmp_path))


def test_each_flag_lands_on_its_config_key(tmp_path, conllu_files):
    train, test = conllu_files
    args = chunking.parse_args([
        "--out", str(tmp_path / "r.json"), "--train", str(train), "--test", str(test), "--word-column", "1",
        "--tag-column", "3", "--extra-columns", "xpos=4", "--max-train-sentences", "20", "--max-test-sentences", "5",
        "--max-steps", "7", "--epochs", "2", "--seed", "4", "--no-progress",
        "--override", "data.init_args.batch_size=8", "--override", "trainer.callbacks.0.init_args.scheme=plain",
    ])
    cli = built(args, "pcd", tmp_path)
    config = cli.config
    data = config["data.init_args"]
    assert (data.train_path, data.test_path) == (str(train), str(test))
    assert (data.word_column, data.tag_column, data.extra_columns) == (1, 3, {"xpos": 4})
    assert (data.max_train_sentences, data.max_test_sentences, data.batch_size) == (20, 5, 8)
    assert config["seed_everything"] == 4 and config["trainer.enable_progress_bar"] is False
    assert config["trainer.max_steps"] == 7 and config["trainer.max_epochs"] == 2
    assert config["model.objective.class_path"].endswith("ContrastiveDivergence")
    emissions = config["model.energy.init_args.emission_model.init_args"]
    assert emissions.num_tags == config["model.energy.init_args.num_tags"] == 3  # DET, NOUN, VERB: from the data
    assert emissions.extra_columns == {"xpos": 64}
    report, = [c for c in config["trainer.callbacks"] if c.class_path.endswith("TaggingReport")]
    assert report.init_args.scheme == "plain"
    assert [type(c).__name__ for c in cli.trainer.callbacks].count("Timer") == 1

    words_alone = chunking.parse_args(["--out", str(tmp_path / "r.json"), "--train", str(train), "--test", str(test),
                                       "--word-column", "1", "--tag-column", "3", "--extra-columns"])
    config = built(words_alone, "exact_nll", tmp_path).config
    assert config["data.init_args.extra_columns"] == {}
    assert config["model.energy.init_args.emission_model.init_args.extra_columns"] == {}


def test_the_pos_config_tags_conll2000_pos_from_words_alone(tmp_path, conll2000_available):
    args = chunking.parse_args(["--out", str(tmp_path / "r.json"), "--config", str(POS), "--max-train-sentences", "50"])
    cli = built(args, "exact_nll", tmp_path)
    assert cli.config["data.init_args.tag_column"] == 1 and cli.config["data.init_args.extra_columns"] == {}
    assert cli.model.energy.num_tags == 44
    assert cli.config["model.energy.init_args.emission_model.init_args.extra_columns"] == {}


def test_crfsuite_features_read_only_the_given_columns():
    sentence = {"words": ["Dogs", "run", "fast"], "pos": ["P1", "P2", "P3"], "tags": ["T1", "T2", "T3"]}
    for columns, absent in (((), ("P", "T")), (("pos",), ("T",))):
        features = sentence_features(sentence, columns)
        text = json.dumps(features)
        assert all(f'"{prefix}{i}' not in text for prefix in absent for i in (1, 2, 3))
        assert features[1]["w.lower"] == "run" and features[1]["+1:w.lower"] == "fast"
    assert sentence_features(sentence, ("pos",))[1]["-1:pos|pos"] == "P1|P2"
    with pytest.raises(ValueError, match=r"no column\(s\) \['xpos'\]"):
        sentence_features(sentence, ("xpos",))


def test_bad_flags_are_named(tmp_path, capsys):
    out = str(tmp_path / "r.json")
    for argv, named in (
        (["--out", str(tmp_path / "r.txt")], "--out must end in .json"),
        (["--out", out, "--train", "a.conllu"], "give --train and --test together"),
        (["--out", out, "--max-steps", "0"], "--max-steps must be a positive integer"),
        (["--out", out, "--budget-minutes", "0"], "--budget-minutes must be positive"),
        (["--out", out, "--extra-columns", "pos"], "--extra-columns takes NAME=COLUMN"),
        (["--out", out, "--override", "trainer.max_steps"], "--override takes KEY=VALUE"),
        (["--out", out, "--config", str(tmp_path / "missing.yaml")], "no such file"),
        (["--out", out, "--methods", "crf"], "invalid choice: 'crf'"),
    ):
        with pytest.raises(SystemExit):
            chunking.parse_args(argv)
        assert named in capsys.readouterr().err


def test_a_tiny_chunking_run_reports_chunk_f1(tmp_path, conll2000_available):
    out = tmp_path / "r.json"
    summary = chunking.main([
        "--out", str(out), "--methods", "exact_nll", "crfsuite", "--max-train-sentences", "40",
        "--max-test-sentences", "20", "--max-steps", "2", "--crfsuite-iterations", "5", "--no-progress",
    ])
    payload = json.loads(out.read_text())
    assert set(summary) == {"f1_exact_nll", "seconds_exact_nll", "f1_crfsuite", "seconds_crfsuite"}
    neural, peer = payload["rows"]
    assert neural["scheme"] == peer["scheme"] == "BIO" and peer["extra_columns"] == ["pos"]
    assert neural["steps"] == 2 and neural["epochs_done"] == 1.0 and neural["train_seconds"] > 0
    assert payload["f1_crfsuite"] == peer["f1"] and 0.0 <= peer["f1"] <= 1.0
    assert "exact_nll.yaml" in neural["command"]
    assert "| exact_nll |" in out.with_suffix(".md").read_text()


def test_a_tiny_conllu_pos_run_reports_token_accuracy(tmp_path, conllu_files):
    train, test = conllu_files
    out = tmp_path / "r.json"
    summary = chunking.main([
        "--out", str(out), "--methods", "exact_nll", "crfsuite", "--train", str(train), "--test", str(test),
        "--word-column", "1", "--tag-column", "3", "--extra-columns", "--max-steps", "3",
        "--crfsuite-iterations", "50", "--no-progress",
        "--override", "model.energy.init_args.emission_model.init_args.hidden=8",
    ])
    neural, peer = json.loads(out.read_text())["rows"]
    assert set(summary) == {"token_accuracy_exact_nll", "seconds_exact_nll", "token_accuracy_crfsuite", "seconds_crfsuite"}
    assert neural["scheme"] == peer["scheme"] == "plain" and "f1" not in neural
    assert neural["steps"] == 3 and peer["extra_columns"] == []
    assert summary["token_accuracy_crfsuite"] == 1.0  # the tag is a function of the word
    assert 0.0 <= summary["token_accuracy_exact_nll"] <= 1.0
