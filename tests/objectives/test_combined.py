"""Combined objectives: a weighted sum of terms, each on its own view of one energy."""

from __future__ import annotations

import pickle

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from structebm.energies.base import MissingCapabilityError
from structebm.energies.image_label import ClassifierEnergy, ImageGivenLabel, LabelGivenImage
from structebm.objectives.combined import Combined, ObjectiveTerm, reorder_batch
from structebm.objectives.contrastive import ContrastiveDivergence
from structebm.objectives.exact_nll import ExactNLL
from structebm.samplers.chains import ReplayBuffer
from structebm.samplers.langevin import langevin
from structebm.spaces import ContinuousSpace
from structebm.training.module import EBMModule
from structebm.training.rng import collect_generator_states

K = 3
IMAGE = (1, 4, 4)


def tiny_energy(seed: int = 0) -> ClassifierEnergy:
    torch.manual_seed(seed)
    return ClassifierEnergy(nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.SiLU(), nn.Linear(8, K)), K)


def pairs(n: int = 12, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((n, *IMAGE), generator=generator) * 2 - 1, torch.randint(0, K, (n,), generator=generator)


def contrastive(seed: int = 5) -> ContrastiveDivergence:
    space = ContinuousSpace(IMAGE, low=-1.0, high=1.0)
    return ContrastiveDivergence(
        langevin, ReplayBuffer(space, capacity=30, reinit_prob=0.05, num_classes=K), num_steps=3,
        generator_seed=seed, sampler_options={"step_size": 0.1, "noise_scale": 0.01, "bounds": (-1.0, 1.0)},
    )


def jem(weight: float = 0.5) -> Combined:
    return Combined([
        ObjectiveTerm("classify", ExactNLL(), view=LabelGivenImage, batch_order=[1, 0]),
        ObjectiveTerm("generate", contrastive(), view="structebm.energies.image_label.ImageGivenLabel", weight=weight),
    ])


def test_loss_and_gradient_are_the_weighted_sums_of_the_terms():
    x, y = pairs()
    energy = tiny_energy()
    out = jem(weight=0.5)(energy, (x, y))
    grads = torch.autograd.grad(out.loss, list(energy.parameters()))

    reference = tiny_energy()  # same seed, same parameters; a fresh CD with the same generator seed
    nll = ExactNLL()(LabelGivenImage(reference), (y, x))
    cd = contrastive()(ImageGivenLabel(reference), (x, y))
    expected_loss = nll.loss + 0.5 * cd.loss
    expected_grads = torch.autograd.grad(expected_loss, list(reference.parameters()))

    assert torch.allclose(out.loss, expected_loss, atol=1e-6)
    for got, want in zip(grads, expected_grads):
        assert torch.allclose(got, want, atol=1e-6)
    assert out.metrics["classify/nll"] == pytest.approx(nll.loss.item(), abs=1e-6)
    assert out.metrics["generate/loss"] == pytest.approx(cd.loss.item(), abs=1e-6)
    for key in ("energy_gap", "energy_data", "energy_negative", "buffer/fill", "buffer/reinit_fraction"):
        assert out.metrics[f"generate/{key}"].item() == pytest.approx(cd.metrics[key].item(), abs=1e-6), key
    assert out.metrics["classify/loss"].item() == pytest.approx(nll.loss.item(), abs=1e-6)
    assert not any(value.requires_grad for value in out.metrics.values())


def test_a_zero_weight_term_contributes_no_gradient():
    x, y = pairs()
    energy, reference = tiny_energy(), tiny_energy()
    out = jem(weight=0.0)(energy, (x, y))
    nll = ExactNLL()(LabelGivenImage(reference), (y, x))
    for got, want in zip(torch.autograd.grad(out.loss, list(energy.parameters())),
                         torch.autograd.grad(nll.loss, list(reference.parameters()))):
        assert torch.allclose(got, want, atol=1e-6)


def test_bind_checks_each_term_on_its_view():
    objective = Combined([ObjectiveTerm("classify", ExactNLL())])  # no view: the energy itself has no log Z
    with pytest.raises(MissingCapabilityError, match="ExactNLL.*HasLogPartition.*ClassifierEnergy"):
        objective.bind(tiny_energy())
    jem().bind(tiny_energy())  # with the label view it binds


def test_trains_in_the_generic_module_and_checkpoints_each_terms_generator():
    x, y = pairs(64)
    module = EBMModule(tiny_energy(), jem())
    before = [p.detach().clone() for p in module.energy.parameters()]
    trainer = pl.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    metrics = trainer.callback_metrics
    assert {"train/loss", "train/classify/nll", "train/generate/energy_gap"} <= set(metrics)
    assert any(not torch.equal(b, a) for b, a in zip(before, module.energy.parameters()))
    assert set(collect_generator_states(module)) == {"objective.terms.generate.objective"}
    # The views are not submodules: the energy's weights are stored once.
    assert not any(key.startswith("objective.") and "classifier" in key for key in module.state_dict())


def test_pickles_without_views_and_rebinds_on_use():
    x, y = pairs()
    objective = jem()
    objective(tiny_energy(), (x, y))
    copy = pickle.loads(pickle.dumps(objective))
    assert copy._views == {}
    out = copy(tiny_energy(), (x, y))
    assert torch.isfinite(out.loss)


def test_reorder_batch():
    a, b = torch.zeros(2), torch.ones(2)
    assert reorder_batch((a, b), [1, 0], "t") == (b, a)
    assert reorder_batch((a, b), None, "t") == (a, b)
    with pytest.raises(ValueError, match=r"term 't'.*refers to item\(s\) \[2\] of a batch of 2"):
        reorder_batch((a, b), [2, 0], "term 't'")
    with pytest.raises(TypeError, match="needs a tuple or list batch"):
        reorder_batch(a, [0], "t")


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: Combined([]), ValueError, "at least one"),
        (lambda: Combined([ObjectiveTerm("a", ExactNLL()), ObjectiveTerm("a", ExactNLL())]), ValueError, r"repeated: \['a'\]"),
        (lambda: ObjectiveTerm("a.b", ExactNLL()), ValueError, "identifier"),
        (lambda: ObjectiveTerm("a", ExactNLL(), weight=-1), ValueError, "ObjectiveTerm 'a'.*non-negative"),
        (lambda: ObjectiveTerm("a", ExactNLL(), weight=float("nan")), ValueError, "non-negative"),
        (lambda: ObjectiveTerm("a", ExactNLL(), batch_order=[]), ValueError, "batch_order"),
        (lambda: ObjectiveTerm("a", ExactNLL(), view="structebm.energies.image_label.Nope"), ValueError, "cannot import view"),
        (lambda: ObjectiveTerm("a", nn.Linear(1, 1)), TypeError, "must be an Objective"),
        (lambda: Combined([ExactNLL()]), TypeError, "ObjectiveTerm"),
    ],
)
def test_bad_configuration_is_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()
