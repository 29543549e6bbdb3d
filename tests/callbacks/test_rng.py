"""Tests of regdrop.callbacks.RNGState: a run killed mid-epoch resumes to bit-identical weights."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from regdrop.callbacks import DropoutScheduler, RNGState
from tests.callbacks.models import tiny_trainer

REPO_ROOT = Path(__file__).resolve().parents[2]


class ResumableSampler(Sampler[int]):
    """A permutation seeded by (seed, epoch) that can resume in the middle of an epoch."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch, self.pos = n, seed, 0, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if self.pos >= self.n:  # the previous epoch was served to the end
            self.epoch, self.pos = self.epoch + 1, 0
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        while self.pos < self.n:
            self.pos += 1
            yield order[self.pos - 1]


class ResumableLoader(DataLoader):
    """Lightning saves and loads its state (it does not prefetch from a loader of known length)."""

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "pos": self.sampler.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.epoch, self.sampler.pos = state["epoch"], state["pos"]


def _loader(x: torch.Tensor, y: torch.Tensor, shuffle: bool) -> DataLoader:
    dataset = TensorDataset(x, y)
    sampler = ResumableSampler(len(dataset), seed=1) if shuffle else None
    return ResumableLoader(dataset, batch_size=4, sampler=sampler, generator=torch.Generator().manual_seed(2))


class Noisy(pl.LightningModule):
    """Dropout (torch's generator) plus numpy and Python noise in the loss, so every generator matters."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))
        self.register_buffer("noise", torch.zeros(()))

    def training_step(self, batch, batch_idx):
        x, y = batch
        jitter = float(np.random.rand()) + random.random()
        return nn.functional.mse_loss(self.net(x), y) * (1 + 0.01 * jitter)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(32, 3, generator=g)
        return _loader(x, x.sum(1, keepdim=True), shuffle=True)

    def val_dataloader(self):
        g = torch.Generator().manual_seed(5)
        x = torch.randn(8, 3, generator=g)
        return _loader(x, x.sum(1, keepdim=True), shuffle=False)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


def run(root: str, *, rng: bool = True, kill_at: int | None = None, ckpt_path: str | None = None) -> Noisy:
    """3 epochs of 8 steps, a checkpoint every 3 steps; ``kill_at`` SIGKILLs the process at that step."""
    pl.seed_everything(0)
    model = Noisy()

    class Kill(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoint = ModelCheckpoint(dirpath=root, every_n_train_steps=3, save_top_k=-1, filename="{step}")
    callbacks = [checkpoint, Kill(), DropoutScheduler("linear", warmup=10, interval="step", log_rates=False)]
    trainer = tiny_trainer(
        root,
        max_epochs=3,
        limit_train_batches=None,
        limit_val_batches=None,
        enable_checkpointing=True,
        callbacks=[*callbacks, RNGState()] if rng else callbacks,
    )
    trainer.fit(model, ckpt_path=ckpt_path)
    return model


KILLED = """
import sys
sys.path.insert(0, {root!r})
from tests.callbacks.test_rng import run
run({out!r}, kill_at=13)
"""


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_bit_identically(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED.format(root=str(REPO_ROOT), out=str(tmp_path / "killed"))))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    checkpoint = tmp_path / "killed" / "step=12.ckpt"  # epoch 1, after its 4th of 8 batches
    assert checkpoint.exists() and not (tmp_path / "killed" / "step=15.ckpt").exists()

    full = run(str(tmp_path / "full")).state_dict()
    resumed = run(str(tmp_path / "resumed"), ckpt_path=str(checkpoint)).state_dict()
    for name, value in full.items():
        assert torch.equal(value, resumed[name]), name
    # the premise: without the generators' states the resumed run draws other masks and ends elsewhere
    other = run(str(tmp_path / "no_rng"), rng=False, ckpt_path=str(checkpoint)).state_dict()
    assert any(not torch.equal(value, other[name]) for name, value in full.items())


def test_states_round_trip_and_a_different_world_size_warns():
    callback = RNGState()
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    state = pickle.loads(pickle.dumps(callback.state_dict()))
    expected = (torch.rand(3), np.random.rand(), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    callback.load_state_dict(state)
    callback.on_train_batch_start(None, None, None, 0)  # type: ignore[arg-type]
    assert torch.equal(torch.rand(3), expected[0])
    assert (np.random.rand(), random.random()) == expected[1:]
    with pytest.warns(UserWarning, match=r"RNGState: the checkpoint holds the generator states of 2 rank\(s\) and"):
        callback.load_state_dict({"world_size": 2, "states": [state["states"][0]] * 2})
    assert callback._pending is None
