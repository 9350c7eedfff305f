"""Run by test_ddp.py as ``python -m tests.training.ddp_pcd_script OUT_DIR``.

Lightning's DDP strategy relaunches this same command for rank 1, so it must be a script
rather than a pytest function. Each rank saves its parameters and replay buffer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

from tests.training.conftest import gaussian_data, loader, pcd_module, quiet_trainer


class SaveRankState(pl.Callback):
    """Each rank writes its parameters, replay buffer and step count when training ends."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state = {
            "params": [p.detach().clone() for p in pl_module.energy.parameters()],
            "storage": pl_module.objective.source.storage.clone(),
            "filled": pl_module.objective.source.filled.clone(),
            "steps": trainer.global_step,
            "world_size": trainer.world_size,
        }
        torch.save(state, self.out_dir / f"rank{trainer.global_rank}.pt")


def main(out_dir: Path) -> None:
    torch.set_num_threads(1)
    trainer = quiet_trainer(devices=2, strategy="ddp", max_epochs=2, callbacks=[SaveRankState(out_dir)])
    trainer.fit(pcd_module(seed=0), loader(gaussian_data(n=256), 32, 0))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
