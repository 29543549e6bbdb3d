"""Tests of regdrop.callbacks.uncertainty: MCDropoutUncertainty."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

import regdrop
from regdrop.callbacks import MCDropoutUncertainty
from tests.callbacks._tiny import DropoutRegressor, ShiftRegressor
from tests.callbacks.models import RandomRegressionData, tiny_trainer


def _shift_loader(n: int = 16, batch_size: int = 8, y_dtype: torch.dtype = torch.float32) -> DataLoader:
    # targets at x + 0.3 and x - 0.7 in turn: with mean x and std 0.5 exactly, half lie within 1 std
    x = torch.linspace(-1, 1, n).unsqueeze(1)
    offsets = torch.tensor([0.3, -0.7]).repeat(n // 2).unsqueeze(1)
    return DataLoader(TensorDataset(x, (x + offsets).to(y_dtype)), batch_size=batch_size)


def test_mean_std_and_coverage_exact(tmp_path: Path) -> None:
    callback = MCDropoutUncertainty(samples=4, interval_z=1.0, max_batches=2)
    trainer = tiny_trainer(tmp_path, callbacks=[callback])
    metrics = trainer.validate(ShiftRegressor(p=0.5), dataloaders=_shift_loader(), verbose=False)[0]
    assert metrics["mc/mean_std"] == pytest.approx(0.5)
    assert metrics["mc/coverage"] == pytest.approx(0.5)
    # a wider interval takes in the far targets too
    wide = tiny_trainer(tmp_path, callbacks=[MCDropoutUncertainty(samples=4, interval_z=1.5)])
    assert wide.validate(ShiftRegressor(p=0.5), dataloaders=_shift_loader(), verbose=False)[0]["mc/coverage"] == 1.0


def test_only_max_batches_are_used(tmp_path: Path) -> None:
    model = ShiftRegressor(p=0.5)
    trainer = tiny_trainer(tmp_path, callbacks=[MCDropoutUncertainty(samples=6, max_batches=1)])
    trainer.validate(model, dataloaders=_shift_loader(n=32, batch_size=8), verbose=False)
    assert model.shift.calls == 6  # one batch of four, six passes; validation_step itself runs in eval


def test_classification_targets_give_no_coverage(tmp_path: Path) -> None:
    trainer = tiny_trainer(tmp_path, callbacks=[MCDropoutUncertainty(samples=4)])
    metrics = trainer.validate(ShiftRegressor(), dataloaders=_shift_loader(y_dtype=torch.long), verbose=False)[0]
    assert metrics["mc/mean_std"] == pytest.approx(0.5)
    assert "mc/coverage" not in metrics


def test_target_shape_mismatch_warns(tmp_path: Path) -> None:
    x = torch.randn(8, 1)
    loader = DataLoader(TensorDataset(x, torch.randn(8, 3)), batch_size=8)
    trainer = tiny_trainer(tmp_path, callbacks=[MCDropoutUncertainty(samples=2)])
    with pytest.warns(UserWarning, match=r"targets of shape \(8, 3\) do not match predictions of shape \(8, 1\)"):
        metrics = trainer.validate(ShiftRegressor(), dataloaders=loader, verbose=False)[0]
    assert "mc/coverage" not in metrics and "mc/mean_std" in metrics


def test_target_of_same_size_is_reshaped(tmp_path: Path) -> None:
    x = torch.linspace(-1, 1, 8).unsqueeze(1)
    loader = DataLoader(TensorDataset(x, x.squeeze(1) + 0.1), batch_size=8)  # y is (N,), output (N, 1)
    trainer = tiny_trainer(tmp_path, callbacks=[MCDropoutUncertainty(samples=2, interval_z=1.0)])
    assert trainer.validate(ShiftRegressor(p=0.5), dataloaders=loader, verbose=False)[0]["mc/coverage"] == 1.0


def test_every_n_epochs_and_not_in_sanity_check(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, name="tb")
    callback = MCDropoutUncertainty(samples=3, every_n_epochs=2, max_batches=1)
    trainer = tiny_trainer(tmp_path, callbacks=[callback], logger=logger, max_epochs=3, num_sanity_val_steps=2)
    data = RandomRegressionData(seq_len=5, n_train=32, n_val=16, batch_size=8)
    trainer.fit(DropoutRegressor(), datamodule=data)
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    epochs_logged = [e.step for e in events.Scalars("mc/mean_std")]
    val_steps = [e.step for e in events.Scalars("val_loss")]
    assert len(val_steps) == 3 and epochs_logged == [val_steps[1]]
    assert events.Scalars("mc/mean_std")[0].value > 0
    assert 0.0 <= events.Scalars("mc/coverage")[0].value <= 1.0


@pytest.mark.parametrize("recurrent", ["torch", "regdrop"])
def test_real_model_batchnorm_untouched(tmp_path: Path, recurrent: str) -> None:
    torch.manual_seed(0)
    if recurrent == "regdrop":
        model = DropoutRegressor(rnn_factory=regdrop.nn.LSTM, recurrent_dropout=0.3, p=0.0)
    else:
        model = DropoutRegressor()
    model.norm.running_mean.fill_(0.3)
    before = {k: v.clone() for k, v in model.norm.state_dict().items()}
    data = RandomRegressionData(seq_len=5, n_train=16, n_val=16, batch_size=8)
    trainer = tiny_trainer(tmp_path, callbacks=[MCDropoutUncertainty(samples=5)])
    metrics = trainer.validate(model, datamodule=data, verbose=False)[0]
    assert metrics["mc/mean_std"] > 0
    for key, value in before.items():
        assert torch.equal(model.norm.state_dict()[key], value), key


def test_batch_layouts() -> None:
    callback = MCDropoutUncertainty()
    x, y = torch.zeros(2, 3), torch.ones(2)
    assert callback.unpack_batch(x)[1] is None and callback.unpack_batch(x)[0] is x
    assert callback.unpack_batch([x, y]) == (x, y)
    assert callback.unpack_batch((x,)) == (x, None)
    assert callback.unpack_batch((x, "label")) == (x, None)
    with pytest.raises(TypeError, match=r"batch of type dict; .*override unpack_batch\(batch\) -> \(input, target\)"):
        callback.unpack_batch({"x": x})


def test_dict_batches_with_unpack_batch_overridden(tmp_path: Path) -> None:
    class DictMC(MCDropoutUncertainty):
        def unpack_batch(self, batch: Any) -> tuple[Tensor, Tensor | None]:
            return batch["x"], batch["y"]

    x = torch.linspace(-1, 1, 8).unsqueeze(1)
    loader = DataLoader([{"x": x[i], "y": x[i] + 0.3} for i in range(8)], batch_size=8)
    trainer = tiny_trainer(tmp_path, callbacks=[DictMC(samples=2, interval_z=1.0)])
    metrics = trainer.validate(ShiftRegressor(p=0.5), dataloaders=loader, verbose=False)[0]
    assert metrics["mc/coverage"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"samples": 1}, ValueError, r"samples must be an int >= 2 \(a standard deviation needs two passes\), got 1"),
        ({"samples": -5}, ValueError, r"samples must be an int >= 2"),
        ({"every_n_epochs": 0}, ValueError, r"every_n_epochs must be an int >= 1, got 0"),
        ({"max_batches": 0}, ValueError, r"max_batches must be an int >= 1, got 0"),
        ({"interval_z": -1.0}, ValueError, r"interval_z must be a finite number >= 0, got -1.0"),
        ({"interval_z": "2"}, TypeError, r"interval_z must be a number >= 0, got str '2'"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        MCDropoutUncertainty(**kwargs)


def test_repr_and_pickle() -> None:
    callback = MCDropoutUncertainty(samples=8, every_n_epochs=3, interval_z=2.0, max_batches=1)
    clone = pickle.loads(pickle.dumps(callback))
    assert (
        repr(clone)
        == repr(callback)
        == ("MCDropoutUncertainty(samples=8, every_n_epochs=3, interval_z=2.0, max_batches=1)")
    )
