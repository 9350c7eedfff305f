"""The two OOD scores of a classifier's logits and the AUROC table over several sets."""

from __future__ import annotations

import pytest
import torch

from structebm.evaluation.ood import auroc, auroc_table, logit_scores


def test_logit_scores_at_a_temperature():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    scores = logit_scores(logits, temperature=2.0)
    torch.testing.assert_close(scores["energy"], torch.tensor([torch.log(torch.e + torch.tensor(1.0)).item(), torch.log(torch.tensor(2.0)).item()]))
    torch.testing.assert_close(scores["max_prob"], torch.tensor([torch.e / (torch.e + 1), 0.5]))
    with pytest.raises(ValueError, match="temperature must be positive"):
        logit_scores(logits, temperature=0.0)
    with pytest.raises(ValueError, match=r"float Tensor \[N, K\]"):
        logit_scores(torch.zeros(3))


def test_auroc_table_scores_every_set_by_every_score():
    inside = {"energy": torch.tensor([3.0, 4.0]), "max_prob": torch.tensor([0.9, 0.8])}
    outside = {
        "far": {"energy": torch.tensor([0.0, 1.0]), "max_prob": torch.tensor([0.95, 0.5])},
        "same": {"energy": torch.tensor([3.0, 4.0]), "max_prob": torch.tensor([0.9, 0.8])},
    }
    table = auroc_table(inside, outside)
    assert table["far"]["energy"] == 1.0
    assert table["far"]["max_prob"] == auroc(inside["max_prob"], outside["far"]["max_prob"]) == 0.5
    assert table["same"] == {"energy": 0.5, "max_prob": 0.5}
    with pytest.raises(ValueError, match="set 'bad' lacks the scores \\['max_prob'\\]"):
        auroc_table(inside, {"bad": {"energy": torch.tensor([1.0])}})
