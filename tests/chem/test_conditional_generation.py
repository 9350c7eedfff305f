"""Conditional persistent CD on molecules through the ordinary trainer, conditional sampling, and the
property error of generated molecules."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from structebm.chem.conditional_generation import ConditionalMoleculeGeneration, property_errors, sample_molecules_given
from structebm.chem.convert import smiles_to_dense
from structebm.chem.generation import MoleculeReplayBuffer, molecule_sampler
from structebm.chem.metrics import DecodedMolecules
from structebm.chem.properties import compute_properties
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.data.molecule_datamodule import MoleculeDataModule
from structebm.energies.graph import RelationalGraphEnergy
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.training.module import EBMModule

MOLECULES = ["CCO", "CC(=O)O", "CCCl", "OCCO", "CCN", "CC(C)O", "C1CCOC1", "CC#N", "OC(=O)CO", "CCOC",
             "NCCO", "CC(N)=O", "CCS", "OCC(O)CO", "CC=O", "C1CC1", "CN(C)C", "ClCCl", "CCCC", "OCCN"]


def test_property_errors_score_the_molecules_valid_as_generated():
    smiles = ["CCO", "c1ccccc1", "C.C"]  # the last is two fragments: not valid without correction
    decoded = DecodedMolecules(smiles_to_dense(smiles, QM9_VOCABULARY), QM9_VOCABULARY)
    truth = compute_properties(smiles, ["logp", "rings"])
    targets = truth + torch.tensor([[0.5, 1.0], [-1.5, 0.0], [9.0, 9.0]], dtype=torch.float64)
    report = property_errors(decoded, targets, ["logp", "rings"])
    assert report["num_scored"] == 2
    assert report["mae"]["logp"] == pytest.approx(1.0) and report["mae"]["rings"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="only RDKit properties"):
        property_errors(decoded, targets, ["logp", "activity"])


def test_conditional_persistent_cd_trains_with_the_ordinary_trainer(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("smiles\n" + "\n".join(MOLECULES) + "\n")
    data_args = dict(dataset=str(path), batch_size=8, test_rows=[0, 1, 2, 3], properties=["logp", "qed"],
                     property_cache_dir=str(tmp_path / "cache"))
    settings = MoleculeDataModule.model_settings(**data_args)
    spec, condition_dim = settings["objective.init_args.source.init_args.dataset"], settings["energy.init_args.condition_dim"]
    assert condition_dim == 2 and settings["objective.init_args.source.init_args.condition_dim"] == 2
    data = MoleculeDataModule(**data_args)
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(settings["energy.init_args.num_node_types"], 3, hidden=16, num_layers=2,
                                   condition_dim=condition_dim)
    buffer = MoleculeReplayBuffer(spec, capacity=16, reinit_prob=0.2, condition_dim=condition_dim)
    objective = ContrastiveDivergence(molecule_sampler, buffer, num_steps=2, sampler_options={"dataset": spec})
    module = EBMModule(energy, objective)
    trainer = pl.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 4
    written = buffer.filled
    assert written.any()
    # every stored condition is the normalised property vector of a training molecule
    training_c = data.training_conditions()
    distance = torch.cdist(buffer.stored_condition[written], training_c).min(dim=1).values
    assert (distance < 1e-5).all()

    task = ConditionalMoleculeGeneration(num_targets=2, samples_per_target=3, num_steps=3, batch_size=4, grid_size=0)
    values, c = task.targets(data)
    assert torch.equal(values, data.test_properties[:2].repeat_interleave(3, dim=0))
    report = task.evaluate(energy, data, tmp_path, torch.device("cpu"))
    assert set(report["mae"]) == {"logp", "qed"} and 0 <= report["num_scored"] <= 6
    assert set(report["mae_other_targets"]) == {"logp", "qed"}
    assert "to other targets" in task.summary(report)
    assert "conditional/mae_qed" in task.logged(report)


def test_conditional_sampling_needs_a_condition_and_checks_its_shape():
    energy = RelationalGraphEnergy(len(QM9_VOCABULARY), 3, hidden=8, num_layers=1, condition_dim=2)
    generator = torch.Generator().manual_seed(0)
    graphs = sample_molecules_given(energy, QM9_VOCABULARY, torch.zeros(5, 2), 2, generator, batch_size=2)
    assert graphs.batch_size == 5
    with pytest.raises(ValueError, match=r"c must be a float tensor \[M >= 1, P\]"):
        sample_molecules_given(energy, QM9_VOCABULARY, torch.zeros(5), 2, generator)
    with pytest.raises(ValueError, match=r"c must be a float tensor \[2, 2\], got \(2, 3\)"):
        sample_molecules_given(energy, QM9_VOCABULARY, torch.zeros(2, 3), 2, generator)
