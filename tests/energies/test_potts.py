"""PottsEnergy against brute-force sums and enumeration on tiny models."""

import itertools

import pytest
import torch

from structebm.energies.base import HasExactSample, HasLocalMoves, HasLogPartition, HasMarginals, HasOneHotEnergy
from structebm.energies.potts import PottsEnergy, lattice_pattern, spins_to_states, states_to_spins
from structebm.structured.enumerate import EnumerationTooLargeError, all_states, empirical_distribution, total_variation


def random_potts(seed: int = 0, length: int = 4, num_states: int = 3) -> PottsEnergy:
    return PottsEnergy(length, num_states, init_std=0.7, generator=torch.Generator().manual_seed(seed))


def reference_energy(model: PottsEnergy, x: torch.Tensor, c=None) -> torch.Tensor:
    """E(x) = -Σ_i (h_i + c_i)[x_i] - Σ_{i<j} J_ij[x_i, x_j], by explicit loops."""
    h, J = model.fields.detach(), model.couplings.detach()
    out = torch.zeros(x.shape[0])
    for b in range(x.shape[0]):
        for i in range(model.length):
            out[b] -= h[i, x[b, i]] + (0.0 if c is None else c[b, i, x[b, i]])
            for j in range(i + 1, model.length):
                out[b] -= J[i, j, x[b, i], x[b, j]]
    return out


def test_declares_the_capabilities():
    model = random_potts()
    for capability in (HasLocalMoves, HasOneHotEnergy, HasLogPartition, HasMarginals, HasExactSample):
        assert isinstance(model, capability)


def test_couplings_are_symmetric_with_zero_diagonal_and_follow_the_pattern():
    pattern = lattice_pattern(4)  # a chain 0-1-2-3
    model = PottsEnergy(4, 3, coupling_pattern=pattern, init_std=1.0, generator=torch.Generator().manual_seed(0))
    J = model.couplings
    assert torch.allclose(J, J.permute(1, 0, 3, 2))
    assert (J[~pattern] == 0).all() and (J[pattern] != 0).any()
    assert torch.allclose(model.coupling_matrix, model.coupling_matrix.T)


def test_forward_matches_explicit_sum_with_and_without_external_field():
    model = random_potts()
    states = all_states(4, 3)
    assert torch.allclose(model(states), reference_energy(model, states), atol=1e-5)
    c = torch.randn(81, 4, 3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(model(states, c), reference_energy(model, states, c), atol=1e-5)


@pytest.mark.parametrize("with_condition", [False, True])
def test_local_energy_deltas_equal_brute_force_recomputation(with_condition):
    model = random_potts(seed=2)
    x = torch.randint(0, 3, (6, 4), generator=torch.Generator().manual_seed(3))
    c = torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(4)) if with_condition else None
    deltas = model.local_energy_deltas(x, c)
    assert deltas.shape == (6, 4, 3)
    base = model(x, c)
    for i, k in itertools.product(range(4), range(3)):
        changed = x.clone()
        changed[:, i] = k
        assert torch.allclose(deltas[:, i, k], model(changed, c) - base, atol=1e-5), (i, k)


def test_one_hot_energy_equals_forward_and_is_differentiable():
    model = random_potts(seed=5)
    x = all_states(4, 3)
    c = torch.randn(81, 4, 3, generator=torch.Generator().manual_seed(6))
    one_hot = torch.nn.functional.one_hot(x, 3).float().requires_grad_(True)
    values = model.one_hot_energy(one_hot, c)
    assert torch.allclose(values, model(x, c), atol=1e-5)
    (grad,) = torch.autograd.grad(values.sum(), one_hot)
    # ∂E/∂X_ik = -(h_i[k] + c_i[k] + Σ_j J_ij[k, x_j]); the change of site i to k is grad[i,k] - grad[i,x_i].
    first_order = grad - grad.gather(2, x[:, :, None])
    assert torch.allclose(first_order, model.local_energy_deltas(x, c), atol=1e-5)


