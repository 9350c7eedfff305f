"""CoNLL-style column files: reader, vocabularies, a padded tagging dataset, CoNLL-2000.

A file holds one token per line with whitespace-separated columns (tab-separated for
CoNLL-U) and a blank line between sentences. ``-DOCSTART-`` lines are skipped. For CoNLL-U,
comment lines (``#``), multiword-token lines (ID ``3-4``) and empty nodes (ID ``5.1``) are
skipped too. Files may be gzip-compressed. Malformed lines (too few columns, a column count
different from the file's first token line) are all collected and raised together as a
:class:`ConllFormatError` listing ``path:line: problem`` — never dropped silently.

A batch from :func:`collate_tagged` pads to the longest sentence ``T`` and longest word ``C``:
``x`` = tags ``[B, T]`` and ``c`` = :class:`~structebm.conditions.SequenceCondition` with
inputs ``{"words": [B, T], "chars": [B, T, C]}`` and the left-aligned mask ``[B, T]``, so a
:class:`~structebm.energies.crf.LinearChainCRF` reads it through ``split_batch`` unchanged.

CoNLL-2000 chunking lives at ``$STRUCTEBM_DATA/conll2000/{train,test}.txt.gz``;
:func:`conll2000_path` checks the SHA-256 (of the decompressed text) and downloads the
original files where they are missing.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path
from typing import Iterable, NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset

from structebm.data._files import RemoteFile, fetch_file
from structebm.conditions import SequenceCondition

__all__ = [
    "Sentence",
    "ConllFormatError",
    "read_conll",
    "Vocabulary",
    "TaggingVocabularies",
    "build_vocabularies",
    "TaggedSentences",
    "collate_tagged",
    "CONLL2000_FILES",
    "conll2000_path",
    "load_conll2000",
]

PathLike = Union[str, Path]


class Sentence(NamedTuple):
    """One sentence: its words and their tags, same length."""

    words: list[str]
    tags: list[str]


class ConllFormatError(ValueError):
    """Raised with every malformed line of a CoNLL file, as ``path:line: problem``."""


def _open_text(path: Path):
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if compressed else open(path, encoding="utf-8")


def read_conll(
    path: PathLike, word_column: int = 0, tag_column: int = -1, conllu: Optional[bool] = None, max_errors: int = 20
) -> list[Sentence]:
    """Read the sentences of a CoNLL or CoNLL-U file (plain or gzip).

    Args:
        path: the file.
        word_column, tag_column: column indices (negative counts from the end) of the word
            and the tag; for CoNLL-U e.g. ``1`` (FORM) and ``3`` (UPOS).
        conllu: CoNLL-U rules (tabs, comments, ranges, empty nodes); default: when the name
            ends in ``.conllu`` or ``.conllu.gz``.
        max_errors: how many malformed lines to quote in the error (all are counted).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_conll: no such file {path}")
    if conllu is None:
        conllu = path.name.endswith((".conllu", ".conllu.gz"))
    needed = max(word_column if word_column >= 0 else -word_column - 1, tag_column if tag_column >= 0 else -tag_column - 1) + 1
    sentences: list[Sentence] = []
    errors: list[str] = []
    words: list[str] = []
    tags: list[str] = []
    expected_columns: Optional[int] = None
    with _open_text(path) as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if words:
                    sentences.append(Sentence(words, tags))
                    words, tags = [], []
                continue
            if conllu and line.startswith("#"):
                continue
            columns = line.split("\t") if conllu else line.split()
            if columns[0] == "-DOCSTART-":
                continue
            if conllu and ("-" in columns[0] or "." in columns[0]):
                continue
            if expected_columns is None:
                expected_columns = len(columns)
            if len(columns) < needed:
                errors.append(f"{path}:{line_number}: {len(columns)} column(s), need at least {needed}: {line[:60]!r}")
                continue
            if len(columns) != expected_columns:
                errors.append(
                    f"{path}:{line_number}: {len(columns)} column(s) but the first token line has {expected_columns}: {line[:60]!r}"
                )
                continue
            words.append(columns[word_column])
            tags.append(columns[tag_column])
    if words:
        sentences.append(Sentence(words, tags))
    if errors:
        shown = "\n".join(errors[:max_errors])
        more = f"\n... and {len(errors) - max_errors} more" if len(errors) > max_errors else ""
        raise ConllFormatError(f"read_conll: {len(errors)} malformed line(s) in {path}:\n{shown}{more}")
    return sentences


