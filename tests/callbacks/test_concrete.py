"""Tests of regdrop.callbacks.ConcreteRegularization, and of the other callbacks on learned rates."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, IterableDataset

import regdrop
from regdrop.callbacks import (
    ConcreteRegularization,
    DropoutScheduler,
    RegularizationMonitor,
)
from regdrop.nn import LSTM, ConcreteDropout, set_dropout_rates
from tests.callbacks.models import RandomRegressionData, tiny_trainer


class FrozenHead(pl.LightningModule):
    """ConcreteDropout -> Linear with zero, frozen weights: the loss's gradient on the logit is 0,
    so every change of the logit comes from the regularizer."""

    def __init__(self, lr: float = 1.0, frozen: bool = True) -> None:
        super().__init__()
        self.lr = lr
        self.drop = ConcreteDropout(4, p=0.2)
        self.extra = nn.Dropout(0.1)
        self.head = nn.Linear(4, 1)
        if frozen:
            with torch.no_grad():
                self.head.weight.zero_()
            self.head.weight.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.extra(self.drop(x)))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=self.lr)


def _expected_logit(start_p: float, steps: int, n: int, k: int = 4, lr: float = 1.0) -> float:
    logit = math.log(start_p / (1 - start_p))
    for _ in range(steps):
        p = 1 / (1 + math.exp(-logit))
        # d/dl of 2K/N (p log p + (1-p) log(1-p)) = 2K/N p (1-p) l
        logit -= lr * 2 * k / n * p * (1 - p) * logit
    return logit


@pytest.mark.parametrize("accumulate", [1, 2])
def test_adds_the_regularizer_gradient_once_per_step(tmp_path: Path, accumulate: int) -> None:
    model = FrozenHead()
    trainer = tiny_trainer(
        tmp_path,
        max_epochs=1,
        accumulate_grad_batches=accumulate,
        callbacks=[ConcreteRegularization()],
    )
    trainer.fit(model, RandomRegressionData(n_train=64))  # dataset size read from the loader: 64
    steps = 4 // accumulate
    assert trainer.global_step == steps
    assert float(model.drop.p_logit.detach()) == pytest.approx(_expected_logit(0.2, steps, 64), rel=1e-5)
    assert model.drop.p > 0.2


def test_explicit_dataset_size_and_without_the_callback(tmp_path: Path) -> None:
    model = FrozenHead()
    tiny_trainer(tmp_path, max_epochs=1, callbacks=[ConcreteRegularization(dataset_size=8)]).fit(
        model, RandomRegressionData()
    )
    assert float(model.drop.p_logit.detach()) == pytest.approx(_expected_logit(0.2, 4, 8), rel=1e-5)
    untouched = FrozenHead()
    tiny_trainer(tmp_path, max_epochs=1).fit(untouched, RandomRegressionData())
    assert untouched.drop.p == pytest.approx(0.2)  # proves the premise: only the callback moves it


class _Stream(IterableDataset):
    def __iter__(self):  # type: ignore[no-untyped-def]
        g = torch.Generator().manual_seed(0)
        for _ in range(8):
            yield torch.randn(4, generator=g), torch.zeros(1)


def test_dataset_without_len_needs_dataset_size(tmp_path: Path) -> None:
    trainer = tiny_trainer(
        tmp_path,
        max_epochs=1,
        callbacks=[ConcreteRegularization()],
        limit_val_batches=0,
    )
    with pytest.raises(ValueError, match=r"has no len\(\).*ConcreteRegularization\(dataset_size=N\)"):
        trainer.fit(FrozenHead(), train_dataloaders=DataLoader(_Stream(), batch_size=4))


def test_bad_arguments_repr_pickle_and_state() -> None:
    with pytest.raises(ValueError, match="dataset_size must be an int >= 1, got 0"):
        ConcreteRegularization(dataset_size=0)
    with pytest.raises(ValueError, match="precision must be a finite number > 0"):
        ConcreteRegularization(precision=0)
    cb = ConcreteRegularization(dataset_size=10)
    assert repr(pickle.loads(pickle.dumps(cb))) == repr(cb)
    fresh = ConcreteRegularization()
    fresh.load_state_dict(cb.state_dict())
    assert fresh._n == 10


def test_warns_without_learned_rates(tmp_path: Path) -> None:
    from tests.callbacks.models import TinyRegressor

    trainer = tiny_trainer(tmp_path, max_epochs=1, callbacks=[ConcreteRegularization()])
    with pytest.warns(UserWarning, match="no learned dropout rate"):
        trainer.fit(TinyRegressor(), RandomRegressionData())


def test_scheduler_skips_and_monitor_logs_the_learned_rate(tmp_path: Path) -> None:
    model = FrozenHead(lr=0.1, frozen=False)
    scheduler = DropoutScheduler(warmup=2)
    trainer = tiny_trainer(
        tmp_path,
        max_epochs=2,
        callbacks=[scheduler, RegularizationMonitor(), ConcreteRegularization()],
    )
    with pytest.warns(UserWarning, match=r"learned rates \['drop.p'\] are left to the optimizer"):
        trainer.fit(model, RandomRegressionData())
    assert scheduler.targets == {"extra.p": pytest.approx(0.1)}
    metrics = trainer.callback_metrics
    assert float(metrics["dropout/drop.p"]) == pytest.approx(model.drop.p, rel=1e-5)
    assert "concrete_regularization" in metrics
    with pytest.raises(ValueError, match="target names 'drop.p', a learned rate"):
        DropoutScheduler(warmup=2, target={"drop.p": 0.3}).read_targets(model)


class FrozenLSTMHead(pl.LightningModule):
    """regdrop.nn.LSTM(learn_rates=True) -> Linear with zero, frozen weights: every change of the
    layer's rate logits comes from the regularizer the callback adds."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = LSTM(4, 8, num_layers=2, batch_first=True, learn_rates=True, weight_dropout=0.1)
        self.head = nn.Linear(8, 1)
        with torch.no_grad():
            self.head.weight.zero_()
        self.head.weight.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.rnn(x)[0][:, -1])

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = nn.functional.mse_loss(self(batch[0]), batch[1])
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val_loss", nn.functional.mse_loss(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=1.0)


