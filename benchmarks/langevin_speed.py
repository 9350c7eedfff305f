"""Speed of Langevin sampling and persistent-CD training: structebm against a hand-written
plain-torch loop, torchebm 0.8.9 and ebmkit 0.16.0, all in one process on one machine.

Two workloads on two MLP energies (SiLU, identical weights copied into every
implementation), batch ``B`` chains:

- ``langevin``: a chain of ``T`` unadjusted Langevin steps,
  :math:`x_{t+1} = x_t - \\epsilon \\nabla_x E(x_t) + \\sigma \\xi_t`; reported as
  milliseconds per step (chain time / ``T``).
- ``pcd_step``: one persistent contrastive-divergence training step: draw chain starts
  from a replay buffer, run ``K`` Langevin steps, loss
  :math:`\\overline{E(x^+)} - \\overline{E(x^-)}`, backward, one Adam step, write the
  chains back; reported as milliseconds per training step.

Every timed call is repeated after warm-up rounds, the implementations take turns within
every round (so a burst of load from other processes hits all of them alike), and the
median time is reported. Ratios are paired: the median over rounds of structebm's time
divided by the peer's time in the same round, so that drifts of the machine's speed cancel. ``--compile`` adds structebm
with ``compile_energy=True`` (the energy's evaluation through ``torch.compile``); ``--device cuda`` runs everything
on the GPU (each timed call then waits for the device).

Usage::

    python benchmarks/langevin_speed.py --out results/langevin_speed.json   # also writes .md
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import paired_ratios, synchronized, time_candidates_ms, write_report
from benchmarks.peers.ebmkit_peer import EbmkitPCD, ebmkit_chain, ebmkit_sampler
from benchmarks.peers.handwritten import HandwrittenPCD, PlainEnergy, langevin_chain
from benchmarks.peers.torchebm_peer import TorchEBMEnergy, TorchEBMPCD, torchebm_chain, torchebm_sampler
from structebm.energies.mlp import MLPEnergy
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.samplers.base import run_chain
from structebm.samplers.chains import ReplayBuffer
from structebm.samplers.langevin import langevin
from structebm.spaces import ContinuousSpace

__all__ = [
    "EnergySpec",
    "BenchmarkConfig",
    "IMPLEMENTATIONS",
    "build_energies",
    "benchmark_inputs",
    "langevin_runners",
    "pcd_runners",
    "run_benchmark",
    "settings_of",
    "write_benchmark_report",
    "main",
]

IMPLEMENTATIONS = ("structebm", "handwritten", "torchebm", "ebmkit")
Runner = Callable[[], Tensor]


@dataclass(frozen=True)
class EnergySpec:
    """An MLP energy ``in_dim -> hidden... -> 1`` with SiLU activations."""

    name: str
    in_dim: int
    hidden: tuple[int, ...]


@dataclass(frozen=True)
class BenchmarkConfig:
    """Every setting of the benchmark; identical for all implementations.

    ``noise_scale`` defaults to :math:`\\sqrt{2\\epsilon}` (the correctly scaled ULA).
    ``pcd_chain_steps`` is ``K``: 20 is a typical short-run PCD length (Du & Mordatch use
    20–60) and long enough that the chain, not the buffer or optimiser, dominates. ``device``
    holds every implementation's energy, chains, buffer and generators (ebmkit keeps its buffer
    on the CPU by design).
    """

    energies: tuple[EnergySpec, ...] = (
        EnergySpec("mlp_2-128-128-1", 2, (128, 128)),
        EnergySpec("mlp_784-256-256-1", 784, (256, 256)),
    )
    batch_size: int = 1024
    langevin_steps: int = 100
    pcd_chain_steps: int = 20
    step_size: float = 0.01
    noise_scale: float = math.sqrt(2 * 0.01)
    buffer_capacity: int = 10000
    reinit_prob: float = 0.05
    learning_rate: float = 1e-4
    warmup: int = 2
    repeats: int = 15
    min_seconds: float = 30.0
    threads: int = 2
    seed: int = 0
    compile: bool = False
    cases: tuple[str, ...] = field(default=("langevin", "pcd_step"))
    device: str = "cpu"


def build_energies(spec: EnergySpec, seed: int, device: str = "cpu") -> tuple[MLPEnergy, PlainEnergy]:
    """structebm's ``MLPEnergy`` and a plain copy of its network with the same weights, on ``device``."""
    torch.manual_seed(seed)
    energy = MLPEnergy(spec.in_dim, spec.hidden, activation="silu").to(device)
    return energy, PlainEnergy(copy.deepcopy(energy.net))


