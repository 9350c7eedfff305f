"""Fixed-capacity dense molecular graphs.

A batch of ``B`` molecules with at most ``N`` heavy atoms each is three tensors:

* ``atoms [B, N]`` long: ``0`` = empty slot, ``1..A`` = index into an
  :class:`~structebm.chem.vocab.AtomVocabulary`;
* ``bonds [B, N, N]`` long, symmetric, zero diagonal: ``0`` = no bond, ``1`` single,
  ``2`` double, ``3`` triple (kekulized: no aromatic bond type);
* ``mask [B, N]`` bool: ``mask = atoms > 0``.

Rows and columns of empty slots hold no bond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import torch
from torch import Tensor

__all__ = ["DenseMolGraph", "MAX_BOND_ORDER"]

MAX_BOND_ORDER = 3


@dataclass(frozen=True)
class DenseMolGraph:
    """A batch of dense molecular graphs (see the module docstring).

    Construct with :meth:`from_tensors` (which derives the mask) or directly and call
    :meth:`validate`.

    Shapes:
        - atoms: ``[B, N]`` long
        - bonds: ``[B, N, N]`` long
        - mask: ``[B, N]`` bool
    """

    atoms: Tensor
    bonds: Tensor
    mask: Tensor

    @classmethod
    def from_tensors(cls, atoms: Tensor, bonds: Tensor, num_atom_types: Optional[int] = None) -> "DenseMolGraph":
        """Build from ``atoms`` and ``bonds``, derive ``mask = atoms > 0`` and validate."""
        if not isinstance(atoms, Tensor) or not isinstance(bonds, Tensor):
            raise TypeError("DenseMolGraph.from_tensors: atoms and bonds must be tensors")
        graph = cls(atoms.long(), bonds.long(), atoms > 0)
        graph.validate(num_atom_types)
        return graph

    @classmethod
    def empty(cls, batch_size: int, max_atoms: int, device: torch.device | str | None = None) -> "DenseMolGraph":
        atoms = torch.zeros(batch_size, max_atoms, dtype=torch.long, device=device)
        bonds = torch.zeros(batch_size, max_atoms, max_atoms, dtype=torch.long, device=device)
        return cls(atoms, bonds, atoms > 0)

    @classmethod
    def concatenate(cls, graphs: Sequence["DenseMolGraph"]) -> "DenseMolGraph":
        if len(graphs) == 0:
            raise ValueError("DenseMolGraph.concatenate: got no graphs")
        return cls(
            torch.cat([g.atoms for g in graphs]),
            torch.cat([g.bonds for g in graphs]),
            torch.cat([g.mask for g in graphs]),
        )

    @property
    def batch_size(self) -> int:
        return self.atoms.shape[0]

    @property
    def max_atoms(self) -> int:
        return self.atoms.shape[1]

    @property
    def device(self) -> torch.device:
        """Device of the tensors (objectives place their generators by it)."""
        return self.atoms.device

    @property
    def num_atoms(self) -> Tensor:
        """``[B]`` number of occupied slots."""
        return self.mask.sum(dim=1)

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: int | slice | Tensor) -> "DenseMolGraph":
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return DenseMolGraph(self.atoms[index], self.bonds[index], self.mask[index])

    def __iter__(self) -> Iterator["DenseMolGraph"]:
        for i in range(self.batch_size):
            yield self[i]

    def to(self, device: torch.device | str) -> "DenseMolGraph":
        return DenseMolGraph(self.atoms.to(device), self.bonds.to(device), self.mask.to(device))

    def detach(self) -> "DenseMolGraph":
        """The same graphs cut from any autograd graph (objectives detach their negatives)."""
        return DenseMolGraph(self.atoms.detach(), self.bonds.detach(), self.mask.detach())

    def validate(self, num_atom_types: Optional[int] = None) -> "DenseMolGraph":
        """Check shapes, dtypes and the structural rules; raise ValueError naming the first broken one.

        Args:
            num_atom_types: if given, atom indices must lie in ``0..num_atom_types``.
        """
        atoms, bonds, mask = self.atoms, self.bonds, self.mask
        if atoms.dim() != 2:
            raise ValueError(f"DenseMolGraph: atoms must be [B, N], got shape {tuple(atoms.shape)}")
        b, n = atoms.shape
        if bonds.shape != (b, n, n):
            raise ValueError(f"DenseMolGraph: bonds must be [B, N, N] = {(b, n, n)}, got {tuple(bonds.shape)}")
        if mask.shape != (b, n):
            raise ValueError(f"DenseMolGraph: mask must be [B, N] = {(b, n)}, got {tuple(mask.shape)}")
        if atoms.dtype != torch.long or bonds.dtype != torch.long or mask.dtype != torch.bool:
            raise ValueError(
                f"DenseMolGraph: expected long atoms/bonds and bool mask, got {atoms.dtype}, {bonds.dtype}, {mask.dtype}"
            )
        if (atoms < 0).any() or (num_atom_types is not None and (atoms > num_atom_types).any()):
            upper = "" if num_atom_types is None else f"..{num_atom_types}"
            bad = int(((atoms < 0) | (atoms > (num_atom_types or atoms.max()))).nonzero()[0, 0])
            raise ValueError(f"DenseMolGraph: atoms must lie in 0{upper}; graph {bad} has {atoms[bad].tolist()}")
        if not torch.equal(mask, atoms > 0):
            bad = int((mask != (atoms > 0)).any(dim=1).nonzero()[0, 0])
            raise ValueError(f"DenseMolGraph: mask must equal atoms > 0 (graph {bad})")
        if (bonds < 0).any() or (bonds > MAX_BOND_ORDER).any():
            bad = int(((bonds < 0) | (bonds > MAX_BOND_ORDER)).flatten(1).any(dim=1).nonzero()[0, 0])
            raise ValueError(f"DenseMolGraph: bond orders must lie in 0..{MAX_BOND_ORDER} (graph {bad})")
        asymmetric = (bonds != bonds.transpose(1, 2)).flatten(1).any(dim=1)
        if asymmetric.any():
            raise ValueError(f"DenseMolGraph: bonds must be symmetric (graph {int(asymmetric.nonzero()[0, 0])})")
        diagonal = bonds.diagonal(dim1=1, dim2=2)
        if (diagonal != 0).any():
            bad = int((diagonal != 0).any(dim=1).nonzero()[0, 0])
            raise ValueError(f"DenseMolGraph: bonds must have a zero diagonal (graph {bad})")
        pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
        dangling = ((bonds != 0) & ~pair_mask).flatten(1).any(dim=1)
        if dangling.any():
            raise ValueError(
                f"DenseMolGraph: empty atom slots must have no bonds (graph {int(dangling.nonzero()[0, 0])})"
            )
        return self
