"""Molecule generation on QM9 / ZINC250k: train within a time budget, sample, score.

The model is the recipe's (``recipes/molecule_generation``): a
:class:`~structebm.energies.graph.RelationalGraphEnergy` fitted by persistent contrastive
divergence with graph Gibbs-with-gradients chains kept in a replay buffer,

.. math::
    L = \\overline{E(G^+)} - \\overline{E(G^-)} + \\alpha\\,(\\overline{E(G^+)^2} + \\overline{E(G^-)^2}).

with :math:`\\alpha` = ``--energy-magnitude-weight`` (0.05; the recipe's one-epoch main job uses 0.01).

By default (``--chemistry``) the energy also sees each atom's used, excess and free valence and
adds learned, non-negative weights times the total valence excess and the number of extra
fragments (starting at 10 nats each; the learned values are reported as ``violation_weights``),
and chains start from random connected, valence-valid graphs (``--connected-noise``) whose atoms
are drawn from the atom counts and type frequencies of the training split
(``--train-atom-prior``; :class:`~structebm.chem.atom_prior.AtomPrior`), for the restarts of
training chains and for sampling. The samplers' moves are unconstrained either way.

After ``--train-seconds`` of training, ``--num-samples`` chains start from noise and run
``--sampling-steps`` Gibbs-with-gradients steps (short-run samples: the replay buffer's chains,
which restart from noise with probability ``--reinit-prob`` per draw and take ``--pcd-steps``
steps each time, are a few hundred steps old, and the energy's stationary distribution, reached
by longer chains, is further from the data), once with unconstrained moves and once with
valence-aware moves. The sampled energy is an exponential moving average of the trained weights
(``--ema-decay``; Lightning's ``EMAWeightAveraging``). Metrics follow GDSS (Jo et al., ICML
2022): validity without correction, then uniqueness, novelty, FCD and NSPDK MMD on the valency-corrected molecules, against the
standard test split. Headline metrics are those of the unconstrained sampler (the setting the
published numbers use); ``validity_wo_correction_constrained`` is the valence-aware one, and
``variants`` holds every metric of both, with ``invalid_reasons``
(:func:`~structebm.chem.metrics.invalidity_reasons`: why the graphs fail validity without
correction) and ``statistics`` (:func:`~structebm.chem.statistics.molecule_statistics` of the
corrected molecules: atom, bond and ring-size fractions), beside ``test_statistics`` of the test
split.

Run: ``python benchmarks/molecule_generation.py --dataset qm9 --out results/molecules_qm9.json``
(also writes ``results/molecules_qm9.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EMAWeightAveraging
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table  # noqa: E402

from structebm.chem.convert import mol_from_smiles  # noqa: E402
from structebm.chem.dense import MAX_BOND_ORDER  # noqa: E402
from structebm.chem.evaluate import METRIC_KEYS, MoleculeReference  # noqa: E402
from structebm.chem.features import ChemistryFeatures  # noqa: E402
from structebm.chem.generation import (  # noqa: E402
    VARIANTS,
    MoleculeReplayBuffer,
    fitted_atom_prior,
    generation_metrics,
    molecule_sampler,
    sample_molecules,
)
from structebm.chem.metrics import DecodedMolecules  # noqa: E402
from structebm.chem.statistics import molecule_statistics  # noqa: E402
from structebm.data.molecule_datamodule import MoleculeDataModule  # noqa: E402
from structebm.energies.graph import RelationalGraphEnergy  # noqa: E402
from structebm.objectives.contrastive import ContrastiveDivergence  # noqa: E402
from structebm.training.module import EBMModule  # noqa: E402

HEADLINE = ("validity_with_correction", "uniqueness", "novelty", "fcd", "nspdk")
PUBLISHED = {
    # Figures as reported in Table 1 of GDSS (Jo, Lee & Hwang, "Score-based Generative Modeling
    # of Graphs via the System of Stochastic Differential Equations", ICML 2022).
    "qm9": [
        {"method": "GraphEBM (Liu et al., 2021)", "validity_wo_correction": 8.22, "fcd": 6.143, "nspdk": 0.030},
        {"method": "GDSS (Jo et al., 2022)", "validity_wo_correction": 95.72, "fcd": 2.900, "nspdk": 0.003},
    ],
    "zinc250k": [
        {"method": "GDSS (Jo et al., 2022)", "validity_wo_correction": 97.01, "fcd": 14.656, "nspdk": 0.019},
    ],
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("qm9", "zinc250k"), default="qm9")
    parser.add_argument("--out", required=True, help="JSON output path (a .md file is written beside it)")
    parser.add_argument("--train-seconds", type=float, default=300.0, help="training time budget")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="train exactly this many steps instead (no time budget): the same training on a busy machine")
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--sampling-steps", type=int, default=400,
                        help="sampler steps per chain, from noise (400: chosen on training molecules with "
                             "benchmarks/molecule_chains.py --reference-split train; see the recipe README)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="the sampling chains target exp(-E / T); training chains always use T = 1")
    parser.add_argument("--pcd-steps", type=int, default=10, help="sampler steps per training step")
    parser.add_argument("--buffer-capacity", type=int, default=10_000, help="graphs in the replay buffer")
    parser.add_argument("--reinit-prob", type=float, default=0.05,
                        help="probability that a chain drawn from the replay buffer restarts from noise")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--ema-decay", type=float, default=0.995,
                        help="sample from an exponential moving average of the energy's weights with this decay "
                             "(Lightning's EMAWeightAveraging); --no-ema samples from the last weights")
    parser.add_argument("--no-ema", dest="ema_decay", action="store_const", const=None)
    parser.add_argument("--connected-noise", action=argparse.BooleanOptionalAction, default=True,
                        help="start chains (training restarts and sampling) from random connected, valence-valid "
                             "graphs instead of valence-corrected uniform noise")
    parser.add_argument("--train-atom-prior", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the atoms of noise graphs from the training split's atom counts and type "
                             "frequencies instead of uniformly (AtomPrior)")
    parser.add_argument("--chemistry", action=argparse.BooleanOptionalAction, default=True,
                        help="give the energy the valence features and learned violation terms "
                             "(RelationalGraphEnergy's features=ChemistryFeatures(DATASET))")
    parser.add_argument("--energy-magnitude-weight", type=float, default=0.05,
                        help="alpha of the energy-magnitude penalty; it keeps energies within about 1 / (2 alpha) nats of 0")
    parser.add_argument("--max-test-molecules", type=int, default=None, help="cap the reference set (default: all)")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--save-energy", default=None, help="also save the trained energy's state_dict to this .pt file")
    parser.add_argument("--load-energy", default=None,
                        help="skip training and sample this state_dict (saved by --save-energy with the same model "
                             "flags); train_seconds and train_steps are then null")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="samplers to run (a missing one's headline key is null)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.out.endswith(".json"):
        parser.error(f"--out must end in .json, got {args.out}")
    if args.train_steps is not None and args.train_steps < 1:
        parser.error(f"--train-steps must be a positive int, got {args.train_steps}")
    if args.train_seconds <= 0 or args.num_samples < 1 or args.sampling_steps < 0 or not 0 < args.temperature < float("inf"):
        parser.error("--train-seconds and --temperature must be positive, --num-samples >= 1, --sampling-steps >= 0")
    if args.ema_decay is not None and not 0.0 < args.ema_decay < 1.0:
        parser.error(f"--ema-decay must be in (0, 1), got {args.ema_decay}")
    if args.buffer_capacity < args.batch_size or not 0.0 <= args.reinit_prob <= 1.0:
        parser.error("--buffer-capacity must be at least --batch-size and --reinit-prob in [0, 1]")
    return args


def build_energy(args: argparse.Namespace, data: MoleculeDataModule) -> RelationalGraphEnergy:
    return RelationalGraphEnergy(
        len(data.vocabulary), MAX_BOND_ORDER, hidden=args.hidden, num_layers=args.num_layers,
        features=ChemistryFeatures(data.vocabulary) if args.chemistry else None,
    )


def train(args: argparse.Namespace, data: MoleculeDataModule) -> tuple[EBMModule, float, int]:
    """Fit the recipe's model for ``args.train_steps`` steps, else for at most ``args.train_seconds``;
    return it, the seconds and the steps."""
    pl.seed_everything(args.seed, verbose=False)
    energy = build_energy(args, data)
    objective = ContrastiveDivergence(
        molecule_sampler,
        MoleculeReplayBuffer(
            args.dataset, capacity=args.buffer_capacity, reinit_prob=args.reinit_prob, connected_noise=args.connected_noise,
            train_atom_prior=args.train_atom_prior,
        ),
        num_steps=args.pcd_steps,
        generator_seed=args.seed,
        sampler_options={"dataset": args.dataset, "method": "gibbs_with_gradients", "constrained": False},
        energy_magnitude_weight=args.energy_magnitude_weight,
    )
    module = EBMModule(energy, objective, optimizer=lambda p: torch.optim.Adam(p, lr=args.lr, betas=(0.0, 0.999)))
    trainer = pl.Trainer(
        max_epochs=10_000, max_steps=-1 if args.train_steps is None else args.train_steps,
        max_time=None if args.train_steps is not None else {"seconds": args.train_seconds},
        accelerator=args.accelerator, devices=1,
        gradient_clip_val=1.0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        limit_val_batches=0,
        callbacks=[] if args.ema_decay is None else [EMAWeightAveraging(decay=args.ema_decay, use_buffers=False)],
    )
    begin = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return module, time.perf_counter() - begin, trainer.global_step


def evaluate(
    args: argparse.Namespace, energy: RelationalGraphEnergy, data: MoleculeDataModule, out: Path
) -> dict[str, dict[str, Any]]:
    """Sample and score the variants of ``args.variants``; grids go beside the JSON file."""
    results: dict[str, dict[str, Any]] = {}
    atom_prior = fitted_atom_prior(args.dataset) if args.train_atom_prior else None
    test = MoleculeReference(data.test_smiles)
    for variant in args.variants:
        generator = torch.Generator(device=next(energy.parameters()).device).manual_seed(args.seed + 1)
        begin = time.perf_counter()
        graphs = sample_molecules(
            energy, data.vocabulary, args.num_samples, args.sampling_steps, generator,
            constrained=variant == "valence_aware", connected_noise=args.connected_noise, atom_prior=atom_prior,
            temperature=args.temperature,
        )
        seconds = time.perf_counter() - begin
        grid = out.with_name(f"{out.stem}_{variant}.png")
        decoded = DecodedMolecules(graphs, data.vocabulary)  # decoded once for scores, reasons and statistics
        scores = generation_metrics(decoded, data.vocabulary, data.train_smiles, test, METRIC_KEYS, grid)
        valid = [mol for mol in decoded.corrected if mol is not None]
        results[variant] = {
            **scores, "invalid_reasons": decoded.invalidity_reasons,
            "statistics": molecule_statistics(valid, data.vocabulary) if valid else None,
            "sampling_seconds": seconds, "samples_per_second": args.num_samples / seconds,
        }
    return results


def markdown(args: argparse.Namespace, payload: dict[str, Any]) -> str:
    ours = [] if payload["validity_wo_correction"] is None else [{
        "method": "structebm PCD + GWG (this run)",
        "validity_wo_correction": 100 * payload["validity_wo_correction"],
        "fcd": payload["fcd"],
        "nspdk": payload["nspdk"],
    }]
    rows = ours + PUBLISHED.get(args.dataset, [])
    columns = ["method", "validity_wo_correction", "fcd", "nspdk"]
    detail_rows = [{"sampler": v, **{k: payload["variants"][v][k] for k in (*METRIC_KEYS, "samples_per_second")}}
                   for v in args.variants]
    peers = "" if args.dataset in PUBLISHED else "\nNo published figures are listed for this data set.\n"
    training = (
        f"the energy of {args.load_energy} (not trained in this run)" if args.load_energy is not None
        else f"{payload['train_seconds']:.0f} s of training ({payload['train_steps']} steps)"
    )
    constrained = payload["validity_wo_correction_constrained"]
    return (
        f"# Molecule generation on {args.dataset}\n\n"
        "Validity without correction in %; lower FCD and NSPDK are better. Published rows are the "
        "figures reported in GDSS (Jo, Lee & Hwang, ICML 2022, Table 1), not reruns; GraphEBM is "
        "Liu, Ohana & Wang, \"GraphEBM: Molecular Graph Generation with Energy-Based Models\" (2021).\n\n"
        + markdown_table(rows, columns) + peers
        + f"\nOur run: {training}, "
        f"{payload['num_samples']} samples per variant, {args.sampling_steps} sampler steps from noise "
        f"at temperature {args.temperature:g}; "
        f"validity without correction with valence-aware moves: "
        + ("not run" if constrained is None else f"{100 * constrained:.2f}%") + ".\n\n"
        + markdown_table(detail_rows)
        + f"\n_{', '.join(f'{k}={v}' for k, v in {**payload['settings'], **payload['environment']}.items())}_\n"
    )


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = MoleculeDataModule(args.dataset, batch_size=args.batch_size, max_test_molecules=args.max_test_molecules,
                              seed=args.seed)
    if args.load_energy is None:
        module, train_seconds, steps = train(args, data)
        energy = module.energy
    else:
        data.setup("fit")
        energy, train_seconds, steps = build_energy(args, data), None, None
        energy.load_state_dict(torch.load(args.load_energy, weights_only=True))
    if args.save_energy is not None:
        torch.save(energy.state_dict(), args.save_energy)
    variants = evaluate(args, energy, data, out)
    unconstrained = variants.get("unconstrained", {})
    payload = {
        "validity_wo_correction": unconstrained.get("validity_wo_correction"),
        "validity_wo_correction_constrained": variants.get("valence_aware", {}).get("validity_wo_correction"),
        **{k: unconstrained.get(k) for k in HEADLINE},
        "train_seconds": train_seconds,
        "train_steps": steps,
        "samples_per_second": unconstrained.get("samples_per_second"),
        "num_samples": args.num_samples,
        "violation_weights": (
            None if energy.term_log_weight is None
            else dict(zip(("valence_excess", "extra_fragments"), energy.term_log_weight.detach().exp().tolist()))
        ),
        "variants": variants,
        "test_statistics": molecule_statistics([mol_from_smiles(s) for s in data.test_smiles], data.vocabulary),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "environment": environment(),
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(args, payload))
    print(json.dumps({k: payload[k] for k in list(payload)[:11]}, indent=2))
    return payload


if __name__ == "__main__":
    main()