def benchmark_inputs(spec: EnergySpec, config: BenchmarkConfig) -> tuple[Tensor, Tensor]:
    """The chains' start ``[B, in_dim]`` (standard normal) and the PCD data batch (std 0.5), drawn on the
    CPU from ``seed + 3`` (the same numbers on every device) and moved to ``config.device``."""
    inputs = torch.Generator().manual_seed(config.seed + 3)
    start = torch.randn((config.batch_size, spec.in_dim), generator=inputs)
    data = 0.5 * torch.randn((config.batch_size, spec.in_dim), generator=inputs)
    return start.to(config.device), data.to(config.device)


def langevin_runners(spec: EnergySpec, config: BenchmarkConfig, start: Tensor) -> dict[str, Runner]:
    """One closure per implementation, each running the ``T``-step chain from ``start``.

    Every call reseeds its generator, so repeats do identical work and structebm and the
    hand-written loop (and, up to rounding, the peers) return the same samples.
    """
    energy, plain = build_energies(spec, config.seed, config.device)
    eps, sigma, steps, seed = config.step_size, config.noise_scale, config.langevin_steps, config.seed + 1
    device = config.device

    def structebm_with(compile_energy: bool) -> Runner:
        algorithm = langevin(energy, eps, sigma, compile_energy=compile_energy)
        return lambda: run_chain(algorithm, start, steps, torch.Generator(device).manual_seed(seed))[0]

    torchebm_model = TorchEBMEnergy(copy.deepcopy(plain))
    torchebm = torchebm_sampler(torchebm_model, eps, sigma, device)
    ebmkit = ebmkit_sampler(eps, sigma, steps)
    ebmkit_energy = copy.deepcopy(plain)

    def ebmkit_run() -> Tensor:
        torch.manual_seed(seed)
        return ebmkit_chain(ebmkit, ebmkit_energy, start)

    runners: dict[str, Runner] = {
        "structebm": structebm_with(False),
        "handwritten": lambda: langevin_chain(plain, start, eps, sigma, steps, torch.Generator(device).manual_seed(seed)),
        "torchebm": lambda: torchebm_chain(torchebm, start, steps, torch.Generator(device).manual_seed(seed)),
        "ebmkit": ebmkit_run,
    }
    if config.compile:
        runners["structebm_compiled"] = structebm_with(True)
    return runners


def _structebm_pcd(energy: nn.Module, spec: EnergySpec, config: BenchmarkConfig, data: Tensor, compile_energy: bool = False) -> Runner:
    source = ReplayBuffer(ContinuousSpace((spec.in_dim,)), config.buffer_capacity, config.reinit_prob)
    objective = ContrastiveDivergence(
        langevin, source, config.pcd_chain_steps, generator_seed=config.seed + 2,
        sampler_options={"step_size": config.step_size, "noise_scale": config.noise_scale, "compile_energy": compile_energy},
    ).to(config.device)
    objective.bind(energy)
    optimizer = torch.optim.Adam(energy.parameters(), lr=config.learning_rate)

    def step() -> Tensor:
        out = objective(energy, data)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        return out.loss.detach()

    return step


def pcd_runners(spec: EnergySpec, config: BenchmarkConfig, data: Tensor) -> dict[str, Runner]:
    """One closure per implementation making one PCD training step on ``data``.

    Each implementation trains its own copy of the same initial network with its own
    Adam optimiser and replay buffer; a closure returns the detached loss.
    """
    energy, plain = build_energies(spec, config.seed, config.device)
    common = dict(step_size=config.step_size, noise_scale=config.noise_scale, num_steps=config.pcd_chain_steps)
    hand_net = copy.deepcopy(plain)
    handwritten = HandwrittenPCD(
        hand_net, torch.optim.Adam(hand_net.parameters(), lr=config.learning_rate), (spec.in_dim,),
        config.buffer_capacity, config.reinit_prob, generator=torch.Generator(config.device).manual_seed(config.seed + 2), **common,
    )
    torchebm_model = TorchEBMEnergy(copy.deepcopy(plain))
    torchebm = TorchEBMPCD(
        torchebm_model, torch.optim.Adam(torchebm_model.parameters(), lr=config.learning_rate),
        config.buffer_capacity, config.reinit_prob, generator=torch.Generator(config.device).manual_seed(config.seed + 2), **common,
    )
    ebmkit_net = copy.deepcopy(plain)
    torch.manual_seed(config.seed + 2)
    ebmkit = EbmkitPCD(
        ebmkit_net, torch.optim.Adam(ebmkit_net.parameters(), lr=config.learning_rate), (spec.in_dim,),
        config.buffer_capacity, config.reinit_prob, **common,
    )
    runners: dict[str, Runner] = {
        "structebm": _structebm_pcd(energy, spec, config, data),
        "handwritten": lambda: handwritten.step(data),
        "torchebm": lambda: torchebm.step(data),
        "ebmkit": lambda: ebmkit.step(data),
    }
    if config.compile:
        runners["structebm_compiled"] = _structebm_pcd(copy.deepcopy(energy), spec, config, data, compile_energy=True)
    return runners


