"""MLPEnergy: shapes, flattening, spectral normalisation, gradients and input errors."""

import pytest
import torch

from structebm.energies.base import HasScore, score
from structebm.energies.mlp import ACTIVATIONS, MLPEnergy


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
    assert not isinstance(energy, HasScore)  # the score comes from autograd
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
