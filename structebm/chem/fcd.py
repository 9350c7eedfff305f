"""Fréchet ChemNet Distance (Preuer et al., 2018) between two sets of SMILES.

ChemNet's penultimate activations of each set are summarised by their mean and covariance,
and the Fréchet distance between the two Gaussians is reported:

.. math::
    \\mathrm{FCD} = \\lVert \\mu_g - \\mu_r \\rVert^2
        + \\operatorname{tr}\\big(\\Sigma_g + \\Sigma_r - 2 (\\Sigma_g \\Sigma_r)^{1/2}\\big).

The network and its weights come from the ``fcd_torch`` package, which ships them, so no
download happens. Lower is better; a set against itself gives 0 (up to numerical error).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Dict, Sequence

import numpy as np

__all__ = ["fcd_statistics", "frechet_chemnet_distance"]


@lru_cache(maxsize=4)
def _chemnet(device: str, batch_size: int):
    try:
        from fcd_torch import FCD
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("FCD needs the 'fcd-torch' package (pip install fcd-torch)") from error
    return FCD(device=device, n_jobs=1, batch_size=batch_size)


def _check(smiles: Sequence[str], name: str) -> None:
    if len(smiles) < 2:
        raise ValueError(f"frechet_chemnet_distance: {name} needs at least 2 SMILES, got {len(smiles)}")
    bad = [i for i, s in enumerate(smiles) if not isinstance(s, str) or not s]
    if bad:
        raise ValueError(f"frechet_chemnet_distance: {name} has non-string or empty entries at {bad[:10]}")


def fcd_statistics(smiles: Sequence[str], device: str = "cpu", batch_size: int = 512) -> Dict[str, np.ndarray]:
    """Mean ``mu [512]`` and covariance ``sigma [512, 512]`` of ChemNet activations, to reuse
    a reference set (e.g. the test set) across evaluations."""
    _check(smiles, "smiles")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _chemnet(device, batch_size).precalc(list(smiles))


def frechet_chemnet_distance(
    generated_smiles: Sequence[str],
    reference_smiles: Sequence[str] | None = None,
    reference_statistics: Dict[str, np.ndarray] | None = None,
    device: str = "cpu",
    batch_size: int = 512,
) -> float:
    """FCD between generated SMILES and a reference set (given as SMILES or precomputed statistics)."""
    if (reference_smiles is None) == (reference_statistics is None):
        raise ValueError("frechet_chemnet_distance: pass exactly one of reference_smiles, reference_statistics")
    generated = fcd_statistics(generated_smiles, device, batch_size)
    reference = reference_statistics or fcd_statistics(reference_smiles, device, batch_size)  # type: ignore[arg-type]
    return float(_chemnet(device, batch_size).metric(reference, generated))
