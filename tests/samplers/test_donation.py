"""Donated chain states: Langevin updates them in place, with the same numbers as out of place."""

from __future__ import annotations

import torch

from structebm.energies.mlp import MLPEnergy
from structebm.samplers.base import ChainState, donate, run_chain
from structebm.samplers.langevin import langevin


def _sampler():
    torch.manual_seed(0)
    return langevin(MLPEnergy(3, (16,)), step_size=0.01, noise_scale=0.1)


def test_a_state_that_is_not_donated_is_left_untouched():
    sampler = _sampler()
    x0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    kept = x0.clone()
    state = sampler.init(x0)
    new_state, _ = sampler.step(state, torch.Generator().manual_seed(2))
    assert torch.equal(state.x, kept) and torch.equal(x0, kept)
    assert new_state.x.data_ptr() != state.x.data_ptr()
    assert not new_state.donated


def test_a_donated_state_is_updated_in_place_with_identical_values():
    sampler = _sampler()
    x0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    plain, _ = sampler.step(sampler.init(x0), torch.Generator().manual_seed(2))
    owned = sampler.init(x0.clone())
    storage = owned.x.data_ptr()
    moved, _ = sampler.step(donate(owned), torch.Generator().manual_seed(2))
    assert moved.x.data_ptr() == storage
    torch.testing.assert_close(moved.x, plain.x, rtol=0, atol=0)


def test_run_chain_never_overwrites_the_starting_point():
    sampler = _sampler()
    x0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    kept = x0.clone()
    end, _ = run_chain(sampler, x0, 5, torch.Generator().manual_seed(3))
    assert torch.equal(x0, kept)
    # The same five transitions without donation give the same end point.
    state = sampler.init(x0)
    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        state, _ = sampler.step(state, generator)
    torch.testing.assert_close(end, state.x, rtol=0, atol=0)


def test_donate_leaves_other_state_types_alone():
    assert donate((1, 2)) == (1, 2)
    assert donate(ChainState(x=torch.zeros(1, 1), c=None, energy=None)).donated
