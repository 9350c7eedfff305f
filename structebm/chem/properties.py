"""Molecular properties computed with RDKit, cached per SMILES list, and their normalisation.

Five properties are known by name (:data:`PROPERTIES`):

* ``"qed"``: quantitative estimate of drug-likeness (Bickerton et al., 2012), in ``[0, 1]``;
* ``"logp"``: Crippen's octanol-water partition coefficient (Wildman & Crippen, 1999);
* ``"sa"``: synthetic accessibility score (Ertl & Schuffenhauer, 2009), ``1`` (easy) to ``10``,
  from RDKit's Contrib ``SA_Score`` (:func:`sa_score`);
* ``"mw"``: average molecular weight in Da (with implicit hydrogens);
* ``"rings"``: number of rings of the smallest set of smallest rings.

A property is computed once per list of SMILES (:func:`cached_properties`): the values are
stored under a cache folder, in one file per property keyed by the SHA-256 of the SMILES list
and the RDKit version, so a second data module over the same file reads them back. An
unparsable SMILES gets ``NaN``.

A conditional energy reads normalised properties (:class:`PropertyScaling`): with the mean
:math:`\\mu_p` and standard deviation :math:`s_p` of property :math:`p` over the training split,

.. math::
    c_p = \\frac{y_p - \\mu_p}{s_p}, \\qquad y_p = \\mu_p + s_p \\, c_p,

and the scaling is kept with the data module, so that a target given in the property's own
units is normalised the same way and a normalised value read back in those units.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import rdkit
import torch
from rdkit import Chem, RDConfig, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors
from torch import Tensor

__all__ = [
    "PROPERTIES",
    "sa_score",
    "check_property_names",
    "compute_properties",
    "cached_properties",
    "PropertyScaling",
]


@lru_cache(maxsize=1)
def _sascorer():
    """RDKit's Contrib ``sascorer`` module (``RDConfig.RDContribDir/SA_Score``), imported once."""
    folder = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if not os.path.isfile(os.path.join(folder, "sascorer.py")):
        raise ImportError(
            f"sa_score: RDKit's Contrib SA_Score is not installed (looked for {folder}/sascorer.py); "
            "install an RDKit build that ships Contrib (the rdkit wheels from PyPI do)"
        )
    spec = importlib.util.spec_from_file_location("sascorer", os.path.join(folder, "sascorer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # reads fpscores.pkl.gz beside it
    return module


def sa_score(mol: Chem.Mol) -> float:
    """Synthetic accessibility score of ``mol`` (Ertl & Schuffenhauer, 2009), ``1`` (easy) to ``10`` (hard)."""
    return float(_sascorer().calculateScore(mol))


PROPERTIES: dict[str, Callable[[Chem.Mol], float]] = {
    "qed": lambda mol: float(QED.qed(mol)),
    "logp": lambda mol: float(Crippen.MolLogP(mol)),
    "sa": sa_score,
    "mw": lambda mol: float(Descriptors.MolWt(mol)),
    "rings": lambda mol: float(rdMolDescriptors.CalcNumRings(mol)),
}
"""Property name -> ``f(mol) -> float`` (see the module docstring)."""


def check_property_names(names: Sequence[str], where: str) -> list[str]:
    """``names`` as a list after checking each is a key of :data:`PROPERTIES` and none repeats."""
    if isinstance(names, str):
        raise TypeError(f"{where}: properties must be a list of names such as ['qed', 'logp'], got the string {names!r}")
    names = list(names)
    unknown = [name for name in names if name not in PROPERTIES]
    if unknown:
        raise ValueError(f"{where}: unknown molecular propert{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                         f"known: {sorted(PROPERTIES)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{where}: properties {repeated} are named more than once")
    return names


def compute_properties(smiles: Sequence[str], names: Sequence[str]) -> Tensor:
    """The properties ``names`` of every SMILES, ``NaN`` where RDKit cannot parse it.

    Shapes:
        - returns ``[M, P]`` float64, ``M = len(smiles)``, ``P = len(names)``
    """
    names = check_property_names(names, "compute_properties")
    functions = [PROPERTIES[name] for name in names]
    values = torch.full((len(smiles), len(names)), float("nan"), dtype=torch.float64)
    RDLogger.DisableLog("rdApp.*")
    try:
        for row, text in enumerate(smiles):
            mol = Chem.MolFromSmiles(text) if text else None
            if mol is not None:
                values[row] = torch.tensor([function(mol) for function in functions], dtype=torch.float64)
    finally:
        RDLogger.EnableLog("rdApp.*")
    return values


def _digest(smiles: Sequence[str]) -> str:
    hasher = hashlib.sha256()
    for text in smiles:
        hasher.update(text.encode())
        hasher.update(b"\n")
    return hasher.hexdigest()[:16]


def cached_properties(smiles: Sequence[str], names: Sequence[str], cache_dir: str | Path) -> Tensor:
    """:func:`compute_properties`, each property read from ``cache_dir`` when computed before.

    The file of property ``p`` is ``properties-{p}-{digest}-rdkit{version}.pt`` with ``digest``
    the first 16 hex digits of the SHA-256 of the SMILES list (one per line, in order).

    Shapes:
        - returns ``[M, P]`` float64
    """
    names = check_property_names(names, "cached_properties")
    cache = Path(cache_dir)
    digest = _digest(smiles)
    columns = []
    for name in names:
        path = cache / f"properties-{name}-{digest}-rdkit{rdkit.__version__}.pt"
        if path.is_file():
            column = torch.load(path, weights_only=True)
            if column.shape != (len(smiles),):
                raise ValueError(f"cached_properties: {path} holds {tuple(column.shape)} values for {len(smiles)} SMILES; delete it")
        else:
            column = compute_properties(smiles, [name])[:, 0]
            cache.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(column, temporary)
            temporary.replace(path)
        columns.append(column)
    return torch.stack(columns, dim=1) if columns else torch.zeros(len(smiles), 0, dtype=torch.float64)


@dataclass(frozen=True)
class PropertyScaling:
    """Per-property mean and standard deviation: ``c = (y - mean) / std`` and back.

    Attributes:
        names: the property of each column.
        mean: ``[P]`` float64.
        std: ``[P]`` float64, positive.
    """

    names: tuple[str, ...]
    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, names: Sequence[str], values: Tensor) -> "PropertyScaling":
        """Mean and standard deviation of each column of ``values [M, P]`` (the training split)."""
        names = tuple(names)
        if values.dim() != 2 or values.shape[1] != len(names) or values.shape[0] < 2:
            raise ValueError(f"PropertyScaling.fit: expected values [M >= 2, {len(names)}], got {tuple(values.shape)}")
        values = values.double()
        bad = [names[p] for p in range(len(names)) if not torch.isfinite(values[:, p]).all()]
        if bad:
            raise ValueError(f"PropertyScaling.fit: properties {bad} are NaN or infinite for some training molecules")
        std = values.std(dim=0)
        flat = [names[p] for p in range(len(names)) if not std[p] > 0]
        if flat:
            raise ValueError(f"PropertyScaling.fit: properties {flat} take a single value on the training split")
        return cls(names, values.mean(dim=0), std)

    def normalise(self, values: Tensor) -> Tensor:
        """``(values - mean) / std`` as float32; ``values`` is ``[..., P]``."""
        self._check(values, "normalise")
        return ((values.double() - self.mean.to(values.device)) / self.std.to(values.device)).float()

    def denormalise(self, c: Tensor) -> Tensor:
        """``mean + std * c`` as float64; ``c`` is ``[..., P]``."""
        self._check(c, "denormalise")
        return self.mean.to(c.device) + self.std.to(c.device) * c.double()

    def _check(self, values: Tensor, where: str) -> None:
        if not isinstance(values, Tensor) or values.dim() < 1 or values.shape[-1] != len(self.names):
            got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise ValueError(f"PropertyScaling.{where}: expected [..., {len(self.names)}] for {list(self.names)}, got {got}")

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{name: {"mean": m, "std": s}}`` (JSON-ready, for reports)."""
        return {name: {"mean": float(m), "std": float(s)} for name, m, s in zip(self.names, self.mean, self.std)}
