"""One prepared check of the GPU path: the CUDA tests, then timings beside the peers on the same card.

On a CUDA machine (about 7 minutes on one GPU, ``--budget-seconds``) it runs, in this order:

1. ``tests``: ``pytest -m cuda`` over every test file that carries the ``cuda`` marker
   (samplers, replay buffers, PCD training, resume, bf16 and compile on the GPU);
2. ``langevin_pcd``: the MLP cases of ``benchmarks/langevin_speed.py`` at batch 1024 and 8192,
   structebm beside the hand-written plain-torch loop (the reference), torchebm and ebmkit;
3. ``graph_gwg``: graph Gibbs-with-gradients through ``structebm.chem.generation.sample_molecules``
   on QM9 and ZINC250k graphs with a freshly initialised energy of the molecule recipe's size
   (``recipes/molecule_generation``), on the GPU and on the CPU: molecules per second (timing,
   not quality);
4. ``crf``: linear-chain CRF NLL (forward and backward) and Viterbi beside pytorch-crf and
   torch-struct (``benchmarks/crf_speed.py``);
5. ``options``: structebm's Langevin chain and PCD step with ``compile_energy=True`` and under
   bf16 autocast, each against the plain float32 structebm in the same rounds.

A section starts only while time is left; a section cut short says so in the report. Without
CUDA it runs its CPU half at small sizes (no CUDA tests, no compile timing) and says that CUDA
was absent. Timing is ``benchmarks/_common.py``'s (interleaved rounds, medians, paired ratios);
every timed call on the GPU ends with a device synchronisation.

Usage::

    python benchmarks/gpu_check.py --out results/gpu_check.json    # also writes results/gpu_check.md
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import yaml

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import environment, markdown_table, paired_ratios, synchronized, time_candidates_ms
from benchmarks.crf_speed import build_candidates, make_potentials
from benchmarks.langevin_speed import BenchmarkConfig, EnergySpec, benchmark_inputs, langevin_runners, pcd_runners, run_benchmark

__all__ = ["CheckConfig", "cuda_config", "cpu_config", "run_check", "write_check_report", "main"]

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "molecule_generation"


@dataclass(frozen=True)
class CheckConfig:
    """Sizes and budgets of every section; :func:`cuda_config` and :func:`cpu_config` give the defaults."""

    device: str
    run_tests: bool
    batch_sizes: tuple[int, ...]
    speed: BenchmarkConfig
    graph_datasets: tuple[str, ...] = ("qm9", "zinc250k")
    graph_samples: int = 1000
    graph_steps: int = 50
    graph_cpu_samples: int = 128
    graph_cpu_steps: int = 5
    crf_shapes: tuple[tuple[int, int, int], ...] = ((32, 50, 10), (64, 100, 20), (16, 200, 50), (256, 30, 9))
    crf_repeats: int = 10
    compile: bool = True
    budget_seconds: float = 420.0


def cuda_config() -> CheckConfig:
    """The full check on one GPU."""
    speed = BenchmarkConfig(repeats=10, warmup=2, min_seconds=2.0, device="cuda")
    return CheckConfig(device="cuda", run_tests=True, batch_sizes=(1024, 8192), speed=speed)


def cpu_config() -> CheckConfig:
    """The CPU half: the same sections at small sizes, no CUDA tests, no compile timing."""
    speed = BenchmarkConfig(langevin_steps=20, pcd_chain_steps=10, repeats=3, warmup=1, min_seconds=0.0, device="cpu")
    return CheckConfig(
        device="cpu", run_tests=False, batch_sizes=(256,), speed=speed, graph_samples=64, graph_steps=5,
        graph_cpu_samples=0, crf_shapes=((32, 50, 10),), crf_repeats=5, compile=False,
    )


class Budget:
    """Wall-clock budget of the whole check: a section starts only while time is left."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def _cuda_test_files() -> list[str]:
    """Every test file that uses the ``cuda`` marker."""
    return sorted(str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("test_*.py") if "mark.cuda" in path.read_text())


def tests_section(config: CheckConfig, budget: Budget) -> dict[str, Any]:
    """``pytest -m cuda`` over the CUDA test files; one row with the summary line and the exit code."""
    if not config.run_tests:
        return {"rows": [], "note": "not run: CUDA absent (the CUDA tests would all skip)"}
    files = _cuda_test_files()
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", *files],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=max(60.0, budget.left()),
    )
    lines = result.stdout.strip().splitlines()
    print(result.stdout[-6000:], result.stderr[-2000:], sep="\n", flush=True)
    return {"rows": [{"files": " ".join(files), "exit_code": result.returncode, "summary": lines[-1] if lines else result.stderr[-300:]}]}


def langevin_pcd_section(config: CheckConfig, budget: Budget) -> dict[str, Any]:
    """``langevin_speed.run_benchmark`` at every batch size on the device (without its compile variant)."""
    rows: list[dict[str, Any]] = []
    for batch in config.batch_sizes:
        if budget.left() <= 0:
            return {"rows": rows, "note": f"cut short: the budget ran out before batch {batch}"}
        for row in run_benchmark(replace(config.speed, batch_size=batch, compile=False)):
            rows.append({"device": config.device, "batch": batch, **row})
            print({k: v for k, v in rows[-1].items() if k.endswith("_ms") or k.startswith("structebm_vs")}, flush=True)
    return {"rows": rows}


