"""Molecule generation on QM9 / ZINC250k: the recipe's own YAML, trained for a step budget, sampled, scored.

Runs ``recipes/molecule_generation/base.yaml`` + ``<dataset>.yaml`` through the same code path
as ``structebm fit`` (:func:`structebm.cli.build_cli`): a
:class:`~structebm.energies.graph.RelationalGraphEnergy` fitted by persistent contrastive
divergence with Gibbs-with-gradients chains in a replay buffer, sampled at the end of ``fit`` by
the recipe's :class:`~structebm.training.molecule_report.MoleculeGenerationReport`. Flags only
override config keys: ``--steps`` → ``trainer.max_steps`` (the budget is a number of steps, so a
busy machine trains the same model; the seconds are reported), ``--seed`` → ``seed_everything``
and the sampling seed, ``--num-samples`` / ``--sampling-steps`` → the report's task,
``--override KEY=VALUE`` → any other key, as for ``structebm fit``.

Each name of ``--ablations`` is one training run at the same budget, with these changes to the
recipe:

- ``default``: the recipe as it is. Its energy sees each atom's used, excess and free valence and
  adds learned, non-negative weights times the total valence excess and the number of extra
  fragments (:class:`~structebm.chem.features.ChemistryFeatures`); chains (training restarts and
  sampling) start from random connected, valence-valid trees whose atoms follow the training
  split's atom counts and type frequencies. Sampled with unconstrained and with valence-aware moves.
- ``learned_only``: the energy without the chemistry features and violation terms (``features:
  null``): nothing in the model encodes the valence table.
- ``uniform_noise``: chains start from uniform noise (uniform bond orders, no valence correction,
  no trees; atoms still from the training split's counts and frequencies).
- ``learned_only_uniform_noise``: both changes; the row comparable to GDSS, whose model has
  neither.

Metrics follow GDSS (Jo et al., ICML 2022): validity without correction, then uniqueness,
novelty, FCD and NSPDK MMD on the valency-corrected molecules, against the whole test split
(``--max-test-molecules`` caps it for pilots). Headline keys are the default run's unconstrained
sampler; every other run's figures carry its name as a suffix
(``validity_wo_correction_learned_only``, ``fcd_uniform_noise``, ...). ``runs`` keeps each run's
whole report (invalidity reasons, molecule statistics beside the test split's, sampling speed)
and its command.

Run: ``python benchmarks/molecule_generation.py --dataset qm9 --out results/molecules_qm9.json``
(also writes ``results/molecules_qm9.md`` and the molecule grids beside it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table  # noqa: E402
from _recipe_runs import callback_of  # noqa: E402

from structebm.cli import build_cli  # noqa: E402
from structebm.training.molecule_report import MoleculeGenerationReport  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "molecule_generation"
DATASETS = ("qm9", "zinc250k")
DEFAULT_STEPS = {"qm9": 3000, "zinc250k": 3000}
"""Training steps of a run unless ``--steps`` says otherwise (see the recipe README for the choice)."""

_SOURCE = "model.objective.init_args.source.init_args"
_TASK = "trainer.callbacks.init_args.task.init_args"
_LEARNED_ONLY = ["model.energy.init_args.features=null"]
_UNIFORM_NOISE = [
    f"{_SOURCE}.connected_noise=false", f"{_SOURCE}.valid_noise=false",
    f"{_TASK}.connected_noise=false", f"{_TASK}.valid_noise=false",
]
ABLATIONS: dict[str, list[str]] = {
    "default": [],
    "learned_only": _LEARNED_ONLY,
    "uniform_noise": _UNIFORM_NOISE,
    "learned_only_uniform_noise": _LEARNED_ONLY + _UNIFORM_NOISE,
}
"""Ablation name → config overrides (``KEY=VALUE``) applied to the recipe."""

ABLATION_WORDS = {
    "default": "recipe energy (chemistry features + learned valence-excess and fragment terms), chains from valence-valid connected trees",
    "learned_only": "energy without chemistry features or valence terms, chains from valence-valid connected trees",
    "uniform_noise": "recipe energy (chemistry features + valence terms), chains from uniform noise",
    "learned_only_uniform_noise": "energy without chemistry features or valence terms, chains from uniform noise (comparable to GDSS)",
}
SCORES = ("validity_wo_correction", "validity_with_correction", "uniqueness", "novelty", "fcd", "nspdk", "samples_per_second")
PUBLISHED = {
    # Table 1 of GDSS (Jo, Lee & Hwang, "Score-based Generative Modeling of Graphs via the System
    # of Stochastic Differential Equations", ICML 2022): no valence information in either model.
    "qm9": [
        {"method": "GraphEBM (Liu et al., 2021), published", "validity_wo_correction": 8.22, "fcd": 6.143, "nspdk": 0.030},
        {"method": "GDSS (Jo et al., 2022), published", "validity_wo_correction": 95.72, "fcd": 2.900, "nspdk": 0.003},
    ],
    "zinc250k": [
        {"method": "GDSS (Jo et al., 2022), published", "validity_wo_correction": 97.01, "fcd": 14.656, "nspdk": 0.019},
    ],
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="qm9")
    parser.add_argument("--out", required=True, type=Path, help="JSON output path (a .md file is written beside it)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default: 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seed_everything and the sampling seed")
    parser.add_argument("--num-samples", type=int, default=10_000, help="molecules per sampler variant")
    parser.add_argument("--sampling-steps", type=int, default=None, help="sampler steps per chain (default: the recipe's)")
    parser.add_argument("--ablations", nargs="+", choices=sorted(ABLATIONS), default=list(ABLATIONS),
                        help="runs at the same budget (default: all four); see the module docstring")
    parser.add_argument("--max-test-molecules", type=int, default=None, help="cap the reference set (pilots only)")
    parser.add_argument("--save-energy", type=Path, default=None,
                        help="with one ablation: also write the trained (averaged) energy's state_dict here")
    parser.add_argument("--load-energy", type=Path, default=None,
                        help="with one ablation: skip training and sample the state_dict saved by --save-energy")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="any further config key, as for structebm fit (repeatable), "
                             "e.g. --override model.objective.init_args.energy_magnitude_weight=0.05")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars (for logs)")
    args = parser.parse_args(argv)
    if args.out.suffix != ".json":
        parser.error(f"--out must end in .json, got {args.out}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be a positive int, got {args.steps}")
    if args.num_samples < 1 or (args.sampling_steps is not None and args.sampling_steps < 0):
        parser.error("--num-samples must be >= 1 and --sampling-steps >= 0")
    if len(set(args.ablations)) != len(args.ablations):
        parser.error(f"--ablations names a run twice: {args.ablations}")
    if (args.save_energy or args.load_energy) and len(args.ablations) != 1:
        parser.error("--save-energy and --load-energy need exactly one --ablations name")
    if args.steps is None:
        args.steps = DEFAULT_STEPS[args.dataset]
    return args


def config_args(args: argparse.Namespace, ablation: str, workdir: Path) -> list[str]:
    """The ``structebm fit`` arguments of one run: the recipe's two configs, then the overrides."""
    task_variants = "[unconstrained,valence_aware]" if ablation == "default" else "[unconstrained]"
    keys = [
        f"seed_everything={args.seed}",
        f"trainer.max_steps={args.steps}", "trainer.max_epochs=-1",
        f"trainer.enable_progress_bar={str(args.progress).lower()}",
        f"trainer.default_root_dir={workdir}",
        f"trainer.logger.init_args.save_dir={workdir}",
        f"trainer.callbacks.init_args.output_dir={workdir / 'report'}",
        f"{_TASK}.seed={args.seed}",
        f"{_TASK}.num_samples={args.num_samples}",
        f"{_TASK}.variants={task_variants}",
        *ABLATIONS[ablation],
    ]
    if args.sampling_steps is not None:
        keys.append(f"{_TASK}.num_steps={args.sampling_steps}")
    if args.max_test_molecules is not None:
        keys.append(f"data.init_args.max_test_molecules={args.max_test_molecules}")
    keys += args.override
    return ["--config", str(RECIPES / "base.yaml"), "--config", str(RECIPES / f"{args.dataset}.yaml"),
            *(f"--{key}" for key in keys)]


