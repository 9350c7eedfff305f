"""Graph chain sources: noise starts and the persistent graph replay buffer."""

import pytest
import torch

from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.samplers.graph_buffer import GraphNoiseInit, GraphReplayBuffer

SPACE = MolGraphSpace(QM9_VOCABULARY)


def data(n: int, seed: int):
    return SPACE.noise(n, torch.Generator().manual_seed(seed))


def test_noise_source_gives_valid_graphs_of_the_data_batch_size():
    source = GraphNoiseInit(SPACE)
    start = source.start(data(12, 0), None, torch.Generator().manual_seed(1))
    SPACE.validate(start.x, "start")
    assert start.x.batch_size == 12 and start.index is None and SPACE.is_valid(start.x).all()


def test_buffer_fills_then_restarts_from_stored_graphs():
    buffer = GraphReplayBuffer(SPACE, capacity=64, reinit_prob=0.0)
    generator = torch.Generator().manual_seed(2)
    start = buffer.start(data(64, 3), None, generator)
    assert buffer.statistics()["noise_start_fraction"] == 1.0  # empty slots start from noise
    final = data(64, 4)
    buffer.update(start, final, energy=torch.arange(64.0))
    assert buffer.statistics()["fill"] == start.index.unique().numel() / 64
    assert buffer.statistics()["fill"] > 0.5  # 64 draws with replacement fill 1 - 1/e of the slots
    # The energies of the filled slots: the last chain written to each slot wins.
    last_energy = {int(slot): float(e) for slot, e in zip(start.index, torch.arange(64.0))}
    expected_mean = sum(last_energy.values()) / len(last_energy)
    second = buffer.start(data(64, 5), None, generator)
    SPACE.validate(second.x, "second start")
    filled = buffer.filled[second.index]
    stored_nodes = buffer.stored_nodes[second.index].long()
    assert torch.equal(second.x.nodes[filled], stored_nodes[filled])
    assert torch.equal(second.x.edges[filled], buffer.stored_edges[second.index].long()[filled])
    assert buffer.statistics()["reinit_fraction"] == 0.0
    assert torch.isclose(buffer.statistics()["noise_start_fraction"], (~filled).float().mean())
    assert buffer.statistics()["mean_energy"].item() == pytest.approx(expected_mean)


def test_reinit_probability_is_respected():
    buffer = GraphReplayBuffer(SPACE, capacity=256, reinit_prob=0.25)
    generator = torch.Generator().manual_seed(6)
    start = buffer.start(data(256, 7), None, generator)
    buffer.update(start, data(256, 8))
    buffer.filled.fill_(True)
    buffer.start(data(2000, 9), None, generator)
    # 2000 Bernoulli(0.25) coins: standard error sqrt(0.25 * 0.75 / 2000) ≈ 0.0097, 4 of them = 0.039.
    assert abs(buffer.statistics()["reinit_fraction"] - 0.25) < 0.039


def test_per_class_storage_and_checkpoint_round_trip():
    buffer = GraphReplayBuffer(SPACE, capacity=20, num_classes=2, reinit_prob=0.0)
    labels = torch.tensor([0, 1] * 8)
    generator = torch.Generator().manual_seed(10)
    start = buffer.start(data(16, 11), labels, generator)
    assert torch.equal(start.index // 10, labels)
    buffer.update(start, data(16, 12))
    copy = GraphReplayBuffer(SPACE, capacity=20, num_classes=2)
    copy.load_state_dict(buffer.state_dict())
    assert torch.equal(copy.stored_edges, buffer.stored_edges) and torch.equal(copy.filled, buffer.filled)
    assert copy.stored_nodes.dtype == torch.int8
    with pytest.raises(ValueError, match="another class's storage"):
        buffer.push(data(16, 13), start.index, 1 - labels)
    with pytest.raises(ValueError, match="needs integer class labels"):
        buffer.start(data(16, 13), None, generator)


def test_bad_inputs_give_clear_errors():
    buffer = GraphReplayBuffer(SPACE, capacity=8)
    with pytest.raises(ValueError, match="GraphReplayBuffer.push: DenseGraph: graph 0 has an asymmetric adjacency"):
        graphs = data(4, 14)
        bonds = graphs.edges.clone()
        bonds[:, 0, 1] = (bonds[:, 0, 1] + 1) % 4
        buffer.push(type(graphs)(graphs.nodes, bonds, graphs.mask), torch.arange(4))
    with pytest.raises(ValueError, match="4 graphs but 3 slot indices"):
        buffer.push(data(4, 15), torch.arange(3))
    with pytest.raises(ValueError, match="reinit_prob"):
        GraphReplayBuffer(SPACE, reinit_prob=1.5)
    with pytest.raises(TypeError, match="space must be a GraphSpace, got AtomVocabulary"):
        GraphReplayBuffer(QM9_VOCABULARY)
