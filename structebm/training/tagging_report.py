"""Chunk F1 of a tagging energy on a held-out split, as ``conlleval`` scores it.

The labelling of every sentence is the energy's exact mode (Viterbi for a linear-chain CRF),

.. math::
    \\hat y = \\arg\\min_y E(y, c),

decoded to tag strings and scored with seqeval's default (``conlleval``-compatible) chunk
matching: a chunk counts when its type and both boundaries match,

.. math::
    P = \\frac{|\\hat C \\cap C|}{|\\hat C|}, \\quad R = \\frac{|\\hat C \\cap C|}{|C|}, \\quad F_1 = \\frac{2PR}{P + R}.

:func:`chunk_f1` works on any energy with ``argmax(c)`` and any loader of ``(y, c)`` batches;
:class:`TaggingReport` runs it at the end of ``fit`` on the data module's test split, logs
the scores and writes them as JSON.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import lightning.pytorch as pl
import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from torch import nn

from structebm.energies.base import HasArgmax, require
from structebm.objectives.base import split_batch
from structebm.training.fit_report import FitReport

__all__ = ["decode_tags", "chunk_f1", "TaggingReport"]


def decode_tags(labels: torch.Tensor, mask: Optional[torch.Tensor], tag_names: Sequence[str]) -> list[list[str]]:
    """Tag strings of every sentence, cut at its length.

    Shapes:
        - labels: ``[B, T]`` long; mask: ``[B, T]`` bool (left-aligned) or ``None``.
    """
    lengths = [labels.shape[1]] * labels.shape[0] if mask is None else mask.sum(dim=1).tolist()
    rows = labels.tolist()
    try:
        return [[tag_names[k] for k in row[:n]] for row, n in zip(rows, lengths)]
    except IndexError:
        raise ValueError(f"decode_tags: labels outside [0, {len(tag_names)}) (the tag list has {len(tag_names)} names)") from None


@torch.no_grad()
def chunk_f1(energy: nn.Module, batches: Iterable[Any], tag_names: Sequence[str]) -> dict[str, Any]:
    """Decode every batch with ``energy.argmax(c)`` and score the chunks against the gold ``y``.

    Returns ``f1``, ``precision``, ``recall`` (fractions), ``token_accuracy``, per-type
    scores under ``per_type``, ``num_sentences``, ``num_tokens`` and ``decode_seconds``.
    The energy is put in eval mode for decoding and restored afterwards.
    """
    require(energy, HasArgmax, "chunk_f1")
    was_training = energy.training
    energy.eval()
    gold: list[list[str]] = []
    predicted: list[list[str]] = []
    begin = time.perf_counter()
    try:
        for batch in batches:
            y, c = split_batch(batch)
            mask = getattr(c, "mask", None)
            gold += decode_tags(y, mask, tag_names)
            predicted += decode_tags(energy.argmax(c), mask, tag_names)
    finally:
        energy.train(was_training)
    if not gold:
        raise ValueError("chunk_f1: no batches to score")
    tokens = sum(len(s) for s in gold)
    correct = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
    per_type = classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "token_accuracy": correct / tokens,
        "per_type": {name: {k: float(v) for k, v in row.items()} for name, row in per_type.items()},
        "num_sentences": len(gold),
        "num_tokens": tokens,
        "decode_seconds": time.perf_counter() - begin,
    }


class TaggingReport(FitReport):
    """At the end of ``fit``, score Viterbi decoding on the test split and write JSON.

    The data module must provide ``test_dataloader()`` and ``tag_names`` (as
    :class:`~structebm.data.chunking.ChunkingDataModule` does); the trained module must hold
    the energy as ``.energy`` (as :class:`~structebm.training.module.EBMModule` does).

    Args:
        output_path: JSON file to write; default ``<log dir>/tagging_report.json``.
        log_prefix: prefix of the logged metrics (``test/f1``, ``test/precision`` ...).

    Attributes:
        report: the last result of :func:`chunk_f1` plus ``train_seconds`` (fit start to end).
    """

    def __init__(self, output_path: Optional[str] = None, log_prefix: str = "test") -> None:
        super().__init__()
        self.output_path = output_path
        self.log_prefix = log_prefix

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "tag_names"):
            raise ValueError("TaggingReport: the trainer's data module must provide tag_names and test_dataloader()")
        energy = self.energy_of(pl_module, "decode with")
        device = pl_module.device
        batches = (tuple(part.to(device) for part in batch) for batch in datamodule.test_dataloader())
        report = {**chunk_f1(energy, batches, datamodule.tag_names), "train_seconds": train_seconds}
        path = Path(self.output_path) if self.output_path else Path(trainer.log_dir or ".") / "tagging_report.json"
        logged = {f"{self.log_prefix}/{k}": report[k] for k in ("f1", "precision", "recall", "token_accuracy")}
        self.publish(trainer, report, path, logged)
