"""Small models with dropout for the scheduler, monitor and MC-dropout tests.

``DropoutRegressor`` reads ``(N, L, C)`` sequences with a 2-layer LSTM (torch's or regdrop's),
then LockedDropout, BatchNorm, Dropout and a linear head, so it has every kind of rate the
rate tools find plus a layer that must stay in eval under MC dropout. ``AlternatingShift`` is a
"dropout" whose train-mode output is known exactly, for checking statistics without sampling
noise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from regdrop.nn import LockedDropout, dropout_rates

__all__ = ["AlternatingShift", "DropoutRegressor", "RateRecorder", "ShiftRegressor"]


class DropoutRegressor(pl.LightningModule):
    """LSTM -> LockedDropout -> last step -> BatchNorm -> Dropout -> Linear, trained on MSE."""

    def __init__(
        self,
        in_features: int = 4,
        hidden: int = 8,
        rnn_dropout: float = 0.3,
        p: float = 0.2,
        lr: float = 0.05,
        rnn_factory: Callable[..., nn.Module] = nn.LSTM,
        log_train_step: bool = False,
        **rnn_kwargs: Any,
    ) -> None:
        super().__init__()
        self.lr = lr
        self.log_train_step = log_train_step
        self.rnn = rnn_factory(in_features, hidden, num_layers=2, batch_first=True, dropout=rnn_dropout, **rnn_kwargs)
        self.drop = LockedDropout(p, batch_first=True)
        self.norm = nn.BatchNorm1d(hidden)
        self.head_drop = nn.Dropout(p)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        last = self.drop(out)[:, -1]
        return self.head(self.head_drop(self.norm(last)))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=self.log_train_step, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class AlternatingShift(nn.Module):
    """In training, adds +p and -p on alternate calls; in eval, the identity.

    Over an even number of calls its outputs have mean ``x`` and (population) std ``p``
    exactly, like a dropout whose spread is known in advance.
    """

    rate_names = ("p",)

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        self.calls += 1
        return x + (self.p if self.calls % 2 else -self.p)


class ShiftRegressor(pl.LightningModule):
    """``forward(x) = AlternatingShift(p)(x)``, with a dummy parameter so it can be fitted."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.shift = AlternatingShift(p)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return self.shift(x) * self.scale

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y.to(x.dtype))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        pass

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


class RateRecorder(Callback):
    """Records the model's dropout rates when each training batch starts; list it after the scheduler."""

    def __init__(self) -> None:
        self.by_step: list[tuple[int, int, dict[str, float]]] = []

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.by_step.append((trainer.current_epoch, trainer.global_step, dropout_rates(pl_module)))

    def per_epoch(self, name: str) -> list[float]:
        """The rate ``name`` at the first batch of each epoch."""
        seen: dict[int, float] = {}
        for epoch, _, rates in self.by_step:
            seen.setdefault(epoch, rates[name])
        return [seen[e] for e in sorted(seen)]
