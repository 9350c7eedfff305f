"""Molecular properties as conditions: training graphs paired with their normalised properties.

A conditional molecule energy :math:`E(G, c)` trains on pairs :math:`(G_m, c_m)` with

.. math::
    c_m = \\Bigl(\\frac{y_{m1} - \\mu_1}{s_1}, \\dots, \\frac{y_{mP} - \\mu_P}{s_P}\\Bigr),

where :math:`y_{mp}` is property :math:`p` of molecule :math:`m`, either computed with RDKit
(:data:`~structebm.chem.properties.PROPERTIES`, cached per list of SMILES: the training graphs'
and the test split's, so a run on the first few hundred molecules computes only those) or read from a
column of the user's ``.csv``, and :math:`\\mu_p, s_p` are its mean and standard deviation over
the training graphs (:class:`~structebm.chem.properties.PropertyScaling`). Batches are
``(DenseMolGraph, c [B, P])`` tuples, the ``(x, c)`` form every objective reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from structebm.chem.dense import DenseMolGraph
from structebm.chem.properties import cached_properties
from structebm.data.molecules import collate_dense_graphs

__all__ = ["ConditionedGraphs", "collate_conditioned_graphs", "computed_values"]


class ConditionedGraphs(Dataset):
    """Graphs of ``graphs`` with the condition rows ``c``; item ``i`` is ``(atoms [N], bonds [N, N], c [P])``.

    Shapes:
        - c: ``[len(graphs), P]`` float
    """

    def __init__(self, graphs: Dataset, c: Tensor) -> None:
        if c.dim() != 2 or c.shape[0] != len(graphs):
            raise ValueError(f"ConditionedGraphs: c must be [{len(graphs)}, P], got {tuple(c.shape)}")
        self.graphs, self.c = graphs, c

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        atoms, bonds = self.graphs[index]
        return atoms, bonds, self.c[index]


def collate_conditioned_graphs(items: Sequence[tuple[Tensor, Tensor, Tensor]]) -> tuple[DenseMolGraph, Tensor]:
    """Stack items of :class:`ConditionedGraphs` into ``(DenseMolGraph, c [B, P])``."""
    graphs = collate_dense_graphs([(atoms, bonds) for atoms, bonds, _ in items])
    return graphs, torch.stack([c for _, _, c in items])


def computed_values(smiles: Sequence[str], names: Sequence[str], cache_dir: Path, where: str) -> Tensor:
    """RDKit properties ``names`` of ``smiles`` (one cache entry per list and property, under
    ``cache_dir``); fails naming a molecule RDKit cannot read.

    Shapes:
        - returns ``[len(smiles), len(names)]`` float64
    """
    values = cached_properties(smiles, names, cache_dir)
    bad = (~torch.isfinite(values)).any(dim=1).nonzero().flatten()
    if bad.numel() > 0:
        shown = [(int(i), smiles[int(i)]) for i in bad[:5]]
        raise ValueError(f"{where}: RDKit cannot compute {list(names)} for {bad.numel()} molecule(s), e.g. (row, SMILES) {shown}")
    return values
