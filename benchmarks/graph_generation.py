"""Generic graph generation on the GDSS sets: the recipe's own YAML, trained for a step budget, scored.

Runs ``recipes/graph_generation/base.yaml`` + ``<dataset>.yaml`` through the same code path as
``structebm fit`` (:func:`structebm.cli.build_cli`); flags only override config keys:
``--steps`` → ``trainer.max_steps``, ``--sampling-steps`` / ``--reference`` / ``--seed`` → the
:class:`~structebm.training.graph_report.GraphGenerationReport`, ``--seed`` also →
``seed_everything``. The report samples as many graphs as the reference split holds, from noise
fitted to the training graphs, and computes the degree, clustering, orbit and spectral MMDs of
GDSS's evaluation (:mod:`structebm.graphs.metrics`). Tune with ``--reference train`` (scores
against the training graphs); the protocol is ``--reference test``.

``--save-energy FILE`` keeps the trained (averaged) energy's weights; ``--load-energy FILE``
skips training and samples and scores that energy with the report's settings (sampling steps,
``num_flips``, temperature, reference), so sampling settings can be compared on one model.

Published figures (GDSS, Jo et al., ICML 2022, Table 2; degree / clustering / orbit MMD) are
written beside ours in the Markdown file.

Run: ``python benchmarks/graph_generation.py --dataset community_small --out results/graphs_community_small.json``
(also writes ``results/graphs_community_small.md`` and the generated-beside-reference drawing
``results/graphs_community_small.png``).
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
from _common import environment  # noqa: E402
from _recipe_runs import callback_of  # noqa: E402

from structebm.cli import build_cli  # noqa: E402
from structebm.graphs.draw import graph_comparison_png  # noqa: E402
from structebm.graphs.evaluate import generated_networkx  # noqa: E402
from structebm.training.graph_report import GraphGenerationReport  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "graph_generation"
CONFIGS = {"community_small": "community_small.yaml", "ego_small": "ego_small.yaml", "ENZYMES": "enzymes.yaml", "grid": "grid.yaml"}
GDSS = {  # Jo et al. 2022, Table 2: degree, clustering, orbit MMD (ENZYMES and grid: not entered here)
    "community_small": (0.045, 0.086, 0.007),
    "ego_small": (0.021, 0.024, 0.007),
}
KEYS = ("degree_mmd", "clustering_mmd", "orbit_mmd", "spectral_mmd")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(CONFIGS))
    parser.add_argument("--out", required=True, type=Path, help="JSON report (a .md table is written beside it)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's trainer.max_steps)")
    parser.add_argument("--sampling-steps", type=int, default=None, help="sampler steps per chain (default: the recipe's)")
    parser.add_argument("--reference", choices=("test", "train"), default="test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-energy", type=Path, default=None, help="write the trained energy's weights here")
    parser.add_argument("--load-energy", type=Path, default=None,
                        help="skip training: sample from and score the energy saved here by --save-energy")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="any further config key, as for structebm fit (repeatable), e.g. --override model.objective.init_args.num_steps=40")
    return parser.parse_args(argv)


def cli_args(args: argparse.Namespace, workdir: Path) -> list[str]:
    """The ``structebm fit`` arguments: the recipe's two configs, then the overrides."""
    argv = [
        "--config", str(RECIPES / "base.yaml"), "--config", str(RECIPES / CONFIGS[args.dataset]),
        f"--seed_everything={args.seed}",
        f"--trainer.default_root_dir={workdir}",
        f"--trainer.logger.init_args.save_dir={workdir}",
        f"--trainer.callbacks.init_args.output_dir={workdir / 'report'}",
        f"--trainer.callbacks.init_args.reference={args.reference}",
        f"--trainer.callbacks.init_args.seed={args.seed}",
    ]
    if args.steps is not None:
        argv.append(f"--trainer.max_steps={args.steps}")
    if args.sampling_steps is not None:
        argv.append(f"--trainer.callbacks.init_args.num_steps={args.sampling_steps}")
    argv += [f"--{item}" for item in args.override]
    return argv


def markdown(dataset: str, result: dict[str, Any]) -> str:
    published = GDSS.get(dataset, ("", "", ""))
    rows = [
        "| method | degree | clustering | orbit | spectral | samples | train steps | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| structebm (vs {result['reference']}) | {result['degree_mmd']:.4f} | {result['clustering_mmd']:.4f} | "
        f"{result['orbit_mmd']:.4f} | {result['spectral_mmd']:.4f} | {result['num_samples']} | {result['train_steps']} | "
        f"{result['train_seconds']:.0f} |",
        f"| GDSS (published) | {published[0]} | {published[1]} | {published[2]} | | | | |",
    ]
    return f"# Graph generation: {dataset}\n\n" + "\n".join(rows) + "\n"


def train_and_score(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], list[str]]:
    """``structebm fit`` with the recipe; the report of its :class:`GraphGenerationReport`."""
    argv_fit = ["fit", *cli_args(args, workdir)]
    cli = build_cli(argv_fit)
    callback = callback_of(cli, GraphGenerationReport)
    if callback.report is None:
        raise RuntimeError("graph_generation: the recipe's GraphGenerationReport did not report")
    if args.save_energy is not None:
        args.save_energy.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"energy": cli.model.energy.state_dict(), "train_seconds": callback.report["train_seconds"],
                    "train_steps": callback.report["train_steps"], "command": argv_fit}, args.save_energy)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(workdir / "report" / "graphs.png", args.out.with_suffix(".png"))
    return dict(callback.report), argv_fit


def load_and_score(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], list[str]]:
    """The recipe's model with the weights of ``--load-energy``, sampled and scored by its report's settings."""
    argv_built = cli_args(args, workdir)
    cli = build_cli(argv_built, run=False)
    saved = torch.load(args.load_energy, map_location="cpu")
    cli.model.energy.load_state_dict(saved["energy"])
    cli.datamodule.setup("fit")
    report, graphs, reference = callback_of(cli, GraphGenerationReport).score(cli.model.energy, cli.datamodule, torch.device("cpu"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    graph_comparison_png(generated_networkx(graphs), reference, args.out.with_suffix(".png"))
    report.update(train_seconds=saved["train_seconds"], train_steps=saved["train_steps"], loaded_energy=str(args.load_energy))
    return report, [*saved["command"], "# then sampled by:", *argv_built]


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="graph_generation_") as folder:
        run = train_and_score if args.load_energy is None else load_and_score
        report, argv_fit = run(args, Path(folder))
    result = {
        "dataset": args.dataset,
        **{key: report[key] for key in KEYS},
        "train_seconds": report["train_seconds"],
        "train_steps": report["train_steps"],
        "samples_per_second": report["samples_per_second"],
        "num_samples": report["num_samples"],
        "reference": args.reference,
        "report": report,
        "gdss_published": dict(zip(("degree_mmd", "clustering_mmd", "orbit_mmd"), GDSS[args.dataset])) if args.dataset in GDSS else None,
        "command": "structebm " + " ".join(argv_fit),
        "environment": environment(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(args.dataset, result))
    print(json.dumps({key: result[key] for key in (*KEYS, "train_seconds", "train_steps", "num_samples")}, indent=2))
    return result


if __name__ == "__main__":
    main()
