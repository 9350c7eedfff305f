"""Lightning DDP on two CPU processes (gloo) trains a PCD model; each rank keeps its own buffer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def test_ddp_two_cpu_processes_train_pcd_with_per_rank_buffers(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MASTER_PORT": "29517"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.training.ddp_pcd_script", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["steps"] == ranks[1]["steps"] == 8  # 256 points / 2 ranks / 32 per batch * 2 epochs
    for p0, p1 in zip(ranks[0]["params"], ranks[1]["params"]):
        torch.testing.assert_close(p0, p1)  # DDP keeps the energies in sync
    assert ranks[0]["filled"].any() and ranks[1]["filled"].any()
    assert not torch.equal(ranks[0]["storage"], ranks[1]["storage"]), "both ranks ran the same chains"
