"""Emission models for sequence tagging: words, characters and extra columns through a BiLSTM.

An emission model maps the input of a sentence to per-position tag scores
``e = f(c)`` ``[B, T, K]`` for :class:`~structebm.energies.crf.LinearChainCRF`. This one is
the BiLSTM-CNN tagger of Ma & Hovy (2016) and Lample et al. (2016): each token ``t`` is
represented by its word embedding, a character CNN over its spelling, and embeddings of
extra input columns (e.g. part-of-speech tags) and, optionally, dense per-word features
``f_t`` (e.g. from a frozen pretrained encoder, :mod:`structebm.data.word_features`), and a
bidirectional LSTM reads the sentence:

.. math::
    r_t = [\\,W_{\\text{word}}[w_t];\\; \\max_j \\operatorname{ReLU}(\\operatorname{conv}(W_{\\text{char}}[\\text{chars}_t])_j);
    \\; W_{\\text{pos}}[p_t];\\, \\dots;\\; f_t],
    \\qquad h = \\operatorname{BiLSTM}(r), \\qquad e_t = U h_t + b.

Index 0 is padding in every column (the convention of :mod:`structebm.data.conll`); the
sentence lengths follow from the non-padding words, and the LSTM reads packed sequences,
so padding never influences a real position. During training, word dropout replaces a
word by the unknown index with probability ``word_dropout`` (so the unknown embedding is
trained), and dropout acts on the token representations and the LSTM outputs.

Every call computes the emissions afresh (with a fresh dropout mask in training). Objectives
and samplers that need the emissions of one batch several times get them once through
:meth:`LinearChainCRF.encode_condition <structebm.energies.crf.LinearChainCRF.encode_condition>`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["CharacterCNN", "TaggingEmissions"]

PADDING_INDEX = 0


class CharacterCNN(nn.Module):
    """A word's spelling as one vector: character embeddings, a 1-D convolution, max-pooling.

    .. math::
        v = \\max_j \\operatorname{ReLU}\\bigl(\\operatorname{conv}(E[c_1 \\dots c_C])_j\\bigr)
        \\quad (\\text{over non-padding characters } j).

    Args:
        num_chars: size of the character vocabulary (index 0 = padding).
        char_dim: character embedding size.
        num_filters: output size (number of convolution filters).
        kernel_size: convolution width (odd, so the output keeps the word's length).

    Shapes:
        - chars: ``[B, T, C]`` long (0 = padding); returns ``[B, T, num_filters]``
          (zero for words without characters, i.e. padding positions).
    """

    def __init__(self, num_chars: int, char_dim: int = 30, num_filters: int = 50, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"CharacterCNN: kernel_size must be a positive odd int, got {kernel_size}")
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=PADDING_INDEX)
        self.conv = nn.Conv1d(char_dim, num_filters, kernel_size, padding=kernel_size // 2)

    def forward(self, chars: Tensor) -> Tensor:
        batch_size, length, word_length = chars.shape
        flat = chars.reshape(batch_size * length, word_length)
        features = self.conv(self.embedding(flat).transpose(1, 2)).relu()  # [B*T, F, C]
        present = (flat != PADDING_INDEX)[:, None, :]
        pooled = features.masked_fill(~present, 0.0).amax(dim=2)  # ReLU output >= 0, so 0 is neutral
        return pooled.reshape(batch_size, length, -1)


def _check_index_tensor(value: Any, name: str, capacity: int, shape: Optional[tuple[int, ...]], dims: int) -> Tensor:
    where = f"TaggingEmissions: input {name!r}"
    if not isinstance(value, Tensor) or value.dim() != dims or value.is_floating_point() or value.dtype == torch.bool:
        got = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"{where} must be an integer tensor with {dims} dimensions, got {got}")
    if shape is not None and tuple(value.shape[:2]) != shape:
        raise ValueError(f"{where} has shape {tuple(value.shape)}, expected [B, T] = {shape} first (as 'words')")
    if value.numel() and (int(value.min()) < 0 or int(value.max()) >= capacity):
        raise ValueError(
            f"{where} has indices in [{int(value.min())}, {int(value.max())}] but its embedding table has "
            f"{capacity} rows; enlarge the table (the vocabulary built from the data is larger)"
        )
    return value


class TaggingEmissions(nn.Module):
    """Word + character-CNN + extra-column embeddings, a BiLSTM and a linear map to tag scores.

    Args:
        num_tags: number of tags ``K``.
        num_words: rows of the word embedding table (at least the word vocabulary size).
        num_chars: rows of the character table; 0 disables the character CNN.
        extra_columns: name → rows of an embedding table for each extra input column
            (e.g. ``{"pos": 64}``); the input dict must then hold a ``[B, T]`` tensor per name.
        word_dim, char_dim, char_filters, char_kernel, extra_dim: embedding / CNN sizes.
        hidden: LSTM hidden size per direction.
        num_layers: stacked BiLSTM layers.
        dropout: dropout on the token representations and the LSTM outputs.
        word_dropout: probability of replacing a word by ``unknown_index`` during training.
        unknown_index: the word vocabulary's unknown index.
        feature_dim: size ``D`` of dense per-word features ``inputs["features"]`` concatenated
            to the token representation (under the same dropout); 0 = none.

    Shapes:
        - inputs: dict with ``"words"`` ``[B, T]``, ``"chars"`` ``[B, T, C]`` (if ``num_chars``),
          one ``[B, T]`` tensor per extra column and ``"features"`` ``[B, T, D]`` float (if
          ``feature_dim``); 0 = padding, sentences left-aligned.
        - returns: emissions ``[B, T, K]`` (zero at padding positions).
    """

    def __init__(
        self,
        num_tags: int,
        num_words: int,
        num_chars: int = 0,
        extra_columns: Optional[Mapping[str, int]] = None,
        word_dim: int = 100,
        char_dim: int = 30,
        char_filters: int = 50,
        char_kernel: int = 3,
        extra_dim: int = 32,
        hidden: int = 200,
        num_layers: int = 1,
        dropout: float = 0.5,
        word_dropout: float = 0.05,
        unknown_index: int = 1,
        feature_dim: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("num_tags", num_tags), ("num_words", num_words), ("hidden", hidden), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TaggingEmissions: {name} must be a positive int, got {value!r}")
        if not 0.0 <= dropout < 1.0 or not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"TaggingEmissions: dropout and word_dropout must lie in [0, 1), got {dropout}, {word_dropout}")
        if not 0 < unknown_index < num_words:
            raise ValueError(f"TaggingEmissions: unknown_index must lie in [1, num_words), got {unknown_index}")
        if not isinstance(feature_dim, int) or feature_dim < 0:
            raise ValueError(f"TaggingEmissions: feature_dim must be a non-negative int, got {feature_dim!r}")
        self.num_tags, self.num_words, self.num_chars, self.feature_dim = num_tags, num_words, int(num_chars), feature_dim
        self.extra_columns = dict(extra_columns or {})
        self.word_dropout, self.unknown_index = float(word_dropout), int(unknown_index)
        self.word_embedding = nn.Embedding(num_words, word_dim, padding_idx=PADDING_INDEX)
        self.char_cnn = CharacterCNN(num_chars, char_dim, char_filters, char_kernel) if self.num_chars > 0 else None
        self.extra_embeddings = nn.ModuleDict(
            {name: nn.Embedding(rows, extra_dim, padding_idx=PADDING_INDEX) for name, rows in self.extra_columns.items()}
        )
        token_dim = word_dim + (char_filters if self.char_cnn is not None else 0) + extra_dim * len(self.extra_columns) + feature_dim
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(token_dim, hidden, num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.output = nn.Linear(2 * hidden, num_tags)

    def capacities(self) -> dict[str, int]:
        """Rows of every embedding table, by input name (``"words"``, ``"chars"``, extra columns)."""
        sizes = {"words": self.num_words, **self.extra_columns}
        if self.char_cnn is not None:
            sizes["chars"] = self.num_chars
        return sizes

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        if not isinstance(inputs, Mapping) or "words" not in inputs:
            got = sorted(inputs) if isinstance(inputs, Mapping) else type(inputs).__name__
            raise ValueError(f"TaggingEmissions: inputs must be a dict with 'words' [B, T] (and the other columns), got {got}")
        needed = (["chars"] if self.char_cnn is not None else []) + list(self.extra_columns) + (["features"] if self.feature_dim else [])
        missing = [name for name in needed if name not in inputs]
        if missing:
            raise ValueError(f"TaggingEmissions: inputs lack the column(s) {missing}; got {sorted(inputs)}")
        words = _check_index_tensor(inputs["words"], "words", self.num_words, None, 2)
        shape = tuple(words.shape)
        lengths = (words != PADDING_INDEX).sum(dim=1)
        if (lengths == 0).any():
            rows = (lengths == 0).nonzero().flatten()[:8].tolist()
            raise ValueError(f"TaggingEmissions: sentence(s) {rows} have no words (all 'words' are padding 0)")
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(shape, device=words.device) < self.word_dropout) & (words != PADDING_INDEX)
            words = words.masked_fill(drop, self.unknown_index)
        parts = [self.word_embedding(words)]
        if self.char_cnn is not None:
            parts.append(self.char_cnn(_check_index_tensor(inputs["chars"], "chars", self.num_chars, shape, 3)))
        for name, table in self.extra_embeddings.items():
            parts.append(table(_check_index_tensor(inputs[name], name, self.extra_columns[name], shape, 2)))
        if self.feature_dim:
            parts.append(self._check_features(inputs["features"], shape))
        tokens = self.dropout(torch.cat(parts, dim=-1))
        packed = pack_padded_sequence(tokens, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=shape[1])
        return self.output(self.dropout(hidden)) * (words != PADDING_INDEX)[:, :, None]

    def _check_features(self, features: Any, shape: tuple[int, ...]) -> Tensor:
        expected = (*shape, self.feature_dim)
        if not isinstance(features, Tensor) or not features.is_floating_point() or tuple(features.shape) != expected:
            got = f"{features.dtype} {tuple(features.shape)}" if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"TaggingEmissions: input 'features' must be a float tensor [B, T, feature_dim] = {expected}, got {got}")
        return features.to(self.output.weight.dtype)
