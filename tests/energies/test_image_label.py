"""Image–label energies: exact label inference, the two role views, and per-class persistent chains."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structebm.energies.base import HasArgmax, HasExactSample, HasLogPartition, HasMarginals
from structebm.energies.cnn import ConvNet, WideResNet
from structebm.energies.image_label import (
    ClassifierEnergy,
    EmbeddingConditionedEnergy,
    ImageGivenLabel,
    LabelGivenImage,
)
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.objectives.exact_nll import ExactNLL
from structebm.samplers.base import run_chain
from structebm.samplers.chains import ChainStart, ReplayBuffer
from structebm.samplers.langevin import langevin
from structebm.spaces import ContinuousSpace

from tests.stats import Z_SCORE

K = 10
IMAGE = (1, 28, 28)


def images(n: int, seed: int) -> Tensor:
    return torch.rand((n, *IMAGE), generator=torch.Generator().manual_seed(seed)) * 2 - 1


def labels(n: int, seed: int) -> Tensor:
    return torch.randint(0, K, (n,), generator=torch.Generator().manual_seed(seed))


def tiny_classifier(seed: int = 0) -> ClassifierEnergy:
    torch.manual_seed(seed)
    return ClassifierEnergy(ConvNet(out_features=K, widths=(4, 8)), K)


def tiny_embedding_energy(seed: int = 0) -> EmbeddingConditionedEnergy:
    torch.manual_seed(seed)
    return EmbeddingConditionedEnergy(ConvNet(out_features=16, widths=(4, 8)), 16, num_classes=K, embedding_dim=8, hidden=(16,))


ENERGIES = {"classifier": tiny_classifier, "embedding": tiny_embedding_energy}


def test_exact_nll_on_the_label_view_is_the_cross_entropy_of_the_logits():
    energy = tiny_classifier()
    x, y = images(16, 1), labels(16, 2)
    view = LabelGivenImage(energy)
    out = ExactNLL()(view, (y, x))
    (grad_nll,) = torch.autograd.grad(out.loss, energy.classifier.head.weight)
    cross_entropy = F.cross_entropy(energy.logits(x), y)
    (grad_ce,) = torch.autograd.grad(cross_entropy, energy.classifier.head.weight)
    assert out.loss.item() == pytest.approx(cross_entropy.item(), rel=1e-6)
    assert torch.allclose(grad_nll, grad_ce, atol=1e-7)
    assert {name for name, _ in view.named_parameters()} == {f"energy.{name}" for name, _ in energy.named_parameters()}


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_shapes_and_capabilities(name):
    energy = ENERGIES[name]()
    x, y = images(5, 3), labels(5, 4)
    view = LabelGivenImage(energy)
    for capability in (HasLogPartition, HasMarginals, HasArgmax, HasExactSample):
        assert isinstance(view, capability)
        assert not isinstance(energy, capability)  # the joint energy does not pretend to be the label view
    assert energy(x, y).shape == (5,) and energy(x).shape == (5,) and energy.label_energies(x).shape == (5, K)
    assert ImageGivenLabel(energy)(x, y).shape == (5,)
    assert view(y, x).shape == (5,) and view.log_partition(x).shape == (5,)
    assert view.marginals(x).shape == (5, K) and view.argmax(x).shape == (5,) and view.argmax(x).dtype == torch.long
    draws = view.sample(x, 7, torch.Generator().manual_seed(0))
    assert draws.shape == (7, 5) and draws.dtype == torch.long


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_joint_marginal_and_conditional_energies_agree(name):
    energy = ENERGIES[name]().double()
    x, y = images(6, 5).double(), labels(6, 6)
    view = LabelGivenImage(energy)
    table = torch.stack([energy(x, torch.full((6,), k)) for k in range(K)], dim=1)
    assert torch.allclose(energy.label_energies(x), table, atol=1e-12)
    # E(x) = -log sum_k exp(-E(x, k)), and E(x, y) - E(x) = -log p(y | x) = E(y | x) + log Z(x).
    assert torch.allclose(energy(x), -torch.logsumexp(-table, dim=1), atol=1e-12)
    assert torch.allclose(energy(x, y) - energy(x), view(y, x) + view.log_partition(x), atol=1e-12)
    marginals = view.marginals(x)
    assert torch.allclose(marginals.sum(dim=1), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(marginals, torch.exp(-table - view.log_partition(x)[:, None]), atol=1e-12)
    assert torch.equal(view.argmax(x), marginals.argmax(dim=1))
    assert torch.allclose(ImageGivenLabel(energy)(x, y), energy(x, y))


def test_exact_label_samples_follow_the_marginals_and_a_seed_reproduces_them():
    torch.manual_seed(7)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(784, K))
    nn.init.normal_(classifier[1].weight, std=0.1)  # logits spread over a few units: unequal probabilities
    view = LabelGivenImage(ClassifierEnergy(classifier, K))
    x, n = images(3, 8), 4000
    draws = view.sample(x, n, torch.Generator().manual_seed(11))
    assert torch.equal(draws, view.sample(x, n, torch.Generator().manual_seed(11)))
    assert not torch.equal(draws, view.sample(x, n, torch.Generator().manual_seed(12)))
    probabilities = view.marginals(x).detach()
    assert probabilities.max() > 0.3 and probabilities.min() < 0.02
    frequencies = F.one_hot(draws, K).double().mean(dim=0)
    # n independent draws per image: a class frequency has standard error sqrt(p (1 - p) / n).
    tolerance = Z_SCORE * torch.sqrt(probabilities * (1 - probabilities) / n).double() + 1e-12
    assert ((frequencies - probabilities).abs() <= tolerance).all()


class PrototypeLogits(nn.Module):
    """Logits ``f(x)[k] = -|x - mu_k|^2 / (2 sigma^2)``, so that ``p(x | k) = N(mu_k, sigma^2 I)``."""

    def __init__(self, prototypes: Tensor, sigma: float) -> None:
        super().__init__()
        self.register_buffer("prototypes", prototypes)
        self.sigma = sigma

    def forward(self, x: Tensor) -> Tensor:
        distances = torch.cdist(x.flatten(1), self.prototypes.flatten(1)) ** 2
        return -distances / (2 * self.sigma**2)


def per_class_cd(energy: nn.Module, capacity: int, step_size: float, num_steps: int, bounds=(-1.0, 1.0)) -> ContrastiveDivergence:
    space = ContinuousSpace(IMAGE, low=-1.0, high=1.0)
    buffer = ReplayBuffer(space, capacity=capacity, reinit_prob=0.05, num_classes=K)
    objective = ContrastiveDivergence(
        langevin, buffer, num_steps=num_steps, generator_seed=5,
        sampler_options={"step_size": step_size, "bounds": bounds},
    )
    objective.bind(ImageGivenLabel(energy))
    return objective


def test_per_class_chains_sample_their_own_class_conditional():
    sigma, step_size, num_steps = 0.1, 0.003, 20
    signs = torch.randint(0, 2, (K, *IMAGE), generator=torch.Generator().manual_seed(0)) * 2 - 1
    prototypes = 0.5 * signs.float()  # |mu_k - mu_j|^2 is about 392; |x - mu_k|^2 is about 9
    energy = ClassifierEnergy(PrototypeLogits(prototypes, sigma), K)
    objective = per_class_cd(energy, capacity=8 * K, step_size=step_size, num_steps=num_steps)
    view = ImageGivenLabel(energy)
    for step in range(6):
        y = torch.arange(2 * K) % K
        objective(view, (images(2 * K, 100 + step), y))
    buffer = objective.source
    filled = buffer.filled.nonzero().flatten()
    owner = filled // buffer.slots_per_group
    stored = buffer.storage[filled]
    assert filled.numel() >= 5 * K and torch.equal(owner.unique(), torch.arange(K))
    nearest = torch.cdist(stored.flatten(1), prototypes.flatten(1)).argmin(dim=1)
    assert torch.equal(nearest, owner)
    # ULA on E = |x - mu|^2 / (2 sigma^2) contracts by a = 1 - eps / sigma^2 per step towards
    # N(mu, s^2 I) with s^2 = 2 eps / (1 - a^2) = sigma^2 / (1 - eps / (2 sigma^2)). After at least
    # 20 steps from a start within 1.5 of mu the mean is off by <= 1.5 a^20 = 1.2e-3 per pixel and
    # the variance by a factor (1 - a^40) ~ 1 - 6e-7: negligible against the tolerances below.
    a = 1 - step_size / sigma**2
    stationary_variance = 2 * step_size / (1 - a**2)
    deviations = (stored - prototypes[owner]).flatten(1)
    for k in range(K):
        d = deviations[owner == k].flatten()
        n = d.numel()  # independent pixels (isotropic Gaussian, independent noise per chain and pixel)
        mean_tolerance = Z_SCORE * math.sqrt(stationary_variance / n) + 1.5 * a**num_steps
        variance_tolerance = Z_SCORE * math.sqrt(2 / n) * stationary_variance  # Var(d^2) = 2 s^4
        assert abs(d.mean().item()) <= mean_tolerance
        assert abs(d.pow(2).mean().item() - stationary_variance) <= variance_tolerance


class RecordingBuffer(ReplayBuffer):
    """A replay buffer that remembers which labels wrote which slots."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[tuple[Tensor, Tensor, Tensor]] = []

    def update(self, start: ChainStart, x_final: Tensor, energy: Tensor | None = None) -> None:
        self.writes.append((start.index.clone(), start.c.clone(), x_final.clone()))
        super().update(start, x_final, energy)