NOTES = """\
- Same for everyone: SiLU MLP energies with identical initial weights, float32, device {device}, batch {batch_size},
  ULA with step size {step_size:g} and noise std {noise_scale:.4g}; {langevin_steps}-step chains for
  `langevin`; K = {pcd_chain_steps} chain steps, replay buffer of {buffer_capacity} states, Adam
  (lr {learning_rate:g}), loss mean E(data) - mean E(negatives) without regularisers for `pcd_step`.
- structebm goes through its public API: `langevin()` + `run_chain` for `langevin`, and
  `ContrastiveDivergence(langevin, ReplayBuffer(ContinuousSpace), K)` called as the trainer calls it
  (`objective(energy, batch)`, then `zero_grad`, `backward`, Adam `step`) for `pcd_step`. The trainer's
  own finite-loss / finite-gradient checks and logging are not part of any timed step.
- structebm's ULA evaluates lazily (each step evaluates the state it moves from), so a K-step chain
  makes K gradient evaluations, as the others do. It checks the chain for NaN at the start, every
  10 steps and at the end (one summed reduction each), and checks the data batch. `run_chain` and the
  objective donate every state after the first, so from the second step on the chain is updated in
  place with a reused noise tensor, as in the hand-written loop. `MLPEnergy` computes its input
  gradient itself by the chain rule (`energy_and_grad`: one forward pass, then the activations'
  backward kernels and one matrix product per layer, no autograd graph); the others take it with
  `torch.autograd.grad`. The chains agree to rounding (tests/energies/test_mlp.py).
- torchebm: `LangevinDynamics` is an Euler-Maruyama step with diffusion s^2, so its `noise_scale` is set
  to sigma / sqrt(2 epsilon) to give the same noise std. Its PCD buffer starts at N(0, 0.01^2) instead of
  N(0, 1), is read with stratified slots and written FIFO, and instead of restarting chains from noise
  with probability {reinit_prob:g} it perturbs that fraction of the starts with N(0, 0.01^2) noise. Its
  `ContrastiveDivergence` computes the positive and negative energies separately (as all others do).
  Its `ContrastiveDivergenceTrainer.train_step` adds two no-grad energy passes for metrics, so the loss
  is called directly with the same four-line optimiser step as everyone else; the energy regulariser
  (default 0.001) is switched off.
- ebmkit: `LangevinDynamics(step_size, noise_scale)` is the same rule; its sampler freezes the
  parameters while it runs and draws noise from torch's global generator (reseeded before each timed
  chain). `ContrastiveDivergence(sampler, ReplayBuffer)` matches the others' buffer semantics (uniform
  slots, restart from N(0, 1) with probability {reinit_prob:g}, write-back to the drawn slots); the step
  body is the one of `ebm.Trainer.fit` without its batch drawing and metric history.
- hand-written: `torch.autograd.grad` in a Python loop, in-place updates, no checks
  (benchmarks/peers/handwritten.py).
- Timing (benchmarks/_common.py): {warmup} warm-up round(s), then at least {repeats} rounds (more until the
  timed rounds of a case took {min_seconds:g} s) in which every
  implementation runs once, in an order rotating from round to round; median times reported.
  Ratios are paired: median over rounds of (structebm time / peer time in the same round).
  `langevin` ms = chain time / {langevin_steps}. `structebm_compiled` (with `--compile`) is structebm with
  `compile_energy=True` (`MLPEnergy.energy_and_grad` through `torch.compile`, inductor), compilation done in
  the warm-up. On a CUDA device every timed call ends with `torch.cuda.synchronize()`.
"""


def _samples_agree(samples: dict[str, Tensor], reference: str = "handwritten") -> dict[str, float]:
    """Largest absolute difference of each chain end point from the reference's (same seed)."""
    ref = samples[reference]
    return {f"max_abs_diff_{name}": float((x - ref).abs().max()) for name, x in samples.items() if name != reference}


def _summarise(case: str, spec: EnergySpec, samples_ms: dict[str, list[float]], per: int) -> dict[str, object]:
    """One report row from the per-round times: median milliseconds of every implementation per
    step, the paired ratios (median over rounds of structebm's time / the peer's) and the two targets."""
    row: dict[str, object] = {"key": f"{case}/{spec.name}", "case": case, "energy": spec.name}
    row.update({f"{name}_ms": statistics.median(times) / per for name, times in samples_ms.items()})
    ratios = paired_ratios(samples_ms, "structebm")
    for peer in ("handwritten", "torchebm", "ebmkit"):
        row[f"structebm_vs_{peer}"] = ratios[peer]
    if "structebm_compiled" in ratios:
        row["structebm_compiled_gain"] = ratios["structebm_compiled"]
    row["within_5pct_of_handwritten"] = row["structebm_vs_handwritten"] <= 1.05
    row["no_slower_than_peers"] = max(row["structebm_vs_torchebm"], row["structebm_vs_ebmkit"]) <= 1.0
    return row


