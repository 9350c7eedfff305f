"""``compile_energy=True``: Langevin and MALA through :func:`torch.compile` follow the eager chains.

Same seed, same start: the compiled evaluation may round differently from the eager kernels
(fused operations), so the chains agree to float32 rounding, not bit for bit. Each test
compiles one small function (tens of seconds on a small CPU); without a working compiler
toolchain the tests are skipped, naming the error.
"""

from __future__ import annotations

import pytest
import torch

from structebm.energies.mixture import GaussianMixtureEnergy
from structebm.energies.mlp import MLPEnergy
from structebm.samplers.base import run_chain
from structebm.samplers.langevin import langevin
from structebm.samplers.mala import mala


@pytest.fixture(scope="module")
def compiler() -> None:
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.zeros(2))
    except Exception as error:  # inductor needs a C++ compiler on CPU
        pytest.skip(f"torch.compile does not work on this machine: {type(error).__name__}: {error}")


def both_chains(build, start: torch.Tensor, steps: int):
    eager = run_chain(build(False), start, steps, torch.Generator().manual_seed(0), keep_infos=True)
    compiled = run_chain(build(True), start, steps, torch.Generator().manual_seed(0), keep_infos=True)
    return eager, compiled


def test_langevin_with_a_compiled_energy_gradient_follows_the_eager_chain(compiler) -> None:
    torch.manual_seed(0)
    energy = MLPEnergy(2, (16, 16))  # its own energy_and_grad is what gets compiled
    start = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    (x_eager, infos_eager), (x_compiled, infos_compiled) = both_chains(
        lambda compile_energy: langevin(energy, 0.05, compile_energy=compile_energy), start, 5
    )
    assert not torch.equal(x_eager, start)
    torch.testing.assert_close(x_compiled, x_eager, rtol=1e-5, atol=1e-5)
    for eager, compiled in zip(infos_eager, infos_compiled):
        torch.testing.assert_close(compiled.energy, eager.energy, rtol=1e-5, atol=1e-5)
    assert all(p.grad is None for p in energy.parameters())


def test_mala_with_a_compiled_autograd_energy_follows_the_eager_chain(compiler) -> None:
    mixture = GaussianMixtureEnergy(
        torch.tensor([0.5, 0.5]), torch.tensor([[-1.0, 0.0], [1.0, 0.5]]), torch.tensor([0.5, 0.4])
    )  # no analytic gradient: the compiled forward is differentiated by autograd
    start = torch.randn(64, 2, generator=torch.Generator().manual_seed(2))
    (x_eager, infos_eager), (x_compiled, infos_compiled) = both_chains(
        lambda compile_energy: mala(mixture, 0.3, compile_energy=compile_energy), start, 5
    )
    torch.testing.assert_close(x_compiled, x_eager, rtol=1e-5, atol=1e-5)
    assert torch.equal(infos_compiled[-1].accepted, infos_eager[-1].accepted)
    assert 0 < int(infos_eager[-1].accepted.sum()) < 64  # both branches of the test were taken
