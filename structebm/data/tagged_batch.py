"""Tagged sentences as tensors (:class:`EncodedSentences`, encoded with
:class:`ColumnVocabularies`) and their padded batches (:func:`collate_columns` → :class:`TaggedCondition`).

An item is a dict of per-sentence tensors: ``tags [L]``, ``words [L]``, ``chars [L, C]``, one
``[L]`` long tensor per extra column and, optionally, dense per-word ``features [L, D]``.
A batch is ``(y [B, T], TaggedCondition(inputs, mask [B, T]))`` where every input is
zero-padded to ``T`` positions (and ``C`` characters); ``mask[b, t] = t < L_b``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from structebm.conditions import SequenceCondition
from structebm.data.conll import Vocabulary

__all__ = ["ColumnVocabularies", "EncodedSentences", "TaggedCondition", "collate_columns"]

DENSE = "features"


class TaggedCondition(SequenceCondition):
    """A :class:`SequenceCondition` that keeps its type when indexed or moved and can be repeated.

    ``repeat_interleave(n)`` repeats every row ``n`` times in place (rows ``0,0,1,1,…``), as
    NCE does to pair each noise sample with its sentence.
    """

    def __getitem__(self, index: Any) -> "TaggedCondition":
        rows = super().__getitem__(index)
        return TaggedCondition(rows.inputs, rows.mask, rows.encoded)

    def to(self, *args: Any, **kwargs: Any) -> "TaggedCondition":
        moved = super().to(*args, **kwargs)
        return TaggedCondition(moved.inputs, moved.mask, moved.encoded)

    def repeat_interleave(self, repeats: int, dim: int = 0) -> "TaggedCondition":
        if dim != 0 or int(repeats) < 1:
            raise ValueError(f"TaggedCondition.repeat_interleave: only dim=0 and repeats >= 1, got {repeats}, dim={dim}")
        return self[torch.arange(self.batch_size).repeat_interleave(int(repeats))]


class ColumnVocabularies:
    """Vocabularies of words, characters, extra columns (``<pad>`` = 0, ``<unk>`` = 1) and tags."""

    def __init__(self, words: Vocabulary, chars: Vocabulary, extras: dict[str, Vocabulary], tags: Vocabulary) -> None:
        self.words, self.chars, self.extras, self.tags = words, chars, extras, tags

    def sizes(self) -> dict[str, int]:
        """Vocabulary size of every input column (``"words"``, ``"chars"``, extra names)."""
        return {"words": len(self.words), "chars": len(self.chars), **{k: len(v) for k, v in self.extras.items()}}


class EncodedSentences(Dataset):
    """Sentences encoded as tensors: ``words [L]``, ``chars [L, C]``, one ``[L]`` per extra column, ``tags [L]``."""

    def __init__(self, sentences: Sequence[dict[str, list[str]]], vocabularies: ColumnVocabularies, lowercase: bool) -> None:
        self.items: list[dict[str, Tensor]] = []
        for number, sentence in enumerate(sentences):
            where = f"EncodedSentences (sentence {number})"
            words = [w.lower() if lowercase else w for w in sentence["words"]]
            chars = torch.zeros(len(words), max(len(w) for w in sentence["words"]), dtype=torch.long)
            for position, word in enumerate(sentence["words"]):
                chars[position, : len(word)] = torch.tensor(vocabularies.chars.encode(word, where))
            item = {"words": torch.tensor(vocabularies.words.encode(words, where)), "chars": chars}
            for name, vocabulary in vocabularies.extras.items():
                item[name] = torch.tensor(vocabulary.encode(sentence[name], where))
            item["tags"] = torch.tensor(vocabularies.tags.encode(sentence["tags"], where))
            self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.items[index]


def collate_columns(items: Sequence[dict[str, Tensor]], pad_to_length: Optional[int] = None) -> tuple[Tensor, TaggedCondition]:
    """Pad items to a batch ``(y [B, T], TaggedCondition(inputs, mask [B, T]))``; padding is 0.

    Items must hold the same keys; ``features [L, D]`` (if present) become ``[B, T, D]``.

    ``T`` is the longest sentence, or ``pad_to_length`` when given (longer sentences are an error).
    """
    if not items:
        raise ValueError("collate_columns: empty batch")
    lengths = torch.tensor([len(item["tags"]) for item in items])
    length = int(lengths.max())
    if pad_to_length is not None:
        if length > pad_to_length:
            raise ValueError(f"collate_columns: a sentence has {length} tokens, more than pad_to_length={pad_to_length}")
        length = pad_to_length
    word_length = max(item["chars"].shape[1] for item in items)
    columns = {name: torch.zeros(len(items), length, dtype=torch.long) for name in items[0] if name not in ("chars", DENSE)}
    dense = {}
    if DENSE in items[0]:
        dense[DENSE] = torch.zeros(len(items), length, items[0][DENSE].shape[1], dtype=items[0][DENSE].dtype)
    chars = torch.zeros(len(items), length, word_length, dtype=torch.long)
    for row, item in enumerate(items):
        n, c = item["chars"].shape
        chars[row, :n, :c] = item["chars"]
        for name, padded in (columns | dense).items():
            padded[row, :n] = item[name]
    mask = torch.arange(length)[None, :] < lengths[:, None]
    tags = columns.pop("tags")
    return tags, TaggedCondition({**columns, "chars": chars, **dense}, mask)