class Vocabulary:
    """A string ↔ index map; specials first, then tokens by decreasing count (ties: first seen).

    Args:
        counts: token counts.
        specials: reserved tokens at indices ``0, 1, …`` (e.g. ``("<pad>", "<unk>")``).
        unknown: the special that unseen tokens map to; ``None`` makes them an error.
        min_count: tokens seen fewer times are left out (they map to ``unknown``).
    """

    def __init__(self, counts: Counter, specials: Sequence[str] = (), unknown: Optional[str] = None, min_count: int = 1) -> None:
        if unknown is not None and unknown not in specials:
            raise ValueError(f"Vocabulary: unknown token {unknown!r} must be one of the specials {list(specials)}")
        kept = sorted((t for t, n in counts.items() if n >= min_count and t not in specials), key=lambda t: -counts[t])
        self.itos: list[str] = list(specials) + kept
        self.stoi: dict[str, int] = {token: index for index, token in enumerate(self.itos)}
        self.unknown_index = None if unknown is None else self.stoi[unknown]

    def __len__(self) -> int:
        return len(self.itos)

    def index(self, token: str, where: str = "Vocabulary") -> int:
        """Index of ``token``; unseen tokens give the unknown index, or a ``KeyError`` without one."""
        found = self.stoi.get(token, self.unknown_index)
        if found is None:
            raise KeyError(f"{where}: {token!r} is not in the vocabulary (which has no unknown token); known: {self.itos[:20]}")
        return found

    def encode(self, tokens: Iterable[str], where: str = "Vocabulary") -> list[int]:
        return [self.index(token, where) for token in tokens]

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in indices]


class TaggingVocabularies(NamedTuple):
    """Vocabularies of words and characters (``<pad>`` = 0, ``<unk>`` = 1) and of tags."""

    words: Vocabulary
    chars: Vocabulary
    tags: Vocabulary


def build_vocabularies(
    sentences: Sequence[Sentence],
    min_word_count: int = 1,
    lowercase: bool = False,
    extra_tags: Sequence[str] = (),
    tag_unknown: Optional[str] = None,
) -> TaggingVocabularies:
    """Vocabularies from training sentences.

    Tags get no padding token (padded positions are masked) and, by default, no unknown
    token: an unseen gold tag is an error rather than a silent relabelling. Either list the
    full tag set in ``extra_tags`` (CoNLL-2000's test set has ``I-LST``, absent from train),
    or pass ``tag_unknown="<unk>"`` to map unseen tags to an extra tag.
    """
    word_counts = Counter(w.lower() if lowercase else w for s in sentences for w in s.words)
    char_counts = Counter(ch for s in sentences for w in s.words for ch in w)
    tag_counts = Counter(t for s in sentences for t in s.tags)
    tag_counts.update(tag for tag in extra_tags if tag not in tag_counts)
    tag_specials = () if tag_unknown is None else (tag_unknown,)
    return TaggingVocabularies(
        Vocabulary(word_counts, ("<pad>", "<unk>"), "<unk>", min_word_count),
        Vocabulary(char_counts, ("<pad>", "<unk>"), "<unk>"),
        Vocabulary(tag_counts, tag_specials, tag_unknown),
    )


