"""MLPEnergy: shapes, flattening, spectral normalisation, gradients and input errors."""

import copy
from typing import Optional

import pytest
import torch
from torch import Tensor, nn

from structebm.energies.base import HasEnergyGradient, HasScore, energy_and_gradient, has_analytic_gradient, score
from structebm.energies.mlp import ACTIVATIONS, MLPEnergy
from structebm.objectives.score_matching import DenoisingScoreMatching, SlicedScoreMatching
from structebm.samplers.base import run_chain
from structebm.samplers.langevin import langevin


class AutogradOnly(nn.Module):
    """The same energy seen through ``forward`` only, so every gradient comes from autograd."""

    def __init__(self, energy: MLPEnergy) -> None:
        super().__init__()
        self.energy = energy

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        return self.energy(x, c)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_output_is_one_energy_per_row(activation: str) -> None:
    energy = MLPEnergy(4, hidden=(8, 8), activation=activation)
    x = torch.randn(5, 4)
    assert energy(x).shape == (5,)
    assert torch.allclose(energy(x)[2:3], energy(x[2:3]), atol=1e-6)


def test_array_inputs_are_flattened() -> None:
    energy = MLPEnergy(12, hidden=(8,))
    x = torch.randn(3, 1, 3, 4)
    assert torch.equal(energy(x), energy(x.reshape(3, 12)))


def test_linear_energy_without_hidden_layers() -> None:
    energy = MLPEnergy(3, hidden=())
    x = torch.randn(4, 3)
    linear = energy.net[0]
    assert torch.allclose(energy(x), (x @ linear.weight.T + linear.bias).squeeze(-1))


def test_gradients_reach_inputs_and_parameters() -> None:
    energy = MLPEnergy(3, hidden=(16,))
    assert not isinstance(energy, HasScore) and isinstance(energy, HasEnergyGradient)
    x = torch.randn(6, 3)
    values, scores = score(energy, x)
    assert values.shape == (6,) and scores.shape == (6, 3)
    energy(x).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in energy.parameters())


def test_spectral_norm_makes_every_layer_one_lipschitz() -> None:
    torch.manual_seed(0)
    energy = MLPEnergy(6, hidden=(32, 32), spectral_norm=True)
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    for _ in range(200):  # power iterations run on each training-mode forward
        energy(x)
    energy.eval()
    for layer in energy.net:
        if isinstance(layer, torch.nn.Linear):
            top_singular_value = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
            assert abs(top_singular_value.item() - 1.0) < 1e-3
    # SiLU is 1.1-Lipschitz, so the network is at most 1.1² ≈ 1.21-Lipschitz in x.
    _, scores = score(energy, 10 * x)
    assert scores.norm(dim=1).max() <= 1.1**2 + 1e-4


def test_bad_inputs_and_arguments_give_clear_errors() -> None:
    energy = MLPEnergy(4, hidden=(8,))
    with pytest.raises(ValueError, match=r"expected x of shape \[B, 4\].*got \(5, 3\)"):
        energy(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"got \(4,\)"):
        energy(torch.randn(4))
    with pytest.raises(ValueError, match="unconditional"):
        energy(torch.randn(5, 4), torch.zeros(5))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLPEnergy(4, activation="swish")
    with pytest.raises(ValueError, match="in_dim must be a positive integer"):
        MLPEnergy(0)
    with pytest.raises(ValueError, match="hidden widths must be positive integers"):
        MLPEnergy(4, hidden=(8, 0))


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("hidden", [(16, 8), ()])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_chain_rule_gradient_matches_autograd(activation: str, hidden: tuple[int, ...], spectral_norm: bool) -> None:
    torch.manual_seed(0)
    energy = MLPEnergy(12, hidden, activation=activation, spectral_norm=spectral_norm).double().eval()
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    x_req = x.clone().requires_grad_(True)
    expected_values = energy(x_req)
    (expected_grad,) = torch.autograd.grad(expected_values.sum(), x_req)
    values, grad = energy.energy_and_grad(x)
    assert torch.equal(values, expected_values.detach())
    assert grad.shape == x.shape
    assert torch.allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    via_contract, contract_grad = energy_and_gradient(energy, x)
    assert not via_contract.requires_grad and not contract_grad.requires_grad
    assert torch.allclose(contract_grad, expected_grad, rtol=1e-12, atol=1e-14)


def test_gradient_of_a_linear_energy_is_a_copy_of_the_weight() -> None:
    energy = MLPEnergy(3, hidden=())
    weight = energy.net[0].weight.detach().clone()
    _, grad = energy.energy_and_grad(torch.randn(1, 3))
    grad.zero_()
    assert torch.equal(energy.net[0].weight.detach(), weight)


def test_spectral_norm_power_iteration_advances_once_per_call() -> None:
    torch.manual_seed(0)
    energy = MLPEnergy(4, hidden=(8,), spectral_norm=True)
    twin = copy.deepcopy(energy)
    x = torch.randn(3, 4)
    energy(x)
    with torch.no_grad():
        twin.energy_and_grad(x)
    assert all(torch.equal(a, b) for a, b in zip(energy.buffers(), twin.buffers()))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_score_matching_trains_through_the_chain_rule_gradient(activation: str) -> None:
    """DSM and SSM losses and parameter gradients equal those through autograd's double backward
    (the output bias, which the score does not depend on, gets no gradient in either)."""
    torch.manual_seed(0)
    energy = MLPEnergy(3, hidden=(16, 16), activation=activation).double()
    x = torch.randn(32, 3, dtype=torch.float64)
    for objective_type in (lambda: DenoisingScoreMatching(0.3, generator_seed=1), lambda: SlicedScoreMatching(2, generator_seed=1)):
        results = []
        for model in (energy, AutogradOnly(energy)):
            objective = objective_type()
            objective.bind(model)
            energy.zero_grad()
            loss = objective(model, x).loss
            loss.backward()
            results.append((loss.detach(), [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in energy.parameters()]))
        (loss_chain, grads_chain), (loss_autograd, grads_autograd) = results
        assert torch.allclose(loss_chain, loss_autograd, rtol=1e-10)
        assert all(torch.allclose(a, b, rtol=1e-8, atol=1e-12) for a, b in zip(grads_chain, grads_autograd))


def test_langevin_chain_is_the_same_with_either_gradient() -> None:
    torch.manual_seed(0)
    energy = MLPEnergy(2, hidden=(32, 32))
    start = torch.randn(64, 2)
    ours, _ = run_chain(langevin(energy, 0.01), start, 50, torch.Generator().manual_seed(3))
    reference, _ = run_chain(langevin(AutogradOnly(energy), 0.01), start, 50, torch.Generator().manual_seed(3))
    assert torch.allclose(ours, reference, rtol=0, atol=1e-5)


def test_a_subclass_that_changes_forward_falls_back_to_autograd() -> None:
    class ShiftedInput(MLPEnergy):
        def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
            return super().forward(x + 1.0, c)

    class Renamed(MLPEnergy):
        pass

    assert has_analytic_gradient(MLPEnergy(2, (4,))) and has_analytic_gradient(Renamed(2, (4,)))
    shifted = ShiftedInput(2, (4,))
    assert not has_analytic_gradient(shifted)
    x = torch.randn(3, 2)
    _, grad = energy_and_gradient(shifted, x)
    x_req = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(shifted(x_req).sum(), x_req)
    assert torch.equal(grad, expected)
