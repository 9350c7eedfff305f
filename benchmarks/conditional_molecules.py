"""Molecules for target properties on QM9: conditional energies, baselines at equal sampling compute, composition.

Four energies are trained with the recipe's own YAML (``recipes/molecule_generation/base.yaml`` +
``<dataset>.yaml``, and ``conditional_qed.yaml`` / ``conditional_logp.yaml`` or both properties
for the joint energy) through :func:`structebm.cli.build_cli`, each for ``--steps`` persistent-CD
steps: ``unconditional``, ``qed``, ``logp`` and ``joint`` (conditioned on QED and logP together).
For guidance, one graph regressor per property (an unconditional
:class:`~structebm.energies.graph.RelationalGraphEnergy` used as a scalar network) is fitted to the
normalised property of the training graphs (:func:`~structebm.energies.guidance.fit_graph_regressor`).

Targets are the properties of the first ``--num-targets`` test molecules, ``--samples-per-target``
chains each, every chain ``--sampling-steps`` Gibbs-with-gradients steps from noise. Per property
(QED, logP) the MAE between the target and the RDKit property of the samples valid without
correction (:func:`~structebm.chem.conditional_generation.property_errors`) is reported for

- ``conditional``: the single-property conditional energy, sampled given the target;
- ``unconditional``: the unconditional energy's samples, ignoring the target;
- ``rejection``: ``k`` unconditional chains of ``sampling_steps / k`` steps per sample, keeping the
  valid candidate closest to the target (the same number of sampler steps as one conditional chain);
- ``guided``: the unconditional energy plus :class:`~structebm.energies.guidance.PropertyGuidance`
  of the property's regressor (``--guidance-weight``, ``--guidance-sigma`` in normalised units);

and, for two-property targets, ``composition_mae``: the sum of the QED and logP energies
(:class:`~structebm.energies.composition.EnergySum`) beside the ``joint`` energy. Validity without
correction, uniqueness, novelty and FCD against the test split are reported for every sampled set
(keys ``<method>_<property>`` and ``sum_of_energies`` / ``joint``).

Run: ``python benchmarks/conditional_molecules.py --dataset qm9 --out results/conditional_qm9.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from rdkit import Chem

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment  # noqa: E402

from structebm.chem.conditional_generation import property_errors, sample_molecules_given  # noqa: E402
from structebm.chem.evaluate import MoleculeReference, evaluate_molecules  # noqa: E402
from structebm.chem.metrics import DecodedMolecules  # noqa: E402
from structebm.chem.properties import PROPERTIES  # noqa: E402
from structebm.cli import build_cli  # noqa: E402
from structebm.data.molecule_datamodule import MoleculeDataModule  # noqa: E402
from structebm.energies.composition import EnergySum  # noqa: E402
from structebm.energies.graph import RelationalGraphEnergy  # noqa: E402
from structebm.energies.guidance import PropertyGuidance, fit_graph_regressor  # noqa: E402

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "molecule_generation"
PROPERTY_NAMES = ("qed", "logp")
ENERGIES = {"unconditional": [], "qed": ["qed"], "logp": ["logp"], "joint": ["qed", "logp"]}
SET_METRICS = ("validity_wo_correction", "uniqueness", "novelty", "fcd")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["qm9"], default="qm9")
    parser.add_argument("--out", required=True, type=Path, help="JSON output path (a .md file is written beside it)")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per energy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-targets", type=int, default=1000, help="test molecules whose properties are targets")
    parser.add_argument("--samples-per-target", type=int, default=10)
    parser.add_argument("--sampling-steps", type=int, default=400, help="sampler steps per chain")
    parser.add_argument("--rejection-k", type=int, default=4, help="candidates per rejection sample")
    parser.add_argument("--regressor-steps", type=int, default=2000, help="Adam steps of each guidance regressor")
    parser.add_argument("--guidance-weight", type=float, default=1.0)
    parser.add_argument("--guidance-sigma", type=float, default=0.2, help="in units of the property's training std")
    parser.add_argument("--batch-size", type=int, default=1000, help="chains run at once")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="any config key of the training runs, as for structebm fit (repeatable)")
    args = parser.parse_args(argv)
    for flag in ("steps", "num_targets", "samples_per_target", "sampling_steps", "rejection_k", "regressor_steps",
                 "batch_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be a positive int, got {getattr(args, flag)}")
    if not (args.guidance_weight > 0 and args.guidance_sigma > 0):
        parser.error("--guidance-weight and --guidance-sigma must be positive")
    if args.sampling_steps < args.rejection_k:
        parser.error(f"--sampling-steps ({args.sampling_steps}) must be at least --rejection-k ({args.rejection_k}): "
                     "each rejection candidate gets sampling_steps // k steps")
    return args


def train(args: argparse.Namespace, name: str, workdir: Path) -> tuple[Any, float, list[str]]:
    """One energy by ``structebm fit`` on the recipe (EMA weights, no end-of-training report): its CLI,
    seconds and arguments. The test split is cut to the targets' molecules."""
    run_dir = workdir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    override = {
        "trainer": {"callbacks": [{"class_path": "lightning.pytorch.callbacks.EMAWeightAveraging",
                                   "init_args": {"decay": 0.995, "use_buffers": False}}],
                    "max_steps": args.steps, "max_epochs": -1, "default_root_dir": str(run_dir),
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(run_dir), "name": name}}},
        "seed_everything": args.seed,
    }
    override["data"] = {"init_args": {"max_test_molecules": args.num_targets,
                                      **({"properties": ENERGIES[name]} if ENERGIES[name] else {})}}
    (run_dir / "override.yaml").write_text(json.dumps(override))  # JSON is YAML
    argv = ["fit", "--config", str(RECIPES / "base.yaml"), "--config", str(RECIPES / f"{args.dataset}.yaml"),
            "--config", str(run_dir / "override.yaml"), *(f"--{key}" for key in args.override)]
    begin = time.perf_counter()
    cli = build_cli(argv)
    return cli, time.perf_counter() - begin, argv


