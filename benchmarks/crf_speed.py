"""Linear-chain CRF speed on CPU: structebm against pytorch-crf and torch-struct.

For each shape (batch, length, tags) and operation it times, with the same random
potentials copied into every library:

- ``nll_fwd_bwd``: negative log-likelihood of random gold tags summed over the batch, and its
  backward pass into emissions, transitions, start and end;
- ``viterbi``: the best labelling (torch-struct: ``argmax``, its edge indicators, not converted);
- ``sample``: ``--draws`` exact samples per sequence (structebm: forward filtering, backward
  sampling; torch-struct: ``sample``);
- ``topk``: the ``--k`` best labellings (torch-struct: ``topk``).

pytorch-crf has neither sampling nor top-k, and torch-struct's materialise ``[n, B, T-1, K, K]``
edge tensors (seconds per call, and more memory than this machine has at the larger shapes), so
those two peers are timed only at shapes with ``B·T·K² ≤ --max-struct-size``; elsewhere their
columns are empty and ``speedup_vs_fastest_peer`` is ``null``.

It also reports the largest ``|log Z|`` difference to each peer and to a float64 reference.
Conventions: pytorch-crf's ``transitions[i, j]`` is tag ``j`` after tag ``i`` with separate
start / end vectors, as here; torch-struct takes log-potentials ``[B, T-1, K_next, K_prev]``
that must include the emissions, start (first edge) and end (last edge).

Timing interleaves every candidate in each round (see ``_common.time_candidates_ms``) and
reports medians; ``--threads`` defaults to torch's own setting, so ``OMP_NUM_THREADS=1``
gives a single-threaded run.

Run: ``python benchmarks/crf_speed.py --out results/crf_speed.json``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import time_candidates_ms, write_report  # noqa: E402

from structebm.structured import linear_chain  # noqa: E402

SHAPES = [(32, 50, 10), (64, 100, 20), (16, 200, 50), (256, 30, 9)]
PEERS = ("pytorch_crf", "torch_struct")
OPERATIONS = ("nll_fwd_bwd", "viterbi", "sample", "topk")


def make_potentials(batch: int, length: int, num_tags: int, seed: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Random potentials and gold tags, drawn on the CPU (the same numbers on every device), then moved to ``device``."""
    generator = torch.Generator().manual_seed(seed)
    potentials = {
        "emissions": 2.0 * torch.randn(batch, length, num_tags, generator=generator),
        "transitions": torch.randn(num_tags, num_tags, generator=generator),
        "start": torch.randn(num_tags, generator=generator),
        "end": torch.randn(num_tags, generator=generator),
        "tags": torch.randint(0, num_tags, (batch, length), generator=generator),
    }
    return {name: tensor.to(device) for name, tensor in potentials.items()}


def torch_struct_potentials(emissions, transitions, start, end) -> torch.Tensor:
    """Edge log-potentials ``[B, T-1, K_next, K_prev]`` holding every term of the score."""
    edges = emissions[:, 1:, :, None] + transitions.t()
    first = (emissions[:, 0] + start)[:, None, :]
    last = end[:, None]
    length = emissions.shape[1]
    offsets = torch.zeros_like(edges)
    offsets[:, 0] = offsets[:, 0] + first
    offsets[:, length - 2] = offsets[:, length - 2] + last
    return edges + offsets


