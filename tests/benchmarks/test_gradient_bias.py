"""Gradient-bias study: CD-k against the exact gradient on enumerable Potts models, and the study's report.

Each gradient estimate is the library's contrastive-divergence objective on one fixed batch;
the exact gradient is that of :class:`~structebm.objectives.exact_nll.ExactNLL`. With ``R``
independent estimates, coordinate ``j`` of their mean has standard error ``s_j / sqrt(R)``, and
``t_j = (ḡ_j - g_j) / (s_j / sqrt(R))`` follows Student's t with ``R - 1`` degrees of freedom
when the estimator is unbiased. The tests use the Bonferroni bound over the ``P`` coordinates
at overall level 1e-4: all ``|t_j|`` below it (no detectable bias) or some far above it (bias).
"""

from __future__ import annotations

import json

import pytest
import torch
from scipy import stats

from benchmarks.gradient_bias import main
from structebm.energies.potts import PottsEnergy
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.objectives.exact_nll import ExactNLL
from structebm.objectives.gradient_bias import gradient_agreement, gradient_estimates, objective_gradient
from structebm.samplers.chains import DataInit

SIGNIFICANCE = 1e-4
REPEATS = 40


def cd(k: int):
    return lambda seed: ContrastiveDivergence("structebm.samplers.gibbs.gibbs", DataInit(), k, seed, {"scan": "systematic"})


def t_statistics(estimates: torch.Tensor, exact: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``|t_j|`` per coordinate and the Bonferroni critical value over the coordinates tested.

    A coordinate with zero spread is left out where it equals the exact value (couplings outside
    the pattern) and counts as infinitely far where it does not.
    """
    error = (estimates.mean(0) - exact).abs()
    spread = estimates.std(0, unbiased=True) / REPEATS**0.5
    tested = (spread > 0) | (error > 1e-6)
    t = (error[tested] / spread[tested]).nan_to_num(nan=0.0, posinf=float("inf"))
    critical = float(stats.t.ppf(1 - SIGNIFICANCE / (2 * t.numel()), REPEATS - 1))
    return t, critical


def test_cd_k_converges_to_the_exact_gradient_as_k_grows():
    g = torch.Generator().manual_seed(0)
    truth = PottsEnergy(4, 3, init_std=0.8, generator=g)
    data = truth.sample(None, 256, g)
    model = PottsEnergy(4, 3, init_std=0.3, generator=g)  # far from the data: a large exact gradient
    exact = objective_gradient(ExactNLL(), model, data).detach()
    errors = {}
    for k in (1, 100):
        estimates = gradient_estimates(cd(k), model, data, REPEATS)
        errors[k] = gradient_agreement(estimates, exact)["relative_bias"]
        t, critical = t_statistics(estimates, exact)
        if k == 1:  # one sweep from the data is detectably biased here ...
            assert float(t.max()) > critical, f"CD-1 bias not detected: max |t| = {float(t.max()):.1f} < {critical:.1f}"
        else:  # ... a hundred are not
            assert float(t.max()) < critical, f"CD-100 still biased: max |t| = {float(t.max()):.1f} >= {critical:.1f}"
    assert errors[100] < errors[1]


def test_cd_1_is_biased_on_a_slowly_mixing_model():
    # A ferromagnetic Ising chain (J = 2, no field) with every data point all-zero: the model puts
    # equal mass on all-zero and all-one, so the exact gradient pushes the fields apart, while
    # one Gibbs sweep from all-zero flips a spin with probability about e^-4 and CD-1 sees
    # almost nothing to correct.
    model = PottsEnergy.ising(6, coupling=2.0)
    data = torch.zeros(128, 6, dtype=torch.long)
    exact = objective_gradient(ExactNLL(), model, data).detach()
    estimates = gradient_estimates(cd(1), model, data, REPEATS)
    t, critical = t_statistics(estimates, exact)
    assert float(t.max()) > 10 * critical, f"CD-1 bias not detected: max |t| = {float(t.max()):.1f}"
    agreement = gradient_agreement(estimates, exact)
    assert agreement["relative_bias"] > 0.5 and agreement["relative_bias"] > 10 * agreement["bias_resolution"]


def test_study_writes_rows_table_and_figure(tmp_path):
    out = tmp_path / "bias.json"
    main([
        "--out", str(out), "--repeats", "2", "--ranking-sizes", "2", "--families", "CD-k", "ranking NCE",
        "--crf-batch", "8", "--crf-length", "3", "--crf-tags", "3", "--potts-batch", "16", "--potts-length", "3",
    ])
    rows = json.loads(out.read_text())["rows"]
    assert {row["model"] for row in rows} == {"crf", "potts"}
    assert {row["estimator"] for row in rows if row["model"] == "crf"} >= {"cd_1", "cd_50", "ranking_nce_model_K2", "ranking_nce_uniform_K2"}
    for row in rows:
        assert -1.0 <= row["cosine_of_mean"] <= 1.0 and row["relative_std"] >= 0
    assert out.with_suffix(".md").exists() and out.with_suffix(".png").stat().st_size > 0


def test_gradient_agreement_rejects_bad_shapes():
    with pytest.raises(ValueError, match="need estimates"):
        gradient_agreement(torch.zeros(1, 3), torch.ones(3))
    with pytest.raises(ValueError, match="reference gradient is zero"):
        gradient_agreement(torch.ones(4, 3), torch.zeros(3))
