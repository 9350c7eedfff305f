"""Generic graph generation from a trained graph energy: YAML adapters and the end-of-fit report.

Chains start from noise graphs of a :class:`~structebm.graphs.space.GraphSpace` and run ``T``
steps of a graph sampler targeting

.. math::
    p_\\theta(G) \\propto \\exp(-E_\\theta(G) / \\tau), \\qquad G_0 \\sim \\text{noise}, \\quad
    G_{t+1} \\sim K_\\theta(\\cdot \\mid G_t), \\quad \\text{sample} = G_T.

The noise is fitted to the training graphs: node counts and node types from the data module's
``node_prior()``, each pair of occupied slots an edge with the training edge density
(``edge_density()``). :class:`GraphGenerationReport` samples as many graphs as the reference
split holds (as GDSS does), scores them with :func:`~structebm.graphs.evaluate.evaluate_graphs`
and writes ``graph_report.json`` and ``graphs.png``.

YAML configs cannot build a :class:`GraphSpace` with a fitted prior, so:
:func:`graph_sampler` (a ``sampler_factory`` for
:class:`~structebm.objectives.contrastive.ContrastiveDivergence`) and
:class:`GraphChainBuffer` (a persistent chain source) take the space's sizes, and
:class:`FitGraphNoise` fits the buffer's noise to the data module when ``fit`` starts.
The data module is used through its methods only (``node_prior()``, ``edge_density()``,
``max_nodes``, ``num_node_types``, ``num_edge_types``, ``train_graphs``, ``test_graphs``),
as :class:`~structebm.data.graph_datamodule.GraphDataModule` provides them.
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
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers.base import SamplingAlgorithm, check_chain_finite
from structebm.samplers.graph_buffer import GraphReplayBuffer
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients
from structebm.samplers.graph_moves import graph_gibbs
from structebm.training.fit_report import FitReport

__all__ = ["graph_sampler", "GraphChainBuffer", "FitGraphNoise", "fitted_space", "sample_graphs", "GraphGenerationReport"]

SamplerMethod = Literal["gibbs", "gibbs_with_gradients"]


def graph_sampler(
    energy: nn.Module, max_nodes: int, num_node_types: int = 1, num_edge_types: int = 1,
    method: SamplerMethod = "gibbs_with_gradients", **options: Any,
) -> SamplingAlgorithm:
    """Graph Gibbs or Gibbs-with-gradients over ``GraphSpace(max_nodes, K, R)``; ``options``
    (``constrained``, ``num_flips``, ``sites``, ``temperature``) go to the sampler."""
    space = GraphSpace(max_nodes, num_node_types, num_edge_types)
    if method == "gibbs":
        return graph_gibbs(energy, space, **options)
    if method == "gibbs_with_gradients":
        return graph_gibbs_with_gradients(energy, space, **options)
    raise ValueError(f"graph_sampler: method must be 'gibbs' or 'gibbs_with_gradients', got {method!r}")


class GraphChainBuffer(GraphReplayBuffer):
    """A :class:`~structebm.samplers.graph_buffer.GraphReplayBuffer` over ``GraphSpace(max_nodes, K, R)``.

    Its noise is uniform until :meth:`fit_noise` (called by :class:`FitGraphNoise`) fits it.

    Shapes:
        - storage: nodes ``[capacity, N]``, edges ``[capacity, N, N]`` (``int8``)
    """

    def __init__(
        self, max_nodes: int, num_node_types: int = 1, num_edge_types: int = 1,
        capacity: int = 10000, reinit_prob: float = 0.05,
    ) -> None:
        super().__init__(GraphSpace(max_nodes, num_node_types, num_edge_types), capacity=capacity, reinit_prob=reinit_prob)

    def fit_noise(self, space: GraphSpace) -> None:
        """Restart from ``space``'s noise from now on (same capacity and alphabets)."""
        old = self.space
        same = (space.max_nodes, space.num_node_types, space.num_edge_types) == (old.max_nodes, old.num_node_types, old.num_edge_types)
        if not same:
            raise ValueError(f"GraphChainBuffer.fit_noise: the buffer holds graphs of {old}, got {space}")
        self.space = space


def fitted_space(datamodule: Any) -> GraphSpace:
    """The data module's graph space with noise fitted to its training graphs (see the module docstring)."""
    missing = [name for name in ("node_prior", "edge_density", "max_nodes") if not hasattr(datamodule, name)]
    if missing:
        raise ValueError(f"fitted_space: the data module {type(datamodule).__name__} has no {missing} (use GraphDataModule)")
    return GraphSpace(
        datamodule.max_nodes, datamodule.num_node_types, datamodule.num_edge_types,
        node_prior=datamodule.node_prior(), edge_prob=datamodule.edge_density(),
    )


