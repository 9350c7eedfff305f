"""Shared pieces of the graph samplers: argument checks, single-site edits and step diagnostics.

Used by :mod:`structebm.samplers.graph_moves` (Gibbs) and
:mod:`structebm.samplers.graph_gwg` (Gibbs-with-gradients); see the former for the sites
(atom slots and bond pairs) and their legal values.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.vocab import AtomVocabulary
from structebm.energies.base import check_energy_output
from structebm.samplers.base import ChainDivergedError, StepInfo

__all__ = ["SiteKind", "build_space", "check_start", "check_shape", "checked_values", "set_sites", "pad_columns", "step_info"]

SiteKind = Literal["atoms", "bonds", "atoms_and_bonds"]


def build_space(energy: nn.Module, vocabulary: AtomVocabulary, where: str) -> MolGraphSpace:
    space = MolGraphSpace(vocabulary)
    if space.max_atoms < 2:
        raise ValueError(f"{where}: graph moves need at least 2 atom slots, vocabulary has max_atoms={space.max_atoms}")
    declared = getattr(energy, "num_atom_types", None)
    if isinstance(declared, int) and declared != len(vocabulary):
        raise ValueError(
            f"{where}: the energy has {declared} atom types but vocabulary {vocabulary.name!r} has {len(vocabulary)}"
        )
    return space


def check_start(space: MolGraphSpace, x: DenseMolGraph, c: Optional[Tensor], valence_aware: bool, where: str) -> None:
    space.validate(x, where)
    if c is not None and (not isinstance(c, Tensor) or c.dim() < 1 or c.shape[0] != x.batch_size):
        got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
        raise ValueError(f"{where}: c must be None or a tensor with batch size {x.batch_size} first, got {got}")
    if valence_aware:
        space.check_valence_valid(x, where)


def check_shape(values: Tensor, count: int, where: str) -> None:
    """Raise the contract's error when the energy did not return a ``Tensor[count]``."""
    if not isinstance(values, Tensor) or values.shape != (count,):
        check_energy_output(values, count, where)


def checked_values(values: Tensor, count: int, where: str) -> Tensor:
    """Detached energies ``[count]``; a non-finite value stops the chain."""
    check_shape(values, count, where)
    if not torch.isfinite(values).all():
        raise ChainDivergedError(f"{where}: the energy is not finite for some graph(s); regularise the energy magnitude")
    return values.detach()


def set_sites(
    atoms: Tensor, bonds: Tensor, is_atom: Tensor, slot: Tensor, row: Tensor, col: Tensor, value: Tensor
) -> DenseMolGraph:
    """Copy of the graphs with one site per row set to ``value`` (atom ``slot`` or bond ``(row, col)``)."""
    index = torch.arange(atoms.shape[0], device=atoms.device)
    atoms, bonds = atoms.clone(), bonds.clone()
    atoms[index, slot] = torch.where(is_atom, value, atoms[index, slot])
    order = torch.where(is_atom, bonds[index, row, col], value)
    bonds[index, row, col] = order
    bonds[index, col, row] = order
    return DenseMolGraph(atoms, bonds, atoms > 0)


def pad_columns(mask: Tensor, width: int) -> Tensor:
    """``[B, K]`` bool mask padded with ``False`` columns to ``[B, width]``."""
    return torch.cat([mask, mask.new_zeros(mask.shape[0], width - mask.shape[1])], dim=1)


def step_info(
    space: MolGraphSpace, x: DenseMolGraph, values: Tensor, extra: Optional[dict[str, Tensor]] = None, **fields: Tensor
) -> StepInfo:
    """``StepInfo`` with ``extra["valence_valid"]`` (1.0 where ``x`` is valence-valid) added."""
    extra = {"valence_valid": space.valence_valid(x).to(values.dtype), **(extra or {})}
    return StepInfo(energy=values, extra=extra, **fields)
