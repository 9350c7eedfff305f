"""benchmarks/molecule_sampling_speed.py: bad flags are named; a baseline run of the same code
samples exactly the same molecules in its own process, and the profile's sections fit in a step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.molecule_sampling_speed import SECTIONS, main, parse_args
from structebm.chem.features import ChemistryFeatures
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.energies.graph import RelationalGraphEnergy

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--out", "x.txt"], "--out must be given and end in .json"),
        (["--out", "x.json", "--num-samples", "0"], "--num-samples, --batch-size and --threads must be >= 1"),
        (["--out", "x.json", "--baseline", "/nonexistent"], "--baseline /nonexistent: no structebm package there"),
    ],
)
def test_bad_flags_are_named(flags, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--energy", "e.pt", *flags])
    assert message in capsys.readouterr().err


def test_baseline_of_the_same_code_draws_the_same_molecules(tmp_path):
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(
        len(QM9_VOCABULARY), 3, hidden=8, num_layers=1, features=ChemistryFeatures(QM9_VOCABULARY)
    )
    torch.save(energy.state_dict(), tmp_path / "energy.pt")
    out = tmp_path / "speed.json"
    payload = main([
        "--energy", str(tmp_path / "energy.pt"), "--hidden", "8", "--num-layers", "1", "--num-samples", "6",
        "--batch-size", "4", "--sampling-steps", "3", "--profile", "2", "--baseline", str(REPO), "--out", str(out),
    ])
    runs = payload["runs"]
    assert runs["identical_samples"] is True
    assert len(runs["current"]["chunk_seconds"]) == len(runs["baseline"]["chunk_seconds"]) == 2  # batches of 4 and 2
    assert runs["current"]["samples_per_second"] == pytest.approx(6 / sum(runs["current"]["chunk_seconds"]))
    profile = payload["profile"]
    assert set(profile["section_ms_per_step"]) == {name.removeprefix("gwg.") for name in SECTIONS} | {"other"}
    sections = profile["section_ms_per_step"]
    assert sections["energy_and_grad"] > 0 and sections["energy_forward"] == 0  # the written-out gradient is used
    assert all(value >= 0 for value in sections.values())
    assert json.loads(out.read_text())["runs"]["identical_samples"] is True
    assert out.with_suffix(".md").is_file()