class TaggedSentences(Dataset):
    """Sentences encoded with :class:`TaggingVocabularies`; items are dicts of 1-D/2-D tensors.

    Shapes:
        - item ``"words"``: ``[L]``; ``"chars"``: ``[L, C]`` (``C`` = longest word); ``"tags"``: ``[L]``.
    """

    def __init__(self, sentences: Sequence[Sentence], vocabularies: TaggingVocabularies, lowercase: bool = False) -> None:
        self.items = []
        for number, sentence in enumerate(sentences):
            where = f"TaggedSentences (sentence {number})"
            words = [w.lower() if lowercase else w for w in sentence.words]
            longest = max(len(w) for w in sentence.words)
            chars = torch.zeros(len(words), longest, dtype=torch.long)
            for position, word in enumerate(sentence.words):
                chars[position, : len(word)] = torch.tensor(vocabularies.chars.encode(word, where))
            self.items.append(
                {
                    "words": torch.tensor(vocabularies.words.encode(words, where)),
                    "chars": chars,
                    "tags": torch.tensor(vocabularies.tags.encode(sentence.tags, where)),
                }
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.items[index]


def collate_tagged(items: Sequence[dict[str, Tensor]]) -> dict:
    """Pad a list of items to a batch.

    Shapes:
        - ``"x"`` (tags): ``[B, T]``; ``"c"``: SequenceCondition(inputs={"words": [B, T],
          "chars": [B, T, C]}, mask=[B, T]); also ``"lengths"``: ``[B]``. Padding is 0.
    """
    if not items:
        raise ValueError("collate_tagged: empty batch")
    lengths = torch.tensor([len(item["words"]) for item in items])
    batch_size, length = len(items), int(lengths.max())
    word_length = max(item["chars"].shape[1] for item in items)
    words = torch.zeros(batch_size, length, dtype=torch.long)
    chars = torch.zeros(batch_size, length, word_length, dtype=torch.long)
    tags = torch.zeros(batch_size, length, dtype=torch.long)
    for row, item in enumerate(items):
        n, c = item["chars"].shape
        words[row, :n], chars[row, :n, :c], tags[row, :n] = item["words"], item["chars"], item["tags"]
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return {"x": tags, "c": SequenceCondition({"words": words, "chars": chars}, mask), "lengths": lengths}


CONLL2000_FILES: dict[str, RemoteFile] = {
    "train": RemoteFile(
        "conll2000/train.txt.gz",
        "82033cd7a72b209923a98007793e8f9de3abc1c8b79d646c50648eb949b87cea",
        "https://www.clips.uantwerpen.be/conll2000/chunking/train.txt.gz",
    ),
    "test": RemoteFile(
        "conll2000/test.txt.gz",
        "73b7b1e565fa75a1e22fe52ecdf41b6624d6f59dacb591d44252bf4d692b1628",
        "https://www.clips.uantwerpen.be/conll2000/chunking/test.txt.gz",
    ),
}
"""The two CoNLL-2000 files: path under the data root, SHA-256 of the decompressed text, URL."""


def conll2000_path(split: str, root: Optional[PathLike] = None) -> Path:
    """Path of a checked CoNLL-2000 file (``split`` = ``"train"`` or ``"test"``).

    Resolved by :func:`~structebm.data._files.fetch_file`: the file under ``root`` (default:
    ``$STRUCTEBM_DATA``) after a SHA-256 check (:class:`~structebm.data._files.ChecksumError`
    on mismatch), else downloaded from the original CoNLL-2000 site and checked.
    """
    if split not in CONLL2000_FILES:
        raise ValueError(f"conll2000_path: split must be one of {sorted(CONLL2000_FILES)}, got {split!r}")
    return fetch_file(CONLL2000_FILES[split], None if root is None else Path(root))


def load_conll2000(split: str, root: Optional[PathLike] = None) -> list[Sentence]:
    """Sentences of CoNLL-2000 chunking (word = column 0, chunk tag = column 2, IOB2)."""
    return read_conll(conll2000_path(split, root), word_column=0, tag_column=2)
