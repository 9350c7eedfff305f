"""Tests for the chain sources: data, noise and the persistent replay buffer."""

import math

import pytest
import torch

from structebm.samplers.chains import ChainStart, DataInit, NoiseInit, ReplayBuffer
from structebm.spaces import CategoricalSpace, ContinuousSpace

# Noise lives in [10, 11]; stored states are small integers, so a start's origin is visible.
NOISE_BOX = ContinuousSpace((1,), low=10.0, high=11.0)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_data_init_starts_at_a_detached_copy_of_the_data():
    x = torch.randn(5, 2, requires_grad=True)
    start = DataInit().start(x, None, _generator())
    assert torch.equal(start.x, x.detach()) and not start.x.requires_grad and start.index is None
    start.x.add_(1.0)
    assert not torch.equal(start.x, x.detach())
    DataInit().update(start, start.x)  # a no-op


def test_noise_init_draws_from_the_space():
    space = CategoricalSpace(6, 3)
    c = torch.randn(4, 6, 3)
    start = NoiseInit(space).start(torch.zeros(4, 6, dtype=torch.long), c, _generator())
    assert start.x.shape == (4, 6) and start.c is c
    space.validate(start.x, "noise start")


def test_buffer_fills_lazily_from_noise():
    buffer = ReplayBuffer(NOISE_BOX, capacity=8, reinit_prob=0.0)
    x0, index = buffer.initial(6, None, _generator())
    assert ((x0 >= 10) & (x0 <= 11)).all(), "an empty buffer must start every chain from noise"
    assert buffer.statistics()["fill"] == 0 and buffer.statistics()["noise_start_fraction"] == 1
    buffer.push(torch.full((6, 1), 2.0), index, energy=torch.arange(6.0))
    stats = buffer.statistics()
    assert stats["fill"] == index.unique().numel() / 8
    # The energies of the filled slots: the last chain written to each slot wins.
    last_energy = {int(slot): float(e) for slot, e in zip(index, torch.arange(6.0))}
    assert stats["mean_energy"].item() == pytest.approx(sum(last_energy.values()) / len(last_energy))