def test_ising_constructor_matches_spin_energy():
    coupling, field = 0.5, 0.2
    model = PottsEnergy.ising((3, 3), coupling=coupling, field=field)
    states = all_states(9, 2)
    spins = states_to_spins(states).float()
    edges = [(i, j) for i in range(9) for j in range(i + 1, 9) if (i // 3 == j // 3 and j == i + 1) or j == i + 3]
    assert len(edges) == 12
    expected = -coupling * sum(spins[:, i] * spins[:, j] for i, j in edges) - field * spins.sum(1)
    assert torch.allclose(model(states), expected, atol=1e-5)
    assert torch.equal(spins_to_states(states_to_spins(states)), states)
    with pytest.raises(ValueError, match="-1 or \\+1"):
        spins_to_states(torch.tensor([[0, 1]]))


def test_lattice_pattern_periodic():
    ring = lattice_pattern(4, periodic=True)
    assert ring[0, 3] and ring[3, 0] and ring.sum() == 8
    torus = lattice_pattern((3, 3), periodic=True)
    assert (torus.sum(1) == 4).all()


def exact_log_probs(model: PottsEnergy, c=None) -> torch.Tensor:
    """Independent reference: itertools enumeration and the explicit-loop energy."""
    states = torch.tensor(list(itertools.product(range(model.num_states), repeat=model.length)))
    if c is None:
        return torch.log_softmax(-reference_energy(model, states), 0), states
    rows = [torch.log_softmax(-reference_energy(model, states, c[b].expand(len(states), -1, -1)), 0) for b in range(len(c))]
    return torch.stack(rows), states


def test_log_partition_and_marginals_equal_enumeration():
    model = random_potts(seed=7)
    log_probs, states = exact_log_probs(model)
    log_z = torch.logsumexp(-reference_energy(model, states), 0)
    assert torch.allclose(model.log_partition(), log_z, atol=1e-5)
    one_hot = torch.nn.functional.one_hot(states, 3).float()
    expected_marginals = torch.einsum("s,slk->lk", log_probs.exp(), one_hot)
    assert torch.allclose(model.marginals(), expected_marginals, atol=1e-5)
    assert torch.equal(model.argmax(), states[reference_energy(model, states).argmin()])


def test_conditioned_exact_inference_is_batched():
    model = random_potts(seed=8, length=3)
    c = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(9))
    log_probs, states = exact_log_probs(model, c)
    assert model.log_partition(c).shape == (2,)
    marginals = model.marginals(c)
    expected = torch.einsum("bs,slk->blk", log_probs.exp(), torch.nn.functional.one_hot(states, 3).float())
    assert torch.allclose(marginals, expected, atol=1e-5)
    assert model.argmax(c).shape == (2, 3)
    assert model.sample(c, 5, torch.Generator().manual_seed(0)).shape == (5, 2, 3)


def test_log_partition_gradient_is_the_marginals():
    # ∂ log Z / ∂ h_i[k] = E_p[1{x_i = k}]: the exact-NLL gradient path through enumeration works.
    model = random_potts(seed=10)
    (grad,) = torch.autograd.grad(model.log_partition(), model.fields)
    assert torch.allclose(grad, model.marginals().detach(), atol=1e-5)


def test_exact_samples_follow_the_distribution():
    model = random_potts(seed=11)
    n = 20000
    draws = model.sample(None, n, torch.Generator().manual_seed(0))
    assert draws.shape == (n, 4) and not draws.requires_grad
    log_probs, _ = exact_log_probs(model)
    # Expected TV of n iid draws ≈ Σ_s sqrt(p_s(1-p_s)/(2πn)) <= sqrt(81/(2π·20000)) ≈ 0.025; 0.05 is ~8 SDs above.
    tv = total_variation(log_probs.exp(), empirical_distribution(draws, 3))
    assert tv < 0.05, tv


def test_invalid_inputs_give_clear_errors():
    model = random_potts()
    with pytest.raises(ValueError, match=r"value 3 at \(batch 0, site 1\)"):
        model(torch.tensor([[0, 3, 0, 0]]))
    with pytest.raises(ValueError, match="length 4"):
        model(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        model.local_energy_deltas(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="external field c"):
        model(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="c has batch size 3"):
        model(torch.zeros(2, 4, dtype=torch.long), torch.zeros(3, 4, 3))
    with pytest.raises(ValueError, match=r"not finite at \(batch 0, site 1, state 2\)"):
        c = torch.zeros(1, 4, 3)
        c[0, 1, 2] = float("nan")
        model(torch.zeros(1, 4, dtype=torch.long), c)
    with pytest.raises(ValueError, match="one_hot_energy"):
        model.one_hot_energy(torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="not symmetric"):
        PottsEnergy(3, 2, coupling_pattern=torch.tensor([[False, True, False], [False, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="self-coupling at site 0"):
        PottsEnergy(2, 2, coupling_pattern=torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_states >= 2"):
        PottsEnergy(3, 1)
    with pytest.raises(EnumerationTooLargeError, match="PottsEnergy.log_partition"):
        PottsEnergy(20, 2).log_partition()
