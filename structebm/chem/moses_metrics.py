"""MOSES-style set metrics (Polykovskiy et al., 2020): IntDiv, SNN, Frag and Scaf.

Fingerprints are Morgan (radius 2, 1024 bits); similarity is Tanimoto,
:math:`T(a, b) = |a \\cap b| / |a \\cup b|`.

.. math::
    \\mathrm{IntDiv}_p(G) = 1 - \\Big(\\frac{1}{|G|^2} \\sum_{a, b \\in G} T(a, b)^p\\Big)^{1/p},
    \\qquad
    \\mathrm{SNN}(G, R) = \\frac{1}{|G|} \\sum_{a \\in G} \\max_{b \\in R} T(a, b).

Frag and Scaf are cosine similarities :math:`\\langle f_G, f_R \\rangle / (\\lVert f_G \\rVert \\lVert f_R \\rVert)`
of count vectors: of the fragments left after cutting every BRICS bond (Frag; a fragment
counts once per occurrence) and of Bemis–Murcko scaffolds with at least
``min_rings`` rings (Scaf; MOSES uses 2). A set with no fragment / scaffold gives ``nan``.
Inputs are SMILES strings or RDKit molecules; they must all be valid.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence, Union

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import BRICS, DataStructs, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

__all__ = [
    "morgan_fingerprints",
    "tanimoto_matrix",
    "internal_diversity",
    "similarity_to_nearest_neighbour",
    "fragment_similarity",
    "scaffold_similarity",
]

MolLike = Union[str, Chem.Mol]


def _mols(molecules: Iterable[MolLike], where: str) -> list:
    out = []
    for position, item in enumerate(molecules):
        mol = Chem.MolFromSmiles(item) if isinstance(item, str) else item
        if mol is None:
            raise ValueError(f"{where}: molecule {position} ({item!r}) is not a valid molecule")
        out.append(mol)
    if not out:
        raise ValueError(f"{where}: got no molecules")
    return out


def morgan_fingerprints(molecules: Sequence[MolLike], radius: int = 2, n_bits: int = 1024) -> torch.Tensor:
    """``[M, n_bits]`` float tensor of 0/1 Morgan fingerprint bits."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    mols = _mols(molecules, "morgan_fingerprints")
    bits = np.zeros((len(mols), n_bits), dtype=np.float32)
    for row, mol in enumerate(mols):
        DataStructs.ConvertToNumpyArray(generator.GetFingerprint(mol), bits[row])
    return torch.from_numpy(bits)


def tanimoto_matrix(fps_a: torch.Tensor, fps_b: torch.Tensor) -> torch.Tensor:
    """``[Ma, Mb]`` Tanimoto similarities of 0/1 fingerprints (two empty fingerprints give 1)."""
    intersection = fps_a @ fps_b.T
    union = fps_a.sum(1, keepdim=True) + fps_b.sum(1).unsqueeze(0) - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


def internal_diversity(molecules: Sequence[MolLike], p: int = 1, chunk: int = 4096) -> float:
    """IntDiv_p of a set: one minus the p-mean Tanimoto similarity over all ordered pairs."""
    fps = morgan_fingerprints(molecules)
    total = 0.0
    for start in range(0, fps.shape[0], chunk):
        total += float((tanimoto_matrix(fps[start : start + chunk], fps) ** p).sum(dtype=torch.float64))
    return 1.0 - (total / fps.shape[0] ** 2) ** (1.0 / p)


def similarity_to_nearest_neighbour(
    generated: Sequence[MolLike], reference: Sequence[MolLike], chunk: int = 4096
) -> float:
    """SNN: mean over generated molecules of the largest Tanimoto similarity to the reference set."""
    fps_generated = morgan_fingerprints(generated)
    fps_reference = morgan_fingerprints(reference)
    best = torch.zeros(fps_generated.shape[0])
    for start in range(0, fps_reference.shape[0], chunk):
        block = tanimoto_matrix(fps_generated, fps_reference[start : start + chunk])
        best = torch.maximum(best, block.max(dim=1).values)
    return float(best.double().mean())


def _cosine(counts_a: Counter, counts_b: Counter) -> float:
    if not counts_a or not counts_b:
        return float("nan")
    dot = sum(count * counts_b.get(key, 0) for key, count in counts_a.items())
    norm_a = np.sqrt(sum(c * c for c in counts_a.values()))
    norm_b = np.sqrt(sum(c * c for c in counts_b.values()))
    return float(dot / (norm_a * norm_b))


def _fragment_counts(molecules: Sequence[MolLike]) -> Counter:
    counts: Counter = Counter()
    for mol in _mols(molecules, "fragment_similarity"):
        counts.update(Chem.MolToSmiles(BRICS.BreakBRICSBonds(mol)).split("."))
    return counts


def _scaffold_counts(molecules: Sequence[MolLike], min_rings: int) -> Counter:
    counts: Counter = Counter()
    for mol in _mols(molecules, "scaffold_similarity"):
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
        smiles = Chem.MolToSmiles(scaffold)
        if smiles and scaffold.GetRingInfo().NumRings() >= min_rings:
            counts[smiles] += 1
    return counts


def fragment_similarity(generated: Sequence[MolLike], reference: Sequence[MolLike]) -> float:
    """Frag: cosine similarity of BRICS fragment counts."""
    return _cosine(_fragment_counts(generated), _fragment_counts(reference))


def scaffold_similarity(generated: Sequence[MolLike], reference: Sequence[MolLike], min_rings: int = 2) -> float:
    """Scaf: cosine similarity of Bemis–Murcko scaffold counts (scaffolds with >= ``min_rings`` rings)."""
    return _cosine(_scaffold_counts(generated, min_rings), _scaffold_counts(reference, min_rings))