def test_per_class_storage_never_mixes_classes():
    num_classes = 4
    buffer = ReplayBuffer(NOISE_BOX, capacity=40, reinit_prob=0.1, num_classes=num_classes)
    generator = _generator(5)
    for _ in range(30):
        c = torch.randint(0, num_classes, (16,), generator=generator)
        start = buffer.start(torch.zeros(16, 1), c, generator)
        from_noise = (start.x >= 10).squeeze(1)
        # A non-noise start holds exactly its own class's value; never another class's.
        assert torch.equal(start.x[~from_noise].squeeze(1), c[~from_noise].float())
        assert torch.equal(start.index // buffer.slots_per_group, c)
        buffer.update(start, c.float().unsqueeze(1), energy=torch.zeros(16))
    slots = torch.arange(buffer.capacity)
    owner = (slots // buffer.slots_per_group).float()
    assert torch.equal(buffer.storage[buffer.filled].squeeze(1), owner[buffer.filled])


def test_push_into_another_class_is_refused():
    buffer = ReplayBuffer(NOISE_BOX, capacity=10, num_classes=2)
    x0, index = buffer.initial(3, torch.tensor([0, 1, 1]), _generator())
    with pytest.raises(ValueError, match="another class's storage"):
        buffer.push(x0, index, torch.tensor([0, 0, 1]))


@pytest.mark.parametrize("reinit_prob", [0.05, 0.3])
def test_reinit_fraction_matches_the_probability(reinit_prob):
    buffer = ReplayBuffer(NOISE_BOX, capacity=64, reinit_prob=reinit_prob)
    buffer.push(torch.full((64, 1), 3.0), torch.arange(64))
    generator = _generator(11)
    draws, batch = 8, 2500
    restarted = 0
    for _ in range(draws):
        x0, _ = buffer.initial(batch, None, generator)
        restarted += int((x0 >= 10).sum())
        assert buffer.statistics()["reinit_fraction"] == buffer.statistics()["noise_start_fraction"]
    n = draws * batch
    # Restarts are Binomial(n, rho): the observed fraction has sd sqrt(rho (1 - rho) / n).
    # 5 sd keeps a false failure below 1e-6 while catching e.g. rho vs 1.2 rho (> 7 sd at n = 20000).
    tolerance = 5 * math.sqrt(reinit_prob * (1 - reinit_prob) / n)
    assert abs(restarted / n - reinit_prob) < tolerance


def test_state_dict_round_trip_restores_contents_exactly():
    space = ContinuousSpace((2, 3))
    buffer = ReplayBuffer(space, capacity=12, reinit_prob=0.2, num_classes=3)
    generator = _generator(2)
    for _ in range(5):
        c = torch.randint(0, 3, (7,), generator=generator)
        start = buffer.start(torch.zeros(7, 2, 3), c, generator)
        buffer.update(start, start.x + 0.5, energy=torch.randn(7, generator=generator))
    restored = ReplayBuffer(space, capacity=12, reinit_prob=0.2, num_classes=3)
    restored.load_state_dict(buffer.state_dict())
    for name, tensor in buffer.state_dict().items():
        # Slots never written hold a NaN energy; NaN != NaN, so compare with NaNs mapped to a sentinel.
        assert torch.equal(restored.state_dict()[name].nan_to_num(-1e30), tensor.nan_to_num(-1e30)), name
    c = torch.tensor([0, 1, 2, 2])
    a, _ = buffer.initial(4, c, _generator(9))
    b, _ = restored.initial(4, c, _generator(9))
    assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match="size mismatch"):
        ReplayBuffer(space, capacity=6, num_classes=3).load_state_dict(buffer.state_dict())


def test_mean_energy_is_reported_only_once_an_energy_was_stored_or_loaded():
    space = ContinuousSpace((2,))
    buffer = ReplayBuffer(space, capacity=8, reinit_prob=0.0)
    start = buffer.start(torch.zeros(4, 2), None, _generator())
    buffer.update(start, start.x)
    assert "mean_energy" not in buffer.statistics()  # end points pushed without their energy
    buffer.update(start, start.x, energy=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    known = buffer.stored_energy[~buffer.stored_energy.isnan()]
    assert torch.equal(buffer.statistics()["mean_energy"], known.mean())
    restored = ReplayBuffer(space, capacity=8, reinit_prob=0.0)
    restored.load_state_dict(buffer.state_dict())
    assert torch.equal(restored.statistics()["mean_energy"], known.mean())
    restored.update(start, start.x)  # overwritten without an energy: those energies are unknown again
    assert "mean_energy" not in restored.statistics() and restored.stored_energy.isnan().all()


def test_buffers_follow_to_device():
    buffer = ReplayBuffer(CategoricalSpace(5, 3), capacity=10)
    assert buffer.storage.dtype == torch.long
    names = {name for name, _ in buffer.named_buffers()}
    assert {"storage", "filled", "stored_energy"} <= names
    moved = buffer.to("meta")
    assert all(t.device.type == "meta" for t in moved.buffers())
    if torch.cuda.is_available():
        cuda_buffer = ReplayBuffer(CategoricalSpace(5, 3), capacity=10).cuda()
        generator = torch.Generator(device="cuda").manual_seed(0)
        start = cuda_buffer.start(torch.zeros(4, 5, dtype=torch.long, device="cuda"), None, generator)
        cuda_buffer.update(start, start.x)
        assert start.x.device.type == "cuda" and cuda_buffer.filled.any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="reinit_prob"):
        ReplayBuffer(NOISE_BOX, reinit_prob=1.5)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(NOISE_BOX, capacity=3, num_classes=4)
    per_class = ReplayBuffer(NOISE_BOX, capacity=8, num_classes=2)
    with pytest.raises(ValueError, match="needs class labels c"):
        per_class.initial(2, None, _generator())
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 2\)"):
        per_class.initial(2, torch.tensor([0, 2]), _generator())
    with pytest.raises(ValueError, match="integer class labels"):
        per_class.initial(2, torch.tensor([0.0, 1.0]), _generator())
    with pytest.raises(ValueError, match="does not match index"):
        per_class.push(torch.zeros(3, 2), torch.arange(3), torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match="did not come from this buffer"):
        per_class.update(ChainStart(torch.zeros(2, 1), None), torch.zeros(2, 1))