def leaves(potentials: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [potentials[name].clone().requires_grad_(True) for name in ("emissions", "transitions", "start", "end")]


def build_candidates(
    potentials: dict[str, torch.Tensor], draws: int, k: int, struct_extras: bool
) -> tuple[dict[str, dict[str, Callable]], dict[str, Any]]:
    """Candidates per operation (name → zero-argument callable) and the log-partition agreement,
    on the device of the potentials."""
    import torch_struct
    import torchcrf

    tags = potentials["tags"]
    batch, length, num_tags = potentials["emissions"].shape
    device = potentials["emissions"].device
    ours = leaves(potentials)
    crf = torchcrf.CRF(num_tags, batch_first=True).to(device)
    with torch.no_grad():
        crf.transitions.copy_(potentials["transitions"])
        crf.start_transitions.copy_(potentials["start"])
        crf.end_transitions.copy_(potentials["end"])
    crf_emissions = potentials["emissions"].clone().requires_grad_(True)
    struct_leaves = leaves(potentials)
    gold_parts = torch_struct.LinearChain.to_parts(tags, num_tags).to(potentials["emissions"].dtype)

    def clear(tensors):
        for tensor in tensors:
            tensor.grad = None

    def ours_nll():
        clear(ours)
        loss = (linear_chain.log_partition(*ours) - linear_chain.sequence_score(*ours, tags)).sum()
        loss.backward()

    def crf_nll():
        clear([crf_emissions, *crf.parameters()])
        loss = -crf(crf_emissions, tags, reduction="sum")
        loss.backward()

    def struct_nll():
        clear(struct_leaves)
        log_potentials = torch_struct_potentials(*struct_leaves)
        dist = torch_struct.LinearChainCRF(log_potentials)
        loss = (dist.partition - (log_potentials * gold_parts).sum(dim=(1, 2, 3))).sum()
        loss.backward()

    plain = [potentials[name] for name in ("emissions", "transitions", "start", "end")]

    def ours_viterbi():
        return linear_chain.viterbi(*plain)

    def crf_viterbi():
        with torch.no_grad():
            return crf.decode(potentials["emissions"])

    def struct_viterbi():
        log_potentials = torch_struct_potentials(*plain)
        return torch_struct.LinearChainCRF(log_potentials).argmax

    with torch.no_grad():
        ours_log_z = linear_chain.log_partition(*plain)
        reference = linear_chain.log_partition(*[p.double() for p in plain])
        mask = torch.ones(length, batch, dtype=torch.bool, device=device)
        crf_log_z = crf._compute_normalizer(potentials["emissions"].transpose(0, 1), mask)
        struct_log_z = torch_struct.LinearChainCRF(torch_struct_potentials(*plain)).partition
        crf_double = torchcrf.CRF(num_tags, batch_first=True).double().to(device)
        crf_double.load_state_dict({k: v.double() for k, v in crf.state_dict().items()})
        crf_reference = crf_double._compute_normalizer(potentials["emissions"].double().transpose(0, 1), mask)
        best_scores, best_paths = ours_viterbi()
        crf_paths = torch.tensor(crf_viterbi(), device=device)
    accuracy = {
        "logZ_maxdiff_pytorch_crf": (ours_log_z - crf_log_z).abs().max().item(),
        "logZ_maxdiff_torch_struct": (ours_log_z - struct_log_z).abs().max().item(),
        "logZ_maxdiff_float64": (ours_log_z.double() - crf_reference).abs().max().item(),
        "peer_logZ_maxdiff_float64": max(
            (crf_log_z.double() - crf_reference).abs().max().item(),
            (struct_log_z.double() - crf_reference).abs().max().item(),
        ),
        "float64_logZ_vs_pytorch_crf_float64": (reference - crf_reference).abs().max().item(),
        "viterbi_paths_agree_pytorch_crf": bool((best_paths == crf_paths).all()),
    }
    sampler = torch.Generator(device).manual_seed(0)
    operations = {
        "nll_fwd_bwd": {"structebm": ours_nll, "pytorch_crf": crf_nll, "torch_struct": struct_nll},
        "viterbi": {"structebm": ours_viterbi, "pytorch_crf": crf_viterbi, "torch_struct": struct_viterbi},
        "sample": {"structebm": lambda: linear_chain.sample(*plain, draws, generator=sampler)},
        "topk": {"structebm": lambda: linear_chain.topk(*plain, k)},
    }
    if struct_extras:
        operations["sample"]["torch_struct"] = lambda: torch_struct.LinearChainCRF(torch_struct_potentials(*plain)).sample((draws,))
        operations["topk"]["torch_struct"] = lambda: torch_struct.LinearChainCRF(torch_struct_potentials(*plain)).topk(k)
    return operations, accuracy


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output JSON path; a Markdown table is written next to it")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own, e.g. from OMP_NUM_THREADS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shapes", nargs="+", default=[",".join(map(str, shape)) for shape in SHAPES], help="BATCH,LENGTH,TAGS ...")
    parser.add_argument("--operations", nargs="+", default=list(OPERATIONS), choices=OPERATIONS)
    parser.add_argument("--draws", type=int, default=10, help="samples per sequence for the sample operation")
    parser.add_argument("--k", type=int, default=5, help="labellings per sequence for the topk operation")
    parser.add_argument("--max-struct-size", type=int, default=200_000, help="largest B*T*K^2 at which torch-struct samples and top-k are timed")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    shapes = [tuple(int(part) for part in shape.split(",")) for shape in args.shapes]
    if any(len(shape) != 3 or min(shape) < 1 or shape[1] < 2 for shape in shapes):
        parser.error(f"--shapes: each shape is BATCH,LENGTH,TAGS with positive sizes and LENGTH >= 2, got {args.shapes}")
    rows = []
    for batch, length, num_tags in shapes:
        struct_extras = batch * length * num_tags**2 <= args.max_struct_size
        operations, accuracy = build_candidates(make_potentials(batch, length, num_tags, args.seed), args.draws, args.k, struct_extras)
        for operation in args.operations:
            candidates = operations[operation]
            samples = time_candidates_ms(candidates, repeats=args.repeats, warmup=args.warmup)
            times = {name: statistics.median(values) for name, values in samples.items()}
            peers = [peer for peer in PEERS if peer in times]
            fastest_peer = min((times[peer] for peer in peers), default=None)
            fastest_peer_min = min((min(samples[peer]) for peer in peers), default=None)
            rows.append(
                {
                    "batch": batch,
                    "length": length,
                    "tags": num_tags,
                    "operation": operation,
                    "structebm_ms": times["structebm"],
                    "pytorch_crf_ms": times.get("pytorch_crf"),
                    "torch_struct_ms": times.get("torch_struct"),
                    "speedup_vs_fastest_peer": None if fastest_peer is None else fastest_peer / times["structebm"],
                    "speedup_of_minimum_times": None if fastest_peer_min is None else fastest_peer_min / min(samples["structebm"]),
                    **accuracy,
                }
            )
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    columns = [
        "batch", "length", "tags", "operation", "structebm_ms", "pytorch_crf_ms", "torch_struct_ms",
        "speedup_vs_fastest_peer", "speedup_of_minimum_times", "logZ_maxdiff_pytorch_crf", "logZ_maxdiff_torch_struct", "logZ_maxdiff_float64",
    ]
    notes = (
        "Medians over interleaved rounds after warm-up, CPU, float32; speedup_of_minimum_times compares the "
        "fastest round of each (less sensitive to load from other processes). logZ_maxdiff_* compare float32 log Z; "
        "logZ_maxdiff_float64 is against pytorch-crf run in float64."
    )
    settings = {
        "threads": torch.get_num_threads(), "repeats": args.repeats, "warmup": args.warmup, "seed": args.seed,
        "draws": args.draws, "k": args.k, "max_struct_size": args.max_struct_size, "shapes": shapes,
        "operations": args.operations,
    }
    json_path, md_path = write_report(args.out, rows, "Linear-chain CRF speed (CPU)", settings, columns, notes)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
