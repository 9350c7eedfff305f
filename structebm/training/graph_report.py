"""Graph generation callbacks: fit the chain buffer's noise when ``fit`` starts, report at its end.

:class:`FitGraphNoise` fits the noise of the objective's
:class:`~structebm.samplers.graph_generation.GraphChainBuffer` to the data module's training
graphs (:func:`~structebm.samplers.graph_generation.fitted_space`). :class:`GraphGenerationReport`
samples as many graphs as the reference split holds (as GDSS does) with
:func:`~structebm.samplers.graph_generation.sample_graphs`, scores them with
:func:`~structebm.graphs.evaluate.evaluate_graphs` and writes ``graph_report.json`` and
``graphs.png``. The data module is used through its methods only (``node_prior()``,
``edge_density()``, ``max_nodes``, ``num_node_types``, ``num_edge_types``, ``train_graphs``,
``test_graphs``), as :class:`~structebm.data.graph_datamodule.GraphDataModule` provides them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal, Optional

import lightning.pytorch as pl
import torch
from torch import nn

from structebm.graphs.draw import graph_comparison_png
from structebm.graphs.evaluate import evaluate_graphs, generated_networkx
from structebm.graphs.metrics import GRAPH_MMD_KEYS
from structebm.samplers.graph_generation import GraphChainBuffer, fitted_space, sample_graphs
from structebm.samplers.graph_sampler import GraphSamplerMethod
from structebm.training.fit_report import FitReport

__all__ = ["FitGraphNoise", "GraphGenerationReport"]


class FitGraphNoise(pl.Callback):
    """When ``fit`` starts, fit the noise of the objective's :class:`GraphChainBuffer` to the data module."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        source = getattr(getattr(pl_module, "objective", None), "source", None)
        if not isinstance(source, GraphChainBuffer):
            raise ValueError(f"FitGraphNoise: the objective's chain source is {type(source).__name__}, not a GraphChainBuffer")
        datamodule = trainer.datamodule
        datamodule.setup("fit")
        source.fit_noise(fitted_space(datamodule))


class GraphGenerationReport(FitReport):
    """At the end of ``fit``, sample graphs from fitted noise and score them against a split.

    Args:
        num_steps: sampler steps per chain.
        num_samples: graphs to sample; ``None``: as many as the reference split holds.
        method: ``"gibbs"`` or ``"gibbs_with_gradients"``.
        reference: ``"test"`` (the protocol) or ``"train"`` (for tuning without the test split).
        metrics: keys of :data:`~structebm.graphs.metrics.GRAPH_MMD_KEYS`.
        batch_size: chains run at once.
        seed: seed of the sampling generator.
        temperature: the chains target :math:`e^{-E / \\tau}`.
        num_flips: single-site changes per Gibbs-with-gradients proposal (ignored by ``"gibbs"``).
        output_dir: where ``graph_report.json`` and ``graphs.png`` go (default: the trainer's log dir).
        score_train: also sample as many graphs as the training split holds and score them against
            it (``report["train_reference"]``): a figure for tuning that never looks at the test split.

    Attributes:
        report: ``{"degree_mmd", ..., "num_samples", "train_seconds", "sampling_seconds",
            "samples_per_second", ...}`` after ``fit``.
    """

    def __init__(
        self, num_steps: int = 400, num_samples: Optional[int] = None, method: GraphSamplerMethod = "gibbs_with_gradients",
        reference: Literal["test", "train"] = "test", metrics: tuple[str, ...] = GRAPH_MMD_KEYS, batch_size: int = 1000,
        seed: int = 0, temperature: float = 1.0, output_dir: Optional[str] = None, score_train: bool = False,
        num_flips: int = 1,
    ) -> None:
        super().__init__()
        if reference not in ("test", "train"):
            raise ValueError(f"GraphGenerationReport: reference must be 'test' or 'train', got {reference!r}")
        self.num_steps, self.num_samples, self.method = num_steps, num_samples, method
        self.reference, self.metrics, self.batch_size = reference, tuple(metrics), batch_size
        self.seed, self.temperature = seed, temperature
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.score_train = score_train
        self.sampler_options: dict[str, Any] = {"temperature": temperature}
        if method == "gibbs_with_gradients":
            self.sampler_options["num_flips"] = num_flips

    def score(
        self, energy: nn.Module, datamodule: Any, device: torch.device, progress: bool = False
    ) -> tuple[dict[str, Any], Any, list]:
        """Sample from ``energy`` and score against the reference split of ``datamodule``; ``progress``
        shows a bar while sampling (it does at the end of ``fit`` when the trainer shows one).

        Returns the report (MMDs, ``num_samples``, sampler settings, ``sampling_seconds``,
        ``samples_per_second``), the generated ``DenseGraph`` and the reference graphs.
        """
        reference = list(datamodule.test_graphs if self.reference == "test" else datamodule.train_graphs)
        count = len(reference) if self.num_samples is None else self.num_samples
        generator = torch.Generator(device=device).manual_seed(self.seed)
        started = time.perf_counter()
        graphs = sample_graphs(
            energy, fitted_space(datamodule), count, self.num_steps, generator, self.method, self.batch_size,
            progress, **self.sampler_options,
        )
        sampling_seconds = time.perf_counter() - started
        report: dict[str, Any] = evaluate_graphs(graphs, reference, self.metrics)
        if self.score_train and self.reference == "test":
            train = list(datamodule.train_graphs)
            extra = sample_graphs(
                energy, fitted_space(datamodule), len(train), self.num_steps, generator, self.method, self.batch_size,
                progress, **self.sampler_options,
            )
            report["train_reference"] = evaluate_graphs(extra, train, self.metrics)
        report.update(
            reference=self.reference, num_steps=self.num_steps, method=self.method, **self.sampler_options,
            sampling_seconds=sampling_seconds, samples_per_second=count / max(sampling_seconds, 1e-9),
        )
        return report, graphs, reference

    def report_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        energy = self.energy_of(pl_module, "sample graphs from")
        progress = trainer.progress_bar_callback is not None
        report, graphs, reference = self.score(energy, trainer.datamodule, pl_module.device, progress)
        report.update(train_seconds=train_seconds, train_steps=trainer.global_step)
        folder = self.output_dir or Path(trainer.log_dir or trainer.default_root_dir)
        graph_comparison_png(generated_networkx(graphs), reference, folder / "graphs.png")
        logged = {f"graph/{key}": float(report[f"{key}_mmd"]) for key in self.metrics}
        self.publish(trainer, report, folder / "graph_report.json", logged)
        print("graph generation: " + ", ".join(f"{key} {value:.4f}" for key, value in logged.items()))
