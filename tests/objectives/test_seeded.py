"""The objectives' own generator: reproducible, exportable, and restorable across device types."""

import pytest
import torch

from structebm.objectives.score_matching import DenoisingScoreMatching
from structebm.training.rng import collect_generator_states, load_generator_states
from tests.objectives._targets import gaussian_data, standard_gaussian_model


def test_state_round_trip_reproduces_the_stream():
    model, x = standard_gaussian_model(), gaussian_data(8)
    objective = DenoisingScoreMatching(0.5, generator_seed=3)
    objective.bind(model)
    state = objective.generator_state()
    assert state.dtype == torch.uint8
    first = objective(model, x).loss
    objective.load_generator_state(state)
    assert torch.equal(objective(model, x).loss, first)
    other_seed = DenoisingScoreMatching(0.5, generator_seed=4)
    assert not torch.equal(other_seed(model, x).loss, first)


def test_works_with_the_trainer_checkpoint_helpers():
    model, x = standard_gaussian_model(), gaussian_data(8)
    objective = DenoisingScoreMatching(0.5, generator_seed=5)
    objective(model, x)
    states = collect_generator_states(objective)
    expected = objective(model, x).loss
    fresh = DenoisingScoreMatching(0.5, generator_seed=0)
    load_generator_states(fresh, states)
    assert torch.equal(fresh(model, x).loss, expected)


def test_a_state_from_another_device_type_waits_for_that_device():
    objective = DenoisingScoreMatching(0.5, generator_seed=6)
    before = objective.generator_state()
    foreign = torch.zeros(16, dtype=torch.uint8)  # a CUDA Philox state is 16 bytes; a CPU one is larger
    objective.load_generator_state(foreign)
    assert torch.equal(objective.generator_state(), before), "a foreign state must not clobber this generator"
    with pytest.raises(TypeError, match="uint8"):
        objective.load_generator_state(torch.zeros(3))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generator_follows_the_data_to_cuda_and_resumes_there():
    model, x = standard_gaussian_model().cuda(), gaussian_data(8).cuda()
    objective = DenoisingScoreMatching(0.5, generator_seed=7)
    objective.bind(model)
    assert objective.generator_for(x.device).device.type == "cuda"
    objective(model, x)
    cuda_state = objective.generator_state()
    expected = objective(model, x).loss
    resumed = DenoisingScoreMatching(0.5, generator_seed=7)  # bound later, still on the CPU
    resumed.load_generator_state(cuda_state)
    resumed.bind(model)
    assert torch.equal(resumed(model, x).loss, expected)
