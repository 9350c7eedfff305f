"""Known answers for the expected calibration error and the OOD AUROC."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

from structebm.evaluation.calibration import calibration_bins, expected_calibration_error
from structebm.evaluation.ood import auroc, midranks


def two_class(confidences: list[float], predicted: list[int]) -> torch.Tensor:
    """Probabilities [N, 2] whose argmax is ``predicted`` with the given confidence."""
    p = torch.tensor(confidences, dtype=torch.float64)
    first = torch.where(torch.tensor(predicted) == 0, p, 1 - p)
    return torch.stack([first, 1 - first], dim=1)


def test_ece_hand_computed():
    # Confidences 0.9, 0.9 (bin (13/15, 14/15]) with 1 of 2 correct: gap 0.4, weight 1/2.
    # Confidences 0.65, 0.65 (bin (9/15, 10/15]) both correct: gap 0.35, weight 1/2.
    probabilities = two_class([0.9, 0.9, 0.65, 0.65], [0, 0, 1, 1])
    labels = torch.tensor([0, 1, 1, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.35, abs=1e-12)
    bins = calibration_bins(probabilities, labels)
    assert bins.count.tolist() == [0] * 9 + [2, 0, 0, 0, 2, 0]
    assert bins.accuracy[13].item() == 0.5 and bins.confidence[9].item() == pytest.approx(0.65)
    assert math.isnan(bins.accuracy[0].item())


def test_ece_bin_edges_are_right_closed():
    # 2/3 lies on the edge between bins 9 and 10 (of 15); (m/M, (m+1)/M] puts it in bin 9.
    probabilities = torch.tensor([[2 / 3, 1 / 3], [1.0, 0.0]], dtype=torch.float64)
    bins = calibration_bins(probabilities, torch.tensor([0, 0]))
    assert bins.count[9].item() == 1 and bins.count[14].item() == 1


def test_ece_matches_a_direct_loop():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(3 * torch.randn(500, 10, generator=generator), dim=1)
    labels = torch.randint(0, 10, (500,), generator=generator)
    confidence, predicted = probabilities.max(dim=1)
    expected = 0.0
    for m in range(15):
        inside = [(c > m / 15) and (c <= (m + 1) / 15) for c in confidence.tolist()]
        inside = torch.tensor(inside)
        if inside.any():
            accuracy = (predicted[inside] == labels[inside]).double().mean()
            expected += inside.double().mean() * (accuracy - confidence[inside].double().mean()).abs()
    assert expected_calibration_error(probabilities, labels) == pytest.approx(float(expected), abs=1e-6)


def test_ece_small_for_labels_drawn_from_the_predictions_and_large_when_overconfident():
    n, k = 20_000, 10
    generator = torch.Generator().manual_seed(1)
    probabilities = torch.softmax(2 * torch.randn(n, k, generator=generator), dim=1)
    labels = torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
    # Calibrated by construction; each bin's accuracy deviates from its confidence by about
    # sqrt(p(1-p)/n_m) <= 0.5/sqrt(n_m), so E[ECE] <= sum_m (n_m/N) 0.5/sqrt(n_m)
    # <= 0.5 sqrt(M/N) = 0.5 sqrt(15/20000) = 0.0137 (Cauchy-Schwarz). 0.03 is over twice that.
    assert expected_calibration_error(probabilities, labels) < 0.03
    # Confidence 0.9 everywhere but labels right only with probability 0.6: ECE = 0.3 up to
    # the binomial error sqrt(0.24/N) = 0.0035; 5 of those is 0.017.
    confident = torch.full((n, 2), 0.1, dtype=torch.float64)
    confident[:, 0] = 0.9
    labels = (torch.rand(n, generator=generator) >= 0.6).long()
    assert expected_calibration_error(confident, labels) == pytest.approx(0.3, abs=0.017)


@pytest.mark.parametrize(
    "probabilities, labels, message",
    [
        (torch.tensor([[0.5, 0.6]]), torch.tensor([0]), "do not sum to 1"),
        (torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]), "finite"),
        (torch.ones(2, 2) / 2, torch.tensor([0]), r"labels must be an integer Tensor \(2,\)"),
        (torch.ones(2, 2) / 2, torch.tensor([0, 2]), r"lie in \[0, 2\)"),
        (torch.ones(2) / 2, torch.tensor([0, 1]), r"\[N, K\]"),
    ],
)
def test_ece_rejects_bad_input(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(probabilities, labels)
    with pytest.raises(ValueError, match="num_bins"):
        expected_calibration_error(torch.ones(2, 2) / 2, torch.tensor([0, 1]), num_bins=0)


def test_auroc_hand_computed():
    assert auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    assert auroc(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 0.0])) == 0.75  # 3 of 4 pairs ordered
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([1.0])) == 0.75  # a tie counts one half
    assert auroc(torch.ones(5), torch.ones(7)) == 0.5


def test_midranks_share_ties():
    assert midranks(torch.tensor([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]


def test_auroc_matches_sklearn_with_ties():
    generator = torch.Generator().manual_seed(2)
    inside = torch.randint(0, 6, (300,), generator=generator).float()
    outside = torch.randint(0, 5, (200,), generator=generator).float()
    truth = [1] * 300 + [0] * 200
    expected = roc_auc_score(truth, torch.cat([inside, outside]).numpy())
    assert auroc(inside, outside) == pytest.approx(expected, abs=1e-12)


def test_auroc_of_shifted_gaussians():
    # Scores N(d, 1) against N(0, 1): AUROC = Phi(d / sqrt 2). Hanley & McNeil (1982) give the
    # standard error; with n = 2000 per side and AUC ~ 0.76 it is about 0.0075; allow 4 of them.
    n, shift = 2000, 1.0
    generator = torch.Generator().manual_seed(3)
    inside = shift + torch.randn(n, generator=generator)
    outside = torch.randn(n, generator=generator)
    truth = 0.5 * (1 + math.erf(shift / 2))  # Phi(d / sqrt 2) = (1 + erf(d / 2)) / 2
    q1, q2 = truth / (2 - truth), 2 * truth**2 / (1 + truth)
    standard_error = math.sqrt((truth * (1 - truth) + (n - 1) * (q1 - truth**2) + (n - 1) * (q2 - truth**2)) / n**2)
    assert auroc(inside, outside) == pytest.approx(truth, abs=4 * standard_error)


def test_auroc_rejects_bad_input():
    with pytest.raises(ValueError, match="out_of_distribution has NaN"):
        auroc(torch.ones(3), torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="in_distribution must be a non-empty 1-D"):
        auroc(torch.ones(3, 1), torch.ones(3))
    with pytest.raises(ValueError, match="non-empty"):
        auroc(torch.ones(0), torch.ones(3))
