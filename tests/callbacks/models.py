"""A tiny regression model and data module for the callback tests.

``TinyRegressor`` fits a noisy linear target on random data: ``training_step`` logs
``train_loss`` and ``validation_step`` logs ``val_loss`` (both per epoch), so any callback that
monitors a loss has something to read. ``recurrent=True`` swaps the MLP body for an ``nn.LSTM``
over short sequences, for callbacks that treat recurrent weights specially. ``tiny_trainer``
builds a ``Trainer`` with the settings these tests want (CPU, few batches, no progress bar,
no logger, no checkpoints) that a test overrides by keyword.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["RandomRegressionData", "TinyRegressor", "tiny_trainer"]


class RandomRegressionData(pl.LightningDataModule):
    """Random inputs and a noisy linear target, fixed by ``seed``.

    Inputs are ``(N, in_features)``, or ``(N, seq_len, in_features)`` when ``seq_len`` is given
    (the target then depends on the mean over time).
    """

    def __init__(
        self,
        in_features: int = 4,
        seq_len: int | None = None,
        n_train: int = 64,
        n_val: int = 32,
        batch_size: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        g = torch.Generator().manual_seed(seed)
        shape = (in_features,) if seq_len is None else (seq_len, in_features)
        x = torch.randn(n_train + n_val, *shape, generator=g)
        coef = torch.randn(in_features, 1, generator=g)
        summary = x if seq_len is None else x.mean(dim=1)
        y = summary @ coef + 0.1 * torch.randn(n_train + n_val, 1, generator=g)
        self.train_set = TensorDataset(x[:n_train], y[:n_train])
        self.val_set = TensorDataset(x[n_train:], y[n_train:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False)


class TinyRegressor(pl.LightningModule):
    """An MLP (or an LSTM with ``recurrent=True``) with a linear head, trained by SGD on MSE."""

    def __init__(self, in_features: int = 4, hidden: int = 8, lr: float = 0.1, recurrent: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lr = lr
        self.recurrent = recurrent
        if recurrent:
            self.rnn = nn.LSTM(in_features, hidden, batch_first=True)
        else:
            self.body = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.recurrent:
            out, _ = self.rnn(x)
            return self.head(out[:, -1])
        return self.head(self.body(x))

    def _loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), on_step=False, on_epoch=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def tiny_trainer(root: str | Path, **kwargs: Any) -> pl.Trainer:
    """A CPU ``Trainer`` for tests: 2 epochs of 4 batches, no progress bar, logger or checkpoints by default."""
    settings: dict[str, Any] = {
        "default_root_dir": str(root),
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "limit_train_batches": 4,
        "limit_val_batches": 2,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
        "num_sanity_val_steps": 0,
    }
    settings.update(kwargs)
    return pl.Trainer(**settings)
