"""How far below its one-edit neighbours does a trained molecule energy put the training molecules?

Loads a :class:`~structebm.energies.graph.RelationalGraphEnergy` ``state_dict`` (as
``benchmarks/learned_molecule_probe.py --save-energy`` writes it), takes ``--num-molecules``
randomly chosen training molecules and lists every legal single-site neighbour of each (one atom
changed, added or removed, or one bond changed; :func:`~structebm.objectives.site_differences.graph_neighbours`).
Each neighbour falls in one class: ``over_valent`` (some atom carries more bonds than its type
allows), else ``disconnected`` (more than one fragment), else ``valence_valid``. Per class it
reports the share of neighbours, the energy gap :math:`\\Delta = E(\\text{neighbour}) - E(\\text{molecule})`
(mean and quartiles), the fraction with :math:`\\Delta < 0` (more probable than the molecule)
and the mean over molecules of the single-site Gibbs mass leaving the molecule into that class,
:math:`\\log \\sum_{y \\in \\text{class}} e^{-\\Delta(y)}`. An energy that has learned valences puts
over-valent neighbours many nats above the data.

Run: ``python benchmarks/neighbour_gaps.py --energy /tmp/energy.pt --features structural --out results/gaps.json``
(also writes ``.md``).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_report  # noqa: E402

from structebm.chem.convert import smiles_to_dense  # noqa: E402
from structebm.chem.dense import MAX_BOND_ORDER  # noqa: E402
from structebm.chem.graph_space import MolGraphSpace  # noqa: E402
from structebm.chem.valence import is_valence_valid  # noqa: E402
from structebm.chem.vocab import get_vocabulary  # noqa: E402
from structebm.data.molecules import load_smiles, standard_split  # noqa: E402
from structebm.energies.graph import RelationalGraphEnergy  # noqa: E402
from structebm.energies.graph_structure import StructuralFeatures  # noqa: E402
from structebm.graphs.state import DenseGraph  # noqa: E402
from structebm.objectives.site_differences import choose_sites, graph_neighbours, num_sites_of  # noqa: E402

CLASSES = ("over_valent", "disconnected", "valence_valid")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--energy", required=True, help="state_dict of the trained energy")
    parser.add_argument("--out", required=True, help="JSON output path (a .md file is written beside it)")
    parser.add_argument("--label", default=None, help="row label (default: the energy file's name)")
    parser.add_argument("--dataset", choices=("qm9", "zinc250k"), default="qm9")
    parser.add_argument("--features", choices=("none", "structural"), default="none", help="as the energy was trained")
    parser.add_argument("--hidden", type=int, default=64, help="as the energy was trained")
    parser.add_argument("--num-layers", type=int, default=3, help="as the energy was trained")
    parser.add_argument("--num-molecules", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.out.endswith(".json"):
        parser.error(f"--out must end in .json, got {args.out}")
    return args


def connected(graph: DenseGraph) -> torch.Tensor:
    """``[B]`` bool: the occupied slots form one connected component (an empty graph counts as connected)."""
    adjacency = (graph.edges > 0).float() + torch.diag_embed(graph.mask.float())
    reach = adjacency
    for _ in range(graph.max_nodes):
        reach = ((reach @ adjacency) > 0).float()
    first = graph.mask.float().argmax(dim=1)
    from_first = reach[torch.arange(graph.batch_size), first] > 0
    return (from_first | ~graph.mask).all(dim=1)


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    vocabulary = get_vocabulary(args.dataset)
    energy = RelationalGraphEnergy(
        len(vocabulary), MAX_BOND_ORDER, hidden=args.hidden, num_layers=args.num_layers,
        features=StructuralFeatures() if args.features == "structural" else None,
    )
    energy.load_state_dict(torch.load(args.energy, weights_only=True))
    energy.eval()
    smiles = load_smiles(args.dataset)
    train = [smiles[row] for row in standard_split(args.dataset)["train"]]
    x = smiles_to_dense(random.Random(args.seed).sample(train, args.num_molecules), vocabulary)
    space = MolGraphSpace(vocabulary)
    sites = choose_sites(x.batch_size, num_sites_of(x), None, torch.Generator(), x.device)
    _, _, owner, neighbours = graph_neighbours(space, x, sites)
    with torch.no_grad():
        own = energy(x)
        gaps = torch.cat([energy(part) for part in _chunks(neighbours, 4096)]) - own[owner]
    over = ~is_valence_valid(neighbours, vocabulary)
    disconnected = ~over & ~connected(neighbours)
    kinds = {"over_valent": over, "disconnected": disconnected, "valence_valid": ~over & ~disconnected}
    label = args.label or Path(args.energy).stem
    rows = []
    for name in CLASSES:
        chosen = kinds[name]
        values = gaps[chosen]
        mass = _log_mass(-values, owner[chosen], x.batch_size)
        q1, median, q3 = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75])).tolist() if values.numel() else [float("nan")] * 3
        rows.append({
            "energy": label, "neighbours": name, "share": float(chosen.float().mean()),
            "gap_mean": float(values.mean()) if values.numel() else float("nan"), "gap_q1": q1, "gap_median": median,
            "gap_q3": q3, "below_molecule": float((values < 0).float().mean()) if values.numel() else float("nan"),
            "log_gibbs_mass": float(mass[torch.isfinite(mass)].mean()) if torch.isfinite(mass).any() else float("nan"),
        })
        print(rows[-1], flush=True)
    write_report(
        args.out, rows, f"Energy gaps from {args.num_molecules} training molecules to their one-edit neighbours",
        settings=vars(args),
        columns=["energy", "neighbours", "share", "gap_mean", "gap_q1", "gap_median", "gap_q3", "below_molecule", "log_gibbs_mass"],
        notes="gap = E(neighbour) - E(molecule); log_gibbs_mass = mean over molecules of log sum exp(-gap) over the class.",
    )
    return rows


def _chunks(graphs: DenseGraph, size: int):
    for start in range(0, graphs.batch_size, size):
        yield graphs[start : start + size]


def _log_mass(logits: torch.Tensor, owner: torch.Tensor, count: int) -> torch.Tensor:
    """``[count]``: ``log sum exp`` of ``logits`` grouped by ``owner`` (``-inf`` for empty groups)."""
    peak = torch.full((count,), float("-inf")).scatter_reduce(0, owner, logits, "amax", include_self=True)
    safe = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    total = torch.zeros(count).index_add(0, owner, (logits - safe[owner]).exp())
    return safe + total.log()


if __name__ == "__main__":
    main()
