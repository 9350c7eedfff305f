"""Molecule generation from a trained graph energy: samplers over a vocabulary, sampling, scoring.

Chains start from noise graphs of the data set's :class:`~structebm.chem.graph_space.MolGraphSpace`
(valence-valid) and run ``T`` steps of a graph sampler targeting

.. math::
    p_\\theta(G) \\propto \\exp(-E_\\theta(G) / T), \\qquad G_0 \\sim \\text{noise}, \\quad
    G_{t+1} \\sim K_\\theta(\\cdot \\mid G_t), \\quad \\text{sample} = G_T,

either over every graph (``unconstrained``: a move may break a valence) or over valence-valid
graphs only (``valence_aware``: the sampler's ``constrained=True`` with the space's
:class:`~structebm.chem.valence.ValenceConstraint`). :func:`generation_metrics` scores the end
points with :func:`~structebm.chem.evaluate.evaluate_molecules`, decoding each batch once
(:class:`~structebm.chem.metrics.DecodedMolecules`). :class:`MoleculeGeneration` does both for
every variant; :class:`~structebm.training.molecule_report.MoleculeGenerationReport` calls it
when ``fit`` ends.

YAML configs cannot build an :class:`~structebm.chem.vocab.AtomVocabulary`, so two adapters
take the data set's name instead: :func:`molecule_sampler` (a ``sampler_factory`` for
:class:`~structebm.objectives.contrastive.ContrastiveDivergence`) and
:class:`MoleculeReplayBuffer` (a persistent chain source). The atom prior of the standard
training split is fitted once per process (:func:`fitted_atom_prior`) and shared by the buffer
and the sampling.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import torch
from torch import nn

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.convert import mol_from_smiles
from structebm.chem.dense import DenseMolGraph
from structebm.chem.draw import molecule_grid_png
from structebm.chem.evaluate import METRIC_KEYS, MoleculeReference, evaluate_molecules
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.metrics import DecodedMolecules
from structebm.chem.statistics import molecule_statistics
from structebm.chem.vocab import AtomVocabulary, get_vocabulary
from structebm.chem.vocab_inference import is_vocabulary_spec
from structebm.data.molecules import training_atom_prior
from structebm.samplers.base import SamplingAlgorithm, check_positive
from structebm.samplers.graph_buffer import GraphReplayBuffer
from structebm.samplers.graph_generation import sample_graphs
from structebm.samplers.graph_sampler import graph_sampler

__all__ = [
    "VARIANTS",
    "fitted_atom_prior",
    "molecule_sampler",
    "MoleculeReplayBuffer",
    "sample_molecules",
    "generation_metrics",
    "MoleculeGeneration",
]

SamplerMethod = Literal["gibbs", "gibbs_with_gradients"]
VARIANTS = ("unconstrained", "valence_aware")
"""Sampling variants: moves may break a valence, or only valence-legal moves."""


@lru_cache(maxsize=None)
def fitted_atom_prior(dataset: str) -> AtomPrior:
    """The :class:`AtomPrior` of the standard training split of ``dataset`` (read from ``$STRUCTEBM_DATA``),
    fitted on first use and kept for the process."""
    return training_atom_prior(dataset.lower())


def molecule_sampler(
    energy: nn.Module, dataset: str, method: SamplerMethod = "gibbs_with_gradients", constrained: bool = False,
    **options: Any,
) -> SamplingAlgorithm:
    """Graph Gibbs or Gibbs-with-gradients over the molecular graph space of ``dataset`` (``"qm9"``, ``"zinc250k"``).

    ``constrained=True`` keeps every move valence-valid. ``options`` go to the sampler
    (:func:`~structebm.samplers.graph_sampler.graph_sampler`: ``sites``, ``num_flips``, ``temperature``).
    """
    return graph_sampler(energy, MolGraphSpace(get_vocabulary(dataset)), method, constrained, **options)


class MoleculeReplayBuffer(GraphReplayBuffer):
    """A :class:`~structebm.samplers.graph_buffer.GraphReplayBuffer` over the graph space of ``dataset``.

    Args:
        dataset: ``"qm9"``, ``"zinc250k"`` or a vocabulary spec line (:mod:`structebm.chem.vocab_inference`).
        capacity, reinit_prob, num_classes, condition_dim: as for ``GraphReplayBuffer`` (``condition_dim``:
            keep each chain's property condition, set from the data module's properties).
        valid_noise: make restart noise valence-valid (needed by constrained samplers).
        connected_noise: restart from random connected, valence-valid graphs (``MolGraphSpace``).
        train_atom_prior: draw the atoms of restart noise from the atom counts and type frequencies
            of the standard training split (:func:`fitted_atom_prior`) instead of uniformly.
        atom_prior: with ``train_atom_prior``, the prior itself as ``{"count_probs": [N + 1 floats],
            "type_probs": [A + 1 floats]}`` instead of the fitted one (a user's file has no standard
            split; its data module writes this setting, see ``MoleculeDataModule.model_settings``).

    Shapes:
        - storage: atoms ``[capacity, N]``, bonds ``[capacity, N, N]`` (``int8``)
    """

    def __init__(
        self, dataset: str = "qm9", capacity: int = 10000, reinit_prob: float = 0.05,
        num_classes: Optional[int] = None, valid_noise: bool = True, connected_noise: bool = False,
        train_atom_prior: bool = False, atom_prior: Optional[dict[str, list[float]]] = None,
        condition_dim: Optional[int] = None,
    ) -> None:
        prior = None
        if train_atom_prior:
            prior = fitted_atom_prior(dataset) if atom_prior is None else AtomPrior(
                torch.tensor(atom_prior["count_probs"]), torch.tensor(atom_prior["type_probs"])
            )
        space = MolGraphSpace(get_vocabulary(dataset), valid_noise, connected_noise, prior)
        super().__init__(space, capacity=capacity, reinit_prob=reinit_prob, num_classes=num_classes,
                         condition_dim=condition_dim)


@torch.no_grad()
def sample_molecules(
    energy: nn.Module,
    vocabulary: AtomVocabulary,
    num_samples: int,
    num_steps: int,
    generator: torch.Generator,
    method: SamplerMethod = "gibbs_with_gradients",
    constrained: bool = False,
    batch_size: int = 1000,
    connected_noise: bool = False,
    atom_prior: Optional[AtomPrior] = None,
    temperature: float = 1.0,
    valid_noise: bool = True,
    progress: bool = False,
) -> DenseMolGraph:
    """``num_samples`` graphs, each the end of a ``num_steps``-step chain started from noise.

    The chains target :math:`e^{-E / T}` with ``temperature`` :math:`T`, over valence-valid graphs
    only when ``constrained``. Chains run in batches of ``batch_size`` on the generator's device;
    the energy is put in eval mode for sampling and restored afterwards. The noise is that of
    :class:`~structebm.chem.graph_space.MolGraphSpace` with ``connected_noise``, ``atom_prior`` and
    ``valid_noise`` (``False``: uniform bonds, no valence correction; not with ``constrained``).
    ``progress`` shows the chains done and molecules per second (:func:`sample_graphs`).

    Shapes:
        - returns ``DenseMolGraph`` with atoms ``[num_samples, N]``, bonds ``[num_samples, N, N]``
    """
    if constrained and not valid_noise:
        raise ValueError("sample_molecules: constrained chains must start from valence-valid noise (valid_noise=True)")
    space = MolGraphSpace(vocabulary, valid_noise=valid_noise, connected_noise=connected_noise, atom_prior=atom_prior)
    return sample_graphs(
        energy, space, num_samples, num_steps, generator, method, batch_size, progress, constrained=constrained,
        temperature=temperature,
    )


def generation_metrics(
    molecules: Union[DenseMolGraph, DecodedMolecules],
    vocabulary: AtomVocabulary,
    train_smiles: Sequence[str],
    test_smiles: Union[Sequence[str], MoleculeReference],
    metrics: Sequence[str] = METRIC_KEYS,
    grid_path: Optional[Path] = None,
    grid_size: int = 20,
) -> dict[str, float]:
    """Score generated molecules with :func:`evaluate_molecules` (decoding them once); optionally draw
    the first ``grid_size`` corrected molecules ("invalid" where even that fails) to ``grid_path``."""
    decoded = molecules if isinstance(molecules, DecodedMolecules) else DecodedMolecules(molecules, vocabulary)
    scores = evaluate_molecules(decoded, train_smiles, test_smiles, metrics=metrics)
    if grid_path is not None and grid_size > 0:
        grid_path.parent.mkdir(parents=True, exist_ok=True)
        molecule_grid_png(decoded.corrected[:grid_size], grid_path)
    return scores


class MoleculeGeneration:
    """Sample molecules from noise with each variant and score them (the task of a generation report).

    Args:
        num_samples: molecules per variant.
        num_steps: sampler steps per chain, from noise.
        method: ``"gibbs"`` or ``"gibbs_with_gradients"``.
        variants: any of ``"unconstrained"``, ``"valence_aware"``.
        metrics: keys of :func:`evaluate_molecules` to compute.
        batch_size: chains run at once.
        seed: seed of the sampling generator (the same for every variant).
        grid_size: molecules drawn per grid (0 = no grid).
        connected_noise: start the chains from random connected, valence-valid graphs.
        train_atom_prior: draw the atoms of the start graphs from :func:`fitted_atom_prior`.
        temperature: the chains target :math:`e^{-E / T}` (:func:`sample_molecules`).
        valid_noise: ``False`` starts the chains from uniform noise (no valence correction, no trees;
            only with ``connected_noise=False`` and the ``unconstrained`` variant).

    Each variant's report holds the metrics, ``invalid_reasons`` (why graphs fail validity without
    correction), ``statistics`` of the corrected molecules
    (:func:`~structebm.chem.statistics.molecule_statistics`) and the sampling speed; the report
    also holds ``test_statistics`` of the reference molecules.
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
        grid_size: int = 20,
        connected_noise: bool = False,
        train_atom_prior: bool = False,
        temperature: float = 1.0,
        valid_noise: bool = True,
    ) -> None:
        unknown = sorted(set(variants) - set(VARIANTS))
        if unknown or not variants:
            raise ValueError(f"MoleculeGeneration: variants must be a non-empty subset of {VARIANTS}, got {list(variants)}")
        if method not in ("gibbs", "gibbs_with_gradients"):
            raise ValueError(f"MoleculeGeneration: method must be 'gibbs' or 'gibbs_with_gradients', got {method!r}")
        bad_metrics = sorted(set(metrics) - set(METRIC_KEYS))
        if bad_metrics:
            raise ValueError(f"MoleculeGeneration: unknown metrics {bad_metrics}; choose from {list(METRIC_KEYS)}")
        self.num_samples, self.num_steps, self.method = num_samples, num_steps, method
        self.variants, self.metrics = list(variants), list(metrics)
        self.batch_size, self.seed, self.grid_size = batch_size, seed, grid_size
        self.connected_noise = connected_noise
        self.train_atom_prior = train_atom_prior
        self.temperature = check_positive(temperature, "temperature", "MoleculeGeneration")
        if not valid_noise and (connected_noise or "valence_aware" in self.variants):
            raise ValueError(
                "MoleculeGeneration: valid_noise=False (uniform noise) needs connected_noise=False and only the "
                f"unconstrained variant, got connected_noise={connected_noise}, variants={self.variants}"
            )
        self.valid_noise = valid_noise

    def evaluate(
        self, energy: nn.Module, datamodule: Any, out_dir: Path, device: torch.device, progress: bool = False
    ) -> dict[str, Any]:
        """Sample and score every variant; ``datamodule`` provides ``vocabulary``, ``train_smiles`` and
        ``test_smiles``. Grids go to ``out_dir / f"molecules_{variant}.png"``; ``progress`` shows a bar
        while sampling (chains done, molecules per second)."""
        needed = ("vocabulary", "train_smiles", "test_smiles")
        if datamodule is None or not all(hasattr(datamodule, name) for name in needed):
            raise ValueError(f"MoleculeGeneration: the data module must provide {', '.join(needed)}")
        vocabulary = datamodule.vocabulary
        report: dict[str, Any] = {
            "num_samples": self.num_samples, "num_steps": self.num_steps, "method": self.method,
            "connected_noise": self.connected_noise, "train_atom_prior": self.train_atom_prior,
            "temperature": self.temperature, "valid_noise": self.valid_noise,
        }
        if hasattr(datamodule, "data_summary"):
            report["data"] = datamodule.data_summary()
        atom_prior = None
        if self.train_atom_prior:  # a named data set's standard split, else the data module's training graphs
            named = not is_vocabulary_spec(vocabulary.name)
            atom_prior = fitted_atom_prior(vocabulary.name) if named else datamodule.atom_prior()
        test = MoleculeReference(datamodule.test_smiles)
        for variant in self.variants:
            generator = torch.Generator(device=device).manual_seed(self.seed)
            begin = time.perf_counter()
            graphs = sample_molecules(
                energy, vocabulary, self.num_samples, self.num_steps, generator, self.method,
                variant == "valence_aware", self.batch_size, self.connected_noise, atom_prior, self.temperature,
                self.valid_noise, progress,
            )
            seconds = time.perf_counter() - begin
            decoded = DecodedMolecules(graphs.to("cpu"), vocabulary)  # decoded once for scores, reasons and statistics
            scores = generation_metrics(
                decoded, vocabulary, datamodule.train_smiles, test, self.metrics,
                out_dir / f"molecules_{variant}.png", self.grid_size,
            )
            valid = [mol for mol in decoded.corrected if mol is not None]
            report[variant] = {
                **scores, "invalid_reasons": decoded.invalidity_reasons,
                "statistics": molecule_statistics(valid, vocabulary) if valid else None,
                "sampling_seconds": seconds, "samples_per_second": self.num_samples / seconds,
            }
        report["test_statistics"] = molecule_statistics([mol_from_smiles(smiles) for smiles in test.smiles], vocabulary)
        return report

    def logged(self, report: dict[str, Any]) -> dict[str, float]:
        """The scalars worth sending to loggers: every metric of every variant."""
        return {f"generation/{v}/{k}": report[v][k] for v in self.variants for k in self.metrics}

    def summary(self, report: dict[str, Any]) -> str:
        """One line per variant with its scores."""
        lines = [
            f"molecule generation: {self.num_samples} samples, {self.num_steps} {self.method} steps from noise "
            f"at temperature {self.temperature:g}"
        ]
        for variant in self.variants:
            scores = ", ".join(f"{k}={report[variant][k]:.4g}" for k in (*self.metrics, "samples_per_second"))
            lines.append(f"  {variant}: {scores}")
        return "\n".join(lines)
