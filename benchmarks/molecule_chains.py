"""Where do the chains of a trained molecule energy go? Chains from three starts, scored along the way.

Loads a :class:`~structebm.energies.graph.RelationalGraphEnergy` saved by
``benchmarks/molecule_generation.py --save-energy PATH`` and runs ``--num-chains``
Gibbs-with-gradients chains (unconstrained moves unless ``--valence-aware``; target
:math:`e^{-E / T}` with ``--temperature`` :math:`T`) from each start:

- ``noise``: random connected trees over uniformly drawn atoms (``MolGraphSpace(connected_noise=True)``);
- ``prior``: the same trees over atoms drawn from the training split's atom counts and type
  frequencies (:class:`~structebm.chem.atom_prior.AtomPrior`);
- ``test``: randomly chosen test molecules.

Every ``--every`` steps it records the chains' mean energy, validity without correction,
uniqueness, FCD and NSPDK against the reference set (the test split, or its first
``--max-test-molecules``; with ``--reference-split train``, that many randomly chosen training
molecules, so that settings such as the number of sampling steps can be chosen without
looking at the test split) and
:func:`~structebm.chem.statistics.molecule_statistics` of the corrected molecules. The row
``reference`` scores ``--num-chains`` molecules of the reference set themselves: FCD and NSPDK of a sample of
that size from the data, the floor that finite samples put under both. If chains from the test
molecules stay near the reference while chains from noise do not, the energy is better than
the samples it gives in ``--steps`` steps, and the gap is one of mixing.

Run: ``python benchmarks/molecule_chains.py --energy results/qm9.pt --out results/qm9_chains.json``
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

from structebm.chem.convert import mol_from_smiles, smiles_to_dense  # noqa: E402
from structebm.chem.dense import MAX_BOND_ORDER, DenseMolGraph  # noqa: E402
from structebm.chem.evaluate import MoleculeReference, evaluate_molecules  # noqa: E402
from structebm.chem.graph_space import MolGraphSpace  # noqa: E402
from structebm.chem.features import ChemistryFeatures  # noqa: E402
from structebm.chem.generation import fitted_atom_prior  # noqa: E402
from structebm.chem.metrics import DecodedMolecules  # noqa: E402
from structebm.chem.statistics import molecule_statistics  # noqa: E402
from structebm.chem.vocab import get_vocabulary  # noqa: E402
from structebm.data.molecules import load_smiles, standard_split  # noqa: E402
from structebm.energies.graph import RelationalGraphEnergy  # noqa: E402
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients  # noqa: E402

STARTS = ("noise", "prior", "test")
SCORES = ("validity_wo_correction", "uniqueness", "fcd", "nspdk")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--energy", required=True, help="state_dict saved by molecule_generation.py --save-energy")
    parser.add_argument("--out", required=True, help="JSON output path (a .md file is written beside it)")
    parser.add_argument("--dataset", choices=("qm9", "zinc250k"), default="qm9")
    parser.add_argument("--hidden", type=int, default=64, help="as the energy was trained")
    parser.add_argument("--num-layers", type=int, default=3, help="as the energy was trained")
    parser.add_argument("--chemistry", action=argparse.BooleanOptionalAction, default=True, help="as the energy was trained")
    parser.add_argument("--starts", nargs="+", choices=STARTS, default=list(STARTS))
    parser.add_argument("--num-chains", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=1000, help="score the chains every this many steps")
    parser.add_argument("--valence-aware", action="store_true", help="valence-aware moves instead of unconstrained ones")
    parser.add_argument("--temperature", type=float, default=1.0, help="the chains target exp(-E / T)")
    parser.add_argument("--max-test-molecules", type=int, default=None, help="cap the reference set (default: all)")
    parser.add_argument("--reference-split", choices=("test", "train"), default="test",
                        help="score against the test split, or against training molecules (for choosing settings)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.out.endswith(".json"):
        parser.error(f"--out must end in .json, got {args.out}")
    if args.num_chains < 2 or args.steps < 1 or not 1 <= args.every <= args.steps:
        parser.error("--num-chains must be >= 2, --steps >= 1 and --every in 1..--steps")
    if args.max_test_molecules is not None and args.max_test_molecules < args.num_chains:
        parser.error("--max-test-molecules must be at least --num-chains (the reference row samples that many)")
    if args.reference_split == "train" and args.max_test_molecules is None:
        parser.error("--reference-split train needs --max-test-molecules (how many training molecules to score against)")
    return args


def score(graphs: DenseMolGraph, energy: RelationalGraphEnergy, reference: dict[str, Any]) -> dict[str, Any]:
    """Mean energy, the metrics of ``SCORES`` and the statistics of the corrected molecules."""
    vocabulary = reference["vocabulary"]
    with torch.no_grad():
        mean_energy = float(energy(graphs).mean())
    decoded = DecodedMolecules(graphs, vocabulary)  # decoded once for the scores and the statistics
    metrics = evaluate_molecules(decoded, reference["train"], reference["test"], metrics=SCORES)
    valid = [mol for mol in decoded.corrected if mol is not None]
    return {"energy": mean_energy, **metrics, **molecule_statistics(valid, vocabulary)}


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    vocabulary = get_vocabulary(args.dataset)
    energy = RelationalGraphEnergy(
        len(vocabulary), MAX_BOND_ORDER, hidden=args.hidden, num_layers=args.num_layers,
        features=ChemistryFeatures(vocabulary) if args.chemistry else None,
    )
    energy.load_state_dict(torch.load(args.energy, weights_only=True))
    energy.eval()
    smiles = load_smiles(args.dataset)
    split = standard_split(args.dataset)
    train = [smiles[row] for row in split["train"]]
    test = [smiles[row] for row in split["test"][: args.max_test_molecules]]
    scored = random.Random(args.seed).sample(train, args.max_test_molecules) if args.reference_split == "train" else test
    reference_graphs = smiles_to_dense(random.Random(args.seed).sample(scored, args.num_chains), vocabulary)
    test_graphs = (
        smiles_to_dense(random.Random(args.seed).sample(test, args.num_chains), vocabulary) if "test" in args.starts else None
    )
    reference = {"vocabulary": vocabulary, "train": train, "test": MoleculeReference(scored)}
    rows: list[dict[str, Any]] = [{"start": "reference", "step": 0, **score(reference_graphs, energy, reference)}]
    rows[0]["statistics_of_reference_set"] = molecule_statistics([mol_from_smiles(s) for s in scored], vocabulary)
    for start in args.starts:
        generator = torch.Generator().manual_seed(args.seed + 1)
        if start == "test":
            x = test_graphs
        else:
            prior = fitted_atom_prior(args.dataset) if start == "prior" else None
            x = MolGraphSpace(vocabulary, connected_noise=True, atom_prior=prior).noise(args.num_chains, generator)
        sampler = graph_gibbs_with_gradients(
            energy, MolGraphSpace(vocabulary), constrained=args.valence_aware, temperature=args.temperature
        )
        state = sampler.init(x, None)
        rows.append({"start": start, "step": 0, **score(state.x, energy, reference)})
        for step in range(1, args.steps + 1):
            state, _ = sampler.step(state, generator)
            if step % args.every == 0:
                rows.append({"start": start, "step": step, **score(state.x, energy, reference)})
                print({k: rows[-1][k] for k in ("start", "step", "energy", *SCORES)}, flush=True)
    columns = ["start", "step", "energy", *SCORES, "atoms_per_molecule", "rings_per_molecule", "aromatic_molecules"]
    write_report(
        args.out, rows, f"Chains of a {args.dataset} energy from three starts", settings=vars(args), columns=columns,
        notes=f"FCD and NSPDK against the {args.reference_split} split; `reference` is a random sample of it of the "
              "same size (the floor of both metrics at this sample size). Atom, bond and ring-size fractions are in the JSON.",
    )
    return rows


if __name__ == "__main__":
    main()
