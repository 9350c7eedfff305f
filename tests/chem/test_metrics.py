"""Generation metrics on hand-made sets with known answers; NSPDK against EDeN reference values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from structebm.chem.convert import mol_to_networkx, smiles_to_dense
from structebm.chem.dense import DenseMolGraph
from structebm.chem.draw import molecule_grid_png
from structebm.chem.evaluate import METRIC_KEYS, MoleculeReference, evaluate_molecules
from structebm.chem.fcd import frechet_chemnet_distance
from structebm.chem.metrics import (
    invalidity_reasons,
    novelty,
    uniqueness,
    validity_report,
    validity_without_correction,
)
from structebm.chem.moses_metrics import (
    fragment_similarity,
    internal_diversity,
    scaffold_similarity,
    similarity_to_nearest_neighbour,
)
from structebm.chem.nspdk import NSPDKReference, nspdk_kernel, nspdk_mmd
from structebm.chem.vocab import QM9_VOCABULARY, get_vocabulary
from structebm.data.molecules import load_smiles
from rdkit import Chem

SMILES = ["CCO", "CC(=O)O", "c1ccccc1", "CCN", "C#N", "OCC(O)CO", "CC(C)=O", "c1ccncc1", "CN(C)C", "C1CC1"]


def _broken_graph() -> DenseMolGraph:
    bonds = torch.zeros(1, 9, 9, dtype=torch.long)
    bonds[0, 0, 1] = bonds[0, 1, 0] = 2  # F=C: over-valent fluorine
    return DenseMolGraph.from_tensors(torch.tensor([[4, 1, 0, 0, 0, 0, 0, 0, 0]]), bonds)


def _graphs(smiles):
    return [mol_to_networkx(Chem.MolFromSmiles(s)) for s in smiles]


def test_validity_counts_one_broken_graph():
    graph = DenseMolGraph.concatenate([smiles_to_dense(SMILES, QM9_VOCABULARY), _broken_graph()])
    n = graph.batch_size
    assert validity_without_correction(graph, QM9_VOCABULARY) == pytest.approx((n - 1) / n)
    report = validity_report(graph, QM9_VOCABULARY)
    assert report.validity_with_correction == 1.0
    assert report.valid_smiles[-1] == "CF"


def test_disconnected_graph_is_invalid_without_correction_and_fixed_with_it():
    graph = smiles_to_dense(["CCO.C", "CCO"], QM9_VOCABULARY)
    assert validity_without_correction(graph, QM9_VOCABULARY) == 0.5
    report = validity_report(graph, QM9_VOCABULARY)
    assert report.validity_with_correction == 1.0 and report.valid_smiles == ["CCO", "CCO"]
    assert validity_without_correction(DenseMolGraph.empty(2, 9), QM9_VOCABULARY) == 0.0


def test_a_corrected_molecule_whose_smiles_rdkit_cannot_read_back_is_invalid():
    # C-[O+]=I sanitizes as built, but RDKit writes it as C[O+]=[IH], which it then rejects;
    # FCD (ChemNet) re-reads every SMILES, so such a molecule must not count as valid.
    vocabulary = get_vocabulary("zinc250k")
    atoms = torch.zeros(2, vocabulary.max_atoms, dtype=torch.long)
    atoms[:, :3] = torch.tensor([vocabulary.index("C"), vocabulary.index("O", charge=1), vocabulary.index("I")])
    bonds = torch.zeros(2, vocabulary.max_atoms, vocabulary.max_atoms, dtype=torch.long)
    bonds[:, 0, 1] = bonds[:, 1, 0] = 1
    bonds[0, 1, 2] = bonds[0, 2, 1] = 2  # C-[O+]=I: does not survive the round trip
    bonds[1, 1, 2] = bonds[1, 2, 1] = 1  # C-[O+]-I with an implicit H on O: does
    report = validity_report(DenseMolGraph.from_tensors(atoms, bonds), vocabulary)
    assert report.validity_with_correction == 0.5
    assert Chem.MolFromSmiles(report.valid_smiles[0]) is not None


def test_invalidity_reasons_name_each_failure():
    parts = [smiles_to_dense(["CCO", "CCO.C"], QM9_VOCABULARY), _broken_graph(), DenseMolGraph.empty(1, 9)]
    graph = DenseMolGraph.concatenate(parts)
    reasons = invalidity_reasons(graph, QM9_VOCABULARY)
    assert reasons == {"empty": 0.25, "over_valent": 0.25, "disconnected": 0.25, "other": 0.0}


def test_uniqueness_and_novelty():
    assert uniqueness(["CCO", "CCO", "CCN", "C"]) == 0.75
    assert uniqueness([]) == 0.0
    assert novelty(["CCO", "CCO", "CCN", "C"], ["CCO"]) == pytest.approx(2 / 3)
    assert novelty(["CCO"], {"CCO"}) == 0.0


def test_fcd_of_a_set_with_itself_is_zero_and_positive_otherwise():
    same = frechet_chemnet_distance(SMILES, SMILES)
    other = frechet_chemnet_distance(SMILES, ["CCCCCCCC", "C1CCCCC1", "CCOCC", "CC", "CCCl", "FC(F)F"])
    assert abs(same) < 1e-3
    assert other > 1.0
    with pytest.raises(ValueError, match="at least 2"):
        frechet_chemnet_distance(["C"], SMILES)


def test_nspdk_identical_sets_zero_different_positive():
    assert nspdk_mmd(_graphs(SMILES), _graphs(SMILES)) == pytest.approx(0.0, abs=1e-12)
    assert nspdk_mmd(_graphs(SMILES[:5]), _graphs(SMILES[5:])) > 0.05
    kernel = nspdk_kernel(_graphs(SMILES[:3]), _graphs(SMILES[:3]))
    assert torch.allclose(torch.from_numpy(kernel).diagonal(), torch.ones(3, dtype=torch.float64))


def test_nspdk_matches_eden_reference():
    # Reference: EDeN (PyPI eden-kernel 0.3.1350), vectorize(complexity=4, discrete=True) and the
    # GDSS MMD estimator on QM9 rows 1000-1199 vs 50000-50199, run under PYTHONHASHSEED=1, 2, 3
    # (EDeN salts string hashes into 2**16 buckets, so its value moves with the seed):
    # 0.129145, 0.128381, 0.128867. Kernel row of the first graph vs rows 1000-1002:
    # [1, 0.310-0.324, 0.2372-0.2427]. The exact (collision-free) features must land in that spread.
    smiles = load_smiles("qm9")
    x, y = _graphs(smiles[1000:1200]), _graphs(smiles[50000:50200])
    assert 0.1280 <= nspdk_mmd(x, y) <= 0.1295
    row = nspdk_kernel(x[:3], x[:3])[0]
    assert row[0] == pytest.approx(1.0) and 0.305 <= row[1] <= 0.325 and 0.235 <= row[2] <= 0.245


def test_nspdk_reference_gives_the_mmd_of_every_set_scored_against_it():
    smiles = load_smiles("qm9")
    test = _graphs(smiles[50000:50200])
    reference = NSPDKReference(test)
    # several sets in a row against one reference (its feature index grows with each) give what a
    # fresh reference per set gives
    for rows in (slice(1000, 1200), slice(0, 30), slice(1000, 1200), slice(50000, 50200)):
        x = _graphs(smiles[rows])
        assert reference.mmd(x) == pytest.approx(nspdk_mmd(x, test), rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError, match="reference set is empty"):
        NSPDKReference([])


def test_molecule_reference_scores_like_the_smiles_and_computes_its_statistics_once(monkeypatch):
    import structebm.chem.evaluate as evaluate

    calls = []
    original = evaluate.fcd_statistics
    monkeypatch.setattr(evaluate, "fcd_statistics", lambda smiles, device: calls.append(len(smiles)) or original(smiles, device))
    graphs = [smiles_to_dense(SMILES[:6], QM9_VOCABULARY), smiles_to_dense(SMILES[3:], QM9_VOCABULARY)]
    reference = MoleculeReference(SMILES)
    metrics = ("fcd", "nspdk", "snn")
    for graph in graphs:
        assert evaluate_molecules(graph, [], reference, QM9_VOCABULARY, metrics) == pytest.approx(
            evaluate_molecules(graph, [], SMILES, QM9_VOCABULARY, metrics), rel=1e-9
        )
    # one computation of the test statistics for the reference, one per call for the plain SMILES
    assert calls == [len(SMILES)] * (1 + len(graphs))
    with pytest.raises(ValueError, match="test set is empty"):
        MoleculeReference([])


def test_moses_metrics_known_values():
    assert internal_diversity(["CCO", "CCO"]) == pytest.approx(0.0)
    assert internal_diversity(SMILES) > 0.5
    assert similarity_to_nearest_neighbour(SMILES, SMILES) == pytest.approx(1.0)
    assert similarity_to_nearest_neighbour(["CCO"], ["c1ccccc1"]) < 0.2
    assert fragment_similarity(SMILES, SMILES) == pytest.approx(1.0)
    rings = ["c1ccc2ccccc2c1", "c1ccc(-c2ccccc2)cc1", "C1CCC2CCCCC2C1"]
    assert scaffold_similarity(rings, rings) == pytest.approx(1.0)
    assert scaffold_similarity(rings[:1], rings[1:]) == pytest.approx(0.0)
    assert math.isnan(scaffold_similarity(["CCO"], rings))


def test_evaluate_molecules_returns_every_key():
    graph = DenseMolGraph.concatenate([smiles_to_dense(SMILES + SMILES[:2], QM9_VOCABULARY), _broken_graph()])
    result = evaluate_molecules(graph, train_smiles=["CCO", "CCN"], test_smiles=SMILES, vocabulary=QM9_VOCABULARY)
    assert tuple(result) == METRIC_KEYS
    assert result["validity_wo_correction"] == pytest.approx(12 / 13)
    assert result["validity_with_correction"] == 1.0
    assert result["uniqueness"] == pytest.approx(11 / 13)
    assert result["novelty"] == pytest.approx(9 / 11)
    assert result["snn"] > 0.9 and 0 < result["nspdk"] < 0.05
    smiles_only = evaluate_molecules(["CCO", None, "C1CC"], ["C"], SMILES, metrics=("validity_wo_correction", "novelty"))
    assert smiles_only == {"validity_wo_correction": pytest.approx(1 / 3), "novelty": 1.0}
    with pytest.raises(ValueError, match="needs its vocabulary"):
        evaluate_molecules(graph, [], SMILES)


def test_molecule_grid_png(tmp_path: Path):
    png = molecule_grid_png(["CCO", None, "c1ccccc1"], tmp_path / "grid.png", legends=["a", "b", "c"])
    assert png.startswith(b"\x89PNG") and (tmp_path / "grid.png").read_bytes() == png
    with pytest.raises(ValueError, match="2 legends for 3"):
        molecule_grid_png(["C", "C", "C"], legends=["a", "b"])


def test_molecule_grid_png_inside_ipython(monkeypatch: pytest.MonkeyPatch):
    """Inside IPython, RDKit returns a display image that holds the PNG bytes in ``.data``."""
    from rdkit.Chem import Draw

    drawn = molecule_grid_png(["CCO"])

    class DisplayImage:
        data = drawn

    monkeypatch.setattr(Draw, "MolsToGridImage", lambda *args, **kwargs: DisplayImage())
    assert molecule_grid_png(["CCO"]) == drawn
