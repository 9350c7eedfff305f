"""Graph Gibbs-with-gradients reuses the proposal at the current state and the written-out energy gradient.

Both are exact rewrites: the chain with the kept proposal draws exactly what the chain that
recomputes it draws, and the chain through ``graph_one_hot_energy_and_grad`` draws what the
chain through autograd draws (float64, so that rounding cannot flip an accept decision).
"""

import torch
from torch import Tensor, nn

from structebm.chem.features import ChemistryFeatures
from structebm.chem.graph_space import MolGraphSpace
from structebm.chem.vocab import QM9_VOCABULARY
from structebm.energies.graph import HasGraphOneHotEnergyGradient, RelationalGraphEnergy
from structebm.samplers.graph_gwg import GraphGWGState, graph_gibbs_with_gradients

STEPS = 40
CHAINS = 32


class AutogradOnly(nn.Module):
    """The same energy without the written-out gradient (the sampler falls back to autograd)."""

    def __init__(self, energy: RelationalGraphEnergy) -> None:
        super().__init__()
        self.energy = energy
        self.num_node_types, self.num_edge_types = energy.num_node_types, energy.num_edge_types

    def graph_one_hot_energy(self, nodes: Tensor, edges: Tensor, c=None) -> Tensor:
        return self.energy.graph_one_hot_energy(nodes, edges, c)


def setup():
    torch.manual_seed(0)
    energy = RelationalGraphEnergy(
        len(QM9_VOCABULARY), 3, hidden=16, num_layers=2, features=ChemistryFeatures(QM9_VOCABULARY)
    ).double().eval()
    space = MolGraphSpace(QM9_VOCABULARY, connected_noise=True)
    start = space.noise(CHAINS, torch.Generator().manual_seed(1))
    return energy, space, start


def run(sampler, start, forget_proposal: bool = False):
    generator = torch.Generator().manual_seed(2)
    state = sampler.init(start, None)
    accepted = 0
    for _ in range(STEPS):
        if forget_proposal:
            state.proposal = None
        state, info = sampler.step(state, generator)
        accepted += int(info.accepted.sum())
    return state, accepted


def test_kept_proposal_draws_what_a_recomputed_one_draws():
    energy, space, start = setup()
    sampler = graph_gibbs_with_gradients(energy, space)
    kept, accepted = run(sampler, start)
    recomputed, _ = run(sampler, start, forget_proposal=True)
    assert isinstance(kept, GraphGWGState) and kept.proposal is not None
    assert 0 < accepted < STEPS * CHAINS  # the chains both accept and reject
    assert torch.equal(kept.x.nodes, recomputed.x.nodes) and torch.equal(kept.x.edges, recomputed.x.edges)
    # one more step from the kept proposal and from none: the same draw and the same kept proposal
    forgotten = GraphGWGState(x=kept.x, c=None, energy=kept.energy, grad=kept.grad, step=kept.step)
    next_kept, _ = sampler.step(kept, torch.Generator().manual_seed(3))
    next_forgotten, _ = sampler.step(forgotten, torch.Generator().manual_seed(3))
    assert torch.equal(next_kept.x.edges, next_forgotten.x.edges) and torch.equal(next_kept.x.nodes, next_forgotten.x.nodes)
    torch.testing.assert_close(next_kept.proposal[0], next_forgotten.proposal[0], rtol=0, atol=0)


def test_written_out_gradient_draws_what_autograd_draws():
    energy, space, start = setup()
    assert isinstance(energy, HasGraphOneHotEnergyGradient)
    assert not isinstance(AutogradOnly(energy), HasGraphOneHotEnergyGradient)
    written_out, accepted = run(graph_gibbs_with_gradients(energy, space), start)
    autograd, _ = run(graph_gibbs_with_gradients(AutogradOnly(energy), space), start)
    assert 0 < accepted < STEPS * CHAINS
    assert torch.equal(written_out.x.nodes, autograd.x.nodes) and torch.equal(written_out.x.edges, autograd.x.edges)
    torch.testing.assert_close(written_out.energy, autograd.energy, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(written_out.grad, autograd.grad, rtol=1e-10, atol=1e-10)
