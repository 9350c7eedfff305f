"""Molecules for target properties: conditional sampling and the error of the achieved properties.

Each chain runs under one target :math:`c_m` (normalised properties, ``[P]``) and samples
:math:`G_m \\sim p_\\theta(G \\mid c_m)`, from noise, for ``T`` steps of a graph sampler. The
score of a set of chains is, per property :math:`p`, the mean absolute error between the target
in the property's own units and the RDKit property of the generated molecule,

.. math::
    \\mathrm{MAE}_p = \\frac{1}{|V|} \\sum_{m \\in V} \\bigl| y_p(G_m) - y^{\\ast}_{mp} \\bigr|,

over the set :math:`V` of samples valid without correction (a molecule as generated, one
fragment); :func:`property_errors` reports :math:`|V|` beside it.

:class:`ConditionalMoleculeGeneration` is the end-of-training task of a conditional recipe
(the callback :class:`~structebm.training.molecule_report.MoleculeGenerationReport` calls it): the
targets are the properties of the first test molecules, each repeated for several samples.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from rdkit import Chem
from torch import Tensor, nn

from structebm.chem.atom_prior import AtomPrior
from structebm.chem.dense import DenseMolGraph
from structebm.chem.draw import molecule_grid_png
from structebm.chem.evaluate import MoleculeReference, evaluate_molecules
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.metrics import DecodedMolecules
from structebm.chem.properties import PROPERTIES
from structebm.chem.vocab import AtomVocabulary
from structebm.samplers.graph_generation import sample_graphs
from structebm.samplers.graph_sampler import GraphSamplerMethod

__all__ = ["sample_molecules_given", "property_errors", "ConditionalMoleculeGeneration"]


@torch.no_grad()
def sample_molecules_given(
    energy: nn.Module,
    vocabulary: AtomVocabulary,
    c: Optional[Tensor],
    num_steps: int,
    generator: torch.Generator,
    method: GraphSamplerMethod = "gibbs_with_gradients",
    constrained: bool = False,
    batch_size: int = 1000,
    connected_noise: bool = False,
    atom_prior: Optional[AtomPrior] = None,
    temperature: float = 1.0,
    num_samples: Optional[int] = None,
) -> DenseMolGraph:
    """One molecule per row of ``c``: the end of a ``num_steps``-step chain from noise under that condition.

    As :func:`~structebm.chem.generation.sample_molecules`, with chain ``m`` targeting
    :math:`e^{-E(G, c_m) / T}`; the energy is in eval mode while sampling. With ``c=None``
    (an unconditional energy, the same chains for a baseline) give ``num_samples``.

    Shapes:
        - c: ``[M, P]`` float (on the generator's device), or ``None``
        - returns ``DenseMolGraph`` with atoms ``[M, N]``, bonds ``[M, N, N]``
    """
    if c is None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"sample_molecules_given: without c, num_samples must be a positive int, got {num_samples!r}")
    elif not isinstance(c, Tensor) or c.dim() != 2 or not c.is_floating_point() or c.shape[0] == 0:
        got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
        raise ValueError(f"sample_molecules_given: c must be a float tensor [M >= 1, P], got {got}")
    elif num_samples is not None and num_samples != c.shape[0]:
        raise ValueError(f"sample_molecules_given: num_samples={num_samples} but c has {c.shape[0]} rows")
    total = c.shape[0] if c is not None else num_samples
    space = MolGraphSpace(vocabulary, valid_noise=True, connected_noise=connected_noise, atom_prior=atom_prior)
    return sample_graphs(
        energy, space, total, num_steps, generator, method, batch_size, c=c, constrained=constrained, temperature=temperature
    )


def property_errors(molecules: DecodedMolecules, targets: Tensor, names: Sequence[str]) -> dict[str, Any]:
    """``{"mae": {name: MAE}, "num_scored": |V|}`` of the samples valid without correction (module docstring).

    ``targets [M, P]`` are in the properties' own units, one row per molecule; the MAE of a
    property is ``nan`` when no sample is valid.
    """
    if targets.shape != (len(molecules), len(names)):
        raise ValueError(f"property_errors: targets must be [{len(molecules)}, {len(names)}], got {tuple(targets.shape)}")
    unknown = [name for name in names if name not in PROPERTIES]
    if unknown:
        raise ValueError(f"property_errors: only RDKit properties can be scored, not {unknown}; known: {sorted(PROPERTIES)}")
    errors: list[list[float]] = [[] for _ in names]
    for mol, row in zip(molecules.as_generated, targets.tolist()):
        if mol is None or len(Chem.GetMolFrags(mol)) != 1:
            continue
        for p, name in enumerate(names):
            errors[p].append(abs(PROPERTIES[name](mol) - row[p]))
    mae = {name: (sum(e) / len(e) if e else float("nan")) for name, e in zip(names, errors)}
    return {"mae": mae, "num_scored": len(errors[0]) if names else 0}


class ConditionalMoleculeGeneration:
    """Sample molecules for the test molecules' properties and score how close they come.

    Beside the MAE to each sample's own target, ``mae_other_targets`` is the MAE of the same
    samples to the next target's values (targets shifted by one): equal to the MAE when the
    samples ignore their condition, above it when they follow it.

    Args:
        num_targets: targets, the properties of the first test molecules.
        samples_per_target: chains per target.
        num_steps: sampler steps per chain, from noise.
        method: ``"gibbs"`` or ``"gibbs_with_gradients"``.
        constrained: valence-aware moves only.
        batch_size: chains run at once.
        seed: seed of the sampling generator.
        connected_noise: start from random connected, valence-valid graphs.
        train_atom_prior: draw the atoms of the start graphs from the training split's atom prior.
        grid_size: molecules drawn (0 = no picture).
    """

    def __init__(
        self, num_targets: int = 100, samples_per_target: int = 10, num_steps: int = 400,
        method: GraphSamplerMethod = "gibbs_with_gradients", constrained: bool = False, batch_size: int = 1000,
        seed: int = 0, connected_noise: bool = True, train_atom_prior: bool = True, grid_size: int = 20,
    ) -> None:
        for name, value in (("num_targets", num_targets), ("samples_per_target", samples_per_target), ("num_steps", num_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ConditionalMoleculeGeneration: {name} must be a positive int, got {value!r}")
        self.num_targets, self.samples_per_target, self.num_steps = num_targets, samples_per_target, num_steps
        self.method, self.constrained, self.batch_size, self.seed = method, constrained, batch_size, seed
        self.connected_noise, self.train_atom_prior, self.grid_size = connected_noise, train_atom_prior, grid_size

    def targets(self, datamodule: Any) -> tuple[Tensor, Tensor]:
        """``(y [M, P], c [M, P])``: the first test molecules' properties, each repeated
        ``samples_per_target`` times, in their units and normalised."""
        names = getattr(datamodule, "condition_names", [])
        if not names:
            raise ValueError("ConditionalMoleculeGeneration: the data module gives no properties; set data.init_args.properties")
        values = datamodule.test_properties[: self.num_targets].repeat_interleave(self.samples_per_target, dim=0)
        return values, datamodule.property_scaling.normalise(values)

    def evaluate(
        self, energy: nn.Module, datamodule: Any, out_dir: Path, device: torch.device, progress: bool = False
    ) -> dict[str, Any]:
        """Sample one molecule per (target, repeat), score validity, uniqueness, novelty and the property MAE."""
        values, c = self.targets(datamodule)
        atom_prior = datamodule.atom_prior() if self.train_atom_prior else None
        generator = torch.Generator(device=device).manual_seed(self.seed)
        begin = time.perf_counter()
        graphs = sample_molecules_given(
            energy, datamodule.vocabulary, c.to(device), self.num_steps, generator, self.method, self.constrained,
            self.batch_size, self.connected_noise, atom_prior,
        )
        seconds = time.perf_counter() - begin
        decoded = DecodedMolecules(graphs.to("cpu"), datamodule.vocabulary)
        scores = evaluate_molecules(decoded, datamodule.train_smiles, MoleculeReference(datamodule.test_smiles),
                                    metrics=("validity_wo_correction", "validity_with_correction", "uniqueness", "novelty"))
        errors = property_errors(decoded, values, datamodule.condition_names)
        other = property_errors(decoded, values.roll(self.samples_per_target, dims=0), datamodule.condition_names)
        if self.grid_size > 0:
            molecule_grid_png(decoded.corrected[: self.grid_size], out_dir / "molecules_conditional.png")
        return {
            "num_targets": int(values.shape[0] // self.samples_per_target), "samples_per_target": self.samples_per_target,
            "num_steps": self.num_steps, "method": self.method, "properties": list(datamodule.condition_names),
            "property_scaling": datamodule.property_scaling.as_dict(), **scores, **errors,
            "mae_other_targets": other["mae"], "sampling_seconds": seconds,
        }

    def logged(self, report: dict[str, Any]) -> dict[str, float]:
        """Validity, uniqueness, novelty and the MAE of every property."""
        keys = ("validity_wo_correction", "uniqueness", "novelty")
        return {**{f"conditional/{k}": report[k] for k in keys},
                **{f"conditional/mae_{name}": value for name, value in report["mae"].items()}}

    def summary(self, report: dict[str, Any]) -> str:
        """One line: the targets, the scores and the MAE of every property."""
        mae = ", ".join(f"MAE {name} {value:.4g} (to other targets {report['mae_other_targets'][name]:.4g})"
                        for name, value in report["mae"].items())
        return (f"conditional generation: {report['num_targets']} targets x {self.samples_per_target} samples, "
                f"{self.num_steps} {self.method} steps: validity w/o correction {report['validity_wo_correction']:.4g}, "
                f"uniqueness {report['uniqueness']:.4g}, novelty {report['novelty']:.4g}, {mae}")
