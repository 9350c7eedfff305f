"""Gradient-bias study: sampling-based objectives against the exact log-likelihood gradient.

Two models with an exact log-likelihood, each evaluated at parameters halfway between zero
and the truth (a model in mid-training) on one fixed batch of data drawn from the truth:

- ``crf``: a linear-chain CRF over ``--crf-tags`` tags and ``--crf-length`` positions with a
  linear emission model of ``--crf-features`` input features (exact gradient from
  forward–backward marginals, through :class:`~structebm.objectives.exact_nll.ExactNLL`);
- ``potts``: a fully coupled Potts model on ``--potts-length`` sites with ``--potts-states``
  states (exact gradient by enumeration).

Estimators, each the library's own objective: CD-k with systematic Gibbs sweeps from the data
(k = 1, 2, 5, 10, 50); persistent CD (Potts only: a replay buffer over tag sequences has no
meaning across sentences) at buffer ages 1, 10, 100 steps and restart probabilities 0, 0.05,
0.5; binary NCE with uniform and data-fitted noise and a learned log Z (fitted to the current
energy before each estimate) or, for the Potts model, the exact log Z; ranking NCE with a
noise equal to the model, an independent-sites noise, and (CRF) a uniform noise, at several
numbers of noise draws. For each: cosine similarity to the exact gradient (of the mean, and
mean of single estimates), relative bias, relative standard deviation and noise-to-signal
ratio over ``--repeats`` estimates (:func:`~structebm.objectives.gradient_bias.gradient_agreement`).
NCE gradients have their own scale, so for them only the cosines and the noise-to-signal
ratio compare.

Writes ``FILE.json``, ``FILE.md`` (table) and ``FILE.png`` (the figure).

Run: ``python benchmarks/gradient_bias.py --out results/gradient_bias.json``
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_report  # noqa: E402

from structebm.energies.crf import LinearChainCRF  # noqa: E402
from structebm.energies.potts import PottsEnergy  # noqa: E402
from structebm.objectives.base import Objective  # noqa: E402
from structebm.objectives.conditional_noise import LaggedModelNoise, ModelNoise  # noqa: E402
from structebm.objectives.contrastive import ContrastiveDivergence  # noqa: E402
from structebm.objectives.exact_nll import ExactNLL  # noqa: E402
from structebm.objectives.gradient_bias import gradient_agreement, gradient_estimates, objective_gradient  # noqa: E402
from structebm.objectives.nce import NCE  # noqa: E402
from structebm.objectives.noise import CategoricalNoise  # noqa: E402
from structebm.objectives.ranking_nce import RankingNCE  # noqa: E402
from structebm.samplers.chains import DataInit, ReplayBuffer  # noqa: E402
from structebm.spaces import CategoricalSpace  # noqa: E402

CD_STEPS = (1, 2, 5, 10, 50)
PCD_AGES = (1, 10, 100)
PCD_RESTARTS = (0.0, 0.05, 0.5)
GIBBS = "structebm.samplers.gibbs.gibbs"


@dataclass
class Problem:
    """A model at fixed parameters, a data batch, and the exact NLL gradient there."""

    name: str
    energy: nn.Module
    batch: Any
    length: int
    states: int
    exact: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.exact = objective_gradient(ExactNLL(), self.energy, self.batch).detach()

    @property
    def labels(self) -> torch.Tensor:
        return self.batch[0] if isinstance(self.batch, tuple) else self.batch


@dataclass
class Estimator:
    name: str
    family: str
    make: Callable[[int], Objective]
    warmup_steps: int = 0
    prepare: Optional[Callable[[Objective], None]] = None
    settings: dict[str, Any] = field(default_factory=dict)


def halve(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every parameter halved (a model half-way from zero to the truth)."""
    half = copy.deepcopy(module)
    with torch.no_grad():
        for parameter in half.parameters():
            parameter.mul_(0.5)
    return half


def crf_problem(batch: int, length: int, tags: int, features: int, seed: int) -> Problem:
    g = torch.Generator().manual_seed(seed)
    truth = LinearChainCRF(tags, nn.Linear(features, tags))
    with torch.no_grad():
        for parameter in truth.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=g))
    inputs = torch.randn(batch, length, features, generator=g)
    labels = truth.sample(inputs, 1, g)[0]
    return Problem("crf", halve(truth), (labels, inputs), length, tags)


