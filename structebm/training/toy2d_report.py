"""End-of-training report for 2-D energies: density and samples beside the data, and MMD.

In two dimensions the normaliser can be computed by quadrature on a grid
(:mod:`structebm.evaluation.grid_density`), so the report shows the model itself (the
grid-normalised density ``exp(-E)/Z``) and, separately, what a Langevin sampler makes of it.
Two MMDs (:mod:`structebm.evaluation.mmd`) to held-out data are printed and saved:

- ``mmd_model``: samples drawn exactly from the grid-normalised density (the model's
  quality, independent of any MCMC);
- ``mmd_langevin``: samples from a long Langevin chain started from uniform noise
  (the model plus the sampler used in practice).

MMD² uses a sum of RBF kernels with bandwidths :data:`MMD_BANDWIDTHS`, so that it sees
both the modes' placement and their width.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import lightning.pytorch as pl
import torch
from torch import Tensor

from structebm.evaluation.grid_density import grid_density, sample_grid_density
from structebm.evaluation.mmd import mmd_rbf
from structebm.samplers.base import run_chain
from structebm.samplers.langevin import langevin
from structebm.training.fit_report import FitReport

__all__ = ["Toy2DReport", "MMD_BANDWIDTHS"]

MMD_BANDWIDTHS = (0.1, 0.3, 1.0)


class Toy2DReport(FitReport):
    """Writes ``report.png`` and ``metrics.json`` into ``out_dir`` when fitting ends.

    Needs a datamodule with a ``test_x`` tensor ``[n, 2]`` (e.g. :class:`Toy2DDataModule`).

    Args:
        out_dir: where to write; default: the trainer's log directory.
        num_samples: samples drawn for each MMD (and the scatter plots).
        langevin_steps, step_size: the Langevin chain used for ``mmd_langevin``.
        box: half-width of the plotted and integrated square.
        grid_size: grid points per axis for the density.
        seed: seeds both samplers.

    Attributes:
        report: ``mmd_model``, ``mmd_langevin``, ``num_samples``, ``langevin_steps``,
            ``langevin_step_size`` and ``train_seconds`` after ``fit`` (also in ``metrics.json``).
    """

    def __init__(
        self,
        out_dir: Optional[str] = None,
        num_samples: int = 2000,
        langevin_steps: int = 500,
        step_size: float = 0.01,
        box: float = 4.5,
        grid_size: int = 200,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.num_samples = num_samples
        self.langevin_steps = langevin_steps
        self.step_size = step_size
        self.box = box
        self.grid_size = grid_size
        self.seed = seed

    def report_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        test_x = getattr(trainer.datamodule, "test_x", None)
        if test_x is None:
            raise AttributeError("Toy2DReport needs trainer.datamodule.test_x (held-out data [n, 2])")
        energy = self.energy_of(pl_module, "evaluate").cpu().eval()
        generator = torch.Generator().manual_seed(self.seed)
        points, mass, cell_area = grid_density(energy, self.box, self.grid_size)
        model_samples = sample_grid_density(points, mass, cell_area, self.num_samples, generator)
        noise = (torch.rand(self.num_samples, 2, generator=generator) * 2 - 1) * self.box
        sampler = langevin(energy, step_size=self.step_size)
        chain_samples, _ = run_chain(sampler, noise, self.langevin_steps, generator)
        reference = test_x[: self.num_samples]
        report = {
            "mmd_model": mmd_rbf(model_samples, reference, MMD_BANDWIDTHS),
            "mmd_langevin": mmd_rbf(chain_samples, reference, MMD_BANDWIDTHS),
            "num_samples": self.num_samples,
            "langevin_steps": self.langevin_steps,
            "langevin_step_size": self.step_size,
            "train_seconds": train_seconds,
        }
        out = Path(self.out_dir or trainer.log_dir or ".")
        self.publish(trainer, report, out / "metrics.json", {f"toy2d/{k}": report[k] for k in ("mmd_model", "mmd_langevin")})
        self._plot(reference, mass, model_samples, chain_samples, out / "report.png")
        energy.to(pl_module.device).train()
        print(f"toy2d: MMD² to held-out data — model {report['mmd_model']:.5f}, "
              f"Langevin samples {report['mmd_langevin']:.5f}; figure {out / 'report.png'}")

    def _plot(self, data: Tensor, mass: Tensor, model_samples: Tensor, chain_samples: Tensor, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 4, figsize=(16, 4))
        extent = (-self.box, self.box, -self.box, self.box)
        panels = [("held-out data", data), ("exact samples of the model", model_samples), ("Langevin samples", chain_samples)]
        axes[0].imshow(mass.reshape(self.grid_size, self.grid_size).numpy(), origin="lower", extent=extent, cmap="viridis")
        axes[0].set_title("learned density exp(-E)/Z")
        for ax, (title, pts) in zip(axes[1:], panels):
            ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=1, alpha=0.5)
            ax.set_xlim(-self.box, self.box)
            ax.set_ylim(-self.box, self.box)
            ax.set_title(title)
        for ax in axes:
            ax.set_aspect("equal")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
