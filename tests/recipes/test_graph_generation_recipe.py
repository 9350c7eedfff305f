"""The graph-generation recipe runs end to end, tiny: community_small, a few PCD steps.

The run goes through the ``structebm`` command line (``build_cli``) with the recipe's YAML
files, as ``benchmarks/graph_generation.py`` does. A few steps teach the energy nothing, so the
test checks the plumbing and what holds for any energy: the chain buffer's noise is fitted to
the training graphs, the buffer fills, the report samples as many graphs as the test split
holds, its MMDs are finite and non-negative, and the JSON and PNG are written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from structebm.cli import build_cli
from structebm.graphs.prior import NodePrior
from structebm.samplers.graph_generation import GraphChainBuffer
from structebm.training.graph_report import GraphGenerationReport

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "graph_generation"


def test_recipe_configs_parse_for_every_set():
    for name, capacity in (("community_small", 20), ("ego_small", 18), ("enzymes", 125), ("grid", 361)):
        cli = build_cli(
            ["--config", str(RECIPES / "base.yaml"), "--config", str(RECIPES / f"{name}.yaml"), "--trainer.logger=false"],
            run=False,
        )
        assert cli.model.objective.source.space.max_nodes == capacity
        assert cli.model.objective.sampler_options["max_nodes"] == capacity


def test_recipe_runs_tiny(tmp_path):
    cli = build_cli([
        "fit",
        "--config", str(RECIPES / "base.yaml"),
        "--config", str(RECIPES / "community_small.yaml"),
        "--trainer.max_steps=4",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.callbacks.init_args.output_dir={tmp_path / 'report'}",
        "--trainer.callbacks.init_args.num_steps=5",
        "--model.objective.init_args.num_steps=2",
        "--model.energy.init_args.hidden=16",
    ])
    source = cli.model.objective.source
    assert isinstance(source, GraphChainBuffer)
    assert isinstance(source.space.node_prior, NodePrior)  # fitted by FitGraphNoise
    assert 0 < source.space.edge_prob < 1
    assert int(source.filled.sum()) > 0
    report = next(c for c in cli.trainer.callbacks if isinstance(c, GraphGenerationReport)).report
    assert report["num_samples"] == 20 and report["train_steps"] == 4
    for key in ("degree_mmd", "clustering_mmd", "orbit_mmd", "spectral_mmd"):
        assert math.isfinite(report[key]) and report[key] >= -1e-12
    written = json.loads((tmp_path / "report" / "graph_report.json").read_text())
    assert written["degree_mmd"] == pytest.approx(report["degree_mmd"])
    assert (tmp_path / "report" / "graphs.png").read_bytes()[:4] == b"\x89PNG"
