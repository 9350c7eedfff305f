"""The classic feature-based CRF for tagging, trained with CRFsuite (sklearn-crfsuite).

Every token gets the hand-crafted features of the CoNLL-2000 baselines, built only from the
input columns it is given: its word, lowercase form, prefixes and suffixes and orthographic
shape, the value and two-character prefix of every extra column (CoNLL-2000 chunking: the
part-of-speech tag, ``pos``), and the lowercase words and extra values of its neighbours in a
``±2`` window, with bigrams of the extra columns and of the words around it. With no extra
columns (part-of-speech tagging from words alone) the features are those of the words only.
Training is L-BFGS with elastic-net regularisation:

.. math::
    \\min_w\\; -\\sum_n \\log p_w(y_n \\mid x_n) + c_1 \\lVert w \\rVert_1 + c_2 \\lVert w \\rVert_2^2 .

Shapes:
    - sentences: lists of ``{"words": [...], "tags": [...], <extra name>: [...]}`` dicts (as
      :func:`structebm.data.chunking.read_columns` returns them), one string per token in each.
"""

from __future__ import annotations

import re
import time
from typing import Any, Mapping, Sequence

import sklearn_crfsuite

__all__ = ["word_shape", "token_features", "sentence_features", "train_crfsuite"]


def word_shape(word: str) -> str:
    """Orthographic shape with runs collapsed: ``"Mr."`` → ``"Xx."``, ``"1,250"`` → ``"d,d"``."""
    shape = re.sub("[A-Z]", "X", word)
    shape = re.sub("[a-z]", "x", shape)
    shape = re.sub("[0-9]", "d", shape)
    return re.sub(r"(.)\1+", r"\1", shape)


def token_features(words: Sequence[str], extras: Mapping[str, Sequence[str]], i: int) -> dict[str, Any]:
    """Features of token ``i``: identity, affixes, shape, the extra columns and a ``±2`` window.

    Args:
        words: the sentence's words.
        extras: name → the sentence's values of each extra input column (same length as ``words``);
            empty for words alone.
        i: the token's position.
    """
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
    }
    for name, values in extras.items():
        features[name] = values[i]
        features[f"{name}.prefix2"] = values[i][:2]
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(words):
            features[f"{offset:+d}:w.lower"] = words[j].lower()
            for name, values in extras.items():
                features[f"{offset:+d}:{name}"] = values[j]
        else:
            features[f"{offset:+d}:boundary"] = True
    if i > 0:
        for name, values in extras.items():
            features[f"-1:{name}|{name}"] = f"{values[i - 1]}|{values[i]}"
        features["-1:w|w"] = f"{words[i - 1].lower()}|{word.lower()}"
    if i + 1 < len(words):
        for name, values in extras.items():
            features[f"{name}|+1:{name}"] = f"{values[i]}|{values[i + 1]}"
        features["w|+1:w"] = f"{word.lower()}|{words[i + 1].lower()}"
    return features


def sentence_features(sentence: Mapping[str, Sequence[str]], extra_columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Features of every token of a sentence from its ``"words"`` and the columns ``extra_columns``
    (no other column is read: the tag column never leaks into the features)."""
    missing = [name for name in ("words", *extra_columns) if name not in sentence]
    if missing:
        raise ValueError(f"crfsuite peer: the sentence has no column(s) {missing}; it has {sorted(sentence)}")
    extras = {name: sentence[name] for name in extra_columns}
    return [token_features(sentence["words"], extras, i) for i in range(len(sentence["words"]))]


def train_crfsuite(
    train: Sequence[Mapping[str, Sequence[str]]],
    test: Sequence[Mapping[str, Sequence[str]]],
    extra_columns: Sequence[str] = (),
    c1: float = 0.1,
    c2: float = 0.01,
    max_iterations: int = 200,
) -> dict[str, Any]:
    """Train on ``train`` from the words and ``extra_columns``, decode ``test``; return predictions,
    gold tags and timings (``train_seconds``: feature extraction and L-BFGS on ``train``)."""
    begin = time.perf_counter()
    x_train = [sentence_features(s, extra_columns) for s in train]
    model = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=max_iterations, all_possible_transitions=True)
    model.fit(x_train, [list(s["tags"]) for s in train])
    train_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    predicted = model.predict([sentence_features(s, extra_columns) for s in test])
    return {
        "predicted": [list(p) for p in predicted],
        "gold": [list(s["tags"]) for s in test],
        "train_seconds": train_seconds,
        "decode_seconds": time.perf_counter() - begin,
    }
