"""The molecule-generation recipe runs end to end, tiny: 300 QM9 molecules, a few PCD steps.

The run goes through the ``structebm`` command line (``build_cli``) with the recipe's YAML
files and writes the generation report. A few steps teach the energy nothing, so the test
checks the plumbing and the properties that hold for any energy, not quality:

- DenseMolGraph batches reach the objective and the replay buffer fills;
- the valence-aware (constrained) sampler starts from valence-valid noise and only makes valence-legal
  moves, so every graph it returns passes the valence check; the unconstrained one may not;
- valency correction (lowering bond orders, then the largest fragment) repairs nearly every
  graph: with fixed seeds this run gives 1.0; the bound 0.9 only allows for platform
  differences in the sampled graphs;
- the report's validities, uniqueness and novelty are those of its molecules, drawn again from the
  report's seed and counted here.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from rdkit import Chem

from structebm.cli import build_cli
from structebm.chem.convert import dense_to_smiles
from structebm.chem.metrics import DecodedMolecules, novelty
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.data.molecule_datamodule import MoleculeDataModule
from structebm.data.molecules import load_smiles, standard_split
from structebm.chem.dense import DenseMolGraph
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.generation import MoleculeGeneration, sample_molecules
from tests.recipes._report_samples import report_samples

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "molecule_generation"
NUM_SAMPLES = 40


@pytest.fixture(scope="module")
def qm9_available():
    try:
        standard_split("qm9")
    except Exception as error:  # noqa: BLE001 - any failure to resolve the files means no data here
        pytest.fail(f"QM9 is needed by the molecule recipe test (set STRUCTEBM_DATA): {error}")


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory, qm9_available):
    out = tmp_path_factory.mktemp("molecule_recipe")
    cli = build_cli([
        "fit",
        "--config", str(RECIPES / "base.yaml"),
        "--config", str(RECIPES / "qm9.yaml"),
        "--trainer.max_steps=4",
        "--data.init_args.batch_size=32",
        "--data.init_args.max_train_molecules=300",
        "--data.init_args.max_test_molecules=100",
        "--model.objective.init_args.num_steps=3",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.callbacks.init_args.output_dir={out}",
        f"--trainer.callbacks.init_args.task.init_args.num_samples={NUM_SAMPLES}",
        "--trainer.callbacks.init_args.task.init_args.num_steps=10",
        "--trainer.callbacks.init_args.task.init_args.metrics=[validity_wo_correction,validity_with_correction,uniqueness,novelty,nspdk]",
    ])
    return cli, out


def test_recipe_trains_and_writes_the_report(recipe_run):
    cli, out = recipe_run
    report = json.loads((out / "molecule_report.json").read_text())
    assert report["num_samples"] == NUM_SAMPLES and math.isfinite(report["train_seconds"])
    train = set(cli.datamodule.train_smiles)
    for variant in ("unconstrained", "valence_aware"):
        scores = report[variant]
        # the same molecules drawn again from the report's seed; the figures recomputed from them
        graphs = report_samples(cli, variant)
        as_generated = dense_to_smiles(graphs, QM9_VOCABULARY)
        single = [bool(s) and "." not in s for s in as_generated]  # sanitizes, has atoms, one fragment
        assert scores["validity_wo_correction"] == pytest.approx(sum(single) / NUM_SAMPLES)
        valid = DecodedMolecules(graphs, QM9_VOCABULARY).valid_smiles
        assert scores["validity_with_correction"] == pytest.approx(len(valid) / NUM_SAMPLES)
        assert scores["validity_with_correction"] >= 0.9
        assert scores["uniqueness"] == pytest.approx(len(set(valid)) / len(valid))
        assert scores["novelty"] == pytest.approx(len(set(valid) - train) / len(set(valid)))
        assert scores["nspdk"] > 0 and scores["samples_per_second"] > 0  # a few steps leave samples unlike the data
        assert scores["invalid_reasons"] == pytest.approx(DecodedMolecules(graphs, QM9_VOCABULARY).invalidity_reasons)
        assert scores["statistics"]["num_molecules"] == len(valid)
        assert (out / f"molecules_{variant}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # valence-legal moves from valence-valid connected noise keep every molecule valid; unconstrained ones need not
    assert report["valence_aware"]["validity_wo_correction"] == 1.0
    assert report["unconstrained"]["validity_wo_correction"] <= report["valence_aware"]["validity_wo_correction"]
    assert cli.trainer.global_step == 4
    assert report["connected_noise"] is True  # the recipe starts chains from connected, valence-valid graphs
    assert report["train_atom_prior"] is True  # ... whose atoms look like the training split's
    assert report["temperature"] == 1.0  # ... and sample the energy's own target
    assert report["test_statistics"]["num_molecules"] == len(cli.datamodule.test_smiles)
    assert cli.model.energy.features is not None and cli.model.energy.features.vocabulary == "qm9"
    buffer = cli.model.objective.source
    assert buffer.space.tree_noise and buffer.space.node_prior is not None
    assert int(buffer.filled.sum()) > 0, "the replay buffer never received chain end points"


def test_valence_aware_samples_keep_every_valence(recipe_run):
    cli, _ = recipe_run
    energy = cli.model.energy
    space = MolGraphSpace(QM9_VOCABULARY)
    generator = torch.Generator().manual_seed(1)
    graphs = sample_molecules(energy, QM9_VOCABULARY, 64, 20, generator, constrained=True, batch_size=32)
    assert graphs.batch_size == 64
    space.validate(graphs, "valence-aware samples")
    assert bool(space.is_valid(graphs).all())


def test_data_module_batches_and_splits(qm9_available):
    data = MoleculeDataModule("qm9", batch_size=16, max_train_molecules=50, max_test_molecules=30, seed=3)
    data.setup("fit")
    first = next(iter(data.train_dataloader()))
    again = next(iter(data.train_dataloader()))
    assert isinstance(first, DenseMolGraph) and first.batch_size == 16
    assert torch.equal(first.nodes, again.nodes), "the same seed and epoch must give the same order"
    MolGraphSpace(QM9_VOCABULARY).validate(first, "QM9 batch")
    moved = data.transfer_batch_to_device(first, torch.device("cpu"), 0)
    assert isinstance(moved, DenseMolGraph) and torch.equal(moved.edges, first.edges)
    assert len(data.test_smiles) == 30 and len(data.train_smiles) > 100_000
    assert not set(data.test_smiles[:30]) & set(data.train_smiles[:1000])
    # training molecules written back from their graphs are found in train_smiles: novelty 0
    decoded = dense_to_smiles(first, QM9_VOCABULARY)
    assert novelty(decoded, data.train_smiles) == 0.0


def test_atom_prior_of_the_data_module_counts_the_training_molecules(qm9_available):
    data = MoleculeDataModule("qm9", max_train_molecules=200)
    data.setup("fit")
    prior = data.atom_prior()
    smiles = load_smiles("qm9")
    mols = [Chem.MolFromSmiles(smiles[row]) for row in standard_split("qm9")["train"][:200]]
    counts = torch.bincount(torch.tensor([mol.GetNumAtoms() for mol in mols]), minlength=QM9_VOCABULARY.max_atoms + 1)
    assert torch.allclose(prior.count_probs, counts.float() / 200)
    types = Counter(QM9_VOCABULARY.index(atom.GetSymbol(), atom.GetFormalCharge()) for mol in mols for atom in mol.GetAtoms())
    total = sum(types.values())
    expected = torch.tensor([types.get(value, 0) / total for value in range(len(QM9_VOCABULARY) + 1)])
    assert torch.allclose(prior.type_probs, expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"dataset": "pubchem"}, "dataset must be one of"), ({"batch_size": 0}, "batch_size"),
     ({"max_train_molecules": -1}, "max_train_molecules")],
)
def test_data_module_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MoleculeDataModule(**kwargs)


@pytest.mark.parametrize("temperature", [0.0, -0.5, float("inf"), float("nan")])
def test_generation_report_rejects_a_temperature_that_is_not_positive_and_finite(temperature):
    with pytest.raises(ValueError, match="MoleculeGeneration: temperature must be finite and > 0"):
        MoleculeGeneration(temperature=temperature)


def test_data_module_names_a_mismatched_energy(qm9_available):
    from structebm.energies.graph import RelationalGraphEnergy

    data = MoleculeDataModule("qm9")
    with pytest.raises(ValueError, match="qm9 has 8 atom types .* the energy has 17; set model.energy.init_args.num_node_types: 8"):
        data.check_model(RelationalGraphEnergy(17, 3, hidden=8, num_layers=1))


def test_replay_buffer_keeps_atoms_and_bonds_of_one_chain_per_slot():
    from structebm.chem.generation import MoleculeReplayBuffer

    buffer = MoleculeReplayBuffer("qm9", capacity=4)
    graphs = MolGraphSpace(QM9_VOCABULARY).noise(64, torch.Generator().manual_seed(0))
    index = torch.arange(64) % 4  # every slot drawn 16 times
    buffer.push(graphs, index)
    for slot in range(4):
        last = 60 + slot
        assert torch.equal(buffer.stored_nodes[slot].long(), graphs.nodes[last])
        assert torch.equal(buffer.stored_edges[slot].long(), graphs.edges[last])


def test_zinc250k_config_names_its_data_set_once(qm9_available):
    # zinc250k.yaml names the data set only under data; base.yaml holds QM9 defaults. The command
    # must replace every one of them with ZINC250k's vocabulary (17 atom types, 38 slots).
    cli = build_cli(["--config", str(RECIPES / "base.yaml"), "--config", str(RECIPES / "zinc250k.yaml")], run=False)
    energy, objective = cli.model.energy, cli.model.objective
    assert energy.num_node_types == 17 and energy.features.vocabulary == "zinc250k"
    assert objective.sampler_options["dataset"] == "zinc250k"
    assert objective.source.space.max_nodes == 38