def fit_regressors(args: argparse.Namespace, data: MoleculeDataModule, generator: torch.Generator) -> dict[str, Any]:
    """One scalar graph regressor per property, fitted to the normalised property of the training graphs."""
    graphs = data.train_graphs.dataset.graphs(list(data.train_graphs.indices)) if hasattr(data.train_graphs, "indices") \
        else data.train_graphs.graphs()
    c = data.training_conditions()
    regressors = {}
    for j, name in enumerate(data.condition_names):
        torch.manual_seed(args.seed)
        regressor = RelationalGraphEnergy(len(data.vocabulary), 3, hidden=64, num_layers=3)
        losses = fit_graph_regressor(regressor, graphs, c[:, j], args.regressor_steps, generator)
        regressors[name] = (regressor, sum(losses[-100:]) / len(losses[-100:]))
    return regressors


def set_metrics(decoded: DecodedMolecules, data: MoleculeDataModule, reference: MoleculeReference) -> dict[str, float]:
    return evaluate_molecules(decoded, data.train_smiles, reference, metrics=SET_METRICS)


def rejection(args: argparse.Namespace, energy: torch.nn.Module, data: MoleculeDataModule, targets: torch.Tensor,
              column: int, generator: torch.Generator) -> DecodedMolecules:
    """Per target row the valid candidate (of ``k`` short unconditional chains) closest to the target."""
    k, steps = args.rejection_k, args.sampling_steps // args.rejection_k
    graphs = sample_molecules_given(energy, data.vocabulary, None, steps, generator, batch_size=args.batch_size,
                                    num_samples=targets.shape[0] * k, connected_noise=True, atom_prior=data.atom_prior())
    decoded = DecodedMolecules(graphs, data.vocabulary)
    name = data.condition_names[column]
    chosen = []
    for row in range(targets.shape[0]):
        best, best_error = row * k, float("inf")
        for candidate in range(row * k, (row + 1) * k):
            mol = decoded.as_generated[candidate]
            if mol is None or len(Chem.GetMolFrags(mol)) != 1:  # not valid without correction
                continue
            error = abs(PROPERTIES[name](mol) - float(targets[row, column]))
            if error < best_error:
                best, best_error = candidate, error
        chosen.append(best)
    return DecodedMolecules(graphs[torch.tensor(chosen)], data.vocabulary)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    workdir = args.out.with_suffix("")
    energies, train_seconds, commands, clis = {}, {}, {}, {}
    for name in ENERGIES:
        clis[name], train_seconds[name], commands[name] = train(args, name, workdir)
        energies[name] = clis[name].model.energy
    data = clis["joint"].datamodule  # targets and scaling: those the joint energy trained with
    for j, name in enumerate(PROPERTY_NAMES):  # the single-property energies saw the same training split
        single = clis[name].datamodule.property_scaling
        if not torch.allclose(single.mean, data.property_scaling.mean[j: j + 1], rtol=1e-9, atol=0.0):
            raise RuntimeError(f"conditional_molecules: the {name} energy was trained with another normalisation")
    targets = data.test_properties.repeat_interleave(args.samples_per_target, dim=0)
    c = data.property_scaling.normalise(targets)
    reference = MoleculeReference(data.test_smiles)
    generator = torch.Generator().manual_seed(args.seed)
    begin = time.perf_counter()
    regressors = fit_regressors(args, data, generator)
    regressor_seconds = time.perf_counter() - begin

    def sample(energy, condition):
        graphs = sample_molecules_given(energy, data.vocabulary, condition, args.sampling_steps,
                                        torch.Generator().manual_seed(args.seed), batch_size=args.batch_size,
                                        num_samples=targets.shape[0], connected_noise=True, atom_prior=data.atom_prior())
        return DecodedMolecules(graphs, data.vocabulary)

    mae: dict[str, dict[str, float]] = {name: {} for name in PROPERTY_NAMES}
    sets: dict[str, dict[str, float]] = {}
    unconditional = sample(energies["unconditional"], None)
    sets["unconditional"] = set_metrics(unconditional, data, reference)
    for j, name in enumerate(PROPERTY_NAMES):
        runs = {
            "conditional": sample(energies[name], c[:, [j]]),
            "unconditional": unconditional,
            "rejection": rejection(args, energies["unconditional"], data, targets, j,
                                   torch.Generator().manual_seed(args.seed)),
            "guided": sample(EnergySum([energies["unconditional"],
                                        PropertyGuidance(regressors[name][0], args.guidance_weight, args.guidance_sigma)],
                                       condition_columns=[None, [0]]), c[:, [j]]),
        }
        for method, decoded in runs.items():
            mae[name][method] = property_errors(decoded, targets[:, [j]], [name])["mae"][name]
            if method != "unconditional":
                sets[f"{method}_{name}"] = set_metrics(decoded, data, reference)
    composition = {
        "sum_of_energies": sample(EnergySum([energies["qed"], energies["logp"]], condition_columns=[[0], [1]]), c),
        "joint": sample(energies["joint"], c),
    }
    composition_mae: dict[str, dict[str, float]] = {name: {} for name in PROPERTY_NAMES}
    for method, decoded in composition.items():
        errors = property_errors(decoded, targets, list(PROPERTY_NAMES))["mae"]
        for name in PROPERTY_NAMES:
            composition_mae[name][method] = errors[name]
        sets[method] = set_metrics(decoded, data, reference)

    payload = {
        "mae": mae, "composition_mae": composition_mae,
        **{key: {run: scores[key] for run, scores in sets.items()} for key in SET_METRICS},
        "train_seconds": {**train_seconds, "regressors": regressor_seconds},
        "regressor_final_mse": {name: loss for name, (_, loss) in regressors.items()},
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "property_scaling": data.property_scaling.as_dict(), "commands": commands, "environment": environment(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(payload))
    return payload


def markdown(payload: dict[str, Any]) -> str:
    lines = ["# Conditional molecule generation", "", "| property | conditional | unconditional | rejection | guided |",
             "| --- | --- | --- | --- | --- |"]
    for name, row in payload["mae"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.4g}" for m in ("conditional", "unconditional", "rejection", "guided")) + " |")
    lines += ["", "| property | sum of energies | joint |", "| --- | --- | --- |"]
    for name, row in payload["composition_mae"].items():
        lines.append(f"| {name} | {row['sum_of_energies']:.4g} | {row['joint']:.4g} |")
    lines += ["", "| samples | " + " | ".join(SET_METRICS) + " |", "| --- |" + " --- |" * len(SET_METRICS)]
    for run in payload["validity_wo_correction"]:
        lines.append(f"| {run} | " + " | ".join(f"{payload[key][run]:.4g}" for key in SET_METRICS) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
