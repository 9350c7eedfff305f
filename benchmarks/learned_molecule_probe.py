"""Where does a recipe's molecule energy put its mass? Train by the recipe, then score data and chains.

Trains with the ``structebm`` command's configs (every argument after ``--`` goes to it, e.g.
``--config recipes/molecule_generation/base.yaml --config recipes/molecule_generation/qm9.yaml
--model.energy.init_args.features null --trainer.max_steps 300``) without the end-of-fit report
(which scores against the test split), then measures on **training molecules** only:

- ``data``: ``--num-chains`` randomly chosen training molecules;
- ``buffer``: the replay buffer's stored chains, where the objective has one (the negatives of
  persistent contrastive divergence);
- ``chains``: ``--num-chains`` unconstrained Gibbs-with-gradients chains from the recipe's noise
  (random connected trees with ``--connected-noise``, else valence-repaired uniform bonds; atoms
  drawn like the training split's), scored at every step count of ``--at`` (short- and long-run).

Each row gives the energy (mean and quartiles), validity without correction, why the rest fail
(:func:`~structebm.chem.metrics.invalidity_reasons`: over-valent, disconnected, empty, other),
uniqueness, FCD and NSPDK against ``--reference-molecules`` other randomly chosen training
molecules, and ring and size statistics of the corrected molecules. ``--save-energy`` keeps the
trained (averaged) energy's ``state_dict``.

Run: ``python benchmarks/learned_molecule_probe.py --out results/probe.json -- --config ... --trainer.max_steps 300``
(also writes ``.md``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_report  # noqa: E402

from structebm.chem.convert import smiles_to_dense  # noqa: E402
from structebm.chem.evaluate import MoleculeReference, evaluate_molecules  # noqa: E402
from structebm.chem.generation import fitted_atom_prior  # noqa: E402
from structebm.chem.graph_space import MolGraphSpace  # noqa: E402
from structebm.chem.metrics import DecodedMolecules  # noqa: E402
from structebm.chem.statistics import molecule_statistics  # noqa: E402
from structebm.cli import build_cli  # noqa: E402
from structebm.graphs.state import DenseGraph  # noqa: E402
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients  # noqa: E402
from structebm.training.molecule_report import MoleculeGenerationReport  # noqa: E402

SCORES = ("validity_wo_correction", "uniqueness", "fcd", "nspdk")


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    cli_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON output path (a .md file is written beside it)")
    parser.add_argument("--num-chains", type=int, default=1000)
    parser.add_argument("--at", type=int, nargs="+", default=[400, 2000], help="score the chains after these steps")
    parser.add_argument("--reference-molecules", type=int, default=2000, help="training molecules scored against")
    parser.add_argument("--connected-noise", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--save-energy", default=None, help="write the trained energy's state_dict here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(own)
    if not args.out.endswith(".json"):
        parser.error(f"--out must end in .json, got {args.out}")
    if not cli_args:
        parser.error("give the structebm command's arguments after --")
    if args.num_chains < 2 or sorted(args.at) != args.at or args.at[0] < 1:
        parser.error("--num-chains must be >= 2 and --at increasing positive step counts")
    return args, cli_args


def score(graphs: DenseGraph, energy: torch.nn.Module, reference: dict[str, Any]) -> dict[str, Any]:
    """Energy summary, the metrics of ``SCORES``, invalidity reasons and statistics of the corrected molecules."""
    vocabulary = reference["vocabulary"]
    with torch.no_grad():
        values = energy(graphs)
    q1, median, q3 = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75], dtype=values.dtype)).tolist()
    decoded = DecodedMolecules(graphs, vocabulary)
    metrics = evaluate_molecules(decoded, reference["train"], reference["scored"], metrics=SCORES)
    valid = [mol for mol in decoded.corrected if mol is not None]
    statistics = molecule_statistics(valid, vocabulary) if valid else {}
    return {"energy": float(values.mean()), "energy_q1": q1, "energy_median": median, "energy_q3": q3, **metrics,
            **{f"invalid_{k}": v for k, v in decoded.invalidity_reasons.items()}, **statistics}


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    args, cli_args = parse_args(argv)
    cli = build_cli(cli_args, run=False)
    trainer, module, data = cli.trainer, cli.model, cli.datamodule
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, MoleculeGenerationReport)]
    begin = time.perf_counter()
    trainer.fit(module, data)
    train_seconds = time.perf_counter() - begin
    energy = module.energy.eval()
    if args.save_energy:
        torch.save(energy.state_dict(), args.save_energy)
    vocabulary = data.vocabulary
    train = data.train_smiles
    picked = random.Random(args.seed).sample(range(len(train)), args.reference_molecules + args.num_chains)
    scored = [train[i] for i in picked[: args.reference_molecules]]
    reference = {"vocabulary": vocabulary, "train": train, "scored": MoleculeReference(scored)}
    rows: list[dict[str, Any]] = []
    data_graphs = smiles_to_dense([train[i] for i in picked[args.reference_molecules:]], vocabulary)
    rows.append({"start": "data", "step": 0, **score(data_graphs, energy, reference)})
    buffer = next((m for m in module.objective.modules() if hasattr(m, "stored_nodes")), None)  # a replay buffer
    if buffer is not None:
        filled = buffer.filled.nonzero().flatten()[: args.num_chains]
        nodes, edges = buffer.stored_nodes[filled].long(), buffer.stored_edges[filled].long()
        rows.append({"start": "buffer", "step": 0, **score(DenseGraph(nodes, edges, nodes > 0), energy, reference)})
    generator = torch.Generator().manual_seed(args.seed + 1)
    space = MolGraphSpace(vocabulary, connected_noise=args.connected_noise, atom_prior=fitted_atom_prior(vocabulary.name))
    sampler = graph_gibbs_with_gradients(energy, MolGraphSpace(vocabulary), constrained=False)
    state = sampler.init(space.noise(args.num_chains, generator), None)
    rows.append({"start": "noise", "step": 0, **score(state.x, energy, reference)})
    sample_begin = time.perf_counter()
    for step in range(1, args.at[-1] + 1):
        state, _ = sampler.step(state, generator)
        if step in args.at:
            rows.append({"start": "noise", "step": step, **score(state.x, energy, reference)})
            print({k: rows[-1][k] for k in ("step", "energy", *SCORES, "invalid_over_valent", "invalid_disconnected")},
                  flush=True)
    settings = {**vars(args), "cli": cli_args, "train_seconds": train_seconds, "global_step": trainer.global_step,
                "sample_seconds": time.perf_counter() - sample_begin}
    columns = ["start", "step", "energy", "energy_q1", "energy_q3", *SCORES, "invalid_over_valent",
               "invalid_disconnected", "invalid_other", "atoms_per_molecule", "rings_per_molecule"]
    write_report(
        args.out, rows, "Mass of a recipe-trained molecule energy", settings=settings, columns=columns,
        notes=f"{trainer.global_step} training steps in {train_seconds:.0f} s. FCD and NSPDK against "
              f"{args.reference_molecules} training molecules; `data` scores {args.num_chains} other training molecules "
              "(the floor of both metrics at this sample size).",
    )
    return rows


if __name__ == "__main__":
    main()
