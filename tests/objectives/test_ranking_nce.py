"""Ranking NCE on a tiny linear-chain CRF whose every labelling can be enumerated.

Two statistical properties of the estimator (Ma & Collins, 2018), with tolerances that follow
from the sample size:

- consistency for any noise: at the true parameters the expected gradient is zero, tested by
  Hotelling's T² over independent batch gradients (and the same test rejects a wrong model);
- parameter recovery: with the true model as the noise the asymptotic covariance is
  ``(1 + 1/K) I⁻¹ / N``, so ``2N · KL(p* ‖ p̂)`` is ``(1 + 1/K) χ²_d`` with ``d`` the number of
  identifiable parameters (the rank of the Fisher information ``I``).
"""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from structebm.energies.crf import LinearChainCRF
from structebm.objectives.conditional_noise import LaggedModelNoise, ModelNoise
from structebm.objectives.ranking_nce import RankingNCE
from structebm.structured.enumerate import all_states

TAGS, LENGTH = 3, 4
SIGNIFICANCE = 1e-4


def crf(transitions=None, start=None, end=None) -> LinearChainCRF:
    model = LinearChainCRF(TAGS).double()
    with torch.no_grad():
        for parameter, value in ((model.transitions, transitions), (model.start, start), (model.end, end)):
            parameter.copy_(torch.zeros_like(parameter) if value is None else value)
    return model


def true_model() -> LinearChainCRF:
    g = torch.Generator().manual_seed(0)
    return crf(torch.randn(TAGS, TAGS, generator=g, dtype=torch.float64), torch.randn(TAGS, generator=g, dtype=torch.float64), torch.randn(TAGS, generator=g, dtype=torch.float64))


def dataset(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(n, LENGTH, TAGS, generator=g, dtype=torch.float64)
    return true_model().sample(emissions, 1, g)[0], emissions


def parameters(model: LinearChainCRF) -> list[torch.Tensor]:
    return [model.transitions, model.start, model.end]


def fisher_rank(model: LinearChainCRF, emissions: torch.Tensor) -> int:
    """Rank of the Fisher information ``mean_c Cov_{p(y|c)}[φ(y)]``, by enumeration.

    ``φ(y) = -∇_θ E(y, c)`` counts the transitions, the first and the last tag of ``y``
    (the emissions are given, not learned), in the order of :func:`parameters`.
    """
    y = all_states(LENGTH, TAGS)
    transitions = torch.nn.functional.one_hot(y[:, :-1] * TAGS + y[:, 1:], TAGS * TAGS).sum(1)
    features = torch.cat([transitions, torch.nn.functional.one_hot(y[:, 0], TAGS), torch.nn.functional.one_hot(y[:, -1], TAGS)], 1).double()
    n, count = emissions.shape[0], y.shape[0]
    with torch.no_grad():
        log_p = (-model(y.repeat(n, 1), emissions.repeat_interleave(count, 0))).reshape(n, count)
        p = torch.softmax(log_p, dim=1)
    means = p @ features
    fisher = torch.einsum("ny,yi,yj->ij", p, features, features) / n - means.T @ means / n
    eigenvalues = torch.linalg.eigvalsh(fisher)
    return int((eigenvalues > 1e-8 * eigenvalues.max()).sum())


def expected_kl(truth: LinearChainCRF, model: LinearChainCRF, emissions: torch.Tensor) -> float:
    """Mean over inputs of KL(p*(·|c) ‖ p(·|c)), by enumerating all K^T labellings."""
    labellings = all_states(LENGTH, TAGS)
    n, count = emissions.shape[0], labellings.shape[0]
    c = emissions.repeat_interleave(count, dim=0)
    y = labellings.repeat(n, 1)
    with torch.no_grad():
        log_p = (-truth(y, c)).reshape(n, count) - truth.log_partition(emissions)[:, None]
        log_m = (-model(y, c)).reshape(n, count) - model.log_partition(emissions)[:, None]
    return float((log_p.exp() * (log_p - log_m)).sum(dim=1).mean())


def hotelling_statistic(gradients: torch.Tensor) -> tuple[float, float]:
    """T² of the mean of ``M`` i.i.d. gradient vectors being zero, and its ``1 - SIGNIFICANCE`` critical value.

    The gradients lie in the identifiable subspace (the loss is flat along gauge directions), so
    the test runs in the span of the sample covariance's non-negligible eigenvectors.
    """
    m = gradients.shape[0]
    eigenvalues, vectors = torch.linalg.eigh(torch.cov(gradients.T))
    basis = vectors[:, eigenvalues > 1e-9 * eigenvalues.max()]
    projected = gradients @ basis
    d = basis.shape[1]
    mean = projected.mean(0)
    t2 = float(m * mean @ torch.linalg.solve(torch.cov(projected.T), mean))
    critical = d * (m - 1) / (m - d) * stats.f.ppf(1 - SIGNIFICANCE, d, m - d)
    return t2, critical


def batch_gradients(model: LinearChainCRF, objective: RankingNCE, y: torch.Tensor, c: torch.Tensor, batches: int) -> torch.Tensor:
    objective.bind(model)
    rows = []
    for chunk_y, chunk_c in zip(y.chunk(batches), c.chunk(batches)):
        grads = torch.autograd.grad(objective(model, (chunk_y, chunk_c)).loss, parameters(model))
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows)