def recipe_energy_settings(dataset: str) -> dict[str, Any]:
    """The energy's ``init_args`` of the molecule recipe: ``base.yaml`` updated by ``<dataset>.yaml``."""
    settings: dict[str, Any] = {}
    for name in ("base.yaml", f"{dataset}.yaml"):
        energy = (yaml.safe_load((RECIPE / name).read_text()).get("model") or {}).get("energy") or {}
        settings.update(energy.get("init_args") or {})
    settings.pop("features", None)
    return settings


def recipe_energy(dataset: str) -> tuple[torch.nn.Module, Any]:
    """A freshly initialised (seed 0) ``RelationalGraphEnergy`` of the molecule recipe's size for ``dataset``,
    with the recipe's ``ChemistryFeatures``, and the data set's atom vocabulary."""
    from structebm.chem.features import ChemistryFeatures
    from structebm.chem.vocab import get_vocabulary
    from structebm.energies.graph import RelationalGraphEnergy

    vocabulary = get_vocabulary(dataset)
    torch.manual_seed(0)
    settings = {**recipe_energy_settings(dataset), "num_node_types": len(vocabulary)}
    return RelationalGraphEnergy(**settings, features=ChemistryFeatures(vocabulary)), vocabulary


def _molecules_per_second(dataset: str, device: str, num_samples: int, num_steps: int) -> dict[str, Any]:
    from structebm.chem.generation import sample_molecules

    energy, vocabulary = recipe_energy(dataset)
    energy = energy.to(device)
    settings = recipe_energy_settings(dataset)

    def sample(steps: int) -> None:
        sample_molecules(energy, vocabulary, num_samples, steps, torch.Generator(device).manual_seed(0),
                         batch_size=num_samples, connected_noise=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    sample(1)  # warm-up: allocator, kernels, lazy initialisation
    begin = time.perf_counter()
    sample(num_steps)
    seconds = time.perf_counter() - begin
    return {
        "dataset": dataset, "device": device, "hidden": settings.get("hidden"), "num_layers": settings.get("num_layers"),
        "parameters": sum(p.numel() for p in energy.parameters()), "max_atoms": vocabulary.max_atoms, "molecules": num_samples,
        "steps": num_steps, "seconds": seconds, "molecules_per_s": num_samples / seconds,
        "chain_steps_per_s": num_samples * num_steps / seconds,
    }


def graph_section(config: CheckConfig, budget: Budget) -> dict[str, Any]:
    """Gibbs-with-gradients throughput on the device, and on the CPU for comparison where the device is a GPU."""
    rows: list[dict[str, Any]] = []
    runs = [(d, config.device, config.graph_samples, config.graph_steps) for d in config.graph_datasets]
    if config.graph_cpu_samples > 0 and config.device != "cpu":
        runs += [(d, "cpu", config.graph_cpu_samples, config.graph_cpu_steps) for d in config.graph_datasets]
    for dataset, device, samples, steps in runs:
        if budget.left() <= 0:
            return {"rows": rows, "note": f"cut short: the budget ran out before {dataset} on {device}"}
        rows.append(_molecules_per_second(dataset, device, samples, steps))
        print(rows[-1], flush=True)
    return {"rows": rows, "note": "chain_steps_per_s = molecules x steps / seconds compares runs of different lengths"}


def crf_section(config: CheckConfig, budget: Budget) -> dict[str, Any]:
    """NLL (forward + backward) and Viterbi of ``crf_speed.build_candidates`` on the device."""
    rows: list[dict[str, Any]] = []
    for batch, length, tags in config.crf_shapes:
        if budget.left() <= 0:
            return {"rows": rows, "note": f"cut short: the budget ran out before shape {(batch, length, tags)}"}
        operations, accuracy = build_candidates(make_potentials(batch, length, tags, 0, config.device), 1, 1, False)
        for operation in ("nll_fwd_bwd", "viterbi"):
            samples = time_candidates_ms(synchronized(operations[operation], config.device), config.crf_repeats, 2)
            times = {name: statistics.median(values) for name, values in samples.items()}
            fastest = min(times["pytorch_crf"], times["torch_struct"])
            rows.append({
                "device": config.device, "batch": batch, "length": length, "tags": tags, "operation": operation,
                **{f"{name}_ms": value for name, value in times.items()}, "speedup_vs_fastest_peer": fastest / times["structebm"],
                "logZ_maxdiff_float64": accuracy["logZ_maxdiff_float64"],
                "viterbi_paths_agree_pytorch_crf": accuracy["viterbi_paths_agree_pytorch_crf"],
            })
            print(rows[-1], flush=True)
    return {"rows": rows}


def _under_autocast(runner: Callable[[], Any], device: str) -> Callable[[], Any]:
    def run() -> Any:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            return runner()

    return run


def options_section(config: CheckConfig, budget: Budget) -> dict[str, Any]:
    """structebm with ``compile_energy=True`` and under bf16 autocast against plain structebm, same rounds."""
    rows: list[dict[str, Any]] = []
    speed = replace(config.speed, compile=config.compile)
    for batch in config.batch_sizes:
        for spec in speed.energies:
            for case in speed.cases:
                if budget.left() <= 0:
                    return {"rows": rows, "note": f"cut short: the budget ran out before {case}/{spec.name} at batch {batch}"}
                rows.append(_option_row(spec, replace(speed, batch_size=batch), case))
                print(rows[-1], flush=True)
    return {"rows": rows, "note": "ratios are option / plain structebm (below 1: the option is faster)"}


def _option_row(spec: EnergySpec, speed: BenchmarkConfig, case: str) -> dict[str, Any]:
    start, data = benchmark_inputs(spec, speed)
    if case == "langevin":
        runners = langevin_runners(spec, speed, start)
        candidates = {"structebm": runners["structebm"], "structebm_bf16": _under_autocast(runners["structebm"], speed.device)}
    else:
        runners = pcd_runners(spec, speed, data)
        separate = pcd_runners(spec, replace(speed, compile=False), data)["structebm"]  # trains its own copy
        candidates = {"structebm": runners["structebm"], "structebm_bf16": _under_autocast(separate, speed.device)}
    if "structebm_compiled" in runners:
        candidates["structebm_compiled"] = runners["structebm_compiled"]
    samples = time_candidates_ms(synchronized(candidates, speed.device), speed.repeats, speed.warmup, speed.min_seconds)
    per = speed.langevin_steps if case == "langevin" else 1
    ratios = paired_ratios(samples, "structebm")
    row: dict[str, Any] = {"device": speed.device, "batch": speed.batch_size, "key": f"{case}/{spec.name}"}
    row.update({f"{name}_ms": statistics.median(times) / per for name, times in samples.items()})
    row.update({f"{name}_vs_structebm": 1.0 / ratio for name, ratio in ratios.items()})
    return row


SECTIONS: dict[str, Callable[[CheckConfig, Budget], dict[str, Any]]] = {
    "tests": tests_section,
    "langevin_pcd": langevin_pcd_section,
    "graph_gwg": graph_section,
    "crf": crf_section,
    "options": options_section,
}


def run_check(config: CheckConfig, sections: Sequence[str] = tuple(SECTIONS)) -> dict[str, Any]:
    """Run the chosen sections in order within ``config.budget_seconds``; return the report's payload."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"gpu_check: unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    cuda = torch.cuda.is_available()
    if config.device.startswith("cuda") and not cuda:
        raise RuntimeError("gpu_check: the configuration asks for CUDA, but torch.cuda.is_available() is False")
    budget = Budget(config.budget_seconds)
    device_name = torch.cuda.get_device_name(0) if cuda else "none"
    print(f"gpu_check: device {config.device}; CUDA {'present: ' + device_name if cuda else 'absent: running the CPU half'}", flush=True)
    results: dict[str, Any] = {}
    for name in sections:
        begin = time.perf_counter()
        if budget.left() <= 0:
            results[name] = {"rows": [], "note": "not run: the budget ran out"}
        else:
            results[name] = SECTIONS[name](config, budget)
        results[name]["seconds"] = time.perf_counter() - begin
    settings = asdict(config)
    settings["speed"]["energies"] = [f"{s.name}" for s in config.speed.energies]
    return {
        "title": "GPU path check", "cuda_available": cuda, "cuda_device": device_name,
        "cuda_note": "CUDA present" if cuda else "CUDA absent: this is the CPU half only; the CUDA half has not run",
        "settings": settings, "environment": environment(), "sections": results,
    }


def write_check_report(payload: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``out`` (JSON) and the Markdown report next to it (one table per section)."""
    if out.suffix != ".json":
        raise ValueError(f"gpu_check: the output path must end in .json, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    parts = [f"# {payload['title']}\n", f"**{payload['cuda_note']}** (device: {payload['cuda_device']}).\n"]
    for name, section in payload["sections"].items():
        parts.append(f"## {name} ({section['seconds']:.1f} s)\n")
        if section.get("note"):
            parts.append(f"_{section['note']}_\n")
        parts.append(markdown_table(section["rows"]) if section["rows"] else "(no rows)\n")
    env = ", ".join(f"{k}={v}" for k, v in payload["environment"].items())
    parts.append(f"_{env}_\n")
    markdown = out.with_suffix(".md")
    markdown.write_text("\n".join(parts))
    return out, markdown


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write (the .md goes next to it)")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--budget-seconds", type=float, default=None, help="stop starting sections after this long")
    parser.add_argument("--cpu", action="store_true", help="run the CPU half even where CUDA is present")
    args = parser.parse_args(argv)
    config = cuda_config() if torch.cuda.is_available() and not args.cpu else cpu_config()
    if args.budget_seconds is not None:
        config = replace(config, budget_seconds=args.budget_seconds)
    payload = run_check(config, args.sections)
    _, markdown = write_check_report(payload, args.out)
    print(markdown.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
