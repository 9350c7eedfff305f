"""The classic feature-based CRF for chunking, trained with CRFsuite (sklearn-crfsuite).

Every token gets the hand-crafted features of the CoNLL-2000 baselines: its word, lowercase
form, prefixes and suffixes, orthographic shape and part-of-speech tag, and the words and
tags of its neighbours in a ``±2`` window (with POS bigrams around it). Training is L-BFGS
with elastic-net regularisation:

.. math::
    \\min_w\\; -\\sum_n \\log p_w(y_n \\mid x_n) + c_1 \\lVert w \\rVert_1 + c_2 \\lVert w \\rVert_2^2 .

Shapes:
    - sentences: lists of ``{"words": [...], "pos": [...], "tags": [...]}`` dicts (as
      :func:`structebm.data.chunking.read_columns` returns them).
"""

from __future__ import annotations

import re
import time
from typing import Any, Sequence

import sklearn_crfsuite

__all__ = ["word_shape", "token_features", "sentence_features", "train_crfsuite"]


def word_shape(word: str) -> str:
    """Orthographic shape with runs collapsed: ``"Mr."`` → ``"Xx."``, ``"1,250"`` → ``"d,d"``."""
    shape = re.sub("[A-Z]", "X", word)
    shape = re.sub("[a-z]", "x", shape)
    shape = re.sub("[0-9]", "d", shape)
    return re.sub(r"(.)\1+", r"\1", shape)


def token_features(words: Sequence[str], pos: Sequence[str], i: int) -> dict[str, Any]:
    """Features of token ``i``: identity, affixes, shape, POS and a ``±2`` window of words and POS."""
    word = words[i]
    features: dict[str, Any] = {
        "bias": 1.0,
        "w": word,
        "w.lower": word.lower(),
        "w.prefix3": word[:3],
        "w.suffix2": word[-2:],
        "w.suffix3": word[-3:],
        "w.shape": word_shape(word),
        "w.istitle": word.istitle(),
        "w.isupper": word.isupper(),
        "w.hasdigit": any(ch.isdigit() for ch in word),
        "pos": pos[i],
        "pos.prefix2": pos[i][:2],
    }
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(words):
            features[f"{offset:+d}:w.lower"] = words[j].lower()
            features[f"{offset:+d}:pos"] = pos[j]
        else:
            features[f"{offset:+d}:boundary"] = True
    if i > 0:
        features["-1:pos|pos"] = f"{pos[i - 1]}|{pos[i]}"
        features["-1:w|w"] = f"{words[i - 1].lower()}|{word.lower()}"
    if i + 1 < len(words):
        features["pos|+1:pos"] = f"{pos[i]}|{pos[i + 1]}"
        features["w|+1:w"] = f"{word.lower()}|{words[i + 1].lower()}"
    return features


def sentence_features(sentence: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Features of every token of a sentence (needs ``"words"`` and ``"pos"``)."""
    if "pos" not in sentence:
        raise ValueError("crfsuite peer: sentences need a 'pos' column (read with extra_columns={'pos': 1})")
    return [token_features(sentence["words"], sentence["pos"], i) for i in range(len(sentence["words"]))]


def train_crfsuite(
    train: Sequence[dict[str, list[str]]],
    test: Sequence[dict[str, list[str]]],
    c1: float = 0.1,
    c2: float = 0.01,
    max_iterations: int = 200,
) -> dict[str, Any]:
    """Train on ``train``, decode ``test``; return predictions, gold tags and timings."""
    begin = time.perf_counter()
    x_train = [sentence_features(s) for s in train]
    model = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=max_iterations, all_possible_transitions=True)
    model.fit(x_train, [s["tags"] for s in train])
    train_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    predicted = model.predict([sentence_features(s) for s in test])
    return {
        "predicted": [list(p) for p in predicted],
        "gold": [s["tags"] for s in test],
        "train_seconds": train_seconds,
        "decode_seconds": time.perf_counter() - begin,
    }
