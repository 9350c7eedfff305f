"""benchmarks/neighbour_gaps.py: connectivity, grouped log-mass, and an end-to-end run on an untrained energy."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.neighbour_gaps import CLASSES, _log_mass, connected, main
from structebm.chem.vocab import get_vocabulary
from structebm.energies.graph import RelationalGraphEnergy
from structebm.graphs.state import DenseGraph


def _graph(num_nodes: int, bonds: list[tuple[int, int]], slots: int = 4) -> DenseGraph:
    nodes = torch.zeros(1, slots, dtype=torch.long)
    nodes[0, :num_nodes] = 1
    edges = torch.zeros(1, slots, slots, dtype=torch.long)
    for i, j in bonds:
        edges[0, i, j] = edges[0, j, i] = 1
    return DenseGraph(nodes, edges, nodes > 0)


def test_connected_counts_fragments_of_occupied_slots_only():
    graphs = [_graph(3, [(0, 1), (1, 2)]), _graph(3, [(0, 1)]), _graph(4, [(0, 1), (2, 3)]), _graph(1, []), _graph(0, [])]
    batch = DenseGraph.concatenate(graphs)
    assert connected(batch).tolist() == [True, False, False, True, True]


def test_log_mass_is_a_grouped_logsumexp():
    logits = torch.tensor([0.5, -1.0, 2.0, 3.0, -0.25])
    owner = torch.tensor([0, 0, 2, 2, 2])
    mass = _log_mass(logits, owner, 4)
    assert mass[0].item() == pytest.approx(torch.logsumexp(logits[:2], 0).item())
    assert mass[2].item() == pytest.approx(torch.logsumexp(logits[2:], 0).item())
    assert mass[1].item() == float("-inf") and mass[3].item() == float("-inf")


def test_every_neighbour_falls_in_one_class(tmp_path):
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(len(get_vocabulary("qm9")), 3, hidden=8, num_layers=1)
    torch.save(energy.state_dict(), tmp_path / "energy.pt")
    out = tmp_path / "gaps.json"
    rows = main(["--energy", str(tmp_path / "energy.pt"), "--out", str(out), "--hidden", "8", "--num-layers", "1",
                 "--num-molecules", "5"])
    assert [row["neighbours"] for row in rows] == list(CLASSES)
    assert sum(row["share"] for row in rows) == pytest.approx(1.0)
    assert all(0.0 < row["share"] < 1.0 for row in rows)  # QM9 molecules have neighbours of every class
    assert len(json.loads(out.read_text())["rows"]) == 3 and out.with_suffix(".md").exists()
