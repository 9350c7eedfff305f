"""Molecule sampling throughput: molecules per second of the generation sampler at one thread.

Loads a trained :class:`~structebm.energies.graph.RelationalGraphEnergy` state_dict (saved by
``benchmarks/molecule_generation.py --save-energy``), builds the same energy and times
:func:`~structebm.chem.generation.sample_molecules` as molecule generation runs it: chains
from connected, valence-valid noise with the training split's atom prior, ``--sampling-steps``
unconstrained Gibbs-with-gradients steps, batches of ``--batch-size`` chains, the generator
seeded with ``--seed + 1``. The figure is

.. math::
    \\text{molecules/s} = \\frac{\\text{num\\_samples}}{\\text{wall seconds of sampling}}.

The samples are drawn in chunks of one batch with one generator carried from chunk to chunk,
which draws exactly what one call for all of them draws. ``--baseline DIR`` runs the same
chunks with the ``structebm`` package of another checkout ``DIR`` (for example
``git worktree add DIR COMMIT``) in a second process, alternating chunk by chunk (the order
rotating), so that load from other processes hits both alike; ``speedup`` is the median over
chunks of the baseline's time over ours, and with ``--score`` both sample sets are scored.

``--score`` scores the samples against the test split as molecule generation does
(:func:`~structebm.chem.generation.generation_metrics` against a
:class:`~structebm.chem.evaluate.MoleculeReference`: validity without correction, uniqueness,
novelty, FCD, NSPDK ...). ``--profile N`` first runs ``N`` steps of one batch under
``torch.profiler`` and reports where a step's time goes, by the sampler's
``record_function`` sections (energy forward and backward, site gradient, proposal, drawing
the change, applying it, accept/reject, step diagnostics), plus the time of the start noise
and, with ``--score``, of decoding the graphs to RDKit molecules.

Run: ``python benchmarks/molecule_sampling_speed.py --dataset qm9 --energy qm9_energy.pt
--out results/molecule_sampling_speed_qm9.json`` (also writes the ``.md`` beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table  # noqa: E402

from structebm.chem.dense import MAX_BOND_ORDER, DenseMolGraph  # noqa: E402
from structebm.chem.features import ChemistryFeatures  # noqa: E402
from structebm.chem.generation import fitted_atom_prior, sample_molecules  # noqa: E402
from structebm.chem.vocab import AtomVocabulary, get_vocabulary  # noqa: E402
from structebm.energies.graph import RelationalGraphEnergy  # noqa: E402

SECTIONS = (
    "gwg.energy_forward", "gwg.energy_backward", "gwg.energy_and_grad", "gwg.site_gradient", "gwg.proposal", "gwg.draw_change",
    "gwg.apply_change", "gwg.accept_reject", "gwg.step_info",
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("qm9", "zinc250k"), default="qm9")
    parser.add_argument("--energy", required=True, help="state_dict of the energy (.pt, from --save-energy)")
    parser.add_argument("--out", default=None, help="JSON output path (a .md file is written beside it)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--chemistry", action=argparse.BooleanOptionalAction, default=True,
                        help="the energy has ChemistryFeatures (as molecule_generation.py's --chemistry)")
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--sampling-steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=1000, help="chains per sampler call (sample_molecules' default)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="the sampling generator is seeded with seed + 1")
    parser.add_argument("--score", action="store_true", help="score the samples against the test split")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                        help="profile this many steps of one batch first (0: no profile)")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="a checkout whose structebm package is timed alternately with this one")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # samples file of a chunk worker
    args = parser.parse_args(argv)
    if args.worker is None and (args.out is None or not args.out.endswith(".json")):
        parser.error(f"--out must be given and end in .json, got {args.out}")
    if min(args.num_samples, args.batch_size, args.threads) < 1 or args.sampling_steps < 0 or args.profile < 0:
        parser.error("--num-samples, --batch-size and --threads must be >= 1, --sampling-steps and --profile >= 0")
    if args.baseline is not None and not (Path(args.baseline) / "structebm" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: no structebm package there")
    return args


def load_energy(args: argparse.Namespace, vocabulary: AtomVocabulary) -> RelationalGraphEnergy:
    """The benchmark's energy (molecule_generation.py's ``build_energy``) with the saved weights, in eval mode."""
    energy = RelationalGraphEnergy(
        len(vocabulary), MAX_BOND_ORDER, hidden=args.hidden, num_layers=args.num_layers,
        features=ChemistryFeatures(vocabulary) if args.chemistry else None,
    )
    energy.load_state_dict(torch.load(args.energy, weights_only=True))
    return energy.eval()


class Chunks:
    """Samples ``args.num_samples`` molecules one batch at a time with one carried generator."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.vocabulary = get_vocabulary(args.dataset)
        self.energy = load_energy(args, self.vocabulary)
        self.atom_prior = fitted_atom_prior(args.dataset)
        self.generator = torch.Generator().manual_seed(args.seed + 1)
        self.sizes = [min(args.batch_size, args.num_samples - b) for b in range(0, args.num_samples, args.batch_size)]
        self.pieces: list[DenseMolGraph] = []

    def next(self) -> float:
        """Sample the next chunk; return its wall seconds."""
        begin = time.perf_counter()
        graphs = sample_molecules(
            self.energy, self.vocabulary, self.sizes[len(self.pieces)], self.args.sampling_steps, self.generator,
            batch_size=self.args.batch_size, connected_noise=True, atom_prior=self.atom_prior,
        )
        seconds = time.perf_counter() - begin
        self.pieces.append(graphs)
        return seconds

    def graphs(self) -> DenseMolGraph:
        return DenseMolGraph.concatenate(self.pieces)


