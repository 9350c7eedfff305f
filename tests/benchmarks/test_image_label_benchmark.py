"""Pieces of the MNIST image–label benchmark that run without the data: options and the
generative term's weight."""

from __future__ import annotations

import torch

from benchmarks.image_label import K, jem_objective, make_energy, ood_scores, parse_args
from structebm.data.mnist import MNISTDataModule
from structebm.samplers.chains import ReplayBuffer


def test_options_reach_the_objective(tmp_path) -> None:
    args = parse_args(["--out", str(tmp_path / "r.json"), "--generate-weight", "0.25", "--langevin-steps", "3",
                       "--gaussian-restarts", "0"])
    objective = jem_objective(args, MNISTDataModule(batch_size=8))
    assert objective.terms["classify"].weight == 1.0
    assert objective.terms["generate"].weight == 0.25
    generate = objective.terms["generate"].objective
    assert generate.num_steps == 3
    assert type(generate.source) is ReplayBuffer and generate.source.num_classes == K


def test_ood_scores_follow_the_temperature() -> None:
    torch.manual_seed(0)
    energy = make_energy(0, [4, 4, 4])
    images = torch.rand(5, 1, 28, 28) * 2 - 1
    logits = energy.logits(images).detach()
    scores = ood_scores(energy, images, temperature=0.5)
    torch.testing.assert_close(scores["energy"], torch.logsumexp(2 * logits, dim=1))
    torch.testing.assert_close(scores["max_prob"], torch.softmax(2 * logits, dim=1).max(dim=1).values)
