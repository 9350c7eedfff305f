"""Sample molecules from a trained graph energy and score them with the GDSS / MOSES metrics.

Chains start from noise graphs of the data set's :class:`~structebm.chem.graph_space.MolGraphSpace`
(valence-valid after :func:`~structebm.chem.valence.correct_valence`) and run ``T`` steps of a
graph sampler targeting

.. math::
    p_\\theta(G) \\propto \\exp(-E_\\theta(G)), \\qquad G_0 \\sim \\text{noise}, \\quad
    G_{t+1} \\sim K_\\theta(\\cdot \\mid G_t), \\quad \\text{sample} = G_T,

either over every graph (``unconstrained``: a move may break a valence) or over valence-valid
graphs only (``valence_aware``). :func:`generation_metrics` scores the end points with
:func:`~structebm.chem.evaluate.evaluate_molecules`; :class:`MoleculeGenerationReport` does
both at the end of ``fit`` for every variant, writes ``molecule_report.json`` and one PNG grid
per variant, and prints a summary.

YAML configs cannot build an :class:`~structebm.chem.vocab.AtomVocabulary`, so two adapters
take the data set's name instead: :func:`molecule_sampler` (a ``sampler_factory`` for
:class:`~structebm.objectives.contrastive.ContrastiveDivergence`) and
:class:`MoleculeReplayBuffer` (a persistent chain source).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import lightning.pytorch as pl
import torch
from torch import nn

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.dense import DenseMolGraph
from structebm.chem.draw import molecule_grid_png
from structebm.chem.evaluate import METRIC_KEYS, MoleculeReference, evaluate_molecules
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.metrics import corrected_molecules
from structebm.chem.vocab import AtomVocabulary, get_vocabulary
from structebm.data.molecules import training_atom_prior
from structebm.samplers.base import SamplingAlgorithm, check_chain_finite, check_positive
from structebm.samplers.graph_buffer import GraphReplayBuffer
from structebm.samplers.graph_gwg import graph_gibbs_with_gradients
from structebm.samplers.graph_moves import graph_gibbs
from structebm.training.fit_report import FitReport

__all__ = [
    "VARIANTS",
    "molecule_sampler",
    "MoleculeReplayBuffer",
    "sample_molecules",
    "generation_metrics",
    "MoleculeGenerationReport",
]

SamplerMethod = Literal["gibbs", "gibbs_with_gradients"]
VARIANTS = ("unconstrained", "valence_aware")
"""Sampling variants: moves may break a valence, or only valence-legal moves."""


def molecule_sampler(
    energy: nn.Module, dataset: str, method: SamplerMethod = "gibbs_with_gradients", valence_aware: bool = False, **options: Any
) -> SamplingAlgorithm:
    """Graph Gibbs or Gibbs-with-gradients over the vocabulary of ``dataset`` (``"qm9"``, ``"zinc250k"``).

    ``options`` go to :func:`~structebm.samplers.graph_moves.graph_gibbs` (``sites``) or
    :func:`~structebm.samplers.graph_gwg.graph_gibbs_with_gradients` (``num_flips``).
    """
    vocabulary = get_vocabulary(dataset)
    if method == "gibbs":
        return graph_gibbs(energy, vocabulary, valence_aware=valence_aware, **options)
    if method == "gibbs_with_gradients":
        return graph_gibbs_with_gradients(energy, vocabulary, valence_aware=valence_aware, **options)
    raise ValueError(f"molecule_sampler: method must be 'gibbs' or 'gibbs_with_gradients', got {method!r}")


class MoleculeReplayBuffer(GraphReplayBuffer):
    """A :class:`~structebm.samplers.graph_buffer.GraphReplayBuffer` over the graph space of ``dataset``.

    Args:
        dataset: ``"qm9"`` or ``"zinc250k"``.
        capacity, reinit_prob, num_classes: as for ``GraphReplayBuffer``.
        valid_noise: make restart noise valence-valid (needed by valence-aware samplers).
        connected_noise: restart from random connected, valence-valid graphs (``MolGraphSpace``).
        train_atom_prior: draw the atoms of restart noise from the atom counts and type frequencies
            of the standard training split (:func:`~structebm.data.molecules.training_atom_prior`,
            read from ``$STRUCTEBM_DATA``) instead of uniformly.

    Shapes:
        - storage: atoms ``[capacity, N]``, bonds ``[capacity, N, N]`` (``int8``)
    """

    def __init__(
        self, dataset: str = "qm9", capacity: int = 10000, reinit_prob: float = 0.05,
        num_classes: Optional[int] = None, valid_noise: bool = True, connected_noise: bool = False,
        train_atom_prior: bool = False,
    ) -> None:
        prior = training_atom_prior(dataset) if train_atom_prior else None
        space = MolGraphSpace(get_vocabulary(dataset), valid_noise, connected_noise, prior)
        super().__init__(space, capacity=capacity, reinit_prob=reinit_prob, num_classes=num_classes)


@torch.no_grad()
def sample_molecules(
    energy: nn.Module,
    vocabulary: AtomVocabulary,
    num_samples: int,
    num_steps: int,
    generator: torch.Generator,
    method: SamplerMethod = "gibbs_with_gradients",
    valence_aware: bool = False,
    batch_size: int = 1000,
    connected_noise: bool = False,
    atom_prior: Optional[AtomPrior] = None,
    temperature: float = 1.0,
) -> DenseMolGraph:
    """``num_samples`` graphs, each the end of a ``num_steps``-step chain started from noise.

    The chains target :math:`e^{-E / T}` with ``temperature`` :math:`T` (see
    :func:`~structebm.samplers.graph_moves.graph_gibbs`).

    Chains run in batches of ``batch_size`` on the generator's device; the energy is put in
    eval mode for sampling and restored afterwards. The noise is that of
    :class:`~structebm.chem.graph_space.MolGraphSpace` with ``connected_noise`` and ``atom_prior``.

    Shapes:
        - returns ``DenseMolGraph`` with atoms ``[num_samples, N]``, bonds ``[num_samples, N, N]``
    """
    for name, value, least in (("num_samples", num_samples, 1), ("num_steps", num_steps, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"sample_molecules: {name} must be an int >= {least}, got {value!r}")
    space = MolGraphSpace(vocabulary, valid_noise=True, connected_noise=connected_noise, atom_prior=atom_prior)
    sampler = molecule_sampler(energy, vocabulary.name, method, valence_aware, temperature=temperature)
    was_training = energy.training
    energy.eval()
    pieces = []
    try:
        for begin in range(0, num_samples, batch_size):
            count = min(batch_size, num_samples - begin)
            state = sampler.init(space.noise(count, generator), None)
            for _ in range(num_steps):
                state, _ = sampler.step(state, generator)
            check_chain_finite(state, f"sample_molecules ({method}, valence_aware={valence_aware})")
            pieces.append(state.x.detach())
    finally:
        energy.train(was_training)
    return DenseMolGraph.concatenate(pieces)


def generation_metrics(
    graphs: DenseMolGraph,
    vocabulary: AtomVocabulary,
    train_smiles: Sequence[str],
    test_smiles: Union[Sequence[str], MoleculeReference],
    metrics: Sequence[str] = METRIC_KEYS,
    grid_path: Optional[Path] = None,
    grid_size: int = 20,
) -> dict[str, float]:
    """Score ``graphs`` with :func:`evaluate_molecules`; optionally draw the first ``grid_size``
    (valency-corrected largest fragment, "invalid" where even that fails) to ``grid_path``."""
    scores = evaluate_molecules(graphs.to("cpu"), train_smiles, test_smiles, vocabulary=vocabulary, metrics=metrics)
    if grid_path is not None and grid_size > 0:
        shown = graphs[: min(grid_size, graphs.batch_size)].to("cpu")
        grid_path.parent.mkdir(parents=True, exist_ok=True)
        molecule_grid_png(corrected_molecules(shown, vocabulary), grid_path)
    return scores


class MoleculeGenerationReport(FitReport):
    """At the end of ``fit``, sample molecules from noise with each variant and score them.

    The data module must provide ``vocabulary``, ``train_smiles`` and ``test_smiles`` (as
    :class:`~structebm.data.molecule_datamodule.MoleculeDataModule` does); the module must
    hold the energy as ``.energy``.

    Args:
        num_samples: molecules per variant.
        num_steps: sampler steps per chain, from noise.
        method: ``"gibbs"`` or ``"gibbs_with_gradients"``.
        variants: any of ``"unconstrained"``, ``"valence_aware"``.
        metrics: keys of :func:`evaluate_molecules` to compute.
        batch_size: chains run at once.
        seed: seed of the sampling generator.
        output_dir: where ``molecule_report.json`` and ``molecules_<variant>.png`` go
            (default: the trainer's log dir).
        grid_size: molecules drawn per grid (0 = no grid).
        connected_noise: start the chains from random connected, valence-valid graphs
            (:class:`~structebm.chem.graph_space.MolGraphSpace`) instead of corrected uniform noise.
        train_atom_prior: draw the atoms of the start graphs from the data module's
            ``atom_prior()`` (atom counts and type frequencies of the training graphs).
        temperature: the chains target :math:`e^{-E / T}` (:func:`sample_molecules`).

    Attributes:
        report: ``{"train_seconds", "num_samples", "num_steps", "method", <variant>: {metrics,
        "sampling_seconds", "samples_per_second"}}`` after ``fit``.
    """

    def __init__(
        self,
        num_samples: int = 1000,
        num_steps: int = 200,
        method: SamplerMethod = "gibbs_with_gradients",
        variants: Sequence[str] = VARIANTS,
        metrics: Sequence[str] = METRIC_KEYS,
        batch_size: int = 1000,
        seed: int = 0,
        output_dir: Optional[str] = None,
        grid_size: int = 20,
        connected_noise: bool = False,
        train_atom_prior: bool = False,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        unknown = sorted(set(variants) - set(VARIANTS))
        if unknown or not variants:
            raise ValueError(f"MoleculeGenerationReport: variants must be a non-empty subset of {VARIANTS}, got {list(variants)}")
        if method not in ("gibbs", "gibbs_with_gradients"):
            raise ValueError(f"MoleculeGenerationReport: method must be 'gibbs' or 'gibbs_with_gradients', got {method!r}")
        bad_metrics = sorted(set(metrics) - set(METRIC_KEYS))
        if bad_metrics:
            raise ValueError(f"MoleculeGenerationReport: unknown metrics {bad_metrics}; choose from {list(METRIC_KEYS)}")
        self.num_samples, self.num_steps, self.method = num_samples, num_steps, method
        self.variants, self.metrics = list(variants), list(metrics)
        self.batch_size, self.seed, self.grid_size = batch_size, seed, grid_size
        self.output_dir = output_dir
        self.connected_noise = connected_noise
        self.train_atom_prior = train_atom_prior
        self.temperature = check_positive(temperature, "temperature", "MoleculeGenerationReport")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = self.train_seconds()
        datamodule = trainer.datamodule
        needed = ("vocabulary", "train_smiles", "test_smiles") + (("atom_prior",) if self.train_atom_prior else ())
        if datamodule is None or not all(hasattr(datamodule, name) for name in needed):
            raise ValueError(f"MoleculeGenerationReport: the trainer's data module must provide {', '.join(needed)}")
        energy = self.energy_of(pl_module, "sample from")
        out_dir = Path(self.output_dir or trainer.log_dir or ".")
        report: dict[str, Any] = {
            "train_seconds": train_seconds, "num_samples": self.num_samples,
            "num_steps": self.num_steps, "method": self.method, "connected_noise": self.connected_noise,
            "train_atom_prior": self.train_atom_prior, "temperature": self.temperature,
        }
        atom_prior = datamodule.atom_prior() if self.train_atom_prior else None
        test = MoleculeReference(datamodule.test_smiles)
        for variant in self.variants:
            generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
            begin = time.perf_counter()
            graphs = sample_molecules(
                energy, datamodule.vocabulary, self.num_samples, self.num_steps, generator,
                self.method, variant == "valence_aware", self.batch_size, self.connected_noise, atom_prior,
                self.temperature,
            )
            seconds = time.perf_counter() - begin
            scores = generation_metrics(
                graphs, datamodule.vocabulary, datamodule.train_smiles, test,
                self.metrics, out_dir / f"molecules_{variant}.png", self.grid_size,
            )
            report[variant] = {**scores, "sampling_seconds": seconds, "samples_per_second": self.num_samples / seconds}
        logged = {f"generation/{v}/{k}": report[v][k] for v in self.variants for k in self.metrics}
        self.publish(trainer, report, out_dir / "molecule_report.json", logged)
        print(self.summary())

    def summary(self) -> str:
        """One line per variant with its scores (after ``fit``)."""
        if self.report is None:
            return "MoleculeGenerationReport: no report yet"
        lines = [
            f"molecule generation: {self.num_samples} samples, {self.num_steps} {self.method} steps from noise "
            f"at temperature {self.temperature:g}"
        ]
        for variant in self.variants:
            scores = ", ".join(f"{k}={self.report[variant][k]:.4g}" for k in (*self.metrics, "samples_per_second"))
            lines.append(f"  {variant}: {scores}")
        return "\n".join(lines)