@pytest.mark.parametrize("noise_kind", ["independent", "lagged"])
def test_expected_gradient_is_zero_at_the_truth_and_not_elsewhere(noise_kind):
    # 100 independent batches of 40: Hotelling's T^2 of the batch-mean gradient against zero.
    y, c = dataset(4000, seed=1)
    for model, should_vanish in ((true_model(), True), (crf(0.5 * true_model().transitions.detach()), False)):
        noise = ModelNoise(crf()) if noise_kind == "independent" else LaggedModelNoise(refresh_every=1)
        objective = RankingNCE(noise, num_noise=3, generator_seed=2)
        t2, critical = hotelling_statistic(batch_gradients(model, objective, y, c, batches=100))
        if should_vanish:
            assert t2 < critical, f"T^2 = {t2:.1f} >= {critical:.1f}: the expected gradient is not zero at the truth"
        else:
            assert t2 > 3 * critical, f"T^2 = {t2:.1f}: the test cannot tell a wrong model from the truth"


def test_recovers_the_true_parameters_within_the_asymptotic_spread():
    n, k = 2000, 4
    y, c = dataset(n, seed=3)
    truth, model = true_model(), crf()
    objective = RankingNCE(ModelNoise(true_model()), num_noise=k, generator_seed=4)
    objective.bind(model)
    noise_state = objective.generator_state()

    def closure():
        objective.load_generator_state(noise_state)  # the same noise draws at every evaluation
        optimizer.zero_grad()
        loss = objective(model, (y, c)).loss
        loss.backward()
        return loss

    optimizer = torch.optim.LBFGS(parameters(model), max_iter=200, tolerance_grad=1e-10, line_search_fn="strong_wolfe")
    kl_start = expected_kl(truth, model, c)
    optimizer.step(closure)
    kl = expected_kl(truth, model, c)
    d = fisher_rank(truth, c)
    assert d == TAGS * TAGS + TAGS - 2  # 15 parameters less 5 gauge directions
    bound = (1 + 1 / k) * stats.chi2.ppf(1 - SIGNIFICANCE, d)
    assert 2 * n * kl < bound, f"2N KL = {2 * n * kl:.1f} above the {bound:.1f} of (1 + 1/K) chi^2_{d}"
    assert kl < 0.01 * kl_start


def test_loss_and_metrics_and_unconditional_noise():
    y, c = dataset(8, seed=5)
    objective = RankingNCE(ModelNoise(true_model()), num_noise=2)
    objective.bind(true_model())
    out = objective(true_model(), (y, c))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert set(out.metrics) == {"accuracy", "energy_data", "energy_noise", "noise_nll", "data_weight"}
    assert 0 < float(out.metrics["data_weight"]) < 1


def test_lagged_noise_follows_the_model_every_refresh_and_stays_frozen():
    model = crf()
    noise = LaggedModelNoise(refresh_every=2)
    objective = RankingNCE(noise, num_noise=1)
    objective.bind(model)
    y, c = dataset(4, seed=6)
    with torch.no_grad():
        model.transitions.fill_(1.0)
    objective(model, (y, c))  # step 0: no refresh yet
    assert float(noise.energy.transitions.abs().sum()) == 0.0
    objective(model, (y, c))
    objective(model, (y, c))  # step 2: refreshed
    assert torch.equal(noise.energy.transitions, model.transitions.detach())
    assert not any(p.requires_grad for p in noise.parameters())
    objective.train()
    assert not noise.energy.training


