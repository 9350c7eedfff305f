"""``--trainer.precision bf16-mixed`` on the 2-D demo and the molecule recipe (CPU, tiny).

Lightning's bf16-mixed precision runs ``training_step`` under bfloat16 autocast, so the
contrastive-divergence objective samples its negatives there too. What must hold: the flag
reaches the trainer through the recipe's command line, the energies inside training are
computed in bfloat16 (autocast is really on), the chains the sampler writes into the replay
buffer stay float32 (continuous) or integer graphs, and the losses, metrics and parameters stay
finite. Statistical agreement of bf16 and float32 chains is tested in
``tests/samplers/test_mixed_precision.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from structebm.cli import build_cli
from structebm.data.molecules import standard_split

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def fit_recording_energy_dtypes(cli) -> set[torch.dtype]:
    """Fit the CLI's model and return the dtypes of every energy output seen during training."""
    seen: set[torch.dtype] = set()
    hook = cli.model.energy.register_forward_hook(lambda module, args, out: seen.add(out.dtype) if module.training else None)
    try:
        cli.trainer.fit(cli.model, cli.datamodule)
    finally:
        hook.remove()
    return seen


def assert_finite_training(cli) -> None:
    logged = {name: float(value) for name, value in cli.trainer.logged_metrics.items()}
    assert logged and all(math.isfinite(value) for value in logged.values()), logged
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in cli.model.energy.parameters())


def test_toy2d_pcd_trains_under_bf16_mixed_with_float32_chains(tmp_path: Path) -> None:
    cli = build_cli([
        "--config", str(RECIPES / "toy2d" / "base.yaml"),
        "--config", str(RECIPES / "toy2d" / "pcd.yaml"),
        "--trainer.precision=bf16-mixed",
        "--trainer.max_steps=20",
        "--data.init_args.num_train=2000",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.callbacks.init_args.out_dir={tmp_path}",
        "--trainer.callbacks.init_args.num_samples=200",
        "--trainer.callbacks.init_args.langevin_steps=20",
        "--trainer.callbacks.init_args.grid_size=40",
    ], run=False)
    assert cli.trainer.precision == "bf16-mixed"
    assert fit_recording_energy_dtypes(cli) == {torch.bfloat16}
    assert cli.trainer.global_step == 20
    buffer = cli.model.objective.source
    stored = buffer.storage[buffer.filled]
    assert stored.dtype == torch.float32 and stored.shape[0] > 0 and torch.isfinite(stored).all()
    assert_finite_training(cli)


def test_molecule_recipe_trains_under_bf16_mixed(tmp_path: Path) -> None:
    try:
        standard_split("qm9")
    except Exception as error:  # noqa: BLE001 - any failure to resolve the files means no data here
        pytest.fail(f"QM9 is needed by the molecule recipe test (set STRUCTEBM_DATA): {error}")
    recipe = RECIPES / "molecule_generation"
    cli = build_cli([
        "--config", str(recipe / "base.yaml"),
        "--config", str(recipe / "qm9.yaml"),
        "--trainer.precision=bf16-mixed",
        "--trainer.max_steps=3",
        "--data.init_args.batch_size=32",
        "--data.init_args.max_train_molecules=300",
        "--data.init_args.max_test_molecules=100",
        "--model.objective.init_args.num_steps=3",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.callbacks.init_args.output_dir={tmp_path}",
        "--trainer.callbacks.init_args.task.init_args.num_samples=8",
        "--trainer.callbacks.init_args.task.init_args.num_steps=3",
        "--trainer.callbacks.init_args.task.init_args.metrics=[validity_wo_correction]",
    ], run=False)
    assert cli.trainer.precision == "bf16-mixed"
    assert fit_recording_energy_dtypes(cli) == {torch.bfloat16}
    buffer = cli.model.objective.source
    assert buffer.filled.any()
    assert buffer.stored_nodes.dtype == torch.int8 and torch.isfinite(buffer.stored_energy[buffer.filled]).all()
    assert_finite_training(cli)
