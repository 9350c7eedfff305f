"""The learning rate falls linearly from the optimiser's to ``final_fraction`` of it over the step budget."""

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from structebm.training.lr_decay import LinearLRDecay


class RecordingModule(pl.LightningModule):
    """A linear regression whose training steps record the learning rate they ran with."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.rates: list[float] = []

    def training_step(self, batch, batch_idx):
        self.rates.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def fit(callback: LinearLRDecay, **trainer_args) -> list[float]:
    data = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2)
    module = RecordingModule()
    trainer = pl.Trainer(callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, **trainer_args)
    trainer.fit(module, data)
    return module.rates


def test_linear_decay_over_max_steps_and_over_epochs():
    assert fit(LinearLRDecay(), max_steps=10) == pytest.approx([0.5 * (1 - t / 10) for t in range(10)])
    # 3 epochs of 4 batches: the budget is 12 steps, ending at a quarter of the rate
    rates = fit(LinearLRDecay(final_fraction=0.25), max_epochs=3)
    assert rates == pytest.approx([0.5 * (1 - 0.75 * t / 12) for t in range(12)])


def test_resumed_state_keeps_the_starting_rates():
    callback = LinearLRDecay()
    callback.load_state_dict({"start_rates": [[2.0]]})
    assert callback.state_dict() == {"start_rates": [[2.0]]}
    assert fit(callback, max_steps=4) == pytest.approx([2.0 * (1 - t / 4) for t in range(4)])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="final_fraction"):
        LinearLRDecay(final_fraction=1.5)
    with pytest.raises(ValueError, match="finite"):
        fit(LinearLRDecay(), max_epochs=-1, max_steps=-1)
