"""Two instances of each stateful callback in one Trainer keep their own state through a checkpoint and a resume."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from regdrop.callbacks import DropoutScheduler, MaxNorm, MCDropoutUncertainty, RegularizationMonitor
from tests.callbacks._tiny import DropoutRegressor
from tests.callbacks.models import RandomRegressionData, tiny_trainer


def _pairs():
    return [
        (DropoutScheduler("linear", warmup=4, start=0.1), DropoutScheduler("cosine", warmup=2, start=0.05)),
        (RegularizationMonitor(val_key="val_mse"), RegularizationMonitor()),
        (MCDropoutUncertainty(samples=3, max_batches=1), MCDropoutUncertainty(samples=4, max_batches=1)),
        (MaxNorm(5.0), MaxNorm(6.0)),
    ]


def _state(callback) -> dict:
    return callback.state_dict()


def test_two_of_a_kind_keep_their_own_state_through_a_resume(tmp_path):
    torch.manual_seed(0)
    first = [cb for pair in _pairs() for cb in pair]
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    data = RandomRegressionData(seq_len=5, n_train=16, n_val=8, batch_size=8)
    with pytest.warns(UserWarning):  # the monitor with val_key="val_mse" says the key is missing
        tiny_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[*first, checkpoint]).fit(
            DropoutRegressor(), datamodule=data
        )
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)["callbacks"]
    for a, b in zip(first[::2], first[1::2], strict=True):
        assert a.state_key != b.state_key and {a.state_key, b.state_key} <= set(saved)
    assert first[0].state_dict() != first[1].state_dict()  # other starts: a shared key would lose one

    resumed = [cb for pair in _pairs() for cb in pair]
    trainer = tiny_trainer(tmp_path / "b", max_epochs=1, callbacks=resumed)
    trainer.fit(DropoutRegressor(rnn_dropout=0.9, p=0.9), datamodule=data, ckpt_path=tmp_path / "last.ckpt")
    for before, after in zip(first, resumed, strict=True):
        assert _state(after) == saved[before.state_key], type(before).__name__
    assert resumed[0]._starts != resumed[1]._starts
    assert resumed[0].targets == first[0].targets == resumed[1].targets  # the checkpoint's, not the new model's
