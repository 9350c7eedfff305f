"""End-of-training report for tagging energies: decode the test split and score it.

The labelling of every sentence is the energy's exact mode (Viterbi for a linear-chain CRF),

.. math::
    \\hat y = \\arg\\min_y E(y, c),

decoded to tag strings and scored by :mod:`structebm.evaluation.tagging` according to the
tag set: chunk F1 for BIO / BIOES tags, token accuracy and per-tag F1 for plain tag sets
(part-of-speech, UPOS). :func:`decode_and_score` works on any energy with ``argmax(c)`` and
any loader of ``(y, c)`` batches; :class:`TaggingReport` runs it at the end of ``fit`` on the
data module's test split, logs the scores and writes them as JSON.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import lightning.pytorch as pl
import torch
from torch import nn

from structebm.energies.base import HasArgmax, require
from structebm.evaluation.tagging import SCHEMES, TagScheme, decode_tags, tag_scheme, tagging_scores
from structebm.objectives.base import split_batch
from structebm.training.fit_report import FitReport

__all__ = ["decode_and_score", "TaggingReport"]

LOGGED = {"plain": ("token_accuracy", "macro_f1"), "chunk": ("f1", "precision", "recall", "token_accuracy")}


@torch.no_grad()
def decode_and_score(
    energy: nn.Module, batches: Iterable[Any], tag_names: Sequence[str], scheme: Optional[TagScheme] = None
) -> dict[str, Any]:
    """Decode every batch with ``energy.argmax(c)`` and score it against the gold ``y``.

    Args:
        scheme: ``"BIO"``, ``"BIOES"`` or ``"plain"``; ``None`` recognises it from ``tag_names``
            (:func:`~structebm.evaluation.tagging.tag_scheme`).

    Returns :func:`~structebm.evaluation.tagging.tagging_scores` plus ``decode_seconds``. The
    energy is put in eval mode for decoding and restored afterwards.
    """
    require(energy, HasArgmax, "decode_and_score")
    if scheme is None:
        scheme = tag_scheme(tag_names)
    elif scheme not in SCHEMES:
        raise ValueError(f"decode_and_score: scheme must be one of {SCHEMES} or None, got {scheme!r}")
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
        raise ValueError("decode_and_score: no batches to score")
    return {**tagging_scores(gold, predicted, scheme), "decode_seconds": time.perf_counter() - begin}


class TaggingReport(FitReport):
    """At the end of ``fit``, score Viterbi decoding on the test split and write JSON.

    The data module must provide ``test_dataloader()`` and ``tag_names`` (as
    :class:`~structebm.data.chunking.ChunkingDataModule` does); the trained module must hold
    the energy as ``.energy`` (as :class:`~structebm.training.module.EBMModule` does).

    Args:
        output_path: JSON file to write; default ``<log dir>/tagging_report.json``.
        log_prefix: prefix of the logged metrics (``test/f1``, ``test/token_accuracy`` ...).
        scheme: the tag scheme; ``None`` recognises it from the data's tag names.

    Attributes:
        report: the last result of :func:`decode_and_score` plus ``train_seconds``. Logged:
            ``f1``, ``precision``, ``recall`` and ``token_accuracy`` for chunk schemes,
            ``token_accuracy`` and ``macro_f1`` for plain tag sets.
    """

    def __init__(self, output_path: Optional[str] = None, log_prefix: str = "test", scheme: Optional[TagScheme] = None) -> None:
        super().__init__()
        if scheme is not None and scheme not in SCHEMES:
            raise ValueError(f"TaggingReport: scheme must be one of {SCHEMES} or None, got {scheme!r}")
        self.output_path = output_path
        self.log_prefix = log_prefix
        self.scheme = scheme

    def report_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "tag_names"):
            raise ValueError("TaggingReport: the trainer's data module must provide tag_names and test_dataloader()")
        energy = self.energy_of(pl_module, "decode with")
        device = pl_module.device
        batches = (tuple(part.to(device) for part in batch) for batch in datamodule.test_dataloader())
        report = {**decode_and_score(energy, batches, datamodule.tag_names, self.scheme), "train_seconds": train_seconds}
        path = Path(self.output_path) if self.output_path else Path(trainer.log_dir or ".") / "tagging_report.json"
        keys = LOGGED["plain" if report["scheme"] == "plain" else "chunk"]
        self.publish(trainer, report, path, {f"{self.log_prefix}/{k}": report[k] for k in keys})