def test_bad_noise_and_bad_input_give_clear_errors():
    with pytest.raises(TypeError, match="sample\\(c, n, generator\\)"):
        RankingNCE(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="num_noise"):
        RankingNCE(ModelNoise(crf()), num_noise=0)
    with pytest.raises(TypeError, match="HasExactSample"):
        ModelNoise(torch.nn.Linear(2, 2))
    y, c = dataset(4, seed=7)
    forbidding = LinearChainCRF(TAGS, allowed_transitions=torch.eye(TAGS, dtype=torch.bool)).double()
    objective = RankingNCE(ModelNoise(forbidding), num_noise=1)
    y[0] = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="zero probability under the noise in row"):
        objective(crf(), (y, c))


def test_model_noise_loads_fitted_parameters_and_gives_normalised_log_probabilities(tmp_path):
    path = tmp_path / "noise.pt"
    torch.save(true_model().state_dict(), path)
    noise = ModelNoise(crf(), state_dict_path=path)
    torch.testing.assert_close(noise.energy.transitions, true_model().transitions.detach())
    _, c = dataset(3, seed=8)
    labellings = all_states(LENGTH, TAGS)
    log_q = noise.log_prob(labellings.repeat(3, 1), c.repeat_interleave(labellings.shape[0], 0)).reshape(3, -1)
    torch.testing.assert_close(log_q.exp().sum(1), torch.ones(3, dtype=torch.float64))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ModelNoise(crf(), state_dict_path=tmp_path / "missing.pt")


def test_dict_and_tuple_conditions_are_repeated_row_by_row():
    y, c = dataset(5, seed=9)
    mask = torch.ones(5, LENGTH, dtype=torch.bool)
    objective = RankingNCE(ModelNoise(true_model()), num_noise=2, generator_seed=1)
    plain = objective(true_model(), (y, c)).loss
    for condition in ({"inputs": c, "mask": mask}, (c, mask)):
        objective.load_generator_state(torch.Generator().manual_seed(1).get_state())
        torch.testing.assert_close(objective(true_model(), (y, condition)).loss, plain)


class _ForwardOnly(torch.nn.Module):
    """The CRF seen through ``forward`` alone: it cannot share a condition between labellings."""

    def __init__(self, model: LinearChainCRF) -> None:
        super().__init__()
        self.model = model

    def forward(self, y, c=None):
        return self.model(y, c)


class _PlainNoise(torch.nn.Module):
    """A noise with ``sample`` and ``log_prob`` only (no ``log_prob_given_condition``)."""

    def __init__(self, noise: ModelNoise) -> None:
        super().__init__()
        self.noise = noise

    def sample(self, c, n, generator=None):
        return self.noise.sample(c, n, generator)

    def log_prob(self, y, c=None):
        return self.noise.log_prob(y, c)


def test_scoring_labellings_per_input_gives_the_loss_and_gradient_of_repeated_inputs():
    y, c = dataset(6, seed=10)
    mask = torch.arange(LENGTH)[None, :] < torch.tensor([4, 2, 3, 1, 4, 3])[:, None]
    condition = (c, mask)
    model = true_model()
    shared = RankingNCE(ModelNoise(crf(start=torch.ones(TAGS, dtype=torch.float64))), num_noise=3, generator_seed=2)
    repeated = RankingNCE(_PlainNoise(ModelNoise(crf(start=torch.ones(TAGS, dtype=torch.float64)))), num_noise=3,
                          generator_seed=2)
    loss_shared = shared(model, (y, condition)).loss
    grad_shared = torch.autograd.grad(loss_shared, parameters(model))
    loss_repeated = repeated(_ForwardOnly(model), (y, condition)).loss
    grad_repeated = torch.autograd.grad(loss_repeated, parameters(model))
    torch.testing.assert_close(loss_shared, loss_repeated)
    for a, b in zip(grad_shared, grad_repeated):
        torch.testing.assert_close(a, b)