def test_recurrent_layers_learned_rates_get_the_regularizer_and_are_logged(tmp_path: Path) -> None:
    model = FrozenLSTMHead()
    scheduler = DropoutScheduler(warmup=2)
    trainer = tiny_trainer(
        tmp_path, max_epochs=1, callbacks=[scheduler, RegularizationMonitor(), ConcreteRegularization()]
    )
    learned = ["rnn.input_dropout", "rnn.dropout", "rnn.recurrent_dropout"]
    with pytest.warns(UserWarning, match=rf"learned rates {re.escape(str(learned))} are left to the optimizer"):
        trainer.fit(model, RandomRegressionData(seq_len=5, n_train=64))
    assert scheduler.targets == {"rnn.weight_dropout": pytest.approx(0.1)}
    # K = input_size for input_dropout, D * H for the others; N = 64 training sequences
    for name, k in (("input_dropout", 4), ("dropout", 8), ("recurrent_dropout", 8)):
        logits = getattr(model.rnn, f"{name}_logit").detach().reshape(-1)
        for logit in logits:
            assert float(logit) == pytest.approx(_expected_logit(0.1, 4, 64, k=k), rel=1e-5), name
    metrics = trainer.callback_metrics
    assert float(metrics["dropout/rnn.recurrent_dropout"]) == pytest.approx(model.rnn.recurrent_dropout, rel=1e-5)
    rates = model.rnn.learned_rates["recurrent_dropout"]
    assert float(metrics["dropout/rnn.recurrent_dropout_l1"]) == pytest.approx(float(rates[1]), rel=1e-5)
    assert float(metrics["dropout/rnn.dropout_l1"]) == pytest.approx(model.rnn.dropout, rel=1e-5)
    assert "dropout/rnn.weight_dropout" in metrics  # the scheduled rate, logged by the scheduler


def test_an_unoptimized_recurrent_rate_is_named_in_the_warning(tmp_path: Path) -> None:
    model = FrozenLSTMHead()
    held = model.rnn.recurrent_dropout_logit
    model.configure_optimizers = lambda: torch.optim.SGD([held], lr=1.0)  # type: ignore[method-assign]
    trainer = tiny_trainer(tmp_path, max_epochs=1, callbacks=[ConcreteRegularization()])
    with pytest.warns(UserWarning, match=r"learned rates \['rnn.input_dropout_logit', 'rnn.dropout_logit'\] are in no"):
        trainer.fit(model, RandomRegressionData(seq_len=5, n_train=64))


def test_set_dropout_rates_and_mc_predict_with_a_learned_recurrent_layer() -> None:
    torch.manual_seed(0)
    rnn = LSTM(3, 6, batch_first=True, learn_rates=["recurrent_dropout"], input_dropout=0.2)
    with pytest.warns(UserWarning, match=r"leaving the learned rates \['recurrent_dropout'\]"):
        rates = set_dropout_rates(rnn, 0.3)
    assert rates["input_dropout"] == 0.3 and rates["recurrent_dropout"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="names 'recurrent_dropout', a learned rate .* cannot be set"):
        set_dropout_rates(rnn, {"recurrent_dropout": 0.2})
    set_dropout_rates(rnn, {"input_dropout": 0.0})

    class Last(nn.Module):
        def forward(self, out: tuple[Tensor, Any]) -> Tensor:
            return out[0][:, -1]

    model = nn.Sequential(rnn, Last(), nn.Linear(6, 1)).eval()
    x = torch.randn(4, 7, 3)
    mean, std = regdrop.mc_predict(model, x, samples=20)
    assert mean.shape == (4, 1) and (std > 0).all()  # only the learned recurrent rate is random
    assert not rnn.training
    assert torch.equal(model(x), model(x))
