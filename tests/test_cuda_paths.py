"""The library on a CUDA device: every sampler, the chain sources, PCD training, resume, bf16 and compile.

Marked ``cuda`` and skipped without a CUDA device (``benchmarks/gpu_check.py`` runs them with
``pytest -m cuda``). Every sampler runs ``init`` and a few ``step`` calls with its state,
energy and generator on the GPU; the same seed must give the same chain twice there, and the
state, energies and diagnostics must stay on the device. Chain sources (continuous,
categorical and graph replay buffers) draw starts and store chains on the device. A Lightning
PCD run trains on the GPU, a run resumed from its checkpoint on the GPU ends where an
uninterrupted one does, and bf16 autocast on the GPU keeps the ULA chain's stationary law
(tolerances from the sample size, as in ``tests/samplers/test_mixed_precision.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from structebm.energies.gaussian import GaussianEnergy
from structebm.energies.graph import RelationalGraphEnergy
from structebm.energies.mlp import MLPEnergy
from structebm.energies.potts import PottsEnergy
from structebm.graphs.space import GraphSpace
from structebm.graphs.state import DenseGraph
from structebm.samplers.base import SamplingAlgorithm, run_chain
from structebm.samplers.chains import ReplayBuffer
from structebm.samplers.gibbs import gibbs
from structebm.samplers.graph_buffer import GraphReplayBuffer
from structebm.samplers.graph_langevin import graph_langevin
from structebm.samplers.graph_sampler import graph_sampler
from structebm.samplers.gwg import gibbs_with_gradients
from structebm.samplers.inpainting import inpainting_langevin
from structebm.samplers.langevin import langevin
from structebm.samplers.mala import mala
from structebm.spaces import CategoricalSpace, ContinuousSpace
from tests.samplers.test_langevin import ula_stationary_covariance
from tests.stats import assert_within, gaussian_covariance_tolerance, mean_tolerance
from tests.training.conftest import gaussian_data, loader, pcd_module, quiet_trainer

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DEVICE = "cuda"
GRAPH_SPACE = GraphSpace(max_nodes=6, num_node_types=3, num_edge_types=2)


def graph_energy() -> RelationalGraphEnergy:
    torch.manual_seed(0)
    return RelationalGraphEnergy(num_node_types=3, num_edge_types=2, hidden=16, num_layers=2).to(DEVICE)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator(DEVICE).manual_seed(seed)


def tensors_of(x: Any) -> list[torch.Tensor]:
    return [x.nodes, x.edges] if isinstance(x, DenseGraph) else [x] if isinstance(x, torch.Tensor) else list(vars(x).values())


def continuous_start() -> torch.Tensor:
    return torch.randn(32, 2, generator=generator(5), device=DEVICE)


def categorical_start() -> torch.Tensor:
    return torch.randint(0, 3, (32, 6), generator=generator(5), device=DEVICE)


def graph_start() -> DenseGraph:
    return GRAPH_SPACE.noise(32, generator(5), device=DEVICE)


def gaussian() -> GaussianEnergy:
    return GaussianEnergy.from_covariance(torch.tensor([0.5, -1.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]])).to(DEVICE)


def mlp() -> MLPEnergy:
    torch.manual_seed(0)
    return MLPEnergy(2, (16, 16)).to(DEVICE)


def potts() -> PottsEnergy:
    return PottsEnergy(6, 3, init_std=0.5, generator=torch.Generator().manual_seed(0)).to(DEVICE)


SAMPLERS: dict[str, tuple[Callable[[], SamplingAlgorithm], Callable[[], Any]]] = {
    "langevin (MLP, own gradient)": (lambda: langevin(mlp(), 0.05), continuous_start),
    "langevin (Gaussian, score)": (lambda: langevin(gaussian(), 0.05, grad_clip=5.0), continuous_start),
    "mala": (lambda: mala(gaussian(), 0.2), continuous_start),
    "inpainting_langevin": (
        lambda: inpainting_langevin(mlp(), torch.tensor([True, False], device=DEVICE).expand(32, 2), 0.05), continuous_start
    ),
    "gibbs": (lambda: gibbs(potts()), categorical_start),
    "gibbs_with_gradients": (lambda: gibbs_with_gradients(potts(), num_flips=2), categorical_start),
    "graph gibbs": (lambda: graph_sampler(graph_energy(), GRAPH_SPACE, "gibbs"), graph_start),
    "graph gibbs_with_gradients": (lambda: graph_sampler(graph_energy(), GRAPH_SPACE, "gibbs_with_gradients"), graph_start),
    "graph_langevin": (lambda: graph_langevin(graph_energy(), GRAPH_SPACE, 0.05, 0.1), graph_start),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_steps_on_the_gpu_and_a_seed_repeats_its_chain(name: str) -> None:
    build, start = SAMPLERS[name]
    runs = []
    for _ in range(2):
        algorithm = build()
        state = algorithm.init(start())
        infos = []
        for _ in range(4):
            state, info = algorithm.step(state, generator(1))
            infos.append(info)
        runs.append((state, infos))
    (state, infos), (again, _) = runs
    for tensor, repeated in zip(tensors_of(state.x), tensors_of(again.x)):
        assert tensor.device.type == "cuda", name
        assert not tensor.requires_grad, name
        assert torch.equal(tensor, repeated), f"{name}: the same seed gave another chain on the GPU"
    assert infos[-1].energy.device.type == "cuda" and torch.isfinite(infos[-1].energy).all(), name
    if infos[-1].acceptance_rate is not None:
        assert infos[-1].acceptance_rate.device.type == "cuda", name


@pytest.mark.parametrize(
    "source, x_data",
    [
        (lambda: ReplayBuffer(ContinuousSpace((2,), low=-5.0, high=5.0), capacity=64), continuous_start),
        (lambda: ReplayBuffer(CategoricalSpace(6, 3), capacity=64), categorical_start),
        (lambda: GraphReplayBuffer(GRAPH_SPACE, capacity=64), graph_start),
    ],
    ids=["continuous", "categorical", "graph"],
)
def test_replay_buffers_draw_and_store_chains_on_the_gpu(source, x_data) -> None:
    buffer = source().to(DEVICE)
    data = x_data()
    start = buffer.start(data, None, generator(2))
    assert all(t.device.type == "cuda" for t in tensors_of(start.x))
    buffer.update(start, start.x)
    assert buffer.filled.device.type == "cuda" and int(buffer.filled.sum()) > 0
    assert all(t.device.type == "cuda" for t in buffer.state_dict().values())


def test_langevin_with_a_compiled_energy_follows_the_eager_chain_on_the_gpu() -> None:
    energy, start = mlp(), continuous_start()
    eager, _ = run_chain(langevin(energy, 0.05), start, 5, generator(3))
    compiled, _ = run_chain(langevin(energy, 0.05, compile_energy=True), start, 5, generator(3))
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_ula_under_bf16_autocast_on_the_gpu_keeps_the_stationary_law() -> None:
    # ε = 0.2, 300 steps from an offset of 3, 4000 independent chains (see test_mixed_precision.py).
    energy = gaussian()
    covariance = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    expected = ula_stationary_covariance(covariance, 0.2)
    start = (torch.tensor([0.5, -1.0], device=DEVICE) + 3.0).expand(4000, 2).clone()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        x, infos = run_chain(langevin(energy, 0.2), start, 300, generator(4))
    assert x.dtype == torch.float32 and infos[-1].energy.dtype == torch.float32
    x = x.double().cpu()
    assert_within(x.mean(0), torch.tensor([0.5, -1.0]), mean_tolerance(expected.diagonal(), 4000), "bf16 ULA mean on the GPU")
    assert_within(torch.cov(x.T), expected, gaussian_covariance_tolerance(expected, 4000), "bf16 ULA covariance on the GPU")


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_pcd_training_runs_on_the_gpu(precision: str) -> None:
    module = pcd_module(seed=0)
    before = [p.detach().clone() for p in module.energy.parameters()]
    quiet_trainer(accelerator="gpu", devices=1, max_epochs=1, precision=precision, deterministic=False).fit(
        module, loader(gaussian_data(n=256), 32, 0)
    )
    storage = module.objective.source.storage
    assert storage.device.type == "cuda" and storage.dtype == torch.float32
    assert module.objective.source.filled.any()
    after = list(module.energy.parameters())
    assert all(p.device.type == "cuda" and torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(b.to(DEVICE), a) for b, a in zip(before, after)), "training left the energy unchanged"


def test_resume_on_the_gpu_matches_the_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS is deterministic only with a fixed workspace
    data = gaussian_data(n=192)
    gpu = dict(accelerator="gpu", devices=1)
    uninterrupted = pcd_module(seed=3)
    quiet_trainer(max_epochs=4, **gpu).fit(uninterrupted, loader(data, 32, 7))

    first_half = pcd_module(seed=3)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    quiet_trainer(max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint], **gpu).fit(first_half, loader(data, 32, 7))
    resumed = pcd_module(seed=99)
    quiet_trainer(max_epochs=4, **gpu).fit(resumed, loader(data, 32, 7), ckpt_path=str(tmp_path / "last.ckpt"))

    assert resumed.objective.source.storage.device.type == "cuda"
    expected, got = uninterrupted.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key].nan_to_num(), got[key].nan_to_num()), f"{key} differs after resuming on the GPU"