def potts_problem(batch: int, length: int, states: int, seed: int) -> Problem:
    g = torch.Generator().manual_seed(seed)
    truth = PottsEnergy(length, states, init_std=0.6, generator=g)
    data = truth.sample(None, batch, g)
    return Problem("potts", halve(truth), data, length, states)


def fit_log_partition(energy: nn.Module, batch: Any, steps: int = 150, lr: float = 0.1) -> Callable[[Objective], None]:
    """``prepare`` hook: fit a binary NCE's learned ``log Z`` to the current (fixed) energy."""

    def prepare(objective: Objective) -> None:
        optimizer = torch.optim.Adam([objective.log_partition], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            (grad,) = torch.autograd.grad(objective(energy, batch).loss, [objective.log_partition])
            objective.log_partition.grad = grad
            optimizer.step()

    return prepare


def initial_log_partition(problem: Problem, noise: CategoricalNoise) -> float:
    """Mean ``-log q`` of the data: the log Z at which the initial classifier is unbiased."""
    return float(-noise.log_prob(problem.labels).mean())


def uniform_noise(problem: Problem) -> CategoricalNoise:
    return CategoricalNoise(problem.length, problem.states, probs=torch.full((problem.states,), 1.0 / problem.states))


def fitted_noise(problem: Problem) -> CategoricalNoise:
    noise = CategoricalNoise(problem.length, problem.states)
    noise.fit(problem.labels)
    return noise


def independent_noise(problem: Problem) -> nn.Module:
    """The model without its interactions: the emissions alone (CRF), the fields alone (Potts)."""
    if problem.name == "crf":
        noise = LinearChainCRF(problem.states, copy.deepcopy(problem.energy.emission_model), init_scale=0.0)
    else:
        noise = PottsEnergy(problem.length, problem.states)
        with torch.no_grad():
            noise.fields.copy_(problem.energy.fields)
    return ModelNoise(noise)


def uniform_sequence_noise(problem: Problem) -> nn.Module:
    """Every tag sequence equally likely: a CRF whose emission model and potentials are all zero."""
    emission_model = copy.deepcopy(problem.energy.emission_model)
    nn.init.zeros_(emission_model.weight)
    nn.init.zeros_(emission_model.bias)
    return ModelNoise(LinearChainCRF(problem.states, emission_model, init_scale=0.0))


def estimators(problem: Problem, ranking_sizes: tuple[int, ...]) -> list[Estimator]:
    out = [
        Estimator(
            f"cd_{k}", "CD-k",
            lambda seed, k=k: ContrastiveDivergence(GIBBS, DataInit(), k, seed, {"scan": "systematic"}),
            settings={"k": k},
        )
        for k in CD_STEPS
    ]
    if problem.name == "potts":
        space = CategoricalSpace(problem.length, problem.states)
        capacity = problem.labels.shape[0]
        for age in PCD_AGES:
            for restart in PCD_RESTARTS[:1] if age == 1 else PCD_RESTARTS:  # at age 1 every chain starts from noise
                out.append(Estimator(
                    f"pcd_age{age}" if age == 1 else f"pcd_age{age}_restart{restart:g}", "PCD",
                    lambda seed, restart=restart: ContrastiveDivergence(
                        GIBBS, ReplayBuffer(space, capacity, restart), 1, seed, {"scan": "systematic"}
                    ),
                    warmup_steps=age - 1,
                    settings={"age": age, "restart": restart},
                ))
    for noise_name, build in (("uniform", uniform_noise), ("fitted", fitted_noise)):
        start = initial_log_partition(problem, build(problem))
        out.append(Estimator(
            f"nce_{noise_name}_learned_logz", "NCE",
            lambda seed, build=build, start=start: NCE(build(problem), True, 4, start, seed),
            prepare=fit_log_partition(problem.energy, problem.batch),
            settings={"noise": noise_name, "log_z": "learned"},
        ))
        if problem.name == "potts":
            exact = float(problem.energy.log_partition().detach())
            out.append(Estimator(
                f"nce_{noise_name}_exact_logz", "NCE",
                lambda seed, build=build, exact=exact: NCE(build(problem), False, 4, exact, seed),
                settings={"noise": noise_name, "log_z": "exact"},
            ))
    ranking_noises = {"model": lambda: LaggedModelNoise(refresh_every=1), "independent": lambda: independent_noise(problem)}
    if problem.name == "crf":
        ranking_noises["uniform"] = lambda: uniform_sequence_noise(problem)
    for noise_name, build in ranking_noises.items():
        for size in ranking_sizes:
            out.append(Estimator(
                f"ranking_nce_{noise_name}_K{size}", "ranking NCE",
                lambda seed, build=build, size=size: RankingNCE(build(), size, seed),
                settings={"noise": noise_name, "num_noise": size},
            ))
    return out


def run(problem: Problem, repeats: int, ranking_sizes: tuple[int, ...], only: Optional[set[str]] = None) -> list[dict[str, Any]]:
    rows = []
    for estimator in estimators(problem, ranking_sizes):
        if only is not None and estimator.family not in only:
            continue
        begin = time.perf_counter()
        estimates = gradient_estimates(estimator.make, problem.energy, problem.batch, repeats, estimator.warmup_steps, prepare=estimator.prepare)
        seconds = (time.perf_counter() - begin) / repeats
        rows.append({
            "model": problem.name, "estimator": estimator.name, "family": estimator.family, **estimator.settings,
            **gradient_agreement(estimates, problem.exact), "seconds_per_estimate": seconds,
        })
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    return rows


FAMILY_COLOURS = {"CD-k": "tab:blue", "PCD": "tab:green", "NCE": "tab:red", "ranking NCE": "tab:purple"}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Direction error of the mean step against the noise-to-signal ratio of one step, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({row["model"] for row in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 5), squeeze=False)
    for ax, model in zip(axes[0], models):
        for row in (r for r in rows if r["model"] == model):
            error = max(1.0 - row["cosine_of_mean"], 1e-5)
            ax.scatter(row["noise_to_signal"], error, color=FAMILY_COLOURS[row["family"]], s=30)
            ax.annotate(row["estimator"].replace("ranking_nce_", "rNCE ").replace("_", " "), (row["noise_to_signal"], error), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("noise to signal of one estimate  sqrt(tr Σ) / ‖ḡ‖")
        ax.set_ylabel("1 − cos(mean estimate, exact gradient)")
        ax.set_title(f"{model}: bottom left = unbiased and quiet")
        for family, colour in FAMILY_COLOURS.items():
            ax.scatter([], [], color=colour, label=family)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output JSON; FILE.md and FILE.png are written next to it")
    parser.add_argument("--repeats", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["crf", "potts"], choices=["crf", "potts"])
    parser.add_argument("--families", nargs="+", default=None, choices=list(FAMILY_COLOURS), help="only these estimator families")
    parser.add_argument("--ranking-sizes", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--crf-batch", type=int, default=64)
    parser.add_argument("--crf-length", type=int, default=8)
    parser.add_argument("--crf-tags", type=int, default=5)
    parser.add_argument("--crf-features", type=int, default=6)
    parser.add_argument("--potts-batch", type=int, default=256)
    parser.add_argument("--potts-length", type=int, default=6)
    parser.add_argument("--potts-states", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    problems = {
        "crf": lambda: crf_problem(args.crf_batch, args.crf_length, args.crf_tags, args.crf_features, args.seed),
        "potts": lambda: potts_problem(args.potts_batch, args.potts_length, args.potts_states, args.seed),
    }
    only = None if args.families is None else set(args.families)
    rows = [row for name in args.models for row in run(problems[name](), args.repeats, tuple(args.ranking_sizes), only)]
    columns = [
        "model", "estimator", "cosine_of_mean", "mean_cosine", "relative_bias", "bias_resolution", "relative_std",
        "noise_to_signal", "seconds_per_estimate",
    ]
    notes = (
        f"{args.repeats} estimates per row on one fixed batch, parameters half-way between zero and the truth. "
        "relative_bias subtracts the squared error expected of the mean itself; below bias_resolution it is noise. "
        "NCE and ranking NCE gradients have their own scale: compare their cosines and noise_to_signal, not relative_bias "
        "or relative_std. The figure plots 1 - cosine_of_mean against noise_to_signal."
    )
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    json_path, _ = write_report(args.out, rows, "Gradient bias of sampling-based objectives", settings, columns, notes)
    plot(rows, json_path.with_suffix(".png"))
    print(f"wrote {json_path}, its .md and .png")


if __name__ == "__main__":
    main()