def run_benchmark(config: BenchmarkConfig) -> list[dict[str, object]]:
    """Time every case on every energy; return one row per ``(case, energy)``.

    A row holds ``key`` (``"<case>/<energy>"``), ``<implementation>_ms`` (per Langevin step
    for ``langevin``, per training step for ``pcd_step``), the ratios ``structebm_vs_*``
    (structebm time / peer time), the two targets as booleans and, for ``langevin``,
    ``max_abs_diff_<implementation>``: the largest difference of its chain end point from
    the hand-written one, all started from the same seed.
    """
    unknown = set(config.cases) - {"langevin", "pcd_step"}
    if unknown:
        raise ValueError(f"langevin_speed: unknown case(s) {sorted(unknown)}; choose from langevin, pcd_step")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    rows: list[dict[str, object]] = []
    try:
        for spec in config.energies:
            start, data = benchmark_inputs(spec, config)
            if "langevin" in config.cases:
                runners = synchronized(langevin_runners(spec, config, start), config.device)
                samples = time_candidates_ms(runners, config.repeats, config.warmup, config.min_seconds)
                row = _summarise("langevin", spec, samples, config.langevin_steps)
                row.update(_samples_agree({name: run() for name, run in runners.items()}))
                rows.append(row)
            if "pcd_step" in config.cases:
                runners = synchronized(pcd_runners(spec, config, data), config.device)
                samples = time_candidates_ms(runners, config.repeats, config.warmup, config.min_seconds)
                rows.append(_summarise("pcd_step", spec, samples, 1))
    finally:
        torch.set_num_threads(previous_threads)
    return rows


def settings_of(config: BenchmarkConfig) -> dict[str, object]:
    """The configuration and the peers' versions, as stored in the report."""
    import ebm
    import torchebm

    settings = asdict(config)
    settings["energies"] = [f"{spec.name} (in {spec.in_dim}, hidden {list(spec.hidden)})" for spec in config.energies]
    settings.update(torchebm=torchebm.__version__, ebmkit=ebm.__version__)
    return settings


def write_benchmark_report(rows: list[dict[str, object]], config: BenchmarkConfig, out: Path) -> tuple[Path, Path]:
    """Write ``out`` (JSON) and the Markdown table next to it, with the environment at ``config.threads`` threads."""
    names = [*IMPLEMENTATIONS] + (["structebm_compiled"] if config.compile else [])
    columns = ["key", *[f"{name}_ms" for name in names], "structebm_vs_handwritten", "structebm_vs_torchebm", "structebm_vs_ebmkit"]
    if config.compile:
        columns.append("structebm_compiled_gain")
    notes = "Times are per Langevin step (`langevin`) or per training step (`pcd_step`); ratios are structebm / peer.\n\n"
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return write_report(
            out, rows, "Langevin / PCD speed", settings_of(config), columns, notes + NOTES.format(**asdict(config))
        )
    finally:
        torch.set_num_threads(previous_threads)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write (the .md goes next to it)")
    parser.add_argument("--compile", action="store_true", help="also time structebm with a torch.compile-d energy")
    parser.add_argument("--repeats", type=int, default=BenchmarkConfig.repeats)
    parser.add_argument("--warmup", type=int, default=BenchmarkConfig.warmup)
    parser.add_argument(
        "--min-seconds", type=float, default=BenchmarkConfig.min_seconds,
        help="per case, add timed rounds until they took this long (cheap cases get more rounds)",
    )
    parser.add_argument("--threads", type=int, default=BenchmarkConfig.threads)
    parser.add_argument("--cases", nargs="+", default=list(BenchmarkConfig.cases), choices=["langevin", "pcd_step"])
    parser.add_argument("--device", default=BenchmarkConfig.device, help="cpu or cuda (every implementation on it)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1 and --warmup >= 0")
    if args.out.suffix != ".json":
        parser.error(f"--out must end in .json, got {args.out}")
    config = BenchmarkConfig(
        repeats=args.repeats, warmup=args.warmup, min_seconds=args.min_seconds, threads=args.threads, compile=args.compile, cases=tuple(args.cases),
        device=args.device,
    )
    rows = run_benchmark(config)
    _, markdown = write_benchmark_report(rows, config, args.out)
    print(markdown.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
