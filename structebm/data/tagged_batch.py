"""Padded batches of tagged sentences: :class:`TaggedCondition` and :func:`collate_columns`.

An item is a dict of per-sentence tensors: ``tags [L]``, ``words [L]``, ``chars [L, C]``, one
``[L]`` long tensor per extra column and, optionally, dense per-word ``features [L, D]``.
A batch is ``(y [B, T], TaggedCondition(inputs, mask [B, T]))`` where every input is
zero-padded to ``T`` positions (and ``C`` characters); ``mask[b, t] = t < L_b``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from structebm.energies.crf import SequenceCondition

__all__ = ["TaggedCondition", "collate_columns"]

DENSE = "features"


class TaggedCondition(SequenceCondition):
    """A :class:`SequenceCondition` that keeps its type when indexed or moved and can be repeated.

    ``repeat_interleave(n)`` repeats every row ``n`` times in place (rows ``0,0,1,1,…``), as
    NCE does to pair each noise sample with its sentence.
    """

    def __getitem__(self, index: Any) -> "TaggedCondition":
        rows = super().__getitem__(index)
        return TaggedCondition(rows.inputs, rows.mask)

    def to(self, *args: Any, **kwargs: Any) -> "TaggedCondition":
        moved = super().to(*args, **kwargs)
        return TaggedCondition(moved.inputs, moved.mask)

    def repeat_interleave(self, repeats: int, dim: int = 0) -> "TaggedCondition":
        if dim != 0 or int(repeats) < 1:
            raise ValueError(f"TaggedCondition.repeat_interleave: only dim=0 and repeats >= 1, got {repeats}, dim={dim}")
        return self[torch.arange(self.batch_size).repeat_interleave(int(repeats))]


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
