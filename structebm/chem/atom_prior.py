"""The atoms of noise graphs, fitted to a data set: how many atoms, and of which types.

Chains of a graph sampler start from noise graphs (:meth:`MolGraphSpace.noise`). Uniform atoms
put a typical QM9 start far from the data: half of its atoms are charged forms that
make up 0.3 % of QM9's atoms, and each must be changed by its own single-site move before
the chain looks like a molecule. An :class:`AtomPrior` draws the atoms instead as

.. math::
    k \\sim \\text{Categorical}(\\pi^{\\text{count}}), \\qquad
    a_1, \\dots, a_k \\overset{\\text{iid}}{\\sim} \\text{Categorical}(\\pi^{\\text{type}}), \\qquad
    a_{k+1} = \\dots = a_N = 0,

with :math:`\\pi^{\\text{count}}` the frequencies of the atom counts and
:math:`\\pi^{\\text{type}}` those of the atom types in a set of graphs
(:meth:`AtomPrior.fit`; fit it on training graphs only). It is a starting distribution and
nothing more: the chains' stationary distribution is the energy's whatever the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

__all__ = ["AtomPrior"]


@dataclass(frozen=True)
class AtomPrior:
    """Atom counts and i.i.d. atom types of noise graphs (see the module docstring).

    Args:
        count_probs: ``[N + 1]`` probability of each atom count ``0..N`` (``N`` slots).
        type_probs: ``[A + 1]`` probability of each atom value; entry 0 (empty slot) must be 0.
    """

    count_probs: Tensor
    type_probs: Tensor

    def __post_init__(self) -> None:
        for name in ("count_probs", "type_probs"):
            probs = getattr(self, name)
            if not isinstance(probs, Tensor) or probs.dim() != 1 or not probs.is_floating_point():
                raise ValueError(f"AtomPrior: {name} must be a 1-d float tensor, got {probs!r}")
            if not bool(torch.isfinite(probs).all()) or bool((probs < 0).any()) or abs(float(probs.sum()) - 1.0) > 1e-4:
                raise ValueError(f"AtomPrior: {name} must be finite, non-negative and sum to 1, got {probs.tolist()}")
        if float(self.type_probs[0]) != 0.0:
            raise ValueError(f"AtomPrior: type_probs[0] is the empty slot and must be 0, got {float(self.type_probs[0])}")

    @property
    def max_atoms(self) -> int:
        """The slot count ``N``."""
        return self.count_probs.shape[0] - 1

    @property
    def num_atom_values(self) -> int:
        """``A + 1``: atom types plus the empty slot."""
        return self.type_probs.shape[0]

    @classmethod
    def fit(cls, atoms: Tensor, num_atom_types: int) -> "AtomPrior":
        """Frequencies of the atom counts and atom types of ``atoms`` ``[M, N]`` (values ``0..A``, 0 = empty)."""
        if not isinstance(atoms, Tensor) or atoms.dim() != 2 or atoms.dtype.is_floating_point:
            raise ValueError(f"AtomPrior.fit: atoms must be an integer tensor [M, N], got {atoms!r}")
        if atoms.numel() and (int(atoms.min()) < 0 or int(atoms.max()) > num_atom_types):
            raise ValueError(f"AtomPrior.fit: atom values must lie in 0..{num_atom_types}")
        occupied = atoms > 0
        if not bool(occupied.any()):
            raise ValueError("AtomPrior.fit: the graphs hold no atom")
        counts = torch.bincount(occupied.sum(dim=1), minlength=atoms.shape[1] + 1).double()
        types = torch.bincount(atoms[occupied].long(), minlength=num_atom_types + 1).double()
        return cls((counts / counts.sum()).float(), (types / types.sum()).float())

    def sample(self, n: int, generator: torch.Generator, device: Optional[torch.device] = None) -> Tensor:
        """``[n, N]`` long atom values: ``k`` atoms in the first ``k`` slots, empty slots after them."""
        device = generator.device if device is None else torch.device(device)
        if n == 0:
            return torch.zeros((0, self.max_atoms), dtype=torch.long, device=device)
        count_probs, type_probs = self.count_probs.to(device), self.type_probs.to(device)
        counts = torch.multinomial(count_probs, n, replacement=True, generator=generator)
        types = torch.multinomial(type_probs, n * self.max_atoms, replacement=True, generator=generator)
        slots = torch.arange(self.max_atoms, device=device)
        return types.view(n, self.max_atoms) * (slots[None, :] < counts[:, None])