def worker(args: argparse.Namespace) -> None:
    """Chunk worker of ``--baseline``: one chunk per line ``next`` on stdin, its seconds on stdout."""
    chunks = Chunks(args)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "next":
            print(json.dumps(chunks.next()), flush=True)
        elif line.strip() == "done":
            graphs = chunks.graphs()
            torch.save({"nodes": graphs.nodes, "edges": graphs.edges}, args.worker)
            return


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """Milliseconds per step of each sampler section over ``args.profile`` steps of one batch."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from structebm.chem.graph_space import MolGraphSpace
    from structebm.samplers.graph_sampler import graph_sampler

    vocabulary = get_vocabulary(args.dataset)
    energy = load_energy(args, vocabulary)
    space = MolGraphSpace(vocabulary, connected_noise=True, atom_prior=fitted_atom_prior(args.dataset))
    generator = torch.Generator().manual_seed(args.seed + 1)
    sampler = graph_sampler(energy, space, method="gibbs_with_gradients")
    begin = time.perf_counter()
    noise = space.noise(args.batch_size, generator)
    noise_ms = (time.perf_counter() - begin) * 1e3
    with torch.no_grad():
        state = sampler.init(noise, None)
        for _ in range(3):  # warm-up
            state, _ = sampler.step(state, generator)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            begin = time.perf_counter()
            for _ in range(args.profile):
                state, _ = sampler.step(state, generator)
            total = (time.perf_counter() - begin) * 1e3 / args.profile
    spent = {event.key: event.cpu_time_total / 1e3 / args.profile for event in prof.key_averages() if event.key in SECTIONS}
    sections = {name.removeprefix("gwg."): spent.get(name, 0.0) for name in SECTIONS}
    sections["other"] = max(total - sum(sections.values()), 0.0)
    return {
        "batch_size": args.batch_size, "steps": args.profile, "step_ms": total,
        "section_ms_per_step": sections, "section_share": {k: v / total for k, v in sections.items()},
        "noise_ms_per_batch": noise_ms,
    }


def score(graphs: DenseMolGraph, dataset: str, reference: Any, train_smiles: Sequence[str]) -> dict[str, Any]:
    """Generation metrics of ``graphs`` and the seconds spent decoding them."""
    from structebm.chem.evaluate import METRIC_KEYS
    from structebm.chem.generation import generation_metrics
    from structebm.chem.metrics import DecodedMolecules

    vocabulary = get_vocabulary(dataset)
    begin = time.perf_counter()
    decoded = DecodedMolecules(graphs, vocabulary)
    decoded.as_generated, decoded.corrected  # noqa: B018 - decode both forms now, inside the timed span
    decode_seconds = time.perf_counter() - begin
    scores = generation_metrics(decoded, vocabulary, train_smiles, reference, METRIC_KEYS)
    return {**scores, "decode_seconds": decode_seconds}


def timed_runs(args: argparse.Namespace, argv: Sequence[str]) -> tuple[dict[str, Any], dict[str, DenseMolGraph]]:
    """Time the chunks of this checkout (and of ``--baseline``, alternating); return timings and samples.

    ``argv``: this run's flags, which the baseline's worker process gets too."""
    chunks = Chunks(args)
    times: dict[str, list[float]] = {"current": []}
    baseline = None
    if args.baseline is not None:
        samples_file = Path(args.out).with_name(Path(args.out).stem + "_baseline_samples.pt")
        command = [sys.executable, __file__, *argv, "--worker", str(samples_file)]
        env = {**os.environ, "PYTHONPATH": str(Path(args.baseline).resolve())}
        baseline = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        if baseline.stdout.readline().strip() != "ready":
            raise RuntimeError("molecule_sampling_speed: the baseline worker did not start")
        times["baseline"] = []
    for index in range(len(chunks.sizes)):
        order = ["current", "baseline"] if baseline is None or index % 2 == 0 else ["baseline", "current"]
        for name in order[: len(times)]:
            if name == "current":
                times[name].append(chunks.next())
            else:
                baseline.stdin.write("next\n")
                baseline.stdin.flush()
                times[name].append(json.loads(baseline.stdout.readline()))
    samples = {"current": chunks.graphs()}
    if baseline is not None:
        baseline.stdin.write("done\n")
        baseline.stdin.flush()
        if baseline.wait() != 0:
            raise RuntimeError("molecule_sampling_speed: the baseline worker failed")
        saved = torch.load(samples_file, weights_only=True)
        samples["baseline"] = DenseMolGraph(saved["nodes"], saved["edges"], saved["nodes"] > 0)
        samples_file.unlink()
    result: dict[str, Any] = {
        name: {"seconds": sum(t), "samples_per_second": args.num_samples / sum(t), "chunk_seconds": t}
        for name, t in times.items()
    }
    if baseline is not None:
        result["speedup"] = statistics.median(b / c for b, c in zip(times["baseline"], times["current"]))
        same = samples["current"].nodes.equal(samples["baseline"].nodes) and samples["current"].edges.equal(samples["baseline"].edges)
        result["identical_samples"] = same
    return result, samples


def markdown(args: argparse.Namespace, payload: dict[str, Any]) -> str:
    rows = [
        {"code": name, "samples_per_second": run["samples_per_second"], "seconds": run["seconds"],
         **{k: run.get("scores", {}).get(k) for k in ("validity_wo_correction", "uniqueness", "fcd", "nspdk")}}
        for name, run in payload["runs"].items() if isinstance(run, dict) and "seconds" in run
    ]
    text = (
        f"# Molecule sampling throughput on {args.dataset}\n\n"
        f"{args.num_samples} samples, {args.sampling_steps} Gibbs-with-gradients steps, batches of "
        f"{args.batch_size}, {args.threads} torch thread(s), energy {args.energy}.\n\n" + markdown_table(rows)
    )
    if "speedup" in payload["runs"]:
        text += (f"\nPaired speedup over the baseline (median over chunks): {payload['runs']['speedup']:.2f}; "
                 f"identical samples: {payload['runs']['identical_samples']}\n")
    if payload.get("profile"):
        prof = payload["profile"]
        section_rows = [{"section": k, "ms_per_step": v, "share": prof["section_share"][k]}
                        for k, v in prof["section_ms_per_step"].items()]
        text += f"\nProfile ({prof['steps']} steps of {prof['batch_size']} chains, {prof['step_ms']:.1f} ms per step):\n\n"
        text += markdown_table(section_rows)
    return text + f"\n_{', '.join(f'{k}={v}' for k, v in {**payload['settings'], **payload['environment']}.items())}_\n"


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker is not None:
        worker(args)
        return {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"profile": profile(args) if args.profile else None}
    runs, samples = timed_runs(args, list(sys.argv[1:] if argv is None else argv))
    if args.score:
        from structebm.chem.evaluate import MoleculeReference
        from structebm.data.molecule_datamodule import MoleculeDataModule

        data = MoleculeDataModule(args.dataset, seed=args.seed)
        data.setup("fit")
        reference = MoleculeReference(data.test_smiles)
        for name, graphs in samples.items():
            runs[name]["scores"] = score(graphs, args.dataset, reference, data.train_smiles)
    payload.update(runs=runs, settings={k: v for k, v in vars(args).items() if k not in ("out", "worker")},
                   environment=environment())
    out.write_text(json.dumps(payload, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(args, payload))
    print(out.with_suffix(".md").read_text())
    return payload


if __name__ == "__main__":
    main()
