"""Which encoder layers make the best per-word features for chunking? A linear probe.

Encodes the first ``--train`` CoNLL-2000 training sentences and ``--test`` test sentences
with :class:`~structebm.data.word_features.WordFeatureEncoder` (every hidden state), fits a
softmax regression ``p(y_t | f_t) = \\operatorname{softmax}(W f_t + b)`` per word on each
layer mix (L-BFGS, weight decay) and reports token accuracy on the test words. Only the
relative order of the mixes matters; the CRF uses the best one.

Run: ``python benchmarks/probe_word_features.py``
"""

from __future__ import annotations

import argparse
import json

import torch

from structebm.data.chunking import read_columns
from structebm.data.conll import conll2000_path
from structebm.data.word_features import WordFeatureEncoder

MIXES = {"embeddings": (0,), "layer 1": (1,), "layer 2": (2,), "layer 3": (3,), "layer 4": (4,), "last": (6,),
         "layers 1-3": (1, 2, 3), "layers 1-4": (1, 2, 3, 4), "last four": (3, 4, 5, 6), "all": tuple(range(7))}


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                   num_tags: int, weight_decay: float = 1e-4, steps: int = 100) -> float:
    """Test token accuracy of softmax regression on standardised features ``[N, D]``."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    linear = torch.nn.Linear(train_x.shape[1], num_tags)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(train_x), train_y) + weight_decay * linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float((linear(test_x).argmax(-1) == test_y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = read_columns(conll2000_path("train"), 0, -1, {})[: args.train]
    test = read_columns(conll2000_path("test"), 0, -1, {})[: args.test]
    tags = sorted({t for s in train + test for t in s["tags"]})
    encoder = WordFeatureEncoder(layers=tuple(range(7)))

    def encode(sentences: list) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat(encoder.word_layers([s["words"] for s in sentences]))  # [N, 7, D]
        y = torch.tensor([tags.index(t) for s in sentences for t in s["tags"]])
        return x, y

    (train_x, train_y), (test_x, test_y) = encode(train), encode(test)
    results = {name: probe_accuracy(train_x[:, list(layers)].mean(1), train_y, test_x[:, list(layers)].mean(1), test_y, len(tags))
               for name, layers in MIXES.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
