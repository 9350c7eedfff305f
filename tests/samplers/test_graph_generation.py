"""Chains from noise and the persistent chain source of generic graph generation."""

from __future__ import annotations

import pytest
import torch

from structebm.energies.graph import RelationalGraphEnergy
from structebm.graphs.space import GraphSpace
from structebm.samplers.graph_generation import GraphChainBuffer, fitted_space, sample_graphs


def _energy() -> RelationalGraphEnergy:
    torch.manual_seed(0)
    return RelationalGraphEnergy(1, 1, hidden=8, num_layers=1)


def test_zero_steps_return_the_noise_and_batches_concatenate():
    space = GraphSpace(6, 1, 1, edge_prob=0.3)
    graphs = sample_graphs(_energy(), space, 7, 0, torch.Generator().manual_seed(3), batch_size=4)
    generator = torch.Generator().manual_seed(3)
    first, second = space.noise(4, generator), space.noise(3, generator)
    assert graphs.edges.shape == (7, 6, 6)
    assert torch.equal(graphs.edges[:4], first.edges) and torch.equal(graphs.edges[4:], second.edges)


def test_chains_move_and_keep_the_energy_mode():
    energy = _energy().train()
    space = GraphSpace(6, 1, 1, edge_prob=0.3)
    graphs = sample_graphs(energy, space, 5, 20, torch.Generator().manual_seed(0), num_flips=1)
    start = space.noise(5, torch.Generator().manual_seed(0))
    assert energy.training
    assert not torch.equal(graphs.edges, start.edges)
    assert torch.equal(graphs.edges, graphs.edges.transpose(1, 2))


@pytest.mark.parametrize("name, value", [("num_samples", 0), ("num_steps", -1), ("batch_size", 1.5)])
def test_bad_counts_are_named(name, value):
    counts = {"num_samples": 2, "num_steps": 1, "batch_size": 10, name: value}
    with pytest.raises(ValueError, match=name):
        sample_graphs(_energy(), GraphSpace(4, 1, 1), counts["num_samples"], counts["num_steps"],
                      torch.Generator().manual_seed(0), batch_size=counts["batch_size"])


def test_buffer_noise_fit_checks_the_space():
    buffer = GraphChainBuffer(5, capacity=10)
    buffer.fit_noise(GraphSpace(5, 1, 1, edge_prob=0.2))
    assert buffer.space.edge_prob == pytest.approx(0.2)
    with pytest.raises(ValueError, match="GraphChainBuffer.fit_noise"):
        buffer.fit_noise(GraphSpace(6, 1, 1))


def test_fitted_space_names_what_the_data_module_lacks():
    with pytest.raises(ValueError, match="node_prior"):
        fitted_space(object())


def test_progress_bar_counts_steps_and_chains(capsys):
    space = GraphSpace(4, 1, 1)
    sample_graphs(_energy(), space, 7, 3, torch.Generator().manual_seed(0), batch_size=4, progress=True)
    shown = capsys.readouterr().err
    assert "6/6" in shown  # two batches of three steps
    assert "chains=7/7" in shown and "graphs_per_s=" in shown
    sample_graphs(_energy(), space, 7, 3, torch.Generator().manual_seed(0), batch_size=4)
    assert capsys.readouterr().err == ""  # quiet by default


def test_one_condition_per_chain_is_checked():
    with pytest.raises(ValueError, match=r"c must be a tensor \[num_samples=3, P\]"):
        sample_graphs(_energy(), GraphSpace(4, 1, 1), 3, 1, torch.Generator().manual_seed(0), c=torch.zeros(2, 1))