def test_per_class_buffer_with_a_cnn_only_holds_each_class_in_its_own_slots():
    energy = tiny_classifier(3)
    space = ContinuousSpace(IMAGE, low=-1.0, high=1.0)
    buffer = RecordingBuffer(space, capacity=4 * K, reinit_prob=0.2, num_classes=K)
    objective = ContrastiveDivergence(langevin, buffer, num_steps=3, generator_seed=1,
                                      sampler_options={"step_size": 0.01, "noise_scale": 0.005, "bounds": (-1.0, 1.0)})
    view = ImageGivenLabel(energy)
    objective.bind(view)
    optimizer = torch.optim.Adam(energy.parameters(), lr=1e-3)
    for step in range(5):
        batch = (images(12, 200 + step), labels(12, 300 + step))
        loss = objective(view, batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        index, c, _ = buffer.writes[-1]
        assert torch.equal(c, batch[1])  # the chains ran under the batch's labels
        assert torch.equal(index // buffer.slots_per_group, c)
    last_writer = {}
    for index, c, x in buffer.writes:
        for slot, label, state in zip(index.tolist(), c.tolist(), x):
            last_writer[slot] = (label, state)
    assert set(last_writer) == set(buffer.filled.nonzero().flatten().tolist())
    for slot, (label, state) in last_writer.items():
        assert slot // buffer.slots_per_group == label
        assert torch.equal(buffer.storage[slot], state)


def test_langevin_on_the_image_view_is_reproducible_under_a_seed():
    view = ImageGivenLabel(tiny_classifier(4))
    sampler = langevin(view, step_size=0.01, bounds=(-1.0, 1.0))
    x0, y = images(4, 9), labels(4, 10)
    first, _ = run_chain(sampler, x0, 5, torch.Generator().manual_seed(2), c=y)
    second, _ = run_chain(sampler, x0, 5, torch.Generator().manual_seed(2), c=y)
    third, _ = run_chain(sampler, x0, 5, torch.Generator().manual_seed(3), c=y)
    assert torch.equal(first, second) and not torch.equal(first, third)
    assert not first.requires_grad
    assert all(p.grad is None for p in view.parameters())


def test_vector_conditions_and_the_wide_resnet_backbone():
    torch.manual_seed(0)
    assert ConvNet(out_features=3, widths=(2, 3, 4, 5), image_size=15)(torch.zeros(2, 1, 15, 15)).shape == (2, 3)
    energy = EmbeddingConditionedEnergy(WideResNet(out_features=12, widths=(4, 8), stem_width=4), 12, condition_dim=3)
    x, c = images(4, 11), torch.randn(4, 3)
    assert energy(x, c).shape == (4,)
    with pytest.raises(ValueError, match="needs the condition c"):
        energy(x)
    with pytest.raises(ValueError, match=r"float Tensor \(4, 3\)"):
        energy(x, c[:, :2])
    with pytest.raises(TypeError, match="label_energies"):
        LabelGivenImage(energy)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda e: e(images(3, 0), torch.tensor([0, 1, 10])), ValueError, r"\[0, 10\); rows \[2\]"),
        (lambda e: e(images(3, 0), torch.tensor([0.0, 1.0, 2.0])), TypeError, "integer Tensor"),
        (lambda e: e(images(3, 0), torch.tensor([0, 1])), ValueError, r"shape \(3,\)"),
        (lambda e: e(torch.zeros(3, 28, 28), None), ValueError, r"\[B, 1, H, W\]"),
        (lambda e: LabelGivenImage(e)(torch.tensor([0, 1, 2])), ValueError, "condition c"),
        (lambda e: LabelGivenImage(e).sample(images(3, 0), 0), ValueError, "positive integer"),
        (lambda e: ImageGivenLabel(e)(images(3, 0)), ValueError, "labels c are required"),
        (lambda e: ClassifierEnergy(ConvNet(out_features=5), K)(images(3, 0)), ValueError, r"logits \[B, 10\]"),
        (lambda e: ClassifierEnergy(ConvNet(), 1), ValueError, "num_classes"),
        (lambda e: ImageGivenLabel(nn.Linear(3, 1)), TypeError, "label_energies"),
        (lambda e: EmbeddingConditionedEnergy(ConvNet(), 10), ValueError, "exactly one"),
        (lambda e: ConvNet()(torch.zeros(2, 1, 32, 32)), ValueError, "expected 28x28"),
        (lambda e: ConvNet(widths=()), ValueError, "widths"),
        (lambda e: ConvNet(activation="swishy"), ValueError, "unknown activation"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(tiny_classifier())
