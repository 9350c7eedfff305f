"""The graph replay buffer with a continuous condition: it keeps (G, c) pairs, restarts take the batch's c."""

import pytest
import torch

from structebm.graphs.space import GraphSpace
from structebm.samplers.graph_buffer import GraphReplayBuffer

SPACE = GraphSpace(5, 2, 1)


def graphs(n: int, seed: int):
    return SPACE.noise(n, torch.Generator().manual_seed(seed))


def test_chains_from_noise_take_the_batch_condition():
    buffer = GraphReplayBuffer(SPACE, capacity=32, reinit_prob=0.0, condition_dim=2)
    c = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    start = buffer.start(graphs(16, 1), c, torch.Generator().manual_seed(2))
    assert torch.equal(start.c, c)  # every slot is empty: all chains restart from noise


def test_chains_from_written_slots_keep_the_condition_they_ran_with():
    buffer = GraphReplayBuffer(SPACE, capacity=8, reinit_prob=0.0, condition_dim=1)
    generator = torch.Generator().manual_seed(3)
    first_c = torch.arange(64.0)[:, None]
    start = buffer.start(graphs(64, 4), first_c, generator)
    final = graphs(64, 5)
    buffer.update(start, final)
    assert bool(buffer.filled.all())  # 64 draws over 8 slots
    # the last chain written to a slot wins, for its graph and its condition alike
    last = {int(slot): b for b, slot in enumerate(start.index)}
    for slot, b in last.items():
        assert float(buffer.stored_condition[slot, 0]) == float(first_c[b, 0])
        assert torch.equal(buffer.stored_nodes[slot].long(), final.nodes[b])
    batch_c = torch.full((40, 1), -7.0)
    second = buffer.start(graphs(40, 6), batch_c, generator)
    expected = torch.tensor([[float(first_c[last[int(slot)], 0])] for slot in second.index])
    assert torch.equal(second.c, expected)  # no chain restarted (reinit_prob 0, all slots written)
    assert torch.equal(second.x.nodes, torch.stack([final.nodes[last[int(slot)]] for slot in second.index]))


def test_restarted_chains_mix_with_persistent_ones():
    buffer = GraphReplayBuffer(SPACE, capacity=16, reinit_prob=0.5, condition_dim=1)
    generator = torch.Generator().manual_seed(7)
    for step in range(5):
        start = buffer.start(graphs(64, step), torch.full((64, 1), float(step)), generator)
        buffer.update(start, start.x)
    start = buffer.start(graphs(64, 9), torch.full((64, 1), 9.0), generator)
    restarted = start.c[:, 0] == 9.0
    # restarted chains have the batch's c; the others a c of an earlier batch, the one of their slot
    assert 0 < int(restarted.sum()) < 64
    kept = ~restarted
    assert torch.equal(start.c[kept], buffer.stored_condition[start.index[kept]])


@pytest.mark.parametrize("c, message", [(None, "got NoneType"), (torch.zeros(4, 3), r"\[4, 2\]; got \(4, 3\)"),
                                        (torch.zeros(4, 2, dtype=torch.long), "float tensor")])
def test_a_missing_or_misshapen_condition_is_named(c, message):
    buffer = GraphReplayBuffer(SPACE, capacity=8, condition_dim=2)
    with pytest.raises(ValueError, match=message):
        buffer.start(graphs(4, 0), c, torch.Generator().manual_seed(0))


def test_bad_settings_and_checkpoint_round_trip():
    with pytest.raises(ValueError, match="not both"):
        GraphReplayBuffer(SPACE, capacity=8, num_classes=2, condition_dim=1)
    with pytest.raises(ValueError, match="condition_dim must be"):
        GraphReplayBuffer(SPACE, capacity=8, condition_dim=0)
    buffer = GraphReplayBuffer(SPACE, capacity=8, condition_dim=3)
    start = buffer.start(graphs(8, 1), torch.randn(8, 3), torch.Generator().manual_seed(1))
    buffer.update(start, start.x)
    restored = GraphReplayBuffer(SPACE, capacity=8, condition_dim=3)
    restored.load_state_dict(buffer.state_dict())
    assert torch.equal(restored.stored_condition, buffer.stored_condition)
