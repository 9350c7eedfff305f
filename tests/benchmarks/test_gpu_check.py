"""The GPU check script at a tiny configuration on the CPU (its CPU half).

Timings mean nothing at these sizes; what is checked is that every section runs the work it
names and reports it whole: structebm's Langevin chain equals the hand-written loop's, the
graph sampler's energy is the one the molecule recipe's own configs build, the CRF rows carry
the peers' agreement, the report says whether CUDA was there, and a spent budget skips sections
with a note instead of running them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmarks.gpu_check import SECTIONS, CheckConfig, cpu_config, recipe_energy, run_check, write_check_report
from benchmarks.langevin_speed import BenchmarkConfig, EnergySpec
from structebm.cli import build_cli

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "molecule_generation"

TINY = replace(
    cpu_config(),
    batch_sizes=(16,),
    speed=BenchmarkConfig(
        energies=(EnergySpec("tiny", 3, (8, 8)),), batch_size=16, langevin_steps=2, pcd_chain_steps=2, buffer_capacity=64,
        warmup=1, repeats=2, min_seconds=0.0, device="cpu",
    ),
    graph_datasets=("qm9",),
    graph_samples=8,
    graph_steps=2,
    crf_shapes=((4, 6, 3),),
    crf_repeats=2,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu_check") / "check.json"
    json_path, markdown_path = write_check_report(run_check(TINY), out)
    return json.loads(json_path.read_text()), markdown_path.read_text()


def test_every_section_reports_and_the_cpu_half_says_cuda_was_absent(report) -> None:
    payload, markdown = report
    assert list(payload["sections"]) == list(SECTIONS)
    assert payload["cuda_available"] == torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert "CUDA absent" in payload["cuda_note"] and "CUDA absent" in markdown
    assert payload["sections"]["tests"]["note"].startswith("not run")
    for name in ("langevin_pcd", "graph_gwg", "crf", "options"):
        assert payload["sections"][name]["rows"], name
        assert f"## {name} (" in markdown


def test_langevin_rows_time_the_same_chains_as_the_handwritten_loop(report) -> None:
    rows = report[0]["sections"]["langevin_pcd"]["rows"]
    assert [row["key"] for row in rows] == ["langevin/tiny", "pcd_step/tiny"]
    langevin = rows[0]
    assert langevin["batch"] == 16 and langevin["device"] == "cpu"
    assert langevin["max_abs_diff_structebm"] == 0.0  # same float operations on the same noise
    for name in ("structebm", "handwritten", "torchebm", "ebmkit"):
        assert langevin[f"{name}_ms"] > 0
    options = report[0]["sections"]["options"]["rows"]
    assert {row["key"] for row in options} == {"langevin/tiny", "pcd_step/tiny"}
    assert all(row["structebm_bf16_ms"] > 0 and "structebm_compiled_ms" not in row for row in options)


def test_graph_rows_use_the_recipe_energy_and_count_molecules_per_second(report) -> None:
    (row,) = report[0]["sections"]["graph_gwg"]["rows"]
    cli = build_cli(["--config", str(RECIPE / "base.yaml"), "--config", str(RECIPE / "qm9.yaml")], run=False)
    recipe = cli.model.energy
    assert row["parameters"] == sum(p.numel() for p in recipe.parameters())
    energy, _ = recipe_energy("qm9")
    assert [tuple(p.shape) for p in energy.parameters()] == [tuple(p.shape) for p in recipe.parameters()]
    assert row["molecules_per_s"] == pytest.approx(row["molecules"] / row["seconds"])
    assert row["chain_steps_per_s"] == pytest.approx(row["molecules"] * row["steps"] / row["seconds"])


def test_crf_rows_carry_the_peers_agreement(report) -> None:
    rows = report[0]["sections"]["crf"]["rows"]
    assert [row["operation"] for row in rows] == ["nll_fwd_bwd", "viterbi"]
    for row in rows:
        fastest = min(row["pytorch_crf_ms"], row["torch_struct_ms"])
        assert row["speedup_vs_fastest_peer"] == pytest.approx(fastest / row["structebm_ms"])
        assert row["viterbi_paths_agree_pytorch_crf"] is True and row["logZ_maxdiff_float64"] < 1e-4


def test_a_spent_budget_skips_sections_and_cuda_is_required_when_asked_for() -> None:
    payload = run_check(replace(TINY, budget_seconds=0.0), ["crf", "graph_gwg"])
    assert all(section["note"].startswith("not run") for section in payload["sections"].values())
    with pytest.raises(ValueError, match="unknown section"):
        run_check(TINY, ["nothing"])
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            run_check(replace(TINY, device="cuda"), ["crf"])
