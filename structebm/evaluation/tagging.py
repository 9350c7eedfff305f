"""Scores of predicted tag sequences, by the kind of tag set.

A tag set is a **chunk scheme** when every tag is ``O`` or ``P-TYPE`` with a prefix ``P``
from ``B, I`` (BIO, in either IOB1 or IOB2 use) or from ``B, I, E, S`` (BIOES, with at least
one ``E-`` or ``S-`` tag); every other tag set (part-of-speech tags, UPOS, ...) is **plain**.

Chunk schemes are scored by chunks, with seqeval's default (``conlleval``-compatible)
matching: a predicted chunk counts when its type and both boundaries match a gold chunk,

.. math::
    P = \\frac{|\\hat C \\cap C|}{|\\hat C|}, \\quad R = \\frac{|\\hat C \\cap C|}{|C|}, \\quad F_1 = \\frac{2PR}{P + R}.

Plain tag sets are scored token by token: the token accuracy and, for every tag ``k``,

.. math::
    P_k = \\frac{|\\{t : \\hat y_t = y_t = k\\}|}{|\\{t : \\hat y_t = k\\}|}, \\quad
    R_k = \\frac{|\\{t : \\hat y_t = y_t = k\\}|}{|\\{t : y_t = k\\}|}, \\quad
    F_{1,k} = \\frac{2 P_k R_k}{P_k + R_k},

with the macro average of :math:`F_{1,k}` over the tags that occur in the gold or predicted
sequences (a ratio with a zero denominator counts as 0). seqeval is only imported for chunk
schemes, so plain tag sets never trigger its "not a NE tag" warnings.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal, Optional, Sequence

from torch import Tensor

__all__ = ["TagScheme", "SCHEMES", "tag_scheme", "decode_tags", "chunk_scores", "plain_tag_scores", "tagging_scores"]

TagScheme = Literal["BIO", "BIOES", "plain"]
SCHEMES = ("BIO", "BIOES", "plain")


def tag_scheme(tag_names: Sequence[str]) -> TagScheme:
    """``"BIO"``, ``"BIOES"`` or ``"plain"`` for a list of tag names (rules in the module docstring)."""
    if not tag_names:
        raise ValueError("tag_scheme: the tag list is empty")
    prefixes = set()
    for tag in tag_names:
        if tag == "O":
            continue
        prefix, dash, kind = tag.partition("-")
        if not dash or not kind or prefix not in ("B", "I", "E", "S"):
            return "plain"
        prefixes.add(prefix)
    if not prefixes:
        return "plain"
    return "BIOES" if prefixes & {"E", "S"} else "BIO"


def decode_tags(labels: Tensor, mask: Optional[Tensor], tag_names: Sequence[str]) -> list[list[str]]:
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


def _check_pairs(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], where: str) -> int:
    if not gold:
        raise ValueError(f"{where}: no sentences to score")
    if len(gold) != len(predicted):
        raise ValueError(f"{where}: {len(gold)} gold sentences but {len(predicted)} predicted")
    for number, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"{where}: sentence {number} has {len(g)} gold tags but {len(p)} predicted")
    return sum(len(g) for g in gold)


def _token_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], tokens: int) -> float:
    return sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)) / tokens


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def chunk_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Chunk ``f1``, ``precision``, ``recall``, ``token_accuracy`` and ``per_type`` scores (seqeval)."""
    tokens = _check_pairs(gold, predicted, "chunk_scores")
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    gold, predicted = [list(s) for s in gold], [list(s) for s in predicted]
    per_type = classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "token_accuracy": _token_accuracy(gold, predicted, tokens),
        "per_type": {name: {k: float(v) for k, v in row.items()} for name, row in per_type.items()},
    }


def plain_tag_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``token_accuracy``, ``macro_f1`` and ``per_tag`` precision / recall / F1 / support, token by token."""
    tokens = _check_pairs(gold, predicted, "plain_tag_scores")
    gold_counts: Counter = Counter()
    predicted_counts: Counter = Counter()
    correct: Counter = Counter()
    for gs, ps in zip(gold, predicted):
        for g, p in zip(gs, ps):
            gold_counts[g] += 1
            predicted_counts[p] += 1
            correct[g] += g == p
    per_tag = {}
    for tag in sorted(gold_counts.keys() | predicted_counts.keys()):
        precision = _ratio(correct[tag], predicted_counts[tag])
        recall = _ratio(correct[tag], gold_counts[tag])
        per_tag[tag] = {
            "precision": precision, "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall), "support": gold_counts[tag],
        }
    return {
        "token_accuracy": _token_accuracy(gold, predicted, tokens),
        "macro_f1": sum(row["f1"] for row in per_tag.values()) / len(per_tag),
        "per_tag": per_tag,
    }


def tagging_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: TagScheme
) -> dict[str, Any]:
    """:func:`chunk_scores` for a chunk scheme, :func:`plain_tag_scores` for ``"plain"``, plus
    ``scheme``, ``num_sentences`` and ``num_tokens``."""
    if scheme not in SCHEMES:
        raise ValueError(f"tagging_scores: scheme must be one of {SCHEMES}, got {scheme!r}")
    scores = plain_tag_scores(gold, predicted) if scheme == "plain" else chunk_scores(gold, predicted)
    return {"scheme": scheme, **scores, "num_sentences": len(gold), "num_tokens": sum(len(s) for s in gold)}