def violation_weights(energy: torch.nn.Module) -> Optional[dict[str, float]]:
    """The learned weights of the valence-excess and fragment terms (``None`` without chemistry features)."""
    weights = getattr(energy, "term_log_weight", None)
    if weights is None:
        return None
    return dict(zip(("valence_excess", "extra_fragments"), weights.detach().exp().tolist()))


def train_and_score(args: argparse.Namespace, ablation: str, workdir: Path) -> dict[str, Any]:
    """``structebm fit`` with the recipe and the ablation's overrides; its report and command."""
    argv = ["fit", *config_args(args, ablation, workdir)]
    cli = build_cli(argv)
    report = callback_of(cli, MoleculeGenerationReport).report
    if report is None:
        raise RuntimeError(f"molecule_generation: the {ablation} run's report is missing")
    if args.save_energy is not None:
        args.save_energy.parent.mkdir(parents=True, exist_ok=True)
        torch.save(cli.model.energy.state_dict(), args.save_energy)
    return {**report, "train_steps": cli.trainer.global_step, "violation_weights": violation_weights(cli.model.energy),
            "command": "structebm " + " ".join(argv)}


def load_and_score(args: argparse.Namespace, ablation: str, workdir: Path) -> dict[str, Any]:
    """The recipe's model with the weights of ``--load-energy``, sampled and scored by its report's task."""
    argv = config_args(args, ablation, workdir)
    cli = build_cli(argv, run=False)
    cli.model.energy.load_state_dict(torch.load(args.load_energy, map_location="cpu", weights_only=True))
    cli.datamodule.setup("fit")
    task = callback_of(cli, MoleculeGenerationReport).task
    report = task.evaluate(cli.model.energy, cli.datamodule, workdir / "report", torch.device("cpu"), progress=args.progress)
    return {**report, "train_seconds": None, "train_steps": None, "loaded_energy": str(args.load_energy),
            "violation_weights": violation_weights(cli.model.energy), "command": "structebm " + " ".join(argv)}


