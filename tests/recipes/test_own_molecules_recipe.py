"""A chemist's own SMILES file through ``structebm fit`` with only its path given.

392 molecules that are neither QM9 nor ZINC250k entries are built here from fragments (rings with
sulphur, halogens, nitro groups, carboxylates, quaternary ammonium: charged ``N+`` and ``O-``
atoms), written to a ``.smi`` file with names, and the molecule recipe runs on it through the
command line with the file's path as the only data setting (plus tiny trainer sizes). The
claims are ones a wrong implementation breaks:

- the vocabulary in the report, the energy, the sampler options and the replay buffer is the
  set of elements and formal charges of the file's training rows, computed here independently
  with RDKit (the recipe's QM9 vocabulary, left in place, would differ: no S, Cl or Br);
- the test split is the seeded 10 % of the rows (:func:`split_rows` with seed 0), and the
  report's scores are those of the same samples scored against that split; scoring the same
  samples against another reference set gives other FCD and NSPDK values.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from rdkit import Chem

from structebm.chem.convert import canonical_smiles
from structebm.chem.generation import generation_metrics
from structebm.cli import build_cli
from structebm.data.smiles_files import split_rows
from tests.recipes._report_samples import report_samples, report_task

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "molecule_generation"
HEADS = ["C", "CC", "C(C)C", "C1CC1", "c1ccccc1", "C1CCOC1", "c1ccsc1"]
LINKERS = ["", "O", "S", "N", "C(=O)", "C(=O)N", "OC(=O)"]
TAILS = ["C", "Cl", "Br", "[N+](=O)[O-]", "C(=O)[O-]", "C[N+](C)(C)C", "C#N", "F"]
NUM_SAMPLES = 40
METRICS = ["validity_wo_correction", "uniqueness", "novelty", "fcd", "nspdk"]


def _molecules() -> list[str]:
    out: list[str] = []
    for head in HEADS:
        for linker in LINKERS:
            for tail in TAILS:
                smiles = canonical_smiles(head + linker + tail)
                if smiles not in out:
                    out.append(smiles)
    return out


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_molecules")
    molecules = _molecules()
    path = root / "my_molecules.smi"
    path.write_text("SMILES Name\n" + "".join(f"{s} compound-{i}\n" for i, s in enumerate(molecules)))
    out = root / "out"
    cli = build_cli([
        "fit",
        "--config", str(RECIPES / "base.yaml"),
        "--data", "structebm.data.molecule_datamodule.MoleculeDataModule",
        f"--data.dataset={path}",
        "--trainer.max_steps=4",
        "--model.objective.init_args.num_steps=3",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.callbacks.init_args.output_dir={out}",
        f"--trainer.callbacks.init_args.task.init_args.num_samples={NUM_SAMPLES}",
        "--trainer.callbacks.init_args.task.init_args.num_steps=10",
        f"--trainer.callbacks.init_args.task.init_args.metrics=[{','.join(METRICS)}]",
    ])
    return cli, molecules, json.loads((out / "molecule_report.json").read_text())


def _expected_split(molecules: list[str]) -> tuple[list[str], list[str]]:
    train, test = split_rows(len(molecules), test_fraction=0.1, seed=0)
    return [molecules[i] for i in train], [molecules[i] for i in test]


def test_the_vocabulary_everywhere_is_the_files_elements_and_charges(own_run):
    cli, molecules, report = own_run
    train, _ = _expected_split(molecules)
    types = {(a.GetSymbol(), a.GetFormalCharge()) for s in train for a in Chem.MolFromSmiles(s).GetAtoms()}
    labels = {symbol + ("+" * charge if charge > 0 else "-" * -charge) for symbol, charge in types}
    assert {"N+", "O-", "S", "Br"} <= labels and set(report["data"]["vocabulary"]) == labels
    assert len(report["data"]["vocabulary"]) == len(labels)
    largest = max(Chem.MolFromSmiles(s).GetNumAtoms() for s in train)
    assert report["data"]["max_atoms"] == largest
    vocabulary = cli.datamodule.vocabulary
    assert list(vocabulary.labels) == report["data"]["vocabulary"]
    assert cli.model.energy.num_node_types == len(labels)
    assert cli.model.energy.features.vocabulary == vocabulary.name
    buffer = cli.model.objective.source
    assert buffer.space.vocabulary == vocabulary and buffer.space.max_nodes == largest
    assert torch.allclose(buffer.space.node_prior.type_probs, cli.datamodule.atom_prior().type_probs)
    assert cli.model.objective.sampler_options["dataset"] == vocabulary.name


def test_the_report_scores_the_samples_against_the_files_test_split(own_run):
    cli, molecules, report = own_run
    train, test = _expected_split(molecules)
    assert report["data"]["num_test"] == len(test) == 39 and report["data"]["num_train"] == len(train)
    assert cli.datamodule.test_smiles == test
    assert report["data"]["source"].endswith("my_molecules.smi") and report["data"]["num_skipped"] == 0
    canonical_train = [canonical_smiles(s) for s in train]
    for variant in report_task(cli).variants:
        graphs = report_samples(cli, variant)
        against_test = generation_metrics(graphs, cli.datamodule.vocabulary, canonical_train, test, METRICS)
        for key in METRICS:
            assert math.isclose(report[variant][key], against_test[key], rel_tol=1e-6, abs_tol=1e-9), (variant, key)
        other = generation_metrics(graphs, cli.datamodule.vocabulary, canonical_train, train[:39], ["fcd", "nspdk"])
        assert other["fcd"] != against_test["fcd"] and other["nspdk"] != against_test["nspdk"]
