"""Molecular properties: reference values, the SA score against RDKit Contrib's own reference file,
the on-disk cache, and the normalisation round trip."""

import math
import os

import pytest
import torch
from rdkit import RDConfig

from structebm.chem import properties
from structebm.chem.properties import (
    PROPERTIES,
    PropertyScaling,
    cached_properties,
    check_property_names,
    compute_properties,
)

BENZENE, NAPHTHALENE, ASPIRIN = "c1ccccc1", "c1ccc2ccccc2c1", "CC(=O)Oc1ccccc1C(=O)O"


def test_reference_values():
    values = compute_properties([BENZENE, NAPHTHALENE, ASPIRIN], ["mw", "rings", "logp", "qed"])
    assert values.shape == (3, 4) and values.dtype == torch.float64
    assert values[0, 0] == pytest.approx(6 * 12.011 + 6 * 1.008, abs=1e-3)  # C6H6, IUPAC average masses
    assert values[:, 1].tolist() == [1.0, 2.0, 1.0]
    assert values[0, 2] == pytest.approx(1.6866, abs=1e-4)  # Crippen logP of benzene (Wildman & Crippen, 1999)
    assert values[2, 3] == pytest.approx(0.550, abs=1e-3)  # QED of aspirin (Bickerton et al., 2012)


def test_sa_score_matches_the_contrib_reference_file():
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "data", "zim.100.txt")
    with open(path) as handle:
        rows = [line.strip().split("\t") for line in handle][1:]
    smiles, expected = [row[0] for row in rows], torch.tensor([float(row[2]) for row in rows], dtype=torch.float64)
    assert len(rows) == 100
    computed = compute_properties(smiles, ["sa"])[:, 0]
    assert torch.allclose(computed, expected, atol=5e-4)  # the file gives 3 decimals


def test_unparsable_smiles_give_nan():
    values = compute_properties(["C1CC", "CCO"], ["qed", "rings"])
    assert torch.isnan(values[0]).all() and torch.isfinite(values[1]).all()


@pytest.mark.parametrize("names, message", [(["qed", "tpsa"], "unknown molecular property \\['tpsa'\\]"),
                                            (["qed", "qed"], "more than once"),
                                            ("qed", "list of names")])
def test_bad_property_names_are_named(names, message):
    with pytest.raises((ValueError, TypeError), match=message):
        check_property_names(names, "here")


def test_cache_is_written_once_and_read_back(tmp_path, monkeypatch):
    smiles = [BENZENE, ASPIRIN, "CCO"]
    first = cached_properties(smiles, ["logp", "qed"], tmp_path)
    assert len(list(tmp_path.glob("properties-*.pt"))) == 2
    monkeypatch.setattr(properties, "compute_properties", lambda *a, **k: pytest.fail("recomputed a cached property"))
    again = cached_properties(smiles, ["qed", "logp"], tmp_path)
    assert torch.equal(again, first[:, [1, 0]])
    with pytest.raises(pytest.fail.Exception):  # another SMILES list has another key
        cached_properties(smiles[:2], ["qed"], tmp_path)


def test_scaling_normalises_the_training_values_and_inverts():
    generator = torch.Generator().manual_seed(0)
    values = torch.stack([0.5 + 0.1 * torch.randn(500, generator=generator, dtype=torch.float64),
                          3.0 + 2.0 * torch.randn(500, generator=generator, dtype=torch.float64)], dim=1)
    scaling = PropertyScaling.fit(["qed", "logp"], values)
    c = scaling.normalise(values)
    assert c.dtype == torch.float32
    assert torch.allclose(c.mean(0).double(), torch.zeros(2, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(c.std(0).double(), torch.ones(2, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(scaling.denormalise(c), values, atol=1e-5 * values.abs().max())
    assert scaling.as_dict()["logp"]["std"] == pytest.approx(float(values[:, 1].std()))
    with pytest.raises(ValueError, match=r"expected \[\.\.\., 2\]"):
        scaling.normalise(values[:, :1])


def test_scaling_rejects_constant_and_nonfinite_columns():
    with pytest.raises(ValueError, match="single value"):
        PropertyScaling.fit(["rings"], torch.ones(10, 1))
    with pytest.raises(ValueError, match="NaN or infinite"):
        PropertyScaling.fit(["qed"], torch.tensor([[0.1], [math.nan], [0.3]]))


def test_every_property_is_finite_on_a_small_molecule():
    assert set(PROPERTIES) >= {"qed", "logp", "sa", "mw", "rings"}
    assert torch.isfinite(compute_properties(["CC(N)C(=O)O"], list(PROPERTIES))).all()
