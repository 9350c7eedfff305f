"""The learned-only ratio-matching recipes build and train through the ``structebm`` command, tiny.

``ratio_matching.yaml`` over ``base.yaml`` and ``qm9.yaml`` gives a relational graph energy with
structural features only (no chemistry features, no valence terms) and the ratio-matching
objective; ``ratio_matching_pcd.yaml`` on top adds persistent contrastive divergence as a second
term. A few steps on 200 molecules check the plumbing: the loss is finite and the parameters move.
"""

from __future__ import annotations

from pathlib import Path

import torch

from structebm.cli import build_cli
from structebm.energies.graph_structure import StructuralFeatures
from structebm.objectives.combined import Combined
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.objectives.ratio_matching import RatioMatching

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "molecule_generation"


def _cli(tmp_path: Path, *extra: str):
    configs = ["base.yaml", "qm9.yaml", "ratio_matching.yaml", *extra]
    args = [arg for name in configs for arg in ("--config", str(RECIPES / name))]
    return build_cli(args + [
        "--trainer.max_steps", "3", "--trainer.callbacks", "[]", "--trainer.logger", "false",
        "--trainer.default_root_dir", str(tmp_path),
        "--data.init_args.max_train_molecules", "200", "--data.init_args.batch_size", "16",
    ], run=False)


def _fit_moves_parameters(cli) -> None:
    before = [p.detach().clone() for p in cli.model.energy.parameters()]
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, cli.model.energy.parameters()))


def test_ratio_matching_recipe_is_learned_only(tmp_path):
    cli = _cli(tmp_path)
    energy, objective = cli.model.energy, cli.model.objective
    assert isinstance(energy.features, StructuralFeatures) and energy.term_log_weight is None
    assert isinstance(objective, RatioMatching) and objective.criterion == "ratio" and objective.num_sites == 8
    _fit_moves_parameters(cli)


def test_ratio_matching_with_pcd_recipe_has_both_terms(tmp_path):
    cli = _cli(tmp_path, "ratio_matching_pcd.yaml")
    objective = cli.model.objective
    assert isinstance(objective, Combined)
    assert isinstance(objective.terms["ratio"].objective, RatioMatching)
    assert isinstance(objective.terms["pcd"].objective, ContrastiveDivergence)
    assert isinstance(cli.model.energy.features, StructuralFeatures)
    _fit_moves_parameters(cli)
    assert bool(objective.terms["pcd"].objective.source.filled.any())
