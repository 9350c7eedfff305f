"""Draw again the molecules a finished ``structebm fit`` run's generation report scored.

The report's task samples each variant from its own seed; with the run's energy, vocabulary and
atom prior, the same call gives the same graphs, so a test can recompute the report's figures
from the molecules themselves.
"""

from __future__ import annotations

from typing import Any

import torch

from structebm.chem.dense import DenseMolGraph
from structebm.chem.generation import fitted_atom_prior, sample_molecules
from structebm.chem.vocab_inference import is_vocabulary_spec

__all__ = ["report_samples", "report_task"]


def report_task(cli: Any) -> Any:
    """The :class:`~structebm.chem.generation.MoleculeGeneration` task of the run's report callback."""
    return next(callback.task for callback in cli.trainer.callbacks if hasattr(callback, "task"))


def report_samples(cli: Any, variant: str) -> DenseMolGraph:
    """The graphs of ``variant`` (``"unconstrained"`` or ``"valence_aware"``) the report scored.

    Shapes:
        - returns ``num_samples`` graphs of the data module's vocabulary.
    """
    task = report_task(cli)
    vocabulary = cli.datamodule.vocabulary
    prior = None
    if task.train_atom_prior:  # a named data set's standard split, else the file's training rows
        named = not is_vocabulary_spec(vocabulary.name)
        prior = fitted_atom_prior(vocabulary.name) if named else cli.datamodule.atom_prior()
    generator = torch.Generator().manual_seed(task.seed)
    return sample_molecules(
        cli.model.energy, vocabulary, task.num_samples, task.num_steps, generator, task.method,
        variant == "valence_aware", task.batch_size, task.connected_noise, prior, task.temperature,
    )