class FitGraphNoise(pl.Callback):
    """When ``fit`` starts, fit the noise of the objective's :class:`GraphChainBuffer` to the data module."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        source = getattr(getattr(pl_module, "objective", None), "source", None)
        if not isinstance(source, GraphChainBuffer):
            raise ValueError(f"FitGraphNoise: the objective's chain source is {type(source).__name__}, not a GraphChainBuffer")
        datamodule = trainer.datamodule
        datamodule.setup("fit")
        source.fit_noise(fitted_space(datamodule))


@torch.no_grad()
def sample_graphs(
    energy: nn.Module, space: GraphSpace, num_samples: int, num_steps: int, generator: torch.Generator,
    method: SamplerMethod = "gibbs_with_gradients", batch_size: int = 1000, **options: Any,
) -> DenseGraph:
    """``num_samples`` graphs, each the end of a ``num_steps``-step chain started from ``space.noise``.

    The energy is put in eval mode for sampling and restored afterwards; ``options`` go to the
    sampler (``temperature``, ``constrained``, ...).

    Shapes:
        - returns ``DenseGraph`` with nodes ``[num_samples, N]``, edges ``[num_samples, N, N]``
    """
    for name, value, least in (("num_samples", num_samples, 1), ("num_steps", num_steps, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"sample_graphs: {name} must be an int >= {least}, got {value!r}")
    build = graph_gibbs if method == "gibbs" else graph_gibbs_with_gradients
    sampler = build(energy, space, **options)
    was_training = energy.training
    energy.eval()
    pieces = []
    try:
        for begin in range(0, num_samples, batch_size):
            state = sampler.init(space.noise(min(batch_size, num_samples - begin), generator), None)
            for _ in range(num_steps):
                state, _ = sampler.step(state, generator)
            check_chain_finite(state, f"sample_graphs ({method})")
            pieces.append(state.x.detach())
    finally:
        energy.train(was_training)
    return DenseGraph.concatenate(pieces)


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
        output_dir: where ``graph_report.json`` and ``graphs.png`` go (default: the trainer's log dir).
        score_train: also sample as many graphs as the training split holds and score them against
            it (``report["train_reference"]``): a figure for tuning that never looks at the test split.

    Attributes:
        report: ``{"degree_mmd", ..., "num_samples", "train_seconds", "sampling_seconds",
        "samples_per_second", ...}`` after ``fit``.
    """

    def __init__(
        self, num_steps: int = 400, num_samples: Optional[int] = None, method: SamplerMethod = "gibbs_with_gradients",
        reference: Literal["test", "train"] = "test", metrics: tuple[str, ...] = GRAPH_MMD_KEYS, batch_size: int = 1000,
        seed: int = 0, temperature: float = 1.0, output_dir: Optional[str] = None, score_train: bool = False,
    ) -> None:
        super().__init__()
        if reference not in ("test", "train"):
            raise ValueError(f"GraphGenerationReport: reference must be 'test' or 'train', got {reference!r}")
        self.num_steps, self.num_samples, self.method = num_steps, num_samples, method
        self.reference, self.metrics, self.batch_size = reference, tuple(metrics), batch_size
        self.seed, self.temperature = seed, temperature
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.score_train = score_train

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        energy = self.energy_of(pl_module, "sample graphs from")
        datamodule = trainer.datamodule
        reference = list(datamodule.test_graphs if self.reference == "test" else datamodule.train_graphs)
        count = len(reference) if self.num_samples is None else self.num_samples
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        started = time.perf_counter()
        graphs = sample_graphs(
            energy, fitted_space(datamodule), count, self.num_steps, generator, self.method, self.batch_size,
            temperature=self.temperature,
        )
        sampling_seconds = time.perf_counter() - started
        report: dict[str, Any] = evaluate_graphs(graphs, reference, self.metrics)
        if self.score_train and self.reference == "test":
            train = list(datamodule.train_graphs)
            extra = sample_graphs(
                energy, fitted_space(datamodule), len(train), self.num_steps, generator, self.method, self.batch_size,
                temperature=self.temperature,
            )
            report["train_reference"] = evaluate_graphs(extra, train, self.metrics)
        report.update(
            reference=self.reference, num_steps=self.num_steps, method=self.method, temperature=self.temperature,
            train_seconds=train_seconds, train_steps=trainer.global_step, sampling_seconds=sampling_seconds,
            samples_per_second=count / max(sampling_seconds, 1e-9),
        )
        folder = self.output_dir or Path(trainer.log_dir or trainer.default_root_dir)
        graph_comparison_png(generated_networkx(graphs), reference, folder / "graphs.png")
        logged = {f"graph/{key}": float(report[f"{key}_mmd"]) for key in self.metrics}
        self.publish(trainer, report, folder / "graph_report.json", logged)
        print("graph generation: " + ", ".join(f"{key} {value:.4f}" for key, value in logged.items()))