def flattened(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Headline keys of the default run's unconstrained sampler, suffixed keys of the other runs."""
    flat: dict[str, Any] = {}
    for ablation, report in runs.items():
        suffix = "" if ablation == "default" else f"_{ablation}"
        flat.update({f"{key}{suffix}": report["unconstrained"][key] for key in SCORES})
        flat[f"train_seconds{suffix}"] = report["train_seconds"]
        flat[f"train_steps{suffix}"] = report["train_steps"]
    if "valence_aware" in runs.get("default", {}):
        flat["validity_wo_correction_constrained"] = runs["default"]["valence_aware"]["validity_wo_correction"]
    return flat


def markdown(args: argparse.Namespace, payload: dict[str, Any]) -> str:
    rows = []
    for ablation, report in payload["runs"].items():
        scores = report["unconstrained"]
        rows.append({
            "method": f"structebm, {ablation} (this run)", "validity_wo_correction": 100 * scores["validity_wo_correction"],
            "uniqueness": scores["uniqueness"], "fcd": scores["fcd"], "nspdk": scores["nspdk"],
            "samples_per_second": scores["samples_per_second"], "train_steps": report["train_steps"],
            "train_seconds": report["train_seconds"],
        })
    rows += PUBLISHED[args.dataset]
    columns = ["method", "validity_wo_correction", "uniqueness", "fcd", "nspdk", "samples_per_second", "train_steps",
               "train_seconds"]
    described = "\n".join(f"- **{name}**: {ABLATION_WORDS[name]}." for name in payload["runs"])
    constrained = payload.get("validity_wo_correction_constrained")
    return (
        f"# Molecule generation on {args.dataset}\n\n"
        "Validity without correction in %; lower FCD and NSPDK are better. Published rows are the figures "
        "reported in GDSS (Jo, Lee & Hwang, ICML 2022, Table 1), not reruns; neither published model has "
        "valence terms or valence-valid chain starts.\n\n"
        + markdown_table(rows, columns) + "\n" + described + "\n\n"
        + f"Each run: {args.steps} training steps, {args.num_samples} samples from noise with unconstrained "
        "Gibbs-with-gradients moves, scored against the test split"
        + ("" if constrained is None else f"; the default energy with valence-aware moves: {100 * constrained:.2f} % valid")
        + ".\n\n"
        + f"_{', '.join(f'{k}={v}' for k, v in payload['environment'].items())}_\n"
    )


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Any]] = {}
    for ablation in args.ablations:
        with tempfile.TemporaryDirectory(prefix=f"molecule_generation_{ablation}_") as folder:
            run = train_and_score if args.load_energy is None else load_and_score
            runs[ablation] = run(args, ablation, Path(folder))
            for grid in (Path(folder) / "report").glob("molecules_*.png"):
                shutil.copyfile(grid, args.out.with_name(f"{args.out.stem}_{ablation}_{grid.stem.removeprefix('molecules_')}.png"))
        print(json.dumps({ablation: {k: runs[ablation]["unconstrained"][k] for k in SCORES}}, indent=2), flush=True)
    payload = {
        "dataset": args.dataset, **flattened(runs), "num_samples": args.num_samples, "seed": args.seed,
        "runs": runs, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "environment": environment(),
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(args, payload))
    return payload


if __name__ == "__main__":
    main()
